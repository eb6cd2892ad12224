/**
 * A real `proxy sidecar` process for a ratings pod, configured by a fake weftd, and requests to
 * it over mesh mTLS: what the local and the global rate-limit suites both drive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import type http from 'node:http';
import path from 'node:path';
import type { KeyPairPem } from '../../../pkg/certs/index.js';
import type { FakeWeftd } from './fake-weftd.js';
import { sleep } from './helpers.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

export interface Proc {
  child: ChildProcess;
  log: () => string;
  ports: Record<string, number>;
}

export async function startSidecar(weftd: FakeWeftd, extraArgs: string[] = []): Promise<Proc> {
  const ports = ['outbound', 'inbound', 'admin', 'metrics', 'health'].flatMap((p) => [`--${p}-port`, '0']);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'proxy/main.ts',
      'sidecar',
      '--bind',
      '127.0.0.1',
      ...ports,
      // Generous: a client these suites open is never server-first, and under a 300-connection
      // burst on a loaded machine a request could arrive after a short wait, be taken for TCP
      // and, with no original destination on this loopback listener, be refused (socket hang up).
      '--sniff-timeout-ms',
      '5000',
      ...extraArgs,
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        WEFT_LOG_SILENT: '0',
        WEFT_DISCOVERY_ADDRESS: weftd.address,
        WEFT_CA_ROOT_PATH: weftd.rootPath,
        WEFT_TOKEN_PATH: weftd.tokenPath,
        POD_NAME: 'ratings-1',
        POD_NAMESPACE: 'bookinfo',
        INSTANCE_IP: '127.0.0.1',
      },
    },
  );
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  for (let i = 0; i < 1200; i++) {
    const line = log.split('\n').find((l) => l.includes('"Proxy started; waiting for config from weftd"'));
    if (line)
      return { child, log: () => log, ports: (JSON.parse(line) as { ports: Record<string, number> }).ports };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`proxy sidecar did not start: ${log}`);
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request over mesh mTLS as the peer `client` (a sidecar of another workload would send it). */
export function meshRequest(
  port: number,
  appPort: number,
  client: KeyPairPem,
  roots: string,
  path = '/ratings/0',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: { host: `ratings:${appPort}` },
        servername: `outbound_.${appPort}_._.ratings.bookinfo.svc.cluster.local`,
        ALPNProtocols: ['istio-http/1.1', 'istio'],
        key: client.keyPem,
        cert: client.certPem,
        ca: roots,
        checkServerIdentity: () => undefined,
        agent: false,
      } as https.RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end();
  });
}
