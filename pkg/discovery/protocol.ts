/**
 * The wire contract between weftd and its proxies (sidecars and gateways). Both sides import
 * this module and nothing else of each other, so either can be rebuilt or deployed alone.
 *
 * Discovery: `GET https://<weftd>:15012/v1/discovery?kind=sidecar|gateway&namespace=NS&pod=NAME`
 * with `Authorization: Bearer <projected service-account token, audience weft-ca>`. weftd checks
 * the token with a TokenReview (the token's namespace must be the one asked for) and answers
 * `200 application/x-ndjson`: a long-lived stream of `DiscoveryMessage` lines. The first line is
 * the full config for that proxy; every change pushes a new full config with a new version
 * (state of the world, like xDS SotW; deltas below are opt-in); a `ping` line keeps idle
 * connections and their middleboxes honest. A proxy keeps its last good config when the stream
 * breaks and reconnects with backoff. TLS: weftd's serving certificate, verified against the
 * mesh root that weftd publishes in every namespace (ConfigMap `weft-ca-root-cert`).
 *
 * ACK/NACK (ADR 0006, amended): every `config` message carries its `version` and a `nonce` unique
 * to that push (128 random bits). A proxy that asks with `acks=1` answers every config it gets:
 * `POST /v1/discovery/ack` with the same bearer token as its stream and an `AckRequest` body (at
 * most MAX_ACK_BYTES): no `error` once the config is compiled and swapped in (ACK), or `error`
 * with why it was refused (NACK; the proxy keeps its last good config). weftd answers 200 with an
 * `AckResponse`; a nonce it did not send to that proxy's stream, or not the newest it sent, is
 * `stale` (ignored and counted). A proxy without `acks=1` (older build) is never waited for.
 *
 * ACKs on the stream's own connection (issue #19: weftd's memory is mostly per TLS connection, and
 * a POSTing proxy holds two): a proxy asks for its stream with `Connection: Upgrade` and `Upgrade:
 * weft-discovery/1` (DISCOVERY_UPGRADE). weftd answers `101 Switching Protocols` and the
 * connection then carries NDJSON both ways: weftd's `DiscoveryMessage` lines as above, the
 * proxy's answers as `ProxyMessage` lines (`{"type":"ack", ...AckRequest}`, each at most
 * MAX_ACK_BYTES). Nothing answers them; a line weftd cannot read gets an `error` message and the
 * connection closed. A weftd that predates this answers the same request 200 with the stream
 * (HTTP ignores an upgrade the server does not speak), and the proxy POSTs its answers as above.
 * Errors before the stream opens are HTTP answers in both cases.
 *
 * Delta pushes (ADR 0020, pkg/discovery/delta.ts): a proxy that asks with `acks=1&delta=1` gets a
 * full `config` first (carrying `state`, the hash of its resources), then `delta` messages: the
 * resources added or changed and the names removed since the state `base`, and the `state` the
 * result must hash to. The proxy applies a delta only to the state named `base`, checks the
 * result against `state`, compiles and swaps it like a full config; a delta it cannot apply is
 * NACKed with `resync: true` and weftd sends the whole config. A reconnecting proxy names the
 * state it holds (`state=`); weftd resumes with a delta when it knows that state for that proxy.
 *
 * On-demand hosts (ADR 0023): a sidecar that asks with `onDemand=1` (an older one is given its
 * whole scope) and whose config carries `onDemand` holds only part of the mesh; for an HTTP Host it does not hold (or the IPv4 original destination of a TCP connection
 * it does not know) it sends `POST /v1/discovery/ondemand` (same token, a JSON `OnDemandRequest`
 * of at most MAX_ONDEMAND_HOSTS names or addresses). weftd answers each name `found`
 * (the proxy is subscribed: a push carrying it is already written on the proxy's stream),
 * `not_found` (unknown, or outside what the proxy's exportTo/Sidecar scope lets it see: the two
 * are not told apart) or `limited` (too many requests or subscriptions; try later).
 *
 * Short service domains (issue #19): a proxy that asks with `serviceDomains=1` gets each service
 * port's authorities as a virtual host's `serviceDomains` and spells them out itself
 * (pkg/proxyconfig/domains.ts); weftd spells them out as `domains` for a proxy that does not.
 *
 * Certificates: `POST https://<weftd>:15012/v1/certificates` with the same bearer token and a JSON
 * body `{ "csr": PEM }` → `{ "certChain": [leafPEM, ...intermediates], "rootCert": PEM }`; the leaf
 * carries the SPIFFE identity `spiffe://<trust domain>/ns/<ns>/sa/<service account>` of the token.
 */
import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { ProxyConfig } from '../proxyconfig/types.js';
import { WeftError, type ErrorCode } from '../errors/index.js';

export const DISCOVERY_PORT = 15012;
/** Plain HTTP: /ready, /metrics, /debug (istiod's monitoring port). */
export const MONITORING_PORT = 15014;
export const DISCOVERY_PATH = '/v1/discovery';
export const ACK_PATH = '/v1/discovery/ack';
/** An ACK is a few hundred bytes; a NACK's error is cut to MAX_ACK_ERROR_CHARS. Past this: 413. */
export const MAX_ACK_BYTES = 16 * 1024;
/** The part of a NACK's error that weftd keeps (and a proxy sends). */
export const MAX_ACK_ERROR_CHARS = 4096;
export const ONDEMAND_PATH = '/v1/discovery/ondemand';
/** Host names one on-demand request may carry. */
export const MAX_ONDEMAND_HOSTS = 16;
export const CERTIFICATES_PATH = '/v1/certificates';
export const DISCOVERY_CONTENT_TYPE = 'application/x-ndjson';
/** The `Upgrade` token of a discovery stream that carries the proxy's answers too. */
export const DISCOVERY_UPGRADE = 'weft-discovery/1';
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
  /** The proxy answers every config with an ACK or NACK (query `acks=1`); absent: an older proxy. */
  acks?: boolean;
  /** With `acks`: the proxy applies delta messages (query `delta=1`); absent: full configs only. */
  delta?: boolean;
  /** With `delta`: the state hash of the config the proxy holds (query `state=`), to resume from. */
  state?: string;
  /**
   * The proxy reads a virtual host's `serviceDomains` (query `serviceDomains=1`, issue #19);
   * absent: an older proxy, weftd spells them out as `domains` (pkg/proxyconfig/domains.ts).
   */
  serviceDomains?: boolean;
  /**
   * The proxy holds and asks for hosts (query `onDemand=1`, ADR 0023); absent: an older proxy,
   * which never asks, so weftd gives it its whole scope even in a mesh with onDemandHosts.
   */
  onDemand?: boolean;
}

/** One resource of a delta: added or updated, with its version (pkg/discovery/delta.ts). */
export interface DeltaResource {
  name: string;
  version: string;
  value: unknown;
}

export type DiscoveryMessage =
  /** `nonce`: unique per push, what the ACK names; absent from an older weftd (then no ACK). */
  | { type: 'config'; version: string; nonce?: string; state?: string; config: ProxyConfig }
  /** Delta streams only: apply to the state `base`; the result must hash to `state`. */
  | {
      type: 'delta';
      version: string;
      nonce: string;
      base: string;
      state: string;
      resources: DeltaResource[];
      removed: string[];
    }
  | { type: 'ping' }
  /** weftd cannot build a config for this proxy (e.g. its pod is unknown); the proxy logs it. */
  | { type: 'error'; code: ErrorCode; message: string };

/** The body of `POST /v1/discovery/ack`: which push, and (NACK) why it was refused. */
export interface AckRequest {
  kind: ProxyKind;
  namespace: string;
  pod: string;
  version: string;
  nonce: string;
  /** Present: a NACK with the proxy's reason; absent: an ACK. */
  error?: string;
  /** A NACK of a delta the proxy could not apply to what it holds: send the whole config. */
  resync?: boolean;
}

export type AckResult = 'ack' | 'nack' | 'stale';

/** A line a proxy writes on an upgraded discovery stream (DISCOVERY_UPGRADE). */
export type ProxyMessage = { type: 'ack' } & AckRequest;

export interface AckResponse {
  result: AckResult;
}

export interface CertificateRequest {
  csr: string;
}

export interface CertificateResponse {
  certChain: string[];
  rootCert: string;
}

export function discoveryQuery(r: DiscoveryRequest): string {
  const q = new URLSearchParams({ kind: r.kind, namespace: r.namespace, pod: r.pod });
  if (r.acks === true) q.set('acks', '1');
  if (r.acks === true && r.delta === true) {
    q.set('delta', '1');
    if (r.state !== undefined) q.set('state', r.state);
  }
  if (r.serviceDomains === true) q.set('serviceDomains', '1');
  if (r.onDemand === true) q.set('onDemand', '1');
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
  const acks = search.get('acks') === '1';
  const request: DiscoveryRequest = { kind, namespace, pod, acks };
  if (search.get('serviceDomains') === '1') request.serviceDomains = true;
  if (search.get('onDemand') === '1') request.onDemand = true;
  if (acks && search.get('delta') === '1') {
    request.delta = true;
    const state = search.get('state');
    if (state !== null) {
      if (!STATE.test(state))
        throw new WeftError('WEFT_DISCOVERY_REQUEST_INVALID', 'state must be 32 lowercase hex digits');
      request.state = state;
    }
  }
  return request;
}

/** A state hash (pkg/discovery/delta.ts stateHash). */
const STATE = /^[0-9a-f]{32}$/;

const NONCE = /^[0-9a-f]{32}$/;

/** A push's nonce: 128 random bits, hex (unguessable: it is half of what makes an ACK count). */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Checks an ACK body's shape: every field present and bounded, the nonce one weftd could have
 * made. A bad body is a WeftError naming the field (400), never a crash or a silent drop.
 */
export function parseAck(body: unknown): AckRequest {
  const bad = (why: string): WeftError => new WeftError('WEFT_DISCOVERY_ACK_INVALID', why);
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (b.kind !== 'sidecar' && b.kind !== 'gateway')
    throw bad(`kind must be sidecar or gateway, got ${JSON.stringify(b.kind)?.slice(0, 40)}`);
  for (const f of ['namespace', 'pod', 'version', 'nonce'] as const)
    if (typeof b[f] !== 'string' || b[f] === '' || b[f].length > 253)
      throw bad(`${f} must be a non-empty string of at most 253 characters`);
  if (!NONCE.test(b.nonce as string)) throw bad('nonce must be 32 lowercase hex digits');
  if (b.error !== undefined && typeof b.error !== 'string') throw bad('error must be a string when present');
  const out: AckRequest = {
    kind: b.kind,
    namespace: b.namespace as string,
    pod: b.pod as string,
    version: b.version as string,
    nonce: b.nonce as string,
  };
  if (typeof b.error === 'string') out.error = truncateError(b.error);
  if (b.resync === true && out.error !== undefined) out.resync = true;
  return out;
}

/** A sidecar asks for hosts it does not hold (on-demand hosts, ADR 0023). */
export interface OnDemandRequest {
  kind: ProxyKind;
  namespace: string;
  pod: string;
  /** Host names as the app sent them, without port, lower-cased (`reviews`, `reviews.prod.svc.cluster.local`). */
  hosts: string[];
  /** The names were subscribed on an earlier stream (a reconnect): weftd does not rate them. */
  redeclare?: boolean;
}

export type OnDemandResult = 'found' | 'not_found' | 'limited';

export interface OnDemandResponse {
  hosts: Record<string, OnDemandResult>;
}

/** A DNS name, or an IP literal the app put in Host; anything else is not a host weftd could know. */
const HOST_NAME = /^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*$/;

/** The host part of a Host header, lower-cased, without port or trailing dot; null when it is no host name. */
export function onDemandHostName(authority: string): string | null {
  let h = authority.trim().toLowerCase();
  if (h.startsWith('[')) return null; // an IPv6 literal names no service
  const colon = h.lastIndexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.length > 0 && h.length <= 253 && HOST_NAME.test(h) ? h : null;
}

export function parseOnDemand(body: unknown): OnDemandRequest {
  const bad = (why: string): WeftError => new WeftError('WEFT_DISCOVERY_ONDEMAND_INVALID', why);
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (b.kind !== 'sidecar' && b.kind !== 'gateway')
    throw bad(`kind must be sidecar or gateway, got ${JSON.stringify(b.kind)?.slice(0, 40)}`);
  for (const f of ['namespace', 'pod'] as const)
    if (typeof b[f] !== 'string' || b[f] === '' || b[f].length > 253)
      throw bad(`${f} must be a non-empty string of at most 253 characters`);
  if (!Array.isArray(b.hosts) || b.hosts.length === 0 || b.hosts.length > MAX_ONDEMAND_HOSTS)
    throw bad(`hosts must be a list of 1-${MAX_ONDEMAND_HOSTS} host names`);
  const hosts = b.hosts.map((h: unknown) => {
    const name = typeof h === 'string' ? onDemandHostName(h) : null;
    if (name === null || name !== h)
      throw bad(`${JSON.stringify(h)?.slice(0, 80)} is not a lower-case host name`);
    return name;
  });
  return {
    kind: b.kind,
    namespace: b.namespace as string,
    pod: b.pod as string,
    hosts: [...new Set(hosts)],
    ...(b.redeclare === true ? { redeclare: true } : {}),
  };
}

/** A NACK's reason, cut to MAX_ACK_ERROR_CHARS (a proxy's error can quote a whole config). */
export function truncateError(error: string): string {
  const e = error === '' ? '(no message)' : error;
  return e.length <= MAX_ACK_ERROR_CHARS ? e : `${e.slice(0, MAX_ACK_ERROR_CHARS - 1)}…`;
}

export function encodeMessage(m: DiscoveryMessage): string {
  return `${JSON.stringify(m)}\n`;
}

/**
 * Splits a byte stream into lines and parses each with `parse`. Keeps partial lines across chunks;
 * a line `parse` refuses, or one that grows past `maxBytes`, is a WeftError (the caller drops the
 * connection).
 */
export class LineDecoder<T> {
  /** Holds a multi-byte character split across chunks (TLS records split anywhere). */
  private readonly utf8 = new StringDecoder('utf8');
  private pending = '';

  constructor(
    private readonly parse: (line: string) => T,
    private readonly maxBytes: number,
    private readonly tooLong: ErrorCode,
  ) {}

  push(chunk: string | Buffer): T[] {
    const text = typeof chunk === 'string' ? chunk : this.utf8.write(chunk);
    const out: T[] = [];
    // Only the new text can hold a newline: a multi-MB config arriving in 16 KB records must not
    // rescan (and copy) everything before it on every chunk.
    let nl = text.indexOf('\n');
    if (nl < 0) {
      this.pending += text;
    } else {
      let line = this.pending + text.slice(0, nl);
      for (;;) {
        if (line.length > this.maxBytes) throw this.tooLongError();
        if (line.trim() !== '') out.push(this.parse(line));
        const next = text.indexOf('\n', nl + 1);
        if (next < 0) break;
        line = text.slice(nl + 1, next);
        nl = next;
      }
      this.pending = text.slice(nl + 1);
    }
    if (this.pending.length > this.maxBytes) throw this.tooLongError();
    return out;
  }

  private tooLongError(): WeftError {
    return new WeftError(this.tooLong, `a message exceeds ${this.maxBytes} bytes`);
  }
}

/** weftd's messages to a proxy, line by line. */
export class MessageDecoder extends LineDecoder<DiscoveryMessage> {
  constructor(maxBytes = MAX_MESSAGE_BYTES) {
    super(parseMessage, maxBytes, 'WEFT_DISCOVERY_STREAM_INVALID');
  }
}

/** A proxy's answers on an upgraded stream, line by line (weftd's side). */
export class ProxyMessageDecoder extends LineDecoder<ProxyMessage> {
  constructor() {
    super(parseProxyMessage, MAX_ACK_BYTES, 'WEFT_DISCOVERY_ACK_INVALID');
  }
}

export function encodeProxyMessage(m: ProxyMessage): string {
  return `${JSON.stringify(m)}\n`;
}

/** One line of a proxy's answers: JSON, `type: ack`, and an AckRequest parseAck accepts. */
export function parseProxyMessage(line: string): ProxyMessage {
  const m = jsonLine(line, 'WEFT_DISCOVERY_ACK_INVALID');
  const type = (m as { type?: unknown } | null)?.type;
  if (type !== 'ack')
    throw new WeftError(
      'WEFT_DISCOVERY_ACK_INVALID',
      `a proxy's line must have type "ack", got ${JSON.stringify(type)?.slice(0, 40)}`,
    );
  return { type, ...parseAck(m) };
}

/** One NDJSON line parsed; not JSON is a WeftError with `code`. */
function jsonLine(line: string, code: ErrorCode): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch (err) {
    throw new WeftError(code, `a line is not JSON: ${line.slice(0, 80)}`, { cause: err });
  }
}

function parseMessage(line: string): DiscoveryMessage {
  const m = jsonLine(line, 'WEFT_DISCOVERY_STREAM_INVALID');
  const type = (m as { type?: unknown } | null)?.type;
  if (type === 'ping') return { type: 'ping' };
  if (type === 'config') {
    const c = m as { version?: unknown; nonce?: unknown; config?: unknown };
    if (
      typeof c.version === 'string' &&
      (c.nonce === undefined || typeof c.nonce === 'string') &&
      typeof c.config === 'object' &&
      c.config !== null
    )
      return m as DiscoveryMessage;
  }
  if (type === 'delta' && isDelta(m)) return m;
  if (type === 'error') {
    const e = m as { code?: unknown; message?: unknown };
    if (typeof e.code === 'string' && typeof e.message === 'string') return m as DiscoveryMessage;
  }
  throw new WeftError('WEFT_DISCOVERY_STREAM_INVALID', `not a discovery message: ${line.slice(0, 80)}`);
}

function isDelta(m: unknown): m is Extract<DiscoveryMessage, { type: 'delta' }> {
  const d = m as Record<string, unknown>;
  return (
    typeof d.version === 'string' &&
    typeof d.nonce === 'string' &&
    typeof d.base === 'string' &&
    typeof d.state === 'string' &&
    Array.isArray(d.removed) &&
    d.removed.every((n) => typeof n === 'string') &&
    Array.isArray(d.resources) &&
    d.resources.every(
      (r: unknown) =>
        typeof r === 'object' &&
        r !== null &&
        typeof (r as DeltaResource).name === 'string' &&
        typeof (r as DeltaResource).version === 'string' &&
        'value' in r,
    )
  );
}
