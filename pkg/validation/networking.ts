/**
 * The main rules Istio enforces for Gateway, ServiceEntry and Sidecar (rule ids `gw.*`, `se.*`,
 * `sidecar.*`). Not exhaustive like VirtualService/DestinationRule; docs/validation.md lists
 * what is covered.
 */
import type { GatewaySpec, ServerTLSSettings } from '../api/gateway.js';
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

export function validateGateway(spec: GatewaySpec, ctx: RuleContext): void {
  const r = ctx.report;
  const servers = spec.servers ?? [];
  if (servers.length === 0)
    r.error(['spec', 'servers'], 'gateway must have at least one server', 'gw.servers.required');
  const portNames = new Map<string, number>();
  servers.forEach((s, i) => {
    const at = ['spec', 'servers', i];
    if (s.hosts.length === 0)
      r.error([...at, 'hosts'], 'server config must contain at least one host', 'gw.server.hosts');
    s.hosts.forEach((h, j) => checkNamespacedHost(h, [...at, 'hosts', j], r, 'gw.server.host', true));
    port(s.port.number, [...at, 'port', 'number'], r);
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
    if (s.bind !== undefined && s.bind !== '' && !isIPAddress(s.bind) && !s.bind.startsWith('unix://')) {
      r.error([...at, 'bind'], `${s.bind} is not a valid IP address or unix:// socket`, 'gw.server.bind');
    }
    if (s.tls) checkServerTLS(s.tls, [...at, 'tls'], r);
  });
  for (const msg of checkLabelMap(spec.selector ?? {})) r.error(['spec', 'selector'], msg, 'labels.invalid');
}

function checkServerTLS(tls: ServerTLSSettings, path: Path, r: Report): void {
  const mode = tls.mode ?? 'PASSTHROUGH';
  if (mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL') {
    const hasCred =
      (tls.credentialName ?? '') !== '' ||
      (tls.credentialNames ?? []).length > 0 ||
      (tls.tlsCertificates ?? []).length > 0;
    if (!hasCred) {
      if (!tls.serverCertificate)
        r.error(
          [...path, 'serverCertificate'],
          `${mode} TLS requires a server certificate (serverCertificate or credentialName)`,
          'gw.tls.cert',
        );
      if (!tls.privateKey)
        r.error(
          [...path, 'privateKey'],
          `${mode} TLS requires a private key (privateKey or credentialName)`,
          'gw.tls.key',
        );
      if (mode !== 'SIMPLE' && !tls.caCertificates)
        r.error(
          [...path, 'caCertificates'],
          `${mode} TLS requires caCertificates to verify clients (or credentialName)`,
          'gw.tls.ca',
        );
    }
  }
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
  const resolution = spec.resolution ?? 'NONE';
  if (resolution === 'STATIC' && endpoints.length === 0 && !spec.workloadSelector) {
    r.error(
      ['spec', 'endpoints'],
      'endpoints must be provided if service entry resolution mode is STATIC',
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
  endpoints.forEach((e, i) => {
    const at = ['spec', 'endpoints', i];
    const addr = e.address ?? '';
    if (resolution === 'STATIC' && addr !== '' && !isIPAddress(addr) && !addr.startsWith('unix://')) {
      r.error(
        [...at, 'address'],
        `endpoint address ${JSON.stringify(addr)} is not a valid IP address (STATIC resolution)`,
        'se.endpoint.address',
      );
    } else if (addr !== '' && !isIPAddress(addr) && !addr.startsWith('unix://')) {
      // Istio: a DNS endpoint is an IP or an FQDN (no wildcard: there is nothing to resolve)
      const dns = resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN';
      const err = dns ? checkFQDN(addr) : checkWildcardDomain(addr);
      if (err) r.error([...at, 'address'], err, 'se.endpoint.address');
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
    r.error(['spec', 'exportTo'], 'cannot have both public (*) and non-public exportTo values for a resource', 'se.exportTo');
  for (const msg of checkExportTo(exportTo.filter((e) => e !== '~'), ctx.namespace))
    r.error(['spec', 'exportTo'], msg, 'se.exportTo');
}

/** Protocols Istio's protocol.Parse calls HTTP (IsHTTP) or TLS (IsTLS): several hosts can share such a port. */
const HOST_AWARE_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-WEB', 'HTTPS', 'TLS']);
const DYNAMIC_DNS_PROTOCOLS = new Set(['HTTP', 'TLS', 'GRPC', 'HTTP2']);

/** Istio's per-resolution rules (validateServiceEntry's switch, CIDR and multiple-hosts checks). */
function checkResolutionCombos(
  spec: ServiceEntrySpec,
  resolution: NonNullable<ServiceEntrySpec['resolution']>,
  r: RuleContext['report'],
): void {
  const endpoints = spec.endpoints ?? [];
  const ports = spec.ports ?? [];
  if (resolution !== 'NONE' && resolution !== 'STATIC')
    (spec.addresses ?? []).forEach((a, i) => {
      if (a.includes('/'))
        r.error(['spec', 'addresses', i], 'CIDR addresses are allowed only for NONE/STATIC resolution types', 'se.addresses.cidr');
    });
  if (resolution === 'NONE') {
    if (endpoints.length > 0)
      r.error(['spec', 'endpoints'], 'no endpoints should be provided for resolution type none', 'se.none.endpoints');
    if (spec.workloadSelector)
      r.warn(['spec', 'workloadSelector'], 'workloadSelector should not be set when resolution mode is NONE', 'se.none.selector');
  }
  if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1)
    r.error(['spec', 'endpoints'], 'there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN', 'se.dnsrr.endpoints');
  if (resolution === 'DYNAMIC_DNS') {
    spec.hosts.forEach((h, i) => {
      if (!h.startsWith('*'))
        r.error(['spec', 'hosts', i], 'host must be wildcarded for resolution mode DYNAMIC_DNS', 'se.dynamicdns');
    });
    if ((spec.addresses ?? []).length > 0)
      r.error(['spec', 'addresses'], 'addresses cannot be set for resolution type DYNAMIC_DNS', 'se.dynamicdns');
    if (endpoints.length > 0)
      r.error(['spec', 'endpoints'], 'endpoints cannot be set for resolution type DYNAMIC_DNS', 'se.dynamicdns');
    ports.forEach((p, i) => {
      if (!DYNAMIC_DNS_PROTOCOLS.has((p.protocol ?? '').toUpperCase()))
        r.error(
          ['spec', 'ports', i, 'protocol'],
          'only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type DYNAMIC_DNS',
          'se.dynamicdns',
        );
    });
  }
  if (resolution !== 'NONE' && spec.hosts.length > 1) {
    const i = ports.findIndex((p) => !HOST_AWARE_PROTOCOLS.has((p.protocol ?? '').toUpperCase()));
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
