/**
 * Loads a config file in a short-lived child process and returns the resulting ProxyConfig.
 *
 * Why a child: parsing and validating Istio YAML (yaml + ajv) allocates ~50–80 MB of short-lived
 * objects for 1,000 services, and V8 keeps that memory as RSS long after it is garbage. Loading
 * in a child keeps the serving process small (the sidecar is memory-bound) and isolates it from
 * hostile input: the child has a heap cap and a deadline, so a YAML bomb or a pathological file
 * fails the reload instead of the proxy.
 */
import { spawn } from 'node:child_process';
import { WeftError } from '../../pkg/errors/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { LOAD_SUBCOMMAND } from './subcommand.js';

const LOAD_TIMEOUT_MS = 30_000;
const CHILD_HEAP_MB = 512;

export interface ChildLoadResult {
  config: ProxyConfig;
  warnings: string[];
}

/** Runs `<this entry> __load-config FILE` and parses its JSON answer. */
export function loadConfigInChild(file: string, entry: string): Promise<ChildLoadResult> {
  return new Promise((resolve, reject) => {
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--cpu-prof') && !a.startsWith('--max-old-space-size'));
    const child = spawn(process.execPath, [...execArgv, `--max-old-space-size=${CHILD_HEAP_MB}`, entry, LOAD_SUBCOMMAND, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), LOAD_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new WeftError('WEFT_PROXY_CONFIG_INVALID', `${file}: config loader failed to start: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      type Answer = { ok: boolean; config?: ProxyConfig; warnings?: string[]; code?: string; message?: string };
      let answer: Answer | null;
      try {
        answer = JSON.parse(Buffer.concat(out).toString('utf8')) as Answer;
      } catch {
        answer = null;
      }
      if (answer?.ok === true && answer.config) return resolve({ config: answer.config, warnings: answer.warnings ?? [] });
      if (answer?.ok === false) return reject(new WeftError((answer.code as never) ?? 'WEFT_PROXY_CONFIG_INVALID', answer.message ?? 'invalid config'));
      const why = signal === 'SIGKILL' ? `took longer than ${LOAD_TIMEOUT_MS / 1000} s` : `exited ${code ?? signal} (${err.trim().split('\n').pop() ?? 'no output'})`;
      reject(new WeftError('WEFT_PROXY_CONFIG_INVALID', `${file}: config loader ${why}`));
    });
  });
}

/** The child side: load, print one JSON answer on stdout, exit. */
export async function childMain(file: string): Promise<void> {
  const { loadConfigFile } = await import('./load.js');
  const { errorMessage, isWeftError } = await import('../../pkg/errors/index.js');
  let answer: unknown;
  try {
    const l = await loadConfigFile(file);
    answer = { ok: true, config: l.config, warnings: l.warnings };
  } catch (e) {
    answer = { ok: false, code: isWeftError(e) ? e.code : 'WEFT_PROXY_CONFIG_INVALID', message: isWeftError(e) ? e.message : errorMessage(e) };
  }
  process.stdout.write(JSON.stringify(answer));
}
