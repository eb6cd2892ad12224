/**
 * Structural validation of a ProxyConfig read from JSON/YAML. It reports every problem with a
 * JSON path (never first-only) so a user fixing a hand-written file sees all mistakes at once.
 * Semantic checks that need compilation (regex syntax) are done by the proxy's compiler.
 */
import { validateJwtBlock } from './jwt.js';
import { validateRateLimitBlock } from './ratelimit.js';
import {
  CLUSTER_TYPES,
  GATEWAY_TLS_MODES,
  GATEWAY_TLS_VERSIONS,
  PATH_NORMALIZATION_TYPES,
  PROXY_CONFIG_API_VERSION,
  PROXY_HEADERS_FIELDS,
  type ProxyConfig,
} from './types.js';
import { validateAuthzBlock } from './validate-authz.js';
import { checkDnsServer, isDnsHostName } from './dns.js';
import { checkL4Routes } from './l4.js';
import { isIP } from 'node:net';
import { hostPortOf, shortNamespaceOf } from './domains.js';

export interface ConfigProblem {
  path: string;
  message: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPort = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535;
const isNonNegInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;

class Checker {
  readonly problems: ConfigProblem[] = [];
  fail(path: string, message: string): void {
    this.problems.push({ path, message });
  }
  /** Checks an optional non-negative integer field. */
  optInt(o: Obj, key: string, path: string): void {
    if (o[key] !== undefined && !isNonNegInt(o[key]))
      this.fail(`${path}.${key}`, 'must be a non-negative integer');
  }
  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) {
      this.fail(path, 'must be a list');
      return [];
    }
    return v;
  }
}

const STRING_MATCH_KEYS = ['exact', 'prefix', 'regex'];
/** An Upgrade protocol: a token, optionally `/version` (RFC 9110 §7.8). */
const UPGRADE_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)?$/;

function checkStringMatch(c: Checker, v: unknown, path: string, allowPresent: boolean): void {
  if (!isObj(v)) return c.fail(path, 'must be an object with one of exact, prefix, regex');
  const keys = Object.keys(v);
  if (allowPresent && keys.length === 1 && v.present === true) return;
  if (keys.length !== 1 || !STRING_MATCH_KEYS.includes(keys[0]!)) {
    return c.fail(
      path,
      `must have exactly one of ${STRING_MATCH_KEYS.join(', ')}${allowPresent ? ' (or present: true)' : ''}`,
    );
  }
  if (typeof v[keys[0]!] !== 'string') c.fail(`${path}.${keys[0]!}`, 'must be a string');
}

function checkMatchMap(c: Checker, v: unknown, path: string): void {
  if (v === undefined) return;
  if (!isObj(v)) return c.fail(path, 'must be a map of name to match');
  for (const [k, m] of Object.entries(v)) checkStringMatch(c, m, `${path}.${k}`, true);
}

function checkMatch(c: Checker, m: unknown, path: string): void {
  if (!isObj(m)) return c.fail(path, 'must be an object');
  for (const key of ['uri', 'scheme', 'method', 'authority']) {
    if (m[key] !== undefined) checkStringMatch(c, m[key], `${path}.${key}`, false);
  }
  checkMatchMap(c, m.headers, `${path}.headers`);
  checkMatchMap(c, m.withoutHeaders, `${path}.withoutHeaders`);
  checkMatchMap(c, m.queryParams, `${path}.queryParams`);
  if (m.port !== undefined && !isPort(m.port)) c.fail(`${path}.port`, 'must be a port number');
}

function checkAction(c: Checker, a: unknown, path: string): void {
  if (!isObj(a)) return c.fail(path, 'must be an object');
  if (a.type === 'route') {
    const dests = c.array(a.destinations, `${path}.destinations`);
    if (dests.length === 0) c.fail(`${path}.destinations`, 'must not be empty');
    let total = 0;
    dests.forEach((d, i) => {
      const p = `${path}.destinations[${i}]`;
      if (!isObj(d)) return c.fail(p, 'must be an object');
      if (typeof d.cluster !== 'string' || d.cluster === '')
        c.fail(`${p}.cluster`, 'must be a non-empty string');
      if (typeof d.weight !== 'number' || d.weight < 0 || !Number.isFinite(d.weight)) {
        c.fail(`${p}.weight`, 'must be a non-negative number');
      } else total += d.weight;
    });
    if (dests.length > 1 && total === 0)
      c.fail(`${path}.destinations`, 'weights sum to 0: no destination would get traffic');
  } else if (a.type === 'redirect') {
    if (!isObj(a.redirect)) c.fail(`${path}.redirect`, 'must be an object');
  } else if (a.type === 'directResponse') {
    if (!Number.isInteger(a.status) || (a.status as number) < 100 || (a.status as number) > 599) {
      c.fail(`${path}.status`, 'must be an HTTP status between 100 and 599');
    }
  } else {
    c.fail(`${path}.type`, 'must be one of route, redirect, directResponse');
  }
}

function checkRoute(c: Checker, r: unknown, path: string): void {
  if (!isObj(r)) return c.fail(path, 'must be an object');
  if (r.match !== undefined)
    c.array(r.match, `${path}.match`).forEach((m, i) => checkMatch(c, m, `${path}.match[${i}]`));
  checkAction(c, r.action, `${path}.action`);
  c.optInt(r, 'timeoutMs', path);
  if (r.retries !== undefined) {
    const rt = r.retries;
    if (!isObj(rt)) c.fail(`${path}.retries`, 'must be an object');
    else {
      c.optInt(rt, 'attempts', `${path}.retries`);
      c.optInt(rt, 'perTryTimeoutMs', `${path}.retries`);
      c.array(rt.retryOn, `${path}.retries.retryOn`);
      c.array(rt.retriableStatusCodes, `${path}.retries.retriableStatusCodes`);
    }
  }
  if (r.mirrors !== undefined) {
    c.array(r.mirrors, `${path}.mirrors`).forEach((m, i) => {
      if (!isObj(m) || typeof m.cluster !== 'string')
        c.fail(`${path}.mirrors[${i}].cluster`, 'must be a string');
      else if (m.shadowHostSuffix !== undefined && typeof m.shadowHostSuffix !== 'boolean')
        c.fail(`${path}.mirrors[${i}].shadowHostSuffix`, 'must be true or false');
    });
  }
}

const strList = (c: Checker, v: unknown, path: string): void => {
  if (v === undefined) return;
  c.array(v, path).forEach((x, i) => {
    if (typeof x !== 'string' || x === '') c.fail(`${path}[${i}]`, 'must be a non-empty string');
  });
};

/** A listener's gateway TLS servers (types.ts GatewayTlsServer). */
function checkGatewayTls(c: Checker, t: unknown, path: string): void {
  if (!isObj(t)) return c.fail(path, 'must be an object');
  const servers = c.array(t.servers, `${path}.servers`);
  if (servers.length === 0) c.fail(`${path}.servers`, 'must list at least one server');
  servers.forEach((s, i) => {
    const p = `${path}.servers[${i}]`;
    if (!isObj(s)) return c.fail(p, 'must be an object');
    if (typeof s.name !== 'string' || s.name === '') c.fail(`${p}.name`, 'must be a non-empty string');
    if (!(GATEWAY_TLS_MODES as readonly unknown[]).includes(s.mode))
      c.fail(`${p}.mode`, `must be one of ${GATEWAY_TLS_MODES.join(', ')}`);
    // ISTIO_MUTUAL serves the gateway's workload certificate: a credential would be ignored
    if (s.mode === 'ISTIO_MUTUAL') {
      if (s.credentialName !== undefined)
        c.fail(`${p}.credentialName`, 'must be absent for ISTIO_MUTUAL (the workload certificate is served)');
    } else if (typeof s.credentialName !== 'string' || s.credentialName === '')
      c.fail(`${p}.credentialName`, 'must be a non-empty string');
    strList(c, s.sniHosts, `${p}.sniHosts`);
    strList(c, s.subjectAltNames, `${p}.subjectAltNames`);
    strList(c, s.cipherSuites, `${p}.cipherSuites`);
    for (const k of ['minProtocolVersion', 'maxProtocolVersion'] as const)
      if (s[k] !== undefined && !(GATEWAY_TLS_VERSIONS as readonly unknown[]).includes(s[k]))
        c.fail(`${p}.${k}`, `must be one of ${GATEWAY_TLS_VERSIONS.join(', ')}`);
  });
}

function checkListener(c: Checker, l: unknown, path: string, ports: Set<number>): void {
  if (!isObj(l)) return c.fail(path, 'must be an object');
  if (typeof l.name !== 'string' || l.name === '') c.fail(`${path}.name`, 'must be a non-empty string');
  if (!isPort(l.port)) c.fail(`${path}.port`, 'must be a port number');
  else if (l.port !== 0 && ports.has(l.port as number))
    c.fail(`${path}.port`, `port ${String(l.port)} is used twice`);
  else ports.add(l.port as number);
  if (l.protocol === 'TCP') return checkTcpRouting(c, l, path);
  if (l.protocol !== 'HTTP') return c.fail(`${path}.protocol`, 'must be HTTP or TCP');
  if (l.edge !== undefined && typeof l.edge !== 'boolean') c.fail(`${path}.edge`, 'must be true or false');
  if (l.upgradeTypes !== undefined)
    c.array(l.upgradeTypes, `${path}.upgradeTypes`).forEach((t, i) => {
      if (typeof t !== 'string' || !UPGRADE_TOKEN.test(t))
        c.fail(`${path}.upgradeTypes[${i}]`, 'must be an HTTP token such as websocket (RFC 9110 §7.8)');
    });
  if (l.tls !== undefined) checkGatewayTls(c, l.tls, `${path}.tls`);
  c.array(l.virtualHosts, `${path}.virtualHosts`).forEach((vh, i) => {
    const p = `${path}.virtualHosts[${i}]`;
    if (!isObj(vh)) return c.fail(p, 'must be an object');
    if (vh.domains === undefined && vh.serviceDomains === undefined)
      c.fail(`${p}.domains`, 'must be a list (or serviceDomains given)');
    if (vh.domains !== undefined)
      c.array(vh.domains, `${p}.domains`).forEach((d, j) => {
        if (typeof d !== 'string' || d === '') c.fail(`${p}.domains[${j}]`, 'must be a non-empty string');
      });
    if (vh.serviceDomains !== undefined)
      checkServiceDomains(c, vh.name, vh.serviceDomains, `${p}.serviceDomains`);
    c.array(vh.routes, `${p}.routes`).forEach((r, j) => checkRoute(c, r, `${p}.routes[${j}]`));
  });
}

/** A virtual host's short form (pkg/proxyconfig/domains.ts): every part must expand to what it says. */
function checkServiceDomains(c: Checker, name: unknown, sd: unknown, path: string): void {
  if (!isObj(sd)) return c.fail(path, 'must be an object');
  const hp = typeof name === 'string' ? hostPortOf(name) : null;
  if (hp === null) c.fail(path, 'needs the virtual host name to be <host>:<port>');
  if (sd.addresses !== undefined)
    c.array(sd.addresses, `${path}.addresses`).forEach((a, i) => {
      if (typeof a !== 'string' || a === '') c.fail(`${path}.addresses[${i}]`, 'must be a non-empty string');
    });
  if (sd.short !== undefined) {
    if (typeof sd.short !== 'string' || sd.short === '')
      c.fail(`${path}.short`, 'must be a non-empty string');
    else if (hp !== null && shortNamespaceOf(hp.host, sd.short) === null)
      c.fail(`${path}.short`, `${hp.host} is not ${sd.short}.<namespace>.<domain>`);
  }
  if (sd.bare !== undefined && sd.bare !== true) c.fail(`${path}.bare`, 'must be true when present');
  for (const k of Object.keys(sd))
    if (!['addresses', 'short', 'bare'].includes(k))
      c.fail(`${path}.${k}`, 'is not a field of serviceDomains');
}

function checkCluster(c: Checker, cl: unknown, path: string, names: Set<string>): void {
  if (!isObj(cl)) return c.fail(path, 'must be an object');
  if (typeof cl.name !== 'string' || cl.name === '') c.fail(`${path}.name`, 'must be a non-empty string');
  else if (names.has(cl.name)) c.fail(`${path}.name`, `cluster ${cl.name} is defined twice`);
  else names.add(cl.name);
  const type = cl.type ?? 'STATIC';
  if (!(CLUSTER_TYPES as readonly unknown[]).includes(type))
    c.fail(`${path}.type`, `must be one of ${CLUSTER_TYPES.join(', ')}`);
  const dns = type === 'STRICT_DNS' || type === 'LOGICAL_DNS';
  const eps = c.array(cl.endpoints, `${path}.endpoints`);
  if (type === 'ORIGINAL_DST' && eps.length > 0)
    c.fail(
      `${path}.endpoints`,
      'must be empty for an ORIGINAL_DST cluster (requests go to their original destination)',
    );
  if (type === 'LOGICAL_DNS' && eps.length > 1)
    c.fail(`${path}.endpoints`, 'a LOGICAL_DNS cluster resolves one host: at most one endpoint');
  eps.forEach((e, i) => {
    const p = `${path}.endpoints[${i}]`;
    if (!isObj(e)) return c.fail(p, 'must be an object');
    if (typeof e.address !== 'string' || e.address === '')
      c.fail(`${p}.address`, 'must be a non-empty string');
    else if (dns && isIP(e.address) === 0 && !isDnsHostName(e.address))
      c.fail(`${p}.address`, `${JSON.stringify(e.address)} is neither an IP address nor a DNS host name`);
    if (!isPort(e.port) || e.port === 0) c.fail(`${p}.port`, 'must be a port number 1-65535');
    if (e.locality !== undefined && typeof e.locality !== 'string')
      c.fail(`${p}.locality`, 'must be a string');
    // priorities are few (Istio makes at most a handful); a huge one is a typo, not a level
    if (
      e.priority !== undefined &&
      !(Number.isInteger(e.priority) && (e.priority as number) >= 0 && (e.priority as number) <= 1000)
    )
      c.fail(`${p}.priority`, 'must be an integer 0-1000');
    if (
      e.localityWeight !== undefined &&
      !(Number.isInteger(e.localityWeight) && (e.localityWeight as number) >= 1)
    )
      c.fail(`${p}.localityWeight`, 'must be a positive integer');
  });
  if (cl.tls !== undefined) checkUpstreamTls(c, cl.tls, `${path}.tls`);
  if (cl.http2 !== undefined && typeof cl.http2 !== 'boolean') c.fail(`${path}.http2`, 'must be a boolean');
  if (cl.useClientProtocol !== undefined && typeof cl.useClientProtocol !== 'boolean')
    c.fail(`${path}.useClientProtocol`, 'must be a boolean');
  for (const key of ['connectionPool', 'outlierDetection']) {
    const v = cl[key];
    if (v === undefined) continue;
    if (!isObj(v)) c.fail(`${path}.${key}`, 'must be an object');
    else for (const k of Object.keys(v)) c.optInt(v, k, `${path}.${key}`);
  }
}

/** `10.0.0.1`, `fd00::1`, `10.0.0.0/8` (what a sidecar can compare an original destination with). */
export function isIpOrCidr(a: string): boolean {
  const slash = a.indexOf('/');
  if (slash < 0) return isIP(a) !== 0;
  const family = isIP(a.slice(0, slash));
  const bits = a.slice(slash + 1);
  return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/** A TCP listener or outbound TCP service: one cluster, or L4 routes (pkg/proxyconfig/l4.ts). */
function checkTcpRouting(c: Checker, l: Obj, path: string): void {
  if (l.tcpRoutes !== undefined) checkL4Routes(c, l.tcpRoutes, `${path}.tcpRoutes`, false, isIpOrCidr);
  if (l.tlsRoutes !== undefined) checkL4Routes(c, l.tlsRoutes, `${path}.tlsRoutes`, true, isIpOrCidr);
  const routed = l.tcpRoutes !== undefined || l.tlsRoutes !== undefined;
  if (l.cluster !== undefined ? typeof l.cluster !== 'string' : !routed)
    c.fail(`${path}.cluster`, 'must name a cluster (or give tcpRoutes / tlsRoutes)');
}

function checkOutboundTcp(c: Checker, v: unknown): void {
  if (v === undefined) return;
  c.array(v, 'outboundTcp').forEach((s, i) => {
    const at = `outboundTcp[${i}]`;
    if (!isObj(s)) return c.fail(at, 'must be an object like {name, addresses, port, tcpRoutes}');
    if (typeof s.name !== 'string' || s.name === '') c.fail(`${at}.name`, 'must be a non-empty string');
    if (!isPort(s.port) || s.port === 0) c.fail(`${at}.port`, 'must be a port number 1-65535');
    c.array(s.addresses, `${at}.addresses`).forEach((a, j) => {
      if (typeof a !== 'string' || !isIpOrCidr(a))
        c.fail(`${at}.addresses[${j}]`, 'must be an IP address or a CIDR');
    });
    if (s.cluster !== undefined) c.fail(`${at}.cluster`, 'is not a field here (use tcpRoutes)');
    checkTcpRouting(c, s, at);
    if (s.catchAll === undefined) return;
    if (s.catchAll !== true) c.fail(`${at}.catchAll`, 'must be true (or absent)');
    // a catch-all routes TLS by SNI only: a TCP route would take every connection to the port
    if (s.tcpRoutes !== undefined) c.fail(`${at}.tcpRoutes`, 'a catch-all service has tlsRoutes only');
    if (s.tlsRoutes === undefined) c.fail(`${at}.tlsRoutes`, 'a catch-all service needs tlsRoutes');
  });
}

function checkOutboundTrafficPolicy(c: Checker, v: unknown): void {
  if (v === undefined) return;
  const path = 'outboundTrafficPolicy';
  if (!isObj(v)) return c.fail(path, 'must be an object like {mode: REGISTRY_ONLY, destinations: []}');
  if (v.mode !== 'REGISTRY_ONLY') c.fail(`${path}.mode`, 'must be REGISTRY_ONLY (absent = ALLOW_ANY)');
  c.array(v.destinations, `${path}.destinations`).forEach((d, i) => {
    const at = `${path}.destinations[${i}]`;
    if (!isObj(d)) return c.fail(at, 'must be an object like {address: 10.0.0.1, ports: [80]}');
    if (typeof d.address !== 'string' || !isIpOrCidr(d.address))
      c.fail(`${at}.address`, 'must be an IP address or a CIDR');
    c.array(d.ports, `${at}.ports`).forEach((p, j) => {
      if (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535)
        c.fail(`${at}.ports[${j}]`, 'must be a port number 1-65535');
    });
  });
}

function checkDns(c: Checker, v: unknown): void {
  if (v === undefined) return;
  if (!isObj(v)) return c.fail('dns', 'must be an object');
  for (const k of Object.keys(v)) {
    if (k === 'servers') {
      c.array(v.servers, 'dns.servers').forEach((s, i) => {
        const why = typeof s === 'string' ? checkDnsServer(s) : 'must be a string';
        if (why !== null) c.fail(`dns.servers[${i}]`, why);
      });
    } else if (['refreshRateMs', 'minRefreshMs', 'maxRefreshMs', 'timeoutMs'].includes(k)) {
      if (!Number.isInteger(v[k]) || (v[k] as number) < 1 || (v[k] as number) > 86_400_000)
        c.fail(`dns.${k}`, 'must be an integer from 1 to 86400000 (milliseconds)');
    } else
      c.fail(`dns.${k}`, 'is not supported (servers, refreshRateMs, minRefreshMs, maxRefreshMs, timeoutMs)');
  }
}

function checkProxyHeaders(c: Checker, v: unknown): void {
  if (v === undefined) return;
  if (!isObj(v))
    return c.fail('proxyHeaders', 'must be an object like {envoyDebugHeaders: {disabled: true}}');
  for (const k of Object.keys(v)) {
    if (!(PROXY_HEADERS_FIELDS as readonly string[]).includes(k)) {
      c.fail(`proxyHeaders.${k}`, `is not supported (only ${PROXY_HEADERS_FIELDS.join(', ')})`);
      continue;
    }
    const f = v[k];
    if (!isObj(f)) c.fail(`proxyHeaders.${k}`, 'must be an object like {disabled: true}');
    else
      for (const [fk, fv] of Object.entries(f))
        if (fk !== 'disabled') c.fail(`proxyHeaders.${k}.${fk}`, 'is not supported (only disabled)');
        else if (typeof fv !== 'boolean') c.fail(`proxyHeaders.${k}.disabled`, 'must be true or false');
  }
}

function checkPathNormalization(c: Checker, v: unknown): void {
  if (v === undefined) return;
  if (!isObj(v)) return c.fail('pathNormalization', 'must be an object like {normalization: BASE}');
  const n = v.normalization;
  if (n !== undefined && !(PATH_NORMALIZATION_TYPES as readonly unknown[]).includes(n))
    c.fail('pathNormalization.normalization', `must be one of ${PATH_NORMALIZATION_TYPES.join(', ')}`);
}

const TLS_MODES = ['ISTIO_MUTUAL', 'SIMPLE', 'MUTUAL'];
const TLS_STRINGS = ['sni', 'caCertificates', 'clientCertificate', 'privateKey', 'credentialName'];

function checkUpstreamTls(c: Checker, t: unknown, path: string): void {
  if (!isObj(t)) return c.fail(path, 'must be an object');
  if (!TLS_MODES.includes(t.mode as string)) c.fail(`${path}.mode`, `must be one of ${TLS_MODES.join(', ')}`);
  for (const k of TLS_STRINGS)
    if (t[k] !== undefined && typeof t[k] !== 'string') c.fail(`${path}.${k}`, 'must be a string');
  for (const k of ['auto', 'insecureSkipVerify'])
    if (t[k] !== undefined && typeof t[k] !== 'boolean') c.fail(`${path}.${k}`, 'must be true or false');
  for (const k of ['subjectAltNames', 'alpn'])
    if (t[k] !== undefined && !c.array(t[k], `${path}.${k}`).every((x) => typeof x === 'string' && x !== ''))
      c.fail(`${path}.${k}`, 'must be a list of non-empty strings');
  if (t.auto === true && t.mode !== 'ISTIO_MUTUAL') c.fail(`${path}.auto`, 'applies to ISTIO_MUTUAL only');
  if (
    t.mode === 'MUTUAL' &&
    t.credentialName === undefined &&
    (t.clientCertificate === undefined || t.privateKey === undefined)
  )
    c.fail(path, 'MUTUAL needs clientCertificate and privateKey, or credentialName');
}

const PEER_MODES = ['STRICT', 'PERMISSIVE', 'DISABLE'];

function checkMtls(c: Checker, m: unknown, path: string): void {
  if (!isObj(m)) return c.fail(path, 'must be an object');
  if (!PEER_MODES.includes(m.mode as string))
    c.fail(`${path}.mode`, `must be one of ${PEER_MODES.join(', ')}`);
  if (m.policy !== undefined && typeof m.policy !== 'string') c.fail(`${path}.policy`, 'must be a string');
}

function checkInbound(c: Checker, v: unknown): void {
  if (v === undefined) return;
  if (!isObj(v)) return c.fail('inbound', 'must be an object');
  checkMtls(c, v.mtls, 'inbound.mtls');
  if (v.ports === undefined) return;
  const seen = new Set<number>();
  c.array(v.ports, 'inbound.ports').forEach((p, i) => {
    const path = `inbound.ports[${i}]`;
    if (!isObj(p)) return c.fail(path, 'must be an object');
    if (!isPort(p.port) || p.port === 0) c.fail(`${path}.port`, 'must be a port number 1-65535');
    else if (seen.has(p.port as number)) c.fail(`${path}.port`, `port ${String(p.port)} is listed twice`);
    else seen.add(p.port as number);
    if (p.protocol !== undefined && p.protocol !== 'HTTP' && p.protocol !== 'TCP')
      c.fail(`${path}.protocol`, 'must be HTTP or TCP (absent: sniffed)');
    if (p.mtls !== undefined) checkMtls(c, p.mtls, `${path}.mtls`);
    if (p.service !== undefined && typeof p.service !== 'string')
      c.fail(`${path}.service`, 'must be a string');
    if (p.http2 !== undefined && typeof p.http2 !== 'boolean') c.fail(`${path}.http2`, 'must be a boolean');
  });
}

/** Returns every structural problem; an empty list means `cfg` is a ProxyConfig. */
const CREDENTIAL_STRINGS = ['source', 'certChain', 'privateKey', 'caCertificates', 'error'];

function checkCredentials(c: Checker, v: unknown): void {
  if (v === undefined) return;
  if (!isObj(v)) return c.fail('credentials', 'must be a map of credentialName to credential');
  for (const [name, cred] of Object.entries(v)) {
    const path = `credentials[${JSON.stringify(name)}]`;
    if (!isObj(cred)) {
      c.fail(path, 'must be an object');
      continue;
    }
    if (typeof cred.source !== 'string' || cred.source === '')
      c.fail(`${path}.source`, 'must be a non-empty string');
    for (const k of CREDENTIAL_STRINGS)
      if (cred[k] !== undefined && typeof cred[k] !== 'string') c.fail(`${path}.${k}`, 'must be a string');
  }
}

export function validateProxyConfig(cfg: unknown): ConfigProblem[] {
  const c = new Checker();
  if (!isObj(cfg)) {
    c.fail('', 'must be an object');
    return c.problems;
  }
  if (cfg.apiVersion !== PROXY_CONFIG_API_VERSION)
    c.fail('apiVersion', `must be ${PROXY_CONFIG_API_VERSION}`);
  if (cfg.kind !== 'ProxyConfig') c.fail('kind', 'must be ProxyConfig');
  if (typeof cfg.version !== 'string' || cfg.version === '') c.fail('version', 'must be a non-empty string');
  const ports = new Set<number>();
  c.array(cfg.listeners, 'listeners').forEach((l, i) => checkListener(c, l, `listeners[${i}]`, ports));
  const names = new Set<string>();
  c.array(cfg.clusters, 'clusters').forEach((cl, i) => checkCluster(c, cl, `clusters[${i}]`, names));
  checkPathNormalization(c, cfg.pathNormalization);
  checkInbound(c, cfg.inbound);
  c.problems.push(...validateAuthzBlock(cfg.authz));
  for (const p of validateJwtBlock(cfg.jwt)) c.fail(p.path, p.message);
  for (const p of validateRateLimitBlock(cfg.rateLimits)) c.fail(p.path, p.message);
  checkProxyHeaders(c, cfg.proxyHeaders);
  checkCredentials(c, cfg.credentials);
  checkDns(c, cfg.dns);
  checkOutboundTrafficPolicy(c, cfg.outboundTrafficPolicy);
  checkOutboundTcp(c, cfg.outboundTcp);
  return c.problems;
}

export function isProxyConfig(cfg: unknown): cfg is ProxyConfig {
  return validateProxyConfig(cfg).length === 0;
}
