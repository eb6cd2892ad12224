/**
 * A real `proxy sidecar` process for a ratings pod, configured by a fake weftd, and requests to
 * it over mesh mTLS: what the local and the global rate-limit suites both drive.
 */
import https from 'node:https';
import type http from 'node:http';
import type { KeyPairPem } from '../../../pkg/certs/index.js';
import type { FakeWeftd } from './fake-weftd.js';
import { startProxyProcess, type ProxyProcess } from '../../support/proxy-process.js';

/** A ProxyProcess under the name these suites use. */
export type Proc = ProxyProcess;

/** `proxy sidecar` as the pod bookinfo/ratings-1; `extraArgs` after its own flags. */
export function startSidecar(weftd: FakeWeftd, extraArgs: string[] = []): Promise<Proc> {
  return startProxyProcess('sidecar', weftd, { POD_NAME: 'ratings-1', POD_NAMESPACE: 'bookinfo' }, [
    // Generous: a client these suites open is never server-first, and under a 300-connection
    // burst on a loaded machine a request could arrive after a short wait, be taken for TCP
    // and, with no original destination on this loopback listener, be refused (socket hang up).
    '--sniff-timeout-ms',
    '5000',
    ...extraArgs,
  ]);
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
