/**
 * weftctl's flag parsing, in one place: `scanFlags` walks argv the way kubectl reads it (`--flag
 * value` and `--flag=value`), and each command says what its flags mean. `parseManifestArgs` is
 * the set validate and analyze share: `-f/--filename` (repeatable), `-o/--output`,
 * `-n/--namespace`, `--ignore-unknown-kinds`, `-h/--help`.
 */
import { WeftError } from '../pkg/errors/index.js';

/** One flag as the scanner hands it to a command. */
export interface Flag {
  name: string;
  /** The `=value` part, if the flag was written `--flag=value`. */
  inline: string | undefined;
  /** The flag's value: the inline one, else the next argument; an error naming the flag if none. */
  value(): string;
}

/**
 * Calls `onFlag` for every flag in argv; `onFlag` returns false for a flag it does not know,
 * which is an error carrying the usage text.
 */
export function scanFlags(argv: string[], usage: string, onFlag: (flag: Flag) => boolean): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '')
        throw new WeftError('WEFT_INPUT_UNREADABLE', `${name} needs a value\n\n${usage}`);
      return v;
    };
    if (!onFlag({ name, inline, value }))
      throw new WeftError('WEFT_INPUT_UNREADABLE', `unknown argument ${JSON.stringify(arg)}\n\n${usage}`);
  }
}

/** `true`/`false` as a flag value; anything else is an error naming the flag. */
export function booleanFlag(flag: Flag): boolean {
  const v = flag.value();
  if (v !== 'true' && v !== 'false')
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      `${flag.name} must be true or false (got ${JSON.stringify(v)})`,
    );
  return v === 'true';
}

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
  scanFlags(argv, usage, (flag) => {
    switch (flag.name) {
      case '-f':
      case '--filename':
        args.files.push(flag.value());
        return true;
      case '-o':
      case '--output': {
        const v = flag.value();
        if (v !== 'text' && v !== 'json')
          throw new WeftError(
            'WEFT_INPUT_UNREADABLE',
            `--output must be text or json (got ${JSON.stringify(v)})`,
          );
        args.output = v;
        return true;
      }
      case '-n':
      case '--namespace':
        args.namespace = flag.value();
        return true;
      case '--ignore-unknown-kinds':
        args.ignoreUnknownKinds = true;
        return true;
      case '-h':
      case '--help':
        args.help = true;
        return true;
      default:
        return false;
    }
  });
  if (!args.help && args.files.length === 0)
    throw new WeftError('WEFT_INPUT_UNREADABLE', `-f FILE|DIR|- is required\n\n${usage}`);
  return args;
}
