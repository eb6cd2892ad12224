/**
 * Flag parsing shared by the commands that look at a running mesh (proxy-status, proxy-config,
 * explain): positional arguments, `-n`, `-o`, `--config FILE` and the flags that say how to
 * reach weftd (cli/weftd.ts).
 */
import { readFileSync } from 'node:fs';
import { WeftError, errorMessage } from '../pkg/errors/index.js';
import type { ProxyConfig } from '../pkg/proxyconfig/types.js';
import { configFromText } from '../proxy/config/load.js';
import { type Flag, scanFlags } from './args.js';
import type { CommandIO } from './command.js';
import { MAX_INPUT_BYTES } from './input.js';
import { type ClusterFlags, DEFAULT_MESH_NAMESPACE, clusterFlag } from './weftd.js';

export interface MeshArgs {
  positionals: string[];
  namespace?: string;
  output: string;
  configFile?: string;
  cluster: ClusterFlags;
  help: boolean;
}

/**
 * Scans argv; `extra` handles a command's own flags first. `outputs` are the `-o` values the
 * command accepts (the first is the default).
 */
export function parseMeshArgs(
  argv: string[],
  usage: string,
  outputs: string[],
  extra: (flag: Flag) => boolean = () => false,
): MeshArgs {
  const args: MeshArgs = {
    positionals: [],
    output: outputs[0] ?? 'text',
    cluster: { meshNamespace: DEFAULT_MESH_NAMESPACE },
    help: false,
  };
  scanFlags(argv, usage, (flag) => {
    if (!flag.name.startsWith('-') || flag.name === '-') {
      args.positionals.push(flag.name);
      return true;
    }
    if (extra(flag) || clusterFlag(flag, args.cluster)) return true;
    switch (flag.name) {
      case '-n':
      case '--namespace':
        args.namespace = flag.value();
        return true;
      case '-o':
      case '--output': {
        const v = flag.value();
        if (!outputs.includes(v))
          throw new WeftError(
            'WEFT_INPUT_UNREADABLE',
            `--output must be ${outputs.join(', ')} (got ${JSON.stringify(v)})`,
          );
        args.output = v;
        return true;
      }
      case '--config':
        args.configFile = flag.value();
        return true;
      case '-h':
      case '--help':
        args.help = true;
        return true;
      default:
        return false;
    }
  });
  return args;
}

/**
 * A local config for `--config FILE`: a ProxyConfig or plain Istio YAML, read by the proxy's
 * standalone loader (proxy/config/load.ts), so it means what `weft-proxy run --config` makes of it.
 */
export function loadLocalConfig(file: string, io: CommandIO): ProxyConfig {
  let text: string;
  try {
    text = io.readInput ? io.readInput(file) : readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`,
    );
  }
  if (Buffer.byteLength(text) > MAX_INPUT_BYTES)
    throw new WeftError('WEFT_INPUT_TOO_LARGE', `${file} is larger than ${MAX_INPUT_BYTES} bytes`);
  return configFromText(text, file).config;
}
