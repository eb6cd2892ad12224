/**
 * weft-proxy: `weft-proxy run --config FILE [--listen HOST:PORT] [options]`, and the in-pod
 * modes (docs/proxy-modes.md): `init` (iptables capture rules), `sidecar` and `gateway` (config
 * from weftd), `wait` (block until the local proxy is ready).
 * Standalone mode: config from a file (proxy model or Istio YAML), watched for hot reload; an
 * invalid edit is rejected with a message and the last good config stays in force.
 * Prints one JSON line `{"msg":"Proxy ready","ports":{...}}` on stderr (via the logger) once
 * serving, so scripts and tests can use ephemeral ports (`--admin-port 0`).
 */
import { createLogger } from '../pkg/log/index.js';
import { errorMessage } from '../pkg/errors/index.js';
import type { ProxyOptions } from './server.js';
import type { ProxyConfig } from '../pkg/proxyconfig/types.js';
import { WEFT_VERSION } from '../pkg/api/images.js';
import { LOAD_SUBCOMMAND } from './config/subcommand.js';
// Each mode's modules are imported when that mode runs (ADR 0009): a sidecar never loads the
// standalone mode's config child (node:child_process) and file watcher, `init` or `wait`.

const USAGE = `usage: weft-proxy init|sidecar|gateway|wait ... (docs/proxy-modes.md), or
       weft-proxy run --config FILE [--listen HOST:PORT] [--admin-port N] [--metrics-port N]
                      [--health-port N] [--admin-address ADDR] [--drain-seconds N]
                      [--access-log] [--explain-header] [--no-watch]
Ports default to Istio's (admin 15000, Prometheus 15090, health 15021); 0 picks a free port.`;

export interface CliArgs {
  config: string;
  listen?: { host: string; port: number };
  adminPort?: number;
  metricsPort?: number;
  healthPort?: number;
  adminAddress?: string;
  drainMs?: number;
  accessLog: boolean;
  explainHeader: boolean;
  watch: boolean;
}

class UsageError extends Error {}

function port(v: string | undefined, flag: string): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`${flag} needs a port number 0-65535, got ${JSON.stringify(v)}`);
  return n;
}

export function parseArgs(argv: string[]): CliArgs {
  if (argv[0] !== 'run')
    throw new UsageError(
      argv[0] === undefined ? 'missing command' : `unknown command ${JSON.stringify(argv[0])}`,
    );
  const a: Partial<CliArgs> & { accessLog: boolean; explainHeader: boolean; watch: boolean } = {
    accessLog: false,
    explainHeader: false,
    watch: true,
  };
  for (let i = 1; i < argv.length; i++) {
    const flag = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--config':
        a.config = next();
        break;
      case '--listen': {
        const v = next();
        const colon = v.lastIndexOf(':');
        if (colon <= 0) throw new UsageError(`--listen needs HOST:PORT, got ${JSON.stringify(v)}`);
        a.listen = {
          host: v.slice(0, colon).replace(/^\[|\]$/g, ''),
          port: port(v.slice(colon + 1), '--listen'),
        };
        break;
      }
      case '--admin-port':
        a.adminPort = port(next(), flag);
        break;
      case '--metrics-port':
        a.metricsPort = port(next(), flag);
        break;
      case '--health-port':
        a.healthPort = port(next(), flag);
        break;
      case '--admin-address':
        a.adminAddress = next();
        break;
      case '--drain-seconds': {
        const v = Number(next());
        if (!Number.isFinite(v) || v < 0) throw new UsageError('--drain-seconds needs a non-negative number');
        a.drainMs = v * 1000;
        break;
      }
      case '--access-log':
        a.accessLog = true;
        break;
      case '--explain-header':
        a.explainHeader = true;
        break;
      case '--no-watch':
        a.watch = false;
        break;
      default:
        throw new UsageError(`unknown flag ${JSON.stringify(flag)}`);
    }
  }
  if (a.config === undefined) throw new UsageError('--config FILE is required');
  return a as CliArgs;
}

function withFlags(cfg: ProxyConfig, args: CliArgs): ProxyConfig {
  if (!args.accessLog && !args.explainHeader) return cfg;
  const telemetry = { ...cfg.telemetry };
  if (args.accessLog) telemetry.accessLog = true;
  if (args.explainHeader) telemetry.explainHeader = true;
  return { ...cfg, telemetry };
}

/** This module's own file: the config loader child re-runs it with LOAD_SUBCOMMAND. */
const entry = process.argv[1] ?? '';

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === LOAD_SUBCOMMAND && argv[1] !== undefined) {
    await (await import('./config/child.js')).childMain(argv[1]);
    return 0;
  }
  if (argv[0] === 'init') return (await import('./init/run.js')).runInit(argv.slice(1));
  if (argv[0] === 'sidecar' || argv[0] === 'gateway')
    return (await import('./sidecar/agent.js')).runAgent(argv[0], argv.slice(1));
  if (argv[0] === 'wait') return (await import('./wait.js')).runWait(argv.slice(1));
  if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (argv[0] === '--version' || argv[0] === 'version') {
    process.stdout.write(`weft-proxy ${WEFT_VERSION}\n`);
    return 0;
  }
  const log = createLogger('proxy');
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`weft-proxy: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  // a standalone config is a gateway's kind of config: its rateLimits limit its listeners
  const opts: ProxyOptions = { logger: log, listenerRateLimits: {} };
  if (args.listen) opts.listen = args.listen;
  if (args.adminPort !== undefined) opts.adminPort = args.adminPort;
  if (args.metricsPort !== undefined) opts.metricsPort = args.metricsPort;
  if (args.healthPort !== undefined) opts.healthPort = args.healthPort;
  if (args.adminAddress !== undefined) opts.adminAddress = args.adminAddress;
  if (args.drainMs !== undefined) opts.drainMs = args.drainMs;
  const [{ ProxyServer }, { loadConfigInChild }, { watchFile }] = await Promise.all([
    import('./server.js'),
    import('./config/child.js'),
    import('./config/watch.js'),
  ]);
  const proxy = new ProxyServer(opts);
  try {
    const loaded = await loadConfigInChild(args.config, entry);
    for (const w of loaded.warnings) log.warn('Config warning', { warning: w });
    await proxy.apply(withFlags(loaded.config, args));
    await proxy.startAux();
  } catch (err) {
    log.error('Proxy failed to start', { error: errorMessage(err) });
    await proxy.shutdown();
    return 1;
  }
  const reload = async (): Promise<void> => {
    try {
      const loaded = await loadConfigInChild(args.config, entry);
      for (const w of loaded.warnings) log.warn('Config warning', { warning: w });
      await proxy.apply(withFlags(loaded.config, args));
    } catch (err) {
      proxy.rejected(err);
    }
  };
  const watcher = args.watch ? watchFile(args.config, () => void reload()) : null;
  process.on('SIGHUP', () => void reload());
  const stop = (signal: string): void => {
    log.info('Received signal; draining', { signal });
    watcher?.close();
    void proxy.shutdown().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  log.info('Proxy ready', { version: proxy.current?.version, ports: proxy.ports() });
  return 0;
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  run(process.argv.slice(2)).then(
    (code) => {
      if (code !== 0) process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`weft-proxy: ${errorMessage(err)}\n`);
      process.exit(1);
    },
  );
}
