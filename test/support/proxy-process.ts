/**
 * `proxy sidecar` / `proxy gateway` as a real process run from source (tsx), on loopback, with a
 * weftd's env as a pod has it: the integration suites and the weftd benches start it the same way.
 * bench/proxy/harness.ts' startSidecar is the image-layout counterpart (compiled dist/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { sleep } from './wait.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const STARTED = '"Proxy started; waiting for config from weftd"';
/** Every port the proxy opens, chosen by the kernel (the started line tells which). */
const PORT_FLAGS = ['outbound', 'inbound', 'admin', 'metrics', 'health'].flatMap((p) => [`--${p}-port`, '0']);

/** Where the proxy finds weftd: its discovery address, the mesh root and a token, as files. */
export interface WeftdEndpoint {
  address: string;
  rootPath: string;
  tokenPath: string;
}

export interface ProxyProcess {
  child: ChildProcess;
  /** Its ports by name (outbound, inbound, admin, metrics, health), from its started line. */
  ports: Record<string, number>;
  /** Everything it wrote so far (stdout and stderr). */
  log: () => string;
  /** Its exit code (-1 when killed by a signal). */
  exited: Promise<number>;
}

/**
 * Starts `proxy <kind>` against `weftd` and resolves once it logged its ports (not yet ready: the
 * config is weftd's to push). `env` sets the pod (POD_NAME, POD_NAMESPACE) and overrides the rest;
 * `flags` come after the port flags. The caller kills it.
 */
export async function startProxyProcess(
  kind: 'sidecar' | 'gateway',
  weftd: WeftdEndpoint,
  env: { POD_NAME: string; POD_NAMESPACE: string } & Record<string, string>,
  flags: string[] = [],
): Promise<ProxyProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'proxy/main.ts', kind, '--bind', '127.0.0.1', ...PORT_FLAGS, ...flags],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        WEFT_LOG_SILENT: '0',
        WEFT_DISCOVERY_ADDRESS: weftd.address,
        WEFT_CA_ROOT_PATH: weftd.rootPath,
        WEFT_TOKEN_PATH: weftd.tokenPath,
        INSTANCE_IP: '127.0.0.1',
        ...env,
      },
    },
  );
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? -1)));
  for (let i = 0; i < 1200; i++) {
    const line = log.split('\n').find((l) => l.includes(STARTED));
    if (line)
      return {
        child,
        log: () => log,
        ports: (JSON.parse(line) as { ports: Record<string, number> }).ports,
        exited,
      };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`proxy ${kind} did not start: ${log.slice(-2000)}`);
}

/** `proxy gateway` as the pod istio-system/gw-1 (`env` overrides); see startProxyProcess. */
export function startGatewayProcess(
  weftd: WeftdEndpoint,
  env: Record<string, string> = {},
  flags: string[] = [],
): Promise<ProxyProcess> {
  return startProxyProcess(
    'gateway',
    weftd,
    { POD_NAME: 'gw-1', POD_NAMESPACE: 'istio-system', ...env },
    flags,
  );
}
