/**
 * The main rules Istio enforces for Gateway, ServiceEntry and Sidecar (rule ids `gw.*`, `se.*`,
 * `sidecar.*`). Not exhaustive like VirtualService/DestinationRule; docs/validation.md lists
 * what is covered.
 */
import type { GatewaySpec, Server, ServerTLSSettings } from '../api/gateway.js';
import type { ServiceEntrySpec } from '../api/serviceentry.js';
import type { SidecarSpec } from '../api/sidecar.js';
import type { PathSegment, Report } from './report.js';
import type { RuleContext } from './rules.js';
import {
  checkFQDN,
  checkExportTo,
  checkIPOrCIDR,
  checkLabelMap,
  checkPort,
  checkWildcardDomain,
  isDNS1123Label,
  isIPAddress,
} from './primitives.js';
import { validateDestination } from './virtualservice.js';

type Path = readonly PathSegment[];

/** Istio's protocol names (case-insensitive). */
const PROTOCOLS = new Set([
  'HTTP',
  'HTTPS',
  'GRPC',
  'GRPC-WEB',
  'HTTP2',
  'MONGO',
  'REDIS',
  'MYSQL',
  'TCP',
  'TLS',
  'UDP',
  'HTTP_PROXY',
]);

function checkProtocol(protocol: string | undefined, path: Path, r: Report, rule: string): void {
  if (protocol === undefined || protocol === '') return;
  if (!PROTOCOLS.has(protocol.toUpperCase())) {
    r.error(
      path,
      `unrecognized protocol ${JSON.stringify(protocol)}; supported: ${[...PROTOCOLS].join(', ')}`,
      rule,
    );
  }
}

function port(n: number, path: Path, r: Report): void {
  const err = checkPort(n);
  if (err) r.error(path, err, 'port.range');
}

/** `namespace/host` (gateway and sidecar hosts): namespace `.`, `*`, `~` or a label; host a wildcard domain. */
function checkNamespacedHost(
  h: string,
  path: Path,
  r: Report,
  rule: string,
  allowNoNamespace: boolean,
): void {
  const slash = h.indexOf('/');
  if (slash < 0 && !allowNoNamespace) {
    r.error(path, `host ${JSON.stringify(h)} must be of form namespace/dnsName`, rule);
    return;
  }
  const ns = slash < 0 ? '' : h.slice(0, slash);
  const host = slash < 0 ? h : h.slice(slash + 1);
  if (slash >= 0 && ns !== '.' && ns !== '*' && ns !== '~' && !isDNS1123Label(ns))
    r.error(path, `invalid namespace ${JSON.stringify(ns)} in host ${JSON.stringify(h)}`, rule);
  const err = checkWildcardDomain(host);
  if (err) r.error(path, err, rule);
}

// ---- Gateway ------------------------------------------------------------------------------

/** Set on Gateways that Istio generates from Gateway API objects; it allows the `~` namespace. */
const GATEWAY_SEMANTICS = 'internal.istio.io/gateway-semantics';
const TLS_PROTOCOLS = new Set(['HTTPS', 'TLS']);
const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB']);
const UNIX = 'unix://';

export function validateGateway(spec: GatewaySpec, ctx: RuleContext): void {
  const r = ctx.report;
  const gatewaySemantics = ctx.annotations[GATEWAY_SEMANTICS] === 'gateway';
  const servers = spec.servers ?? [];
  if (servers.length === 0)
    r.error(['spec', 'servers'], 'gateway must have at least one server', 'gw.servers.required');
  const portNames = new Map<string, number>();
  servers.forEach((s, i) => {
    const at = ['spec', 'servers', i];
    if (s.hosts.length === 0)
      r.error([...at, 'hosts'], 'server config must contain at least one host', 'gw.server.hosts');
    s.hosts.forEach((h, j) => checkServerHost(h, [...at, 'hosts', j], r, gatewaySemantics));
    const unixBind = s.bind?.startsWith(UNIX) === true;
    // A unix domain socket has no port: 0 is the only number it takes.
    if (s.port.number !== 0 || !unixBind) port(s.port.number, [...at, 'port', 'number'], r);
    if (s.port.targetPort !== undefined && s.port.targetPort !== 0)
      port(s.port.targetPort, [...at, 'port', 'targetPort'], r);
    checkProtocol(s.port.protocol, [...at, 'port', 'protocol'], r, 'gw.server.protocol');
    if (s.port.protocol === '')
      r.error([...at, 'port', 'protocol'], 'protocol is required', 'gw.server.protocol');
    if (s.port.name === '') r.error([...at, 'port', 'name'], 'port name must be set', 'gw.server.portName');
    const prior = portNames.get(s.port.name);
    // Several servers may share a port, but then they must agree on its number.
    if (s.port.name !== '' && prior !== undefined && prior !== s.port.number) {
      r.error(
        [...at, 'port', 'name'],
        `port names in servers must be unique: duplicate name ${s.port.name}`,
        'gw.server.portNameDuplicate',
      );
    }
    portNames.set(s.port.name, s.port.number);
    if (unixBind) {
      const socket = (s.bind ?? '').slice(UNIX.length);
      if (socket === '' || (!socket.startsWith('@') && (!socket.startsWith('/') || socket.endsWith('/'))))
        r.error(
          [...at, 'bind'],
          `${s.bind} is not an absolute path to a file (or @abstract name)`,
          'gw.server.bind',
        );
      if (s.port.number !== 0)
        r.error(
          [...at, 'port', 'number'],
          `port number must be 0 for unix domain socket (got ${s.port.number})`,
          'gw.server.bind',
        );
    } else if (s.bind !== undefined && s.bind !== '' && !isIPAddress(s.bind)) {
      r.error([...at, 'bind'], `${s.bind} is not a valid IP address or unix:// socket`, 'gw.server.bind');
    }
    checkServerProtocolTLS(s, at, r);
    if (s.tls) checkServerTLS(s.tls, [...at, 'tls'], r);
    if (s.tls?.httpsRedirect && !HTTP_PROTOCOLS.has(s.port.protocol.toUpperCase()))
      r.warn(
        [...at, 'tls', 'httpsRedirect'],
        'tls.httpsRedirect should only be used with http servers',
        'gw.tls.httpsRedirect',
      );
  });
  for (const msg of checkLabelMap(spec.selector ?? {})) r.error(['spec', 'selector'], msg, 'labels.invalid');
}

/**
 * A server host (Istio's ValidateNamespaceSlashWildcardHostname for gateways): `[namespace/]dnsName`,
 * namespace `*`, `.`, a label (or `~` on Gateways generated from Gateway API); the name a dotted
 * domain or IP, `*`, or a wildcard of the form `*.suffix` only.
 */
function checkServerHost(h: string, path: Path, r: Report, gatewaySemantics: boolean): void {
  const slash = h.indexOf('/');
  const ns = slash < 0 ? undefined : h.slice(0, slash);
  const name = slash < 0 ? h : h.slice(slash + 1);
  if (ns !== undefined) {
    if (ns === '' || name === '')
      r.error(path, 'config namespace and dnsName in host entry cannot be empty', 'gw.server.host');
    else if (ns !== '*' && ns !== '.' && !(ns === '~' && gatewaySemantics) && !isDNS1123Label(ns))
      r.error(path, `invalid namespace ${JSON.stringify(ns)} in host ${JSON.stringify(h)}`, 'gw.server.host');
  }
  if (name !== '*' && !name.includes('.'))
    r.error(path, `short names (non FQDN) are not allowed: ${JSON.stringify(name)}`, 'gw.server.host');
  const err = checkWildcardDomain(name);
  if (err && !isIPAddress(name)) r.error(path, err, 'gw.server.host');
  if (name.includes('*') && name !== '*' && !name.startsWith('*.'))
    r.error(path, `partial wildcard ${JSON.stringify(name)} not allowed`, 'gw.server.host');
}

/** HTTPS and TLS servers need TLS settings; plain-text servers may only carry an HTTPS redirect. */
function checkServerProtocolTLS(s: Server, at: Path, r: Report): void {
  const proto = s.port.protocol.toUpperCase();
  if (!PROTOCOLS.has(proto)) return;
  if (TLS_PROTOCOLS.has(proto)) {
    if (!s.tls)
      r.error(
        [...at, 'tls'],
        `server must have TLS settings for HTTPS/TLS protocols (protocol ${s.port.protocol})`,
        'gw.server.tlsRequired',
      );
    return;
  }
  if (!s.tls) return;
  const passthrough = (s.tls.mode ?? 'PASSTHROUGH') === 'PASSTHROUGH' || s.tls.mode === 'AUTO_PASSTHROUGH';
  if (!HTTP_PROTOCOLS.has(proto))
    r.error(
      [...at, 'tls'],
      'server cannot have TLS settings for non HTTPS/TLS ports',
      'gw.server.tlsOnPlain',
    );
  else if (!passthrough || s.tls.caCertificates || s.tls.privateKey || s.tls.serverCertificate)
    r.error(
      [...at, 'tls'],
      'server cannot have TLS settings for plain text HTTP ports (only httpsRedirect)',
      'gw.server.tlsOnPlain',
    );
}

/** Istio's validateTLSOptions: one certificate source, and what each mode needs or refuses. */
function checkServerTLS(tls: ServerTLSSettings, path: Path, r: Report): void {
  const mode = tls.mode ?? 'PASSTHROUGH';
  const set = (v: string | undefined): boolean => v !== undefined && v !== '';
  const hasCredName = set(tls.credentialName);
  const hasCredNames = (tls.credentialNames ?? []).length > 0;
  const certs = tls.tlsCertificates ?? [];
  if (
    (tls.minProtocolVersion === 'TLSV1_0' || tls.minProtocolVersion === 'TLSV1_1') &&
    (tls.cipherSuites ?? []).length === 0
  )
    r.warn(
      [...path, 'minProtocolVersion'],
      'TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers',
      'gw.tls.oldVersionCiphers',
    );
  if (
    tls.minProtocolVersion &&
    tls.maxProtocolVersion &&
    tls.maxProtocolVersion !== 'TLS_AUTO' &&
    tls.minProtocolVersion > tls.maxProtocolVersion
  ) {
    r.error(
      [...path, 'minProtocolVersion'],
      'minProtocolVersion must not be higher than maxProtocolVersion',
      'gw.tls.versions',
    );
  }
  if (mode === 'ISTIO_MUTUAL') {
    // The workload certificate is the server certificate; nothing else may be given.
    const refused: [keyof ServerTLSSettings, boolean][] = [
      ['serverCertificate', set(tls.serverCertificate)],
      ['privateKey', set(tls.privateKey)],
      ['caCertificates', set(tls.caCertificates)],
      ['tlsCertificates', certs.length > 0],
      ['credentialName', hasCredName],
      ['credentialNames', hasCredNames],
    ];
    for (const [field, present] of refused)
      if (present)
        r.error([...path, field], `ISTIO_MUTUAL TLS cannot have associated ${field}`, 'gw.tls.istioMutual');
    return;
  }
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    const any =
      set(tls.caCrl) ||
      set(tls.serverCertificate) ||
      set(tls.privateKey) ||
      set(tls.caCertificates) ||
      certs.length > 0 ||
      hasCredName ||
      hasCredNames;
    if (any)
      r.warn(path, `${mode} mode does not use certificates, they will be ignored`, 'gw.tls.passthroughCerts');
  }
  const sources = [
    set(tls.serverCertificate) && set(tls.privateKey),
    hasCredName,
    hasCredNames,
    certs.length > 0,
  ].filter(Boolean).length;
  if (sources > 1)
    r.error(
      path,
      'only one of credentialName, credentialNames, serverCertificate/privateKey, tlsCertificates should be specified',
      'gw.tls.certSources',
    );
  const terminates = mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  // With a credential the certificates (and a CRL) come from the secret: nothing else is checked.
  if (terminates && (hasCredName || hasCredNames)) return;
  if (terminates) {
    const what = mode === 'SIMPLE' ? 'SIMPLE TLS' : 'MUTUAL TLS';
    if (mode !== 'SIMPLE' && !set(tls.caCertificates))
      r.error(
        [...path, 'caCertificates'],
        `${what} requires a client CA bundle (caCertificates or credentialName)`,
        'gw.tls.ca',
      );
    const toVerify: { at: Path; cert: { serverCertificate?: string; privateKey?: string } }[] =
      certs.length > 0
        ? certs.map((c, i) => ({ at: [...path, 'tlsCertificates', i], cert: c }))
        : [{ at: path, cert: tls }];
    for (const { at, cert } of toVerify) {
      if (!set(cert.serverCertificate))
        r.error(
          [...at, 'serverCertificate'],
          `${what} requires a server certificate (serverCertificate or credentialName)`,
          'gw.tls.cert',
        );
      if (!set(cert.privateKey))
        r.error(
          [...at, 'privateKey'],
          `${what} requires a private key (privateKey or credentialName)`,
          'gw.tls.key',
        );
    }
  }
  if (set(tls.caCrl)) {
    if (hasCredName)
      r.error(
        [...path, 'caCrl'],
        'CRL is not supported with credentialName; put the CRL in the credential',
        'gw.tls.crl',
      );
    if (mode === 'SIMPLE') r.error([...path, 'caCrl'], 'CRL is not supported with SIMPLE TLS', 'gw.tls.crl');
  }
}

// ---- ServiceEntry -------------------------------------------------------------------------

export function validateServiceEntry(spec: ServiceEntrySpec, ctx: RuleContext): void {
  const r = ctx.report;
  if (spec.hosts.length === 0)
    r.error(['spec', 'hosts'], 'service entry must have at least one host', 'se.hosts.required');
  spec.hosts.forEach((h, i) => {
    if (h === '*') r.error(['spec', 'hosts', i], 'invalid host *', 'se.hosts.invalid');
    else {
      const err = checkWildcardDomain(h);
      if (err) r.error(['spec', 'hosts', i], err, 'se.hosts.invalid');
    }
  });
  (spec.addresses ?? []).forEach((a, i) => {
    const err = checkIPOrCIDR(a);
    if (err) r.error(['spec', 'addresses', i], err, 'se.addresses');
  });
  const numbers = new Set<number>();
  const names = new Set<string>();
  (spec.ports ?? []).forEach((p, i) => {
    const at = ['spec', 'ports', i];
    port(p.number, [...at, 'number'], r);
    if (p.targetPort !== undefined && p.targetPort !== 0) port(p.targetPort, [...at, 'targetPort'], r);
    checkProtocol(p.protocol, [...at, 'protocol'], r, 'se.ports.protocol');
    if (p.name === '') r.error([...at, 'name'], 'port name must be set', 'se.ports.name');
    if (numbers.has(p.number))
      r.error([...at, 'number'], `port number ${p.number} is used more than once`, 'se.ports.duplicate');
    if (p.name !== '' && names.has(p.name))
      r.error([...at, 'name'], `port name ${p.name} is used more than once`, 'se.ports.duplicate');
    numbers.add(p.number);
    names.add(p.name);
  });
  const endpoints = spec.endpoints ?? [];
  if (spec.workloadSelector && endpoints.length > 0)
    r.error(
      ['spec'],
      'only one of WorkloadSelector or Endpoints is allowed in Service Entry',
      'se.selectorAndEndpoints',
    );
  for (const msg of checkLabelMap(spec.workloadSelector?.labels ?? {}))
    r.error(['spec', 'workloadSelector', 'labels'], msg, 'labels.invalid');
  const resolution = spec.resolution ?? 'NONE';
  if (resolution === 'NONE' && endpoints.length > 0)
    r.error(
      ['spec', 'endpoints'],
      'no endpoints should be provided for resolution type NONE',
      'se.none.endpoints',
    );
  if (resolution === 'NONE' && spec.workloadSelector)
    r.warn(
      ['spec', 'workloadSelector'],
      'workloadSelector should not be set when resolution mode is NONE',
      'se.none.selector',
    );
  // Istio admits it (the service simply has no endpoints yet); weft says what it means.
  if (resolution === 'STATIC' && endpoints.length === 0 && !spec.workloadSelector) {
    r.warn(
      ['spec', 'endpoints'],
      'STATIC resolution with neither endpoints nor workloadSelector: the service has no endpoints (requests get 503)',
      'se.static.endpoints',
    );
  }
  checkResolutionCombos(spec, resolution, r);
  if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0) {
    spec.hosts.forEach((h, i) => {
      if (h.startsWith('*'))
        r.error(
          ['spec', 'hosts', i],
          `DNS resolution cannot be used with wildcard host ${h} unless endpoints are given`,
          'se.dns.wildcard',
        );
    });
  }
  if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1)
    r.error(
      ['spec', 'endpoints'],
      `there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN (got ${endpoints.length})`,
      'se.dnsrr.endpoints',
    );
  if (resolution === 'DYNAMIC_DNS') checkDynamicDNS(spec, ctx);
  endpoints.forEach((e, i) => {
    const at = ['spec', 'endpoints', i];
    const addr = e.address ?? '';
    // A unix socket is a STATIC endpoint only; under DNS it is neither an IP nor an FQDN.
    const unix = resolution === 'STATIC' && addr.startsWith(UNIX);
    if (unix) {
      const socket = addr.slice(UNIX.length);
      if (socket === '' || (!socket.startsWith('@') && (!socket.startsWith('/') || socket.endsWith('/'))))
        r.error(
          [...at, 'address'],
          `${addr} is not an absolute path to a file (or @abstract name)`,
          'se.endpoint.address',
        );
      if (Object.keys(e.ports ?? {}).length > 0)
        r.error([...at, 'ports'], `unix endpoint ${addr} must not include ports`, 'se.endpoint.unix');
      if ((spec.ports ?? []).length !== 1)
        r.error(at, 'exactly 1 service port required for unix endpoints', 'se.endpoint.unix');
    } else if (resolution === 'STATIC' && addr !== '' && !isIPAddress(addr)) {
      r.error(
        [...at, 'address'],
        `endpoint address ${JSON.stringify(addr)} is not a valid IP address (STATIC resolution)`,
        'se.endpoint.address',
      );
    } else if (addr !== '' && !isIPAddress(addr)) {
      // Istio: a DNS endpoint is an IP or an FQDN (no wildcard: there is nothing to resolve)
      const dns = resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN';
      const err = addr.startsWith(UNIX) ? undefined : dns ? checkFQDN(addr) : checkWildcardDomain(addr);
      if (err || addr.includes('*') || addr.startsWith(UNIX))
        r.error(
          [...at, 'address'],
          err ?? `endpoint address ${JSON.stringify(addr)} is not a valid FQDN or an IP address`,
          'se.endpoint.address',
        );
    }
    for (const [name, n] of Object.entries(e.ports ?? {})) {
      port(n, [...at, 'ports', name], r);
      if (!names.has(name))
        r.error(
          [...at, 'ports', name],
          `endpoint port ${name} is not defined by the service entry`,
          'se.endpoint.port',
        );
    }
    for (const msg of checkLabelMap(e.labels ?? {})) r.error([...at, 'labels'], msg, 'labels.invalid');
  });
  // Istio allows `~` (visible to no namespace) on a ServiceEntry only; never with `*`
  const exportTo = spec.exportTo ?? [];
  const none = exportTo.filter((e) => e === '~').length;
  if (none > 1) r.error(['spec', 'exportTo'], 'duplicate entries in exportTo for entry ~', 'se.exportTo');
  if (none > 0 && exportTo.includes('*'))
    r.error(
      ['spec', 'exportTo'],
      'cannot have both public (*) and non-public exportTo values for a resource',
      'se.exportTo',
    );
  for (const msg of checkExportTo(
    exportTo.filter((e) => e !== '~'),
    ctx.namespace,
  ))
    r.error(['spec', 'exportTo'], msg, 'se.exportTo');
}

/** Protocols Envoy's dynamic forward proxy serves, which DYNAMIC_DNS resolution uses. */
const DYNAMIC_DNS_PROTOCOLS = new Set(['HTTP', 'TLS', 'GRPC', 'HTTP2']);
const USE_WAYPOINT = 'istio.io/use-waypoint';

/** DYNAMIC_DNS resolves each request's host: wildcard hosts only, no addresses or endpoints. */
function checkDynamicDNS(spec: ServiceEntrySpec, ctx: RuleContext): void {
  const r = ctx.report;
  spec.hosts.forEach((h, i) => {
    if (!h.startsWith('*'))
      r.error(
        ['spec', 'hosts', i],
        `host must be wildcarded for resolution mode DYNAMIC_DNS (got ${h})`,
        'se.dynamicdns',
      );
  });
  if ((spec.addresses ?? []).length > 0)
    r.error(
      ['spec', 'addresses'],
      'addresses cannot be set for resolution type DYNAMIC_DNS',
      'se.dynamicdns',
    );
  if ((spec.endpoints ?? []).length > 0)
    r.error(
      ['spec', 'endpoints'],
      'endpoints cannot be set for resolution type DYNAMIC_DNS',
      'se.dynamicdns',
    );
  (spec.ports ?? []).forEach((p, i) => {
    if (!DYNAMIC_DNS_PROTOCOLS.has((p.protocol ?? '').toUpperCase()))
      r.error(
        ['spec', 'ports', i, 'protocol'],
        `only HTTP, TLS, GRPC and HTTP2 protocols are supported for resolution type DYNAMIC_DNS (got ${JSON.stringify(p.protocol ?? '')})`,
        'se.dynamicdns',
      );
  });
  const waypoint = ctx.labels[USE_WAYPOINT] ?? '';
  if (spec.location === 'MESH_INTERNAL' && waypoint !== '' && waypoint.toLowerCase() !== 'none')
    r.error(
      ['spec', 'location'],
      'location MESH_INTERNAL with resolution type DYNAMIC_DNS is not supported when using waypoints',
      'se.dynamicdns',
    );
}

/** Protocols Istio's protocol.Parse calls HTTP (IsHTTP) or TLS (IsTLS): several hosts can share such a port. */
const HOST_AWARE_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB', 'HTTPS', 'TLS']);

/** Istio's CIDR and multiple-hosts checks (the rest of its per-resolution switch is inline above). */
function checkResolutionCombos(
  spec: ServiceEntrySpec,
  resolution: NonNullable<ServiceEntrySpec['resolution']>,
  r: RuleContext['report'],
): void {
  if (resolution !== 'NONE' && resolution !== 'STATIC')
    (spec.addresses ?? []).forEach((a, i) => {
      if (a.includes('/'))
        r.error(
          ['spec', 'addresses', i],
          'CIDR addresses are allowed only for NONE/STATIC resolution types',
          'se.addresses.cidr',
        );
    });
  if (resolution !== 'NONE' && spec.hosts.length > 1) {
    const i = (spec.ports ?? []).findIndex(
      (p) => !HOST_AWARE_PROTOCOLS.has((p.protocol ?? '').toUpperCase()),
    );
    if (i >= 0)
      r.error(['spec', 'ports', i], 'multiple hosts provided with non-HTTP, non-TLS ports', 'se.hosts.tcp');
  }
}

// ---- Sidecar ------------------------------------------------------------------------------

const DEFAULT_ENDPOINT = /^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):([0-9]+)$/;

export function validateSidecar(spec: SidecarSpec, ctx: RuleContext): void {
  const r = ctx.report;
  const ingress = spec.ingress ?? [];
  const egress = spec.egress ?? [];
  if (
    ingress.length === 0 &&
    egress.length === 0 &&
    !spec.outboundTrafficPolicy &&
    !spec.inboundConnectionPool
  ) {
    r.error(['spec'], 'sidecar: empty configuration provided', 'sidecar.empty');
  }
  for (const msg of checkLabelMap(spec.workloadSelector?.labels ?? {}))
    r.error(['spec', 'workloadSelector', 'labels'], msg, 'labels.invalid');
  const ports = new Set<number>();
  ingress.forEach((l, i) => {
    const at = ['spec', 'ingress', i];
    port(l.port.number ?? 0, [...at, 'port', 'number'], r);
    checkProtocol(l.port.protocol, [...at, 'port', 'protocol'], r, 'sidecar.ingress.protocol');
    if (ports.has(l.port.number ?? 0))
      r.error(
        [...at, 'port'],
        `sidecar: ports on IP bound listeners must be unique (${l.port.number})`,
        'sidecar.ingress.duplicatePort',
      );
    ports.add(l.port.number ?? 0);
    const de = l.defaultEndpoint ?? '';
    if (de !== '' && !de.startsWith('unix://')) {
      const m = DEFAULT_ENDPOINT.exec(de);
      if (!m)
        r.error(
          [...at, 'defaultEndpoint'],
          `sidecar: defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port> or unix://<path> (got ${JSON.stringify(de)})`,
          'sidecar.ingress.defaultEndpoint',
        );
      else port(Number(m[2]), [...at, 'defaultEndpoint'], r);
    }
    if (l.bind && !isIPAddress(l.bind))
      r.error(
        [...at, 'bind'],
        `sidecar: ingress bind ${l.bind} is not a valid IP address`,
        'sidecar.ingress.bind',
      );
  });
  egress.forEach((l, i) => {
    const at = ['spec', 'egress', i];
    if (l.hosts.length === 0)
      r.error(
        [...at, 'hosts'],
        'sidecar: egress listener must contain at least one host',
        'sidecar.egress.hosts',
      );
    l.hosts.forEach((h, j) => checkNamespacedHost(h, [...at, 'hosts', j], r, 'sidecar.egress.host', false));
    if (l.port) {
      port(l.port.number ?? 0, [...at, 'port', 'number'], r);
      checkProtocol(l.port.protocol, [...at, 'port', 'protocol'], r, 'sidecar.egress.protocol');
    }
    if (l.bind && !isIPAddress(l.bind) && !l.bind.startsWith('unix://'))
      r.error(
        [...at, 'bind'],
        `sidecar: egress bind ${l.bind} is not a valid IP address or unix:// socket`,
        'sidecar.egress.bind',
      );
  });
  if (egress.length > 1 && egress.slice(0, -1).some((l) => !l.port)) {
    r.error(
      ['spec', 'egress'],
      'sidecar: the egress listener with empty port should be the last listener in the list',
      'sidecar.egress.catchAllLast',
    );
  }
  const otp = spec.outboundTrafficPolicy;
  if (otp?.egressProxy) {
    if (otp.mode !== 'ALLOW_ANY')
      r.error(
        ['spec', 'outboundTrafficPolicy', 'egressProxy'],
        'sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode',
        'sidecar.egressProxy',
      );
    validateDestination(otp.egressProxy, ['spec', 'outboundTrafficPolicy', 'egressProxy'], r);
  }
}
