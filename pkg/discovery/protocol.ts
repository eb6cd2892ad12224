/**
 * The wire contract between weftd and its proxies (sidecars and gateways). Both sides import
 * this module and nothing else of each other, so either can be rebuilt or deployed alone.
 *
 * Discovery: `GET https://<weftd>:15012/v1/discovery?kind=sidecar|gateway&namespace=NS&pod=NAME`
 * with `Authorization: Bearer <projected service-account token, audience weft-ca>`. weftd checks
 * the token with a TokenReview (the token's namespace must be the one asked for) and answers
 * `200 application/x-ndjson`: a long-lived stream of `DiscoveryMessage` lines. The first line is
 * the full config for that proxy; every change pushes a new full config with a new version
 * (state of the world, like xDS SotW: no deltas to get out of step); a `ping` line keeps idle
 * connections and their middleboxes honest. A proxy keeps its last good config when the stream
 * breaks and reconnects with backoff. TLS: weftd's serving certificate, verified against the
 * mesh root that weftd publishes in every namespace (ConfigMap `weft-ca-root-cert`).
 *
 * Certificates: `POST https://<weftd>:15012/v1/certificates` with the same bearer token and a JSON
 * body `{ "csr": PEM }` → `{ "certChain": [leafPEM, ...intermediates], "rootCert": PEM }`; the leaf
 * carries the SPIFFE identity `spiffe://<trust domain>/ns/<ns>/sa/<service account>` of the token.
 */
import { StringDecoder } from 'node:string_decoder';
import type { ProxyConfig } from '../proxyconfig/types.js';
import { WeftError, type ErrorCode } from '../errors/index.js';

export const DISCOVERY_PORT = 15012;
/** Plain HTTP: /ready, /metrics, /debug (istiod's monitoring port). */
export const MONITORING_PORT = 15014;
export const DISCOVERY_PATH = '/v1/discovery';
export const CERTIFICATES_PATH = '/v1/certificates';
export const DISCOVERY_CONTENT_TYPE = 'application/x-ndjson';
/** The audience of the projected token proxies present (the injector mounts it). */
export const TOKEN_AUDIENCE = 'weft-ca';
/** Published by weftd in every namespace; proxies mount it to verify weftd. */
export const ROOT_CERT_CONFIGMAP = 'weft-ca-root-cert';
export const ROOT_CERT_KEY = 'root-cert.pem';
/** weftd pings an idle stream this often; a proxy that hears nothing for 3× this reconnects. */
export const PING_INTERVAL_MS = 15_000;
/** A config line longer than this is refused by the decoder (a runaway or hostile peer). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export type ProxyKind = 'sidecar' | 'gateway';

/** What a proxy says about itself, as query parameters of the discovery request. */
export interface DiscoveryRequest {
  kind: ProxyKind;
  namespace: string;
  pod: string;
}

export type DiscoveryMessage =
  | { type: 'config'; version: string; config: ProxyConfig }
  | { type: 'ping' }
  /** weftd cannot build a config for this proxy (e.g. its pod is unknown); the proxy logs it. */
  | { type: 'error'; code: ErrorCode; message: string };

export interface CertificateRequest {
  csr: string;
}

export interface CertificateResponse {
  certChain: string[];
  rootCert: string;
}

export function discoveryQuery(r: DiscoveryRequest): string {
  const q = new URLSearchParams({ kind: r.kind, namespace: r.namespace, pod: r.pod });
  return `${DISCOVERY_PATH}?${q.toString()}`;
}

/** Parses the query of a discovery request; a missing or unknown value is a WeftError naming it. */
export function parseDiscoveryQuery(search: URLSearchParams): DiscoveryRequest {
  const kind = search.get('kind');
  if (kind !== 'sidecar' && kind !== 'gateway')
    throw new WeftError(
      'WEFT_DISCOVERY_REQUEST_INVALID',
      `kind must be sidecar or gateway, got ${JSON.stringify(kind)}`,
    );
  const namespace = search.get('namespace');
  const pod = search.get('pod');
  if (!namespace) throw new WeftError('WEFT_DISCOVERY_REQUEST_INVALID', 'namespace is required');
  if (!pod) throw new WeftError('WEFT_DISCOVERY_REQUEST_INVALID', 'pod is required');
  return { kind, namespace, pod };
}

export function encodeMessage(m: DiscoveryMessage): string {
  return `${JSON.stringify(m)}\n`;
}

/**
 * Splits a byte stream into messages. Keeps partial lines across chunks; a line that is not a
 * message, or one that grows past `maxBytes`, is a WeftError (the caller drops the connection).
 */
export class MessageDecoder {
  /** Holds a multi-byte character split across chunks (TLS records split anywhere). */
  private readonly utf8 = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  push(chunk: string | Buffer): DiscoveryMessage[] {
    const text = typeof chunk === 'string' ? chunk : this.utf8.write(chunk);
    const out: DiscoveryMessage[] = [];
    // Only the new text can hold a newline: a multi-MB config arriving in 16 KB records must not
    // rescan (and copy) everything before it on every chunk.
    let nl = text.indexOf('\n');
    if (nl < 0) {
      this.pending += text;
    } else {
      let line = this.pending + text.slice(0, nl);
      for (;;) {
        if (line.trim() !== '') out.push(parseMessage(line));
        const next = text.indexOf('\n', nl + 1);
        if (next < 0) break;
        line = text.slice(nl + 1, next);
        nl = next;
      }
      this.pending = text.slice(nl + 1);
    }
    if (this.pending.length > this.maxBytes)
      throw new WeftError('WEFT_DISCOVERY_STREAM_INVALID', `a message exceeds ${this.maxBytes} bytes`);
    return out;
  }
}

function parseMessage(line: string): DiscoveryMessage {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch (err) {
    throw new WeftError('WEFT_DISCOVERY_STREAM_INVALID', `a line is not JSON: ${line.slice(0, 80)}`, {
      cause: err,
    });
  }
  const type = (m as { type?: unknown } | null)?.type;
  if (type === 'ping') return { type: 'ping' };
  if (type === 'config') {
    const c = m as { version?: unknown; config?: unknown };
    if (typeof c.version === 'string' && typeof c.config === 'object' && c.config !== null)
      return m as DiscoveryMessage;
  }
  if (type === 'error') {
    const e = m as { code?: unknown; message?: unknown };
    if (typeof e.code === 'string' && typeof e.message === 'string') return m as DiscoveryMessage;
  }
  throw new WeftError('WEFT_DISCOVERY_STREAM_INVALID', `not a discovery message: ${line.slice(0, 80)}`);
}
