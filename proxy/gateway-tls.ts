/**
 * Gateway TLS termination (Gateway servers with `tls.mode` SIMPLE, MUTUAL or ISTIO_MUTUAL, ADR 0014).
 *
 * Per connection of a TLS listener:
 *  1. the ClientHello is read before any handshake (inbound/clienthello.ts, at most
 *     HELLO_TIMEOUT_MS) and its SNI picks the Gateway server (selectServer: exact name, then the
 *     longest wildcard, then a catch-all `*` server, as Envoy's filter chain match does for Istio);
 *     no server → a TLS `unrecognized_name` alert and close;
 *  2. the server's own tls.Server (one per Gateway server, its SecureContext built from the
 *     credential weftd delivered) takes the handshake, bounded by handshakeTimeout; MUTUAL
 *     requires a client certificate chained to the Secret's `ca.crt`, and one of
 *     `subjectAltNames` when set;
 *     ISTIO_MUTUAL (Istio's mesh mTLS at a gateway) serves the gateway's own workload
 *     certificate (the IdentitySource the proxy originates mesh mTLS with) and requires a client
 *     certificate chained to the mesh roots (old and new during a root rotation) with exactly one
 *     SPIFFE ID, which becomes the request's source principal; it also accepts the mesh ALPN a
 *     sidecar offers (`istio-h2`, `istio-http/1.1`, `istio`: the HTTP server sniffs h2 or 1.1);
 *  3. the TLS socket goes to the listener's HTTP server; the request's Host must match the server
 *     the SNI chose (hostAllowed, checked by the router: 404 NR otherwise).
 *
 * Rotation: a new credential (or, for ISTIO_MUTUAL, a rotated workload certificate or trust
 * bundle: the identity's onChange) is applied with setSecureContext; open connections keep
 * theirs. A gateway with no workload certificate yet refuses ISTIO_MUTUAL handshakes with a
 * handshake_failure alert (counted `no_identity`). A credential weftd marks unusable, or whose
 * key/certificate OpenSSL refuses, leaves the previous context in force (counted in
 * CREDENTIAL_REFUSED_METRIC, logged once per change). At most
 * maxHandshakes connections are between accept and the end of their handshake; past it new ones
 * are closed. Every refusal is counted in REFUSED_METRIC{reason}.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../pkg/log/index.js';
import { errorMessage } from '../pkg/errors/index.js';
import type { GatewayTls, GatewayTlsServer, UpstreamCredential } from '../pkg/proxyconfig/types.js';
import type { MetricsRegistry } from './telemetry/metrics.js';
import { readFirstBytes } from './inbound/listener.js';
import { clientCertDetails, peerIdentity, type PeerIdentity } from './inbound/peer.js';
import type { IdentitySource } from './identity/types.js';

export const REFUSED_METRIC = 'weft_proxy_gateway_tls_refused_total';
export const CREDENTIAL_REFUSED_METRIC = 'weft_proxy_gateway_tls_credential_refused_total';
/** A client has this long to send its whole ClientHello (Envoy's tls_inspector waits 15 s; clients send it at once). */
export const HELLO_TIMEOUT_MS = 5_000;
/** From the ClientHello to the end of the handshake. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Connections handshaking at once per listener; more are closed (counted `handshake_limit`). */
export const MAX_CONCURRENT_HANDSHAKES = 1024;

export type RefusedReason =
  | 'handshake_limit'
  | 'hello_timeout'
  | 'not_tls'
  | 'no_sni_match'
  | 'no_credential'
  | 'no_identity'
  | 'peer_bad_identity'
  | 'handshake_timeout'
  | 'handshake_failed'
  | 'san_mismatch';

/** TLS alert descriptions (RFC 8446 §6). */
const ALERT_HANDSHAKE_FAILURE = 40;
const ALERT_UNRECOGNIZED_NAME = 112;

/** A fatal alert record, sent before any handshake message (plaintext, as the record layer allows). */
function alertRecord(description: number): Buffer {
  return Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]);
}

/** What a server offers in ALPN: h2 first (proxy/h2/downstream.ts serves it on the same listener). */
const HTTP_ALPN = ['h2', 'http/1.1'];
/**
 * ISTIO_MUTUAL also offers the mesh values a sidecar sends (MESH_ALPN_HTTP11 / MESH_ALPN_H2 /
 * MESH_ALPN_TCP of the upstream side): Node fails a handshake with no ALPN in common, where
 * Envoy would go on without one. The server's order decides (OpenSSL picks the first of ours the
 * client offers), so the protocol-specific values come before plain `istio`; what follows is
 * HTTP either way, and the listener sniffs h2 or HTTP/1.1 from the first bytes.
 */
export const ISTIO_MUTUAL_ALPN: readonly string[] = [
  ...HTTP_ALPN,
  'istio-h2',
  'istio-http/1.1',
  'istio-http/1.0',
  'istio',
  'istio-peer-exchange',
];

/** The `source` of the workload identity as an ISTIO_MUTUAL server's credential, in logs. */
export const WORKLOAD_CREDENTIAL = 'workload certificate';

const isWildcard = (h: string): boolean => h.startsWith('*.');

/**
 * The server a ClientHello's SNI selects (Envoy's server_names match, which Istio's gateway
 * filter chains use): an exact name first, then the longest wildcard suffix (`*.b.example.com`
 * before `*.example.com`; a wildcard covers deeper names too), then a server with no names (a
 * `*` host), which also takes clients that send no SNI. Null: refuse.
 */
export function selectServer<T extends Pick<GatewayTlsServer, 'sniHosts'>>(
  servers: readonly T[],
  sni: string | null,
): T | null {
  const name = (sni ?? '').toLowerCase().replace(/\.$/, '');
  if (name !== '') {
    for (const s of servers) if (s.sniHosts.includes(name)) return s;
    let best: T | null = null;
    let bestLen = -1;
    for (const s of servers)
      for (const h of s.sniHosts)
        if (isWildcard(h) && name.length > h.length - 1 && name.endsWith(h.slice(1)) && h.length > bestLen) {
          best = s;
          bestLen = h.length;
        }
    if (best !== null) return best;
  }
  return servers.find((s) => s.sniHosts.length === 0) ?? null;
}

/** The host of an authority (`a.example.com:8443`, `[::1]:443`), lowercased, without a trailing dot. */
function hostOf(authority: string): string {
  const a = authority.toLowerCase();
  const host = a.startsWith('[') ? a.slice(0, a.indexOf(']') + 1) : a.replace(/:\d*$/, '');
  return host.replace(/\.$/, '');
}

/**
 * The request's Host selects the same server the SNI selected, among the listener's servers.
 * Covering the Host is not enough: with a MUTUAL `admin.example.com` and a SIMPLE
 * `*.example.com` on one port, SNI `x.example.com` (no client certificate) with `Host:
 * admin.example.com` would reach admin's routes without the client certificate admin requires.
 */
export function hostAllowed(
  servers: readonly Pick<GatewayTlsServer, 'name' | 'sniHosts'>[],
  server: Pick<GatewayTlsServer, 'name'>,
  authority: string,
): boolean {
  return selectServer(servers, hostOf(authority))?.name === server.name;
}

/** The SANs of a certificate (`DNS:a, URI:spiffe://..., IP Address:10.0.0.1, email:x`), values only. */
export function sanValues(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined || subjectAltName === '') return [];
  return subjectAltName.split(', ').map((e) => {
    const v = e.slice(e.indexOf(':') + 1);
    return v.startsWith('"') && v.endsWith('"') ? (JSON.parse(v) as string) : v;
  });
}

/** The server a connection was terminated for, among the listener's servers at that time. */
export interface ServedBy {
  server: GatewayTlsServer;
  servers: readonly GatewayTlsServer[];
  /** ISTIO_MUTUAL: the client's SPIFFE ID (`spiffe://td/ns/x/sa/y`), verified against the mesh roots. */
  peer?: string;
  /** MUTUAL and ISTIO_MUTUAL: the verified client certificate as `x-forwarded-client-cert` sets it. */
  xfcc?: string;
}

const servedBy = new WeakMap<net.Socket, ServedBy>();

/** The Gateway server a downstream TLS connection was terminated for; undefined: not gateway TLS. */
export function tlsServerOf(socket: net.Socket): ServedBy | undefined {
  return servedBy.get(socket);
}

/** The SecureContext options of a server with its credential (throws on bad PEM, mismatched key, unknown ciphers). */
export function secureOptions(s: GatewayTlsServer, cred: UpstreamCredential): tls.SecureContextOptions {
  if (cred.error !== undefined) throw new Error(cred.error);
  if (cred.certChain === undefined || cred.privateKey === undefined)
    throw new Error(`credential ${cred.source} has no certificate and key (tls.crt, tls.key)`);
  if (s.mode !== 'SIMPLE' && cred.caCertificates === undefined)
    throw new Error(
      `credential ${cred.source} has no ${s.mode === 'MUTUAL' ? 'ca.crt' : 'mesh roots'}: ${s.mode} cannot verify client certificates`,
    );
  const opts: tls.SecureContextOptions = {
    cert: cred.certChain,
    key: cred.privateKey,
    minVersion: s.minProtocolVersion ?? 'TLSv1.2',
    maxVersion: s.maxProtocolVersion ?? 'TLSv1.3',
  };
  if (s.mode !== 'SIMPLE') opts.ca = cred.caCertificates;
  if (s.cipherSuites !== undefined) opts.ciphers = s.cipherSuites.join(':');
  // building the context here is what checks the key against the certificate
  tls.createSecureContext(opts);
  return opts;
}

/**
 * The workload identity as an ISTIO_MUTUAL server's credential: its key and chain, and the mesh
 * roots (every root trusted now) as the client CA.
 */
export function workloadCredential(identity: IdentitySource | null | undefined): UpstreamCredential {
  const c = identity?.current() ?? null;
  if (c === null)
    return {
      source: WORKLOAD_CREDENTIAL,
      error:
        identity == null
          ? 'this proxy has no workload identity (ISTIO_MUTUAL needs the mesh CA)'
          : 'no workload certificate yet',
    };
  return {
    source: WORKLOAD_CREDENTIAL,
    certChain: c.certChainPem,
    privateKey: c.keyPem,
    caCertificates: c.rootsPem,
  };
}

interface ServerRuntime {
  spec: GatewayTlsServer;
  /** Null while the server has never had a usable credential: its connections are refused. */
  server: tls.Server | null;
  /** What was last applied or refused (spec + credential), so a repeated push is a no-op. */
  material: string;
}

export interface GatewayTlsOptions {
  log: Logger;
  metrics: MetricsRegistry;
  /** A terminated connection, for the listener's HTTP server. */
  onSecure: (socket: tls.TLSSocket) => void;
  helloTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  maxHandshakes?: number;
  /** The proxy's workload identity, for ISTIO_MUTUAL servers (absent: they refuse every handshake). */
  identity?: IdentitySource | null;
}

/** The TLS side of one gateway listener. */
export class GatewayTlsTerminator {
  private servers: ServerRuntime[] = [];
  /** Raw sockets between accept and the end of their handshake. */
  private readonly handshaking = new Set<net.Socket>();
  /** What was last applied, so an identity change re-applies it. */
  private last: { spec: GatewayTls; credentials: Record<string, UpstreamCredential> | undefined } | null =
    null;
  private readonly unsubscribe: () => void;

  constructor(private readonly opts: GatewayTlsOptions) {
    // a rotated workload certificate or trust bundle: ISTIO_MUTUAL servers take it (the others'
    // material is unchanged, so they are left alone)
    this.unsubscribe =
      opts.identity?.onChange(() => {
        if (this.last !== null) this.apply(this.last.spec, this.last.credentials);
      }) ?? (() => {});
  }

  /** Stops following the identity (the listener closed). */
  close(): void {
    this.unsubscribe();
  }

  /** The credential a server presents: the delivered Secret, or for ISTIO_MUTUAL the workload identity. */
  private credentialOf(
    s: GatewayTlsServer,
    credentials: Record<string, UpstreamCredential> | undefined,
  ): UpstreamCredential {
    if (s.mode === 'ISTIO_MUTUAL') return workloadCredential(this.opts.identity);
    const name = s.credentialName ?? '';
    return credentials?.[name] ?? { source: name, error: `credential ${name} was not delivered` };
  }

  /** The listener's servers and the credentials weftd delivered (a config push). */
  apply(spec: GatewayTls, credentials: Record<string, UpstreamCredential> | undefined): void {
    this.last = { spec, credentials };
    const previous = new Map(this.servers.map((r) => [r.spec.name, r]));
    this.servers = spec.servers.map((s) => {
      const cred = this.credentialOf(s, credentials);
      const material = JSON.stringify([s, cred]);
      const old = previous.get(s.name);
      if (old !== undefined && old.material === material) return { ...old, spec: s };
      return this.build(s, cred, material, old);
    });
  }

  private build(
    s: GatewayTlsServer,
    cred: UpstreamCredential,
    material: string,
    old: ServerRuntime | undefined,
  ): ServerRuntime {
    let options: tls.SecureContextOptions;
    try {
      options = secureOptions(s, cred);
    } catch (err) {
      this.opts.metrics.incLabelled(CREDENTIAL_REFUSED_METRIC, { server: s.name });
      const kept = old?.server ?? null;
      this.opts.log.warn(
        kept === null
          ? 'Gateway TLS credential refused: the server refuses connections until a usable one arrives'
          : 'Gateway TLS credential refused: the previous certificate stays in use',
        { server: s.name, credential: cred.source, error: errorMessage(err) },
      );
      return { spec: s, server: kept, material };
    }
    // same mode: the running server takes the new context (open connections keep theirs)
    if (old?.server != null && old.spec.mode === s.mode) {
      old.server.setSecureContext(options);
      this.opts.log.info('Gateway TLS credential applied', { server: s.name, credential: cred.source });
      return { spec: s, server: old.server, material };
    }
    const server = tls.createServer({
      ...options,
      requestCert: s.mode !== 'SIMPLE',
      rejectUnauthorized: s.mode !== 'SIMPLE',
      handshakeTimeout: this.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      ALPNProtocols: [...(s.mode === 'ISTIO_MUTUAL' ? ISTIO_MUTUAL_ALPN : HTTP_ALPN)],
    });
    // the runtime is looked up per connection: a rotation replaces it but keeps this server
    const current = (): GatewayTlsServer => this.servers.find((r) => r.server === server)?.spec ?? s;
    server.on('secureConnection', (sock: tls.TLSSocket) => this.onSecure(current(), sock));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, sock: tls.TLSSocket) => {
      sock.destroy();
      const raw = (sock as unknown as { _parent?: net.Socket })._parent;
      if (raw !== undefined) this.handshaking.delete(raw);
      const reason = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'handshake_timeout' : 'handshake_failed';
      this.count(reason);
      this.opts.log.debug('Gateway TLS handshake failed', {
        server: current().name,
        error: err.code ?? err.message,
      });
    });
    this.opts.log.info('Gateway TLS credential applied', { server: s.name, credential: cred.source });
    return { spec: s, server, material };
  }

  private count(reason: RefusedReason): void {
    this.opts.metrics.incLabelled(REFUSED_METRIC, { reason });
  }

  /** Connections handshaking now (tests, admin). */
  inHandshake(): number {
    return this.handshaking.size;
  }

  handle(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    const max = this.opts.maxHandshakes ?? MAX_CONCURRENT_HANDSHAKES;
    if (this.handshaking.size >= max) {
      this.count('handshake_limit');
      return void socket.destroy();
    }
    this.handshaking.add(socket);
    socket.once('close', () => this.handshaking.delete(socket));
    readFirstBytes(socket, this.opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS)
      .then(({ head, verdict, ended }) => {
        if (socket.destroyed) return;
        if (verdict.kind === 'more') {
          if (!ended) this.count('hello_timeout');
          return void socket.destroy();
        }
        if (verdict.kind !== 'hello') {
          this.count('not_tls');
          return void socket.destroy();
        }
        const spec = selectServer(
          this.servers.map((r) => r.spec),
          verdict.sni,
        );
        const rt = this.servers.find((r) => r.spec === spec) ?? null;
        if (rt === null) return this.alert(socket, 'no_sni_match', ALERT_UNRECOGNIZED_NAME);
        if (rt.server === null)
          return this.alert(
            socket,
            rt.spec.mode === 'ISTIO_MUTUAL' ? 'no_identity' : 'no_credential',
            ALERT_HANDSHAKE_FAILURE,
          );
        socket.unshift(head);
        rt.server.emit('connection', socket);
      })
      .catch((err: unknown) => {
        this.opts.log.error('Gateway TLS connection failed', { error: errorMessage(err) });
        socket.destroy();
      });
  }

  private alert(socket: net.Socket, reason: RefusedReason, description: number): void {
    this.count(reason);
    socket.once('finish', () => socket.destroy());
    socket.end(alertRecord(description));
  }

  private onSecure(spec: GatewayTlsServer, s: tls.TLSSocket): void {
    s.on('error', () => s.destroy());
    const raw = (s as unknown as { _parent?: net.Socket })._parent;
    if (raw !== undefined) this.handshaking.delete(raw);
    const sans = spec.subjectAltNames;
    if (sans !== undefined && sans.length > 0) {
      const have = sanValues(s.getPeerX509Certificate()?.subjectAltName);
      if (!have.some((v) => sans.includes(v))) {
        this.count('san_mismatch');
        return void s.destroy();
      }
    }
    const served: ServedBy = { server: spec, servers: this.servers.map((r) => r.spec) };
    if (spec.mode === 'ISTIO_MUTUAL') {
      const peer = this.meshPeer(s);
      if (peer === null) return;
      served.peer = peer.principal;
      served.xfcc = peer.xfcc;
    } else if (spec.mode === 'MUTUAL') {
      const cert = s.getPeerX509Certificate();
      if (cert !== undefined) served.xfcc = clientCertDetails(cert, this.opts.identity?.current()?.spiffeId);
    }
    servedBy.set(s, served);
    this.opts.onSecure(s);
  }

  /**
   * The SPIFFE ID of an ISTIO_MUTUAL client (its chain was verified against the mesh roots by the
   * handshake), or null after refusing a certificate that does not carry exactly one.
   */
  private meshPeer(s: tls.TLSSocket): PeerIdentity | null {
    const cert = s.getPeerX509Certificate();
    const local = this.opts.identity?.current()?.spiffeId ?? 'unknown';
    const peer = cert === undefined ? 'no client certificate' : peerIdentity(cert, local);
    if (typeof peer !== 'string') return peer;
    this.count('peer_bad_identity');
    this.opts.log.debug('Gateway TLS client refused', { error: peer });
    s.destroy();
    return null;
  }
}
