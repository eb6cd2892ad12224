/**
 * The flag parsing validate and analyze share: `-f/--filename` (repeatable), `-o/--output`,
 * `-n/--namespace`, `--ignore-unknown-kinds`, `-h/--help`. Accepts `--flag value` and
 * `--flag=value`, like kubectl.
 */
import { WeftError } from '../pkg/errors/index.js';

export interface ManifestArgs {
  files: string[];
  output: 'text' | 'json';
  namespace: string;
  ignoreUnknownKinds: boolean;
  help: boolean;
}

export function parseManifestArgs(argv: string[], usage: string): ManifestArgs {
  const args: ManifestArgs = {
    files: [],
    output: 'text',
    namespace: 'default',
    ignoreUnknownKinds: false,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '')
        throw new WeftError('WEFT_INPUT_UNREADABLE', `${flag} needs a value\n\n${usage}`);
      return v;
    };
    switch (flag) {
      case '-f':
      case '--filename':
        args.files.push(value());
        break;
      case '-o':
      case '--output': {
        const v = value();
        if (v !== 'text' && v !== 'json')
          throw new WeftError(
            'WEFT_INPUT_UNREADABLE',
            `--output must be text or json (got ${JSON.stringify(v)})`,
          );
        args.output = v;
        break;
      }
      case '-n':
      case '--namespace':
        args.namespace = value();
        break;
      case '--ignore-unknown-kinds':
        args.ignoreUnknownKinds = true;
        break;
      case '-h':
      case '--help':
        args.help = true;
        break;
      default:
        throw new WeftError('WEFT_INPUT_UNREADABLE', `unknown argument ${JSON.stringify(arg)}\n\n${usage}`);
    }
  }
  if (!args.help && args.files.length === 0)
    throw new WeftError('WEFT_INPUT_UNREADABLE', `-f FILE|DIR|- is required\n\n${usage}`);
  return args;
}
