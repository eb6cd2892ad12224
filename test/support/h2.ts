/** An HTTP/2 client exchange for integration suites (node:http2 on a session the test opened). */
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';

export interface H2Reply {
  /** The response head, pseudo-header `:status` included. */
  head: IncomingHttpHeaders;
  body: string;
}

/**
 * Sends one request with no body on `session` and reads the whole response. Rejects on a stream
 * error (a reset, the session's failure); the session stays the caller's to close.
 */
export function h2Exchange(session: ClientHttp2Session, headers: OutgoingHttpHeaders): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers);
    let head: IncomingHttpHeaders = {};
    let body = '';
    s.on('response', (h) => (head = h));
    s.on('data', (d: Buffer) => (body += d.toString()));
    s.on('end', () => resolve({ head, body }));
    s.on('error', reject);
    s.end();
  });
}
