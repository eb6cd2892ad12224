/**
 * Client-side TLS towards a cluster's endpoints (the cluster's `tls`, docs/proxy-config.md
 * "Upstream TLS"): the connection factory the upstream pools call instead of `net.connect`.
 *
 * - ISTIO_MUTUAL: the workload identity's TLS context (key, chain and mesh roots, built once per
 *   rotation), Istio's ALPN values, and the peer's SPIFFE URI SAN checked against the cluster's
 *   expected identities inside the handshake (`checkServerIdentity`), so a wrong peer never
 *   receives a request byte. Under auto-mTLS only endpoints labelled
 *   `security.istio.io/tlsMode: istio` get TLS.
 * - SIMPLE / MUTUAL: a context made once per cluster from the files the DestinationRule names
 *   (or the system roots), or from the credential weftd delivered for its `credentialName`
 *   (gateways); server name or SANs verified as Envoy does. A credential that is missing or
 *   unusable fails every connection with its reason (UF), never plaintext.
 *
 * Every failure before the handshake completes is reported with code ETLS_HANDSHAKE (a connect
 * failure: 503 UF, retried as connect-failure) and counted on the cluster
 * (`ssl.connection_error`, `ssl.fail_verify_san`).
 */
import { X509Certificate } from 'node:crypto';
import { fs } from '../../pkg/builtins/index.js';
import net from 'node:net';
import tls, { type PeerCertificate, type SecureContext } from 'node:tls';
import { TLS_MODE_LABEL, type UpstreamCredential, type UpstreamTls } from '../../pkg/proxyconfig/types.js';
import { uriSansOf } from '../../pkg/certs/spiffe.js';
import { errorMessage } from '../../pkg/errors/index.js';
import type { IdentitySource } from '../identity/types.js';
import { pemCerts } from '../identity/workload.js';

/** Istio's client ALPN for mTLS over HTTP/1.1 (mtlsHTTPALPNs) and for TCP (mtlsTCPALPNs). */
export const MESH_ALPN_HTTP11 = ['istio-http/1.1', 'istio'];
export const MESH_ALPN_TCP = ['istio'];
/** The error code of every upstream TLS failure (the router maps it to a connect failure, UF). */
export const TLS_FAILURE_CODE = 'ETLS_HANDSHAKE';

export interface TlsStats {
  sslConnectionError: number;
  sslFailVerifySan: number;
  sslHandshake: number;
  /**
   * Why the last TLS connection failed (shown by /clusters, not to clients: a gateway's client
   * must not learn Secret names), e.g. an undelivered or unusable credentialName.
   */
  lastError?: string;
}

/** What a pool needs: a socket, the event after which it may write a request, and error codes. */
export interface OpenedConnection {
  socket: net.Socket;
  readyEvent: 'connect' | 'secureConnect';
  /** The code of an error before `readyEvent` (TLS failures become ETLS_HANDSHAKE: a connect failure). */
  errorCode?: (err: NodeJS.ErrnoException) => string;
}

/** `alpn` replaces the mesh ALPN of ISTIO_MUTUAL (TCP traffic offers `istio` only, so the peer pipes it). */
export type Connect = (host: string, port: number, alpn?: readonly string[]) => OpenedConnection;

/** The peer is not who the cluster expects (SAN check): counted as ssl.fail_verify_san. */
export class UpstreamTlsError extends Error {
  readonly code = TLS_FAILURE_CODE;
}

/**
 * The SPIFFE check of ISTIO_MUTUAL: one of the peer's URI SANs must be expected (an empty
 * expectation accepts any peer the mesh roots signed). Returns an error or undefined, as
 * tls.checkServerIdentity does.
 */
export function checkPeerIdentity(expected: readonly string[], cert: PeerCertificate): Error | undefined {
  if (expected.length === 0) return undefined;
  const uris = uriSansOf(cert.subjectaltname);
  if (uris.some((u) => expected.includes(u))) return undefined;
  return new UpstreamTlsError(
    `peer identity ${uris.length > 0 ? uris.join(', ') : '(no URI SAN)'} is not one of the expected ${expected.join(', ')}`,
  );
}

/** SIMPLE/MUTUAL with subjectAltNames: a DNS or URI SAN of the server must be listed. */
export function checkServerSans(expected: readonly string[], cert: PeerCertificate): Error | undefined {
  const names = (cert.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:') || s.startsWith('URI:'))
    .map((s) => s.slice(s.indexOf(':') + 1).toLowerCase());
  if (names.some((n) => expected.some((e) => e.toLowerCase() === n))) return undefined;
  return new UpstreamTlsError(
    `server SANs ${names.join(', ') || '(none)'} match none of ${expected.join(', ')}`,
  );
}

/** TCP-level connect failures keep their code; anything else during the handshake is a TLS failure. */
const TCP_CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);
export function handshakeErrorCode(err: NodeJS.ErrnoException): string {
  return err.code !== undefined && TCP_CONNECT_CODES.has(err.code) ? err.code : TLS_FAILURE_CODE;
}

function failedSocket(err: Error): OpenedConnection {
  const socket = new net.Socket();
  process.nextTick(() => socket.destroy(err));
  return { socket, readyEvent: 'secureConnect', errorCode: handshakeErrorCode };
}

/** The connect function of one endpoint; null = plain TCP (the pool's own default). */
export function endpointConnect(
  cfg: UpstreamTls | undefined,
  labels: Record<string, string>,
  env: { identity: IdentitySource | undefined; stats: TlsStats; simpleContext: () => SecureContext },
): Connect | null {
  if (cfg === undefined) return null;
  if (cfg.auto === true && labels[TLS_MODE_LABEL] !== 'istio') return null;
  const sni = cfg.sni !== undefined && net.isIP(cfg.sni) === 0 ? cfg.sni : undefined;
  const expected = cfg.subjectAltNames ?? [];
  const { stats } = env;
  const track = (socket: tls.TLSSocket): OpenedConnection => {
    socket.setNoDelay(true);
    let done = false;
    socket.once('secureConnect', () => {
      done = true;
      stats.sslHandshake++;
    });
    socket.once('error', (err: Error) => {
      if (done) return;
      stats.sslConnectionError++;
      stats.lastError = err.message;
      if (err instanceof UpstreamTlsError) stats.sslFailVerifySan++;
    });
    return { socket, readyEvent: 'secureConnect', errorCode: handshakeErrorCode };
  };
  if (cfg.mode === 'ISTIO_MUTUAL')
    return (host, port, alpn) => {
      const context = env.identity?.secureContext() ?? null;
      if (context === null) {
        stats.sslConnectionError++;
        return failedSocket(
          new Error('no workload certificate yet: cannot originate mesh mTLS (ISTIO_MUTUAL)'),
        );
      }
      return track(
        tls.connect({
          host,
          port,
          secureContext: context,
          ...(sni !== undefined ? { servername: sni } : {}),
          ALPNProtocols: [...(alpn ?? cfg.alpn ?? MESH_ALPN_HTTP11)],
          checkServerIdentity: (_name, cert) => checkPeerIdentity(expected, cert),
          rejectUnauthorized: true,
        }),
      );
    };
  return (host, port, alpn) => {
    let context: SecureContext;
    try {
      context = env.simpleContext();
    } catch (err) {
      stats.sslConnectionError++;
      stats.lastError = `TLS settings unusable: ${errorMessage(err)}`;
      return failedSocket(new Error(stats.lastError));
    }
    const verifyName = sni ?? host;
    return track(
      tls.connect({
        host,
        port,
        secureContext: context,
        ...(sni !== undefined ? { servername: sni } : {}),
        ...originationAlpn(cfg, alpn),
        rejectUnauthorized: cfg.insecureSkipVerify !== true,
        checkServerIdentity: (_name, cert) =>
          cfg.insecureSkipVerify === true
            ? undefined
            : expected.length > 0
              ? checkServerSans(expected, cert)
              : tls.checkServerIdentity(verifyName, cert),
      }),
    );
  };
}

/**
 * ALPN of TLS origination (SIMPLE/MUTUAL): the config's, else `h2` alone when the HTTP/2 pool
 * connects (it asks for the mesh's `istio-h2`; Istio's ALPNH2Only for an HTTP/2 cluster, so a
 * server that insists on ALPN, as gRPC servers do, accepts the session), else none (HTTP/1.1).
 */
function originationAlpn(
  cfg: UpstreamTls,
  asked: readonly string[] | undefined,
): { ALPNProtocols?: string[] } {
  if (cfg.alpn) return { ALPNProtocols: cfg.alpn };
  return asked?.includes('istio-h2') === true ? { ALPNProtocols: ['h2'] } : {};
}

/**
 * SIMPLE/MUTUAL: the context from the DR's files (system roots without caCertificates), or with
 * `credentialName` from the credential weftd delivered under that name (its CA is required unless
 * insecureSkipVerify: Istio validates against the Secret's CA, never the system roots). Throws
 * with the reason when unusable; the caller fails the connection (no plaintext fallback).
 */
export function originationContext(cfg: UpstreamTls, credential?: UpstreamCredential): SecureContext {
  if (cfg.credentialName !== undefined) return credentialContext(cfg, cfg.credentialName, credential);
  const read = (file: string | undefined): string | undefined =>
    file === undefined ? undefined : fs.readFileSync(file, 'utf8');
  const ca = read(cfg.caCertificates);
  const cert = cfg.mode === 'MUTUAL' ? read(cfg.clientCertificate) : undefined;
  const key = cfg.mode === 'MUTUAL' ? read(cfg.privateKey) : undefined;
  return secureContext(ca, cert, key);
}

function credentialContext(
  cfg: UpstreamTls,
  name: string,
  credential: UpstreamCredential | undefined,
): SecureContext {
  const what = `tls.credentialName ${name}`;
  if (credential === undefined)
    throw new Error(
      `${what} was not delivered to this proxy (weftd delivers credentialName to gateways, from a Secret in the gateway's namespace)`,
    );
  if (credential.error !== undefined) throw new Error(`${what} (${credential.source}): ${credential.error}`);
  const mutual = cfg.mode === 'MUTUAL';
  if (mutual && (credential.certChain === undefined || credential.privateKey === undefined))
    throw new Error(
      `${what} (${credential.source}): MUTUAL needs a client certificate and key, the Secret has none`,
    );
  if (credential.caCertificates === undefined && cfg.insecureSkipVerify !== true)
    throw new Error(
      `${what} (${credential.source}): no CA certificate to verify the server with (key ca.crt or cacert, or a Secret ${name}-cacert)`,
    );
  return secureContext(
    credential.caCertificates,
    mutual ? credential.certChain : undefined,
    mutual ? credential.privateKey : undefined,
  );
}

function secureContext(
  ca: string | undefined,
  cert: string | undefined,
  key: string | undefined,
): SecureContext {
  return tls.createSecureContext({
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
  });
}

/** One certificate as /certs shows it (never key material). */
export interface CertSummary {
  serialNumber: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  valid: boolean;
}

/** A delivered credential as /certs shows it, named as Istio's SDS names it (`kubernetes://<name>`). */
export interface CredentialSummary {
  name: string;
  source: string;
  state: 'valid' | 'expired' | 'error';
  error?: string;
  certificate: CertSummary | null;
  roots: CertSummary[];
}

function certSummaries(pem: string | undefined, now: number): CertSummary[] {
  const out: CertSummary[] = [];
  for (const block of pemCerts(pem ?? '')) {
    let x: X509Certificate;
    try {
      x = new X509Certificate(block);
    } catch {
      continue; // weftd checked the PEM; a block it let through is not shown rather than thrown on
    }
    const from = Date.parse(x.validFrom);
    const to = Date.parse(x.validTo);
    out.push({
      serialNumber: x.serialNumber,
      subject: x.subject,
      notBefore: new Date(from).toISOString(),
      notAfter: new Date(to).toISOString(),
      valid: now >= from && now < to,
    });
  }
  return out;
}

/** The `credentials` of a config as /certs lists them: certificates and CAs, never the key. */
export function credentialSummaries(
  credentials: Record<string, UpstreamCredential> | undefined,
  now = Date.now(),
): CredentialSummary[] {
  return Object.entries(credentials ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, c]) => {
      const certificate = certSummaries(c.certChain, now)[0] ?? null;
      return {
        name: `kubernetes://${name}`,
        source: c.source,
        state:
          c.error !== undefined ? 'error' : certificate !== null && !certificate.valid ? 'expired' : 'valid',
        ...(c.error !== undefined ? { error: c.error } : {}),
        certificate,
        roots: certSummaries(c.caCertificates, now),
      };
    });
}
