/**
 * DestinationRule rules: every rule of RULES.md §2. Rule ids are `dr.*`.
 */
import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  DestinationRuleSpec,
  LoadBalancerSettings,
  LocalityLoadBalancerSetting,
  OutlierDetection,
  TrafficPolicy,
} from '../api/destinationrule.js';
import type { PathSegment, Report } from './report.js';
import type { RuleContext } from './rules.js';
import {
  checkDuration,
  checkExportTo,
  checkFQDN,
  checkLabelMap,
  checkPort,
  checkWildcardDomain,
  isDNS1123Label,
  isIPAddress,
  isPrime,
  parseGoDuration,
} from './primitives.js';

type Path = readonly PathSegment[];

type LB = LoadBalancerSettings;
type ZoneAwareLbSetting = NonNullable<LoadBalancerSettings['zoneAwareLbSetting']>;

export function validateDestinationRule(spec: DestinationRuleSpec, ctx: RuleContext): void {
  const r = ctx.report;
  const hostErr = checkWildcardDomain(spec.host ?? '');
  if (hostErr) r.error(['spec', 'host'], hostErr, 'dr.host');

  const names = new Set<string>();
  (spec.subsets ?? []).forEach((s, i) => {
    const at = ['spec', 'subsets', i];
    if (s.name === '') r.error([...at, 'name'], 'subset name cannot be empty', 'dr.subset.name');
    else if (!isDNS1123Label(s.name))
      r.error([...at, 'name'], `subset name is invalid: ${s.name}`, 'dr.subset.name');
    if (names.has(s.name))
      r.error([...at, 'name'], `duplicate subset names: ${s.name}`, 'dr.subset.duplicate');
    names.add(s.name);
    for (const msg of checkLabelMap(s.labels ?? {})) r.error([...at, 'labels'], msg, 'labels.invalid');
    if (s.trafficPolicy) validateTrafficPolicy(s.trafficPolicy, [...at, 'trafficPolicy'], ctx);
  });
  if (spec.trafficPolicy) validateTrafficPolicy(spec.trafficPolicy, ['spec', 'trafficPolicy'], ctx);

  checkDRExportTo(spec, ctx);
  if (spec.workloadSelector)
    checkSelector(spec.workloadSelector.matchLabels ?? {}, ['spec', 'workloadSelector', 'matchLabels'], r);
}

function checkDRExportTo(spec: DestinationRuleSpec, ctx: RuleContext): void {
  const r = ctx.report;
  const exportTo = spec.exportTo ?? [];
  const path = ['spec', 'exportTo'];
  if (spec.workloadSelector && exportTo.length > 0) {
    if (exportTo.length > 1)
      r.error(
        path,
        'destination rule with workload selector cannot have multiple entries in exportTo',
        'dr.exportTo.selector',
      );
    else if (exportTo[0] !== '.' && exportTo[0] !== ctx.namespace) {
      r.error(
        path,
        'destination rule with workload selector cannot have exportTo beyond current namespace',
        'dr.exportTo.selector',
      );
    }
  }
  for (const msg of checkExportTo(exportTo, ctx.namespace)) r.error(path, msg, 'dr.exportTo');
}

/** Selector keys and values: no empty key, no wildcards; an empty selector selects everything. */
export function checkSelector(labels: Record<string, string>, path: Path, r: Report): void {
  if (Object.keys(labels).length === 0)
    r.warn(path, 'workload selector specified without labels', 'selector.empty');
  for (const [k, v] of Object.entries(labels)) {
    if (k === '')
      r.error(path, `empty key is not supported in selector: ${JSON.stringify(k)}`, 'selector.emptyKey');
    if (k.includes('*') || v.includes('*'))
      r.error(
        [...path, k],
        `wildcard is not supported in selector: ${JSON.stringify(`${k}=${v}`)}`,
        'selector.wildcard',
      );
  }
}

// ---- traffic policy -----------------------------------------------------------------------

function validateTrafficPolicy(tp: TrafficPolicy, path: Path, ctx: RuleContext): void {
  const r = ctx.report;
  const any = [
    'loadBalancer',
    'connectionPool',
    'outlierDetection',
    'tls',
    'portLevelSettings',
    'tunnel',
    'proxyProtocol',
    'retryBudget',
  ].some((f) => (tp as Record<string, unknown>)[f] !== undefined);
  if (!any) {
    r.error(path, 'traffic policy must have at least one field', 'dr.trafficPolicy.empty');
    return;
  }
  if (tp.tunnel && tp.proxyProtocol) {
    r.error(
      path,
      'tunnel and proxyProtocol must not be set together',
      'dr.trafficPolicy.tunnelAndProxyProtocol',
    );
    return;
  }
  validatePolicyParts(tp, path, ctx);
  (tp.portLevelSettings ?? []).forEach((p, i) => {
    const at = [...path, 'portLevelSettings', i];
    if (!p.port) {
      r.error([...at, 'port'], 'portTrafficPolicy must have valid port', 'dr.portLevel.port');
      return;
    }
    if (!p.loadBalancer && !p.connectionPool && !p.outlierDetection && !p.tls) {
      r.error(at, 'port traffic policy must have at least one field', 'dr.portLevel.empty');
      return;
    }
    validatePolicyParts(p, at, ctx);
  });
  if (tp.tunnel) {
    const at = [...path, 'tunnel'];
    const proto = tp.tunnel.protocol ?? '';
    if (proto !== '' && proto !== 'CONNECT' && proto !== 'POST')
      r.error(
        [...at, 'protocol'],
        `tunnel protocol ${proto} is not supported (CONNECT or POST)`,
        'dr.tunnel.protocol',
      );
    if (!isIPAddress(tp.tunnel.targetHost)) {
      const err = checkFQDN(tp.tunnel.targetHost);
      if (err)
        r.error(
          [...at, 'targetHost'],
          `tunnel target host must be a valid FQDN or an IP address: ${err}`,
          'dr.tunnel.targetHost',
        );
    }
    const portErr = checkPort(tp.tunnel.targetPort);
    if (portErr) r.error([...at, 'targetPort'], portErr, 'dr.tunnel.targetPort');
  }
}

interface PolicyParts {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
}

function validatePolicyParts(p: PolicyParts, path: Path, ctx: RuleContext): void {
  if (p.loadBalancer)
    validateLoadBalancer(
      p.loadBalancer as LB,
      p.outlierDetection !== undefined,
      [...path, 'loadBalancer'],
      ctx.report,
    );
  if (p.connectionPool) validateConnectionPool(p.connectionPool, [...path, 'connectionPool'], ctx.report);
  if (p.outlierDetection)
    validateOutlierDetection(p.outlierDetection, [...path, 'outlierDetection'], ctx.report);
  if (p.tls) validateClientTLS(p.tls, [...path, 'tls'], ctx);
}

// ---- load balancer ------------------------------------------------------------------------

const MAGLEV_MAX = 5000011;
const TOPOLOGY_LABELS = new Set([
  'topology.kubernetes.io/region',
  'topology.kubernetes.io/zone',
  'topology.istio.io/subzone',
]);

function validateLoadBalancer(lb: LB, hasOutlier: boolean, path: Path, r: Report): void {
  const ch = lb.consistentHash;
  if (ch) {
    const at = [...path, 'consistentHash'];
    if (ch.httpCookie) {
      if (!ch.httpCookie.name)
        r.error([...at, 'httpCookie', 'name'], 'name required for HttpCookie', 'dr.lb.cookieName');
      const seen = new Set<string>();
      (ch.httpCookie.attributes ?? []).forEach((a, i) => {
        if (a.name === '')
          r.error(
            [...at, 'httpCookie', 'attributes', i, 'name'],
            'cookie attribute name cannot be empty',
            'dr.lb.cookieAttribute',
          );
        else if (seen.has(a.name))
          r.error(
            [...at, 'httpCookie', 'attributes', i, 'name'],
            `duplicate cookie attribute name: ${a.name}`,
            'dr.lb.cookieAttribute',
          );
        seen.add(a.name);
      });
    }
    if (ch.minimumRingSize !== undefined) {
      r.warn(
        [...at, 'minimumRingSize'],
        "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead",
        'dr.lb.minimumRingSizeDeprecated',
      );
      if (ch.ringHash || ch.maglev)
        r.error(
          at,
          'only one of MinimumRingSize or Maglev/Ringhash can be specified',
          'dr.lb.ringSizeConflict',
        );
    }
    if (ch.maglev) {
      const size = ch.maglev.tableSize ?? 0;
      const at2 = [...at, 'maglev', 'tableSize'];
      if (size === 0) r.error(at2, 'tableSize must be set for maglev', 'dr.lb.maglev');
      else if (size >= MAGLEV_MAX)
        r.error(at2, `tableSize must be less than ${MAGLEV_MAX} for maglev`, 'dr.lb.maglev');
      else if (!isPrime(size)) r.error(at2, 'tableSize must be a prime number for maglev', 'dr.lb.maglev');
    }
  }
  if (lb.localityLbSetting && lb.zoneAwareLbSetting) {
    r.error(
      path,
      'localityLbSetting and zoneAwareLbSetting cannot both be set',
      'dr.lb.localityAndZoneAware',
    );
  }
  if (lb.localityLbSetting)
    validateLocalityLb(lb.localityLbSetting, hasOutlier, [...path, 'localityLbSetting'], r);
  if (lb.zoneAwareLbSetting)
    validateZoneAware(lb.zoneAwareLbSetting, hasOutlier, [...path, 'zoneAwareLbSetting'], r);
  if (lb.warmup) {
    const at = [...path, 'warmup'];
    if (!lb.warmup.duration) r.error([...at, 'duration'], 'duration is required', 'dr.lb.warmup.duration');
    else duration(lb.warmup.duration, [...at, 'duration'], r, 'dr.lb.warmup.duration');
    const min = lb.warmup.minimumPercent;
    if (min !== undefined && min !== null && min > 100)
      r.error(
        [...at, 'minimumPercent'],
        'minimumPercent value should be less than or equal to 100',
        'dr.lb.warmup.minimumPercent',
      );
    const aggr = lb.warmup.aggression;
    if (aggr !== undefined && aggr !== null && aggr <= 0)
      r.error([...at, 'aggression'], 'aggression should be greater than 0', 'dr.lb.warmup.aggression');
  }
  if (lb.warmupDurationSecs !== undefined)
    duration(lb.warmupDurationSecs, [...path, 'warmupDurationSecs'], r, 'dr.lb.warmup.duration');
}

function validateLocalityLb(
  l: LocalityLoadBalancerSetting,
  hasOutlier: boolean,
  path: Path,
  r: Report,
): void {
  const distribute = l.distribute ?? [];
  const failover = l.failover ?? [];
  const priority = l.failoverPriority ?? [];
  if (distribute.length > 0 && failover.length > 0) {
    r.error(
      path,
      "can not simultaneously specify 'distribute' and 'failover'",
      'dr.locality.distributeAndFailover',
    );
    return;
  }
  if (failover.length > 0 && priority.some((p) => TOPOLOGY_LABELS.has(p))) {
    r.error(
      [...path, 'failoverPriority'],
      'failoverPriority can not contain region/zone/subzone topology labels when failover is set',
      'dr.locality.failoverPriority',
    );
  }
  const froms = new Set<string>();
  distribute.forEach((d, i) => {
    const at = [...path, 'distribute', i];
    const from = d.from ?? '';
    const fromErr = checkLocality(from);
    if (fromErr) r.error([...at, 'from'], fromErr, 'dr.locality.string');
    if ([...froms].some((f) => localitiesOverlap(f, from)))
      r.error(
        [...at, 'from'],
        `locality ${JSON.stringify(from)} overlaps with another 'from' locality`,
        'dr.locality.overlap',
      );
    froms.add(from);
    let total = 0;
    const tos: string[] = [];
    for (const [to, weight] of Object.entries(d.to ?? {})) {
      const toErr = checkLocality(to);
      if (toErr) r.error([...at, 'to', to], toErr, 'dr.locality.string');
      if (tos.some((t) => localitiesOverlap(t, to)))
        r.error(
          [...at, 'to', to],
          `locality ${JSON.stringify(to)} overlaps with another 'to' locality`,
          'dr.locality.overlap',
        );
      tos.push(to);
      if (weight < 1 || weight > 100)
        r.error([...at, 'to', to], 'locality weight must be in range [1, 100]', 'dr.locality.weight');
      total += weight;
    }
    if (total !== 100)
      r.error([...at, 'to'], `total locality weight ${total} != 100`, 'dr.locality.weightTotal');
  });
  checkFailover(failover, [...path, 'failover'], r);
  if ((failover.length > 0 || priority.length > 0) && !hasOutlier) {
    r.warn(
      path,
      'outlier detection policy must be provided for failover',
      'dr.locality.failoverNeedsOutlier',
    );
  }
}

function validateZoneAware(z: ZoneAwareLbSetting, hasOutlier: boolean, path: Path, r: Report): void {
  const priority = z.failoverPriority ?? [];
  priority.forEach((p, i) => {
    if (TOPOLOGY_LABELS.has(p))
      r.error(
        [...path, 'failoverPriority', i],
        `failoverPriority can not contain the topology label ${p}`,
        'dr.zoneAware.failoverPriority',
      );
  });
  checkFailover(z.failover ?? [], [...path, 'failover'], r);
  if (((z.failover ?? []).length > 0 || priority.length > 0) && !hasOutlier) {
    r.warn(
      path,
      'outlier detection policy must be provided for failover',
      'dr.locality.failoverNeedsOutlier',
    );
  }
}

function checkFailover(failover: { from?: string; to?: string }[], path: Path, r: Report): void {
  failover.forEach((f, i) => {
    const from = f.from ?? '';
    const to = f.to ?? '';
    const at = [...path, i];
    if (from === to)
      r.error(at, 'locality lb failover settings must specify different regions', 'dr.locality.failover');
    if (from.includes('/') || to.includes('/'))
      r.error(at, 'locality lb failover only specify region', 'dr.locality.failover');
    if (from.includes('*') || to.includes('*'))
      r.error(at, "locality lb failover region should not contain '*' wildcard", 'dr.locality.failover');
  });
}

/** `region/zone/subzone`, optionally ending in `*`; at most one `*`, no empty segment. */
function checkLocality(locality: string): string | undefined {
  if (locality === '') return 'empty locality not allowed';
  const stars = locality.split('*').length - 1;
  if (stars > 1 || (stars === 1 && !locality.endsWith('*')))
    return `locality ${JSON.stringify(locality)} is invalid: wildcard '*' may appear only once, at the end`;
  if (locality.split('/').some((seg) => seg === ''))
    return `locality ${JSON.stringify(locality)} is invalid: empty region, zone or subzone`;
  return undefined;
}

function localitiesOverlap(a: string, b: string): boolean {
  const strip = (s: string): string => (s.endsWith('*') ? s.slice(0, -1) : s);
  if (a === b) return true;
  if (a.endsWith('*') && b.startsWith(strip(a))) return true;
  return b.endsWith('*') && a.startsWith(strip(b));
}

// ---- connection pool, outlier detection ---------------------------------------------------

function validateConnectionPool(cp: ConnectionPoolSettings, path: Path, r: Report): void {
  if (!cp.http && !cp.tcp) {
    r.error(path, 'connection pool must have at least one field', 'dr.connectionPool.empty');
    return;
  }
  const h = cp.http;
  if (h) {
    const at = [...path, 'http'];
    for (const f of [
      'http1MaxPendingRequests',
      'http2MaxRequests',
      'maxRequestsPerConnection',
      'maxRetries',
      'maxConcurrentStreams',
    ] as const) {
      const v = h[f];
      if (v !== undefined && v < 0)
        r.error([...at, f], `${f} must be non-negative`, 'dr.connectionPool.negative');
    }
    if (h.idleTimeout !== undefined)
      duration(h.idleTimeout, [...at, 'idleTimeout'], r, 'dr.connectionPool.duration');
    if (h.h2UpgradePolicy === 'UPGRADE' && h.useClientProtocol) {
      r.error(
        at,
        'use client protocol must not be true when H2UpgradePolicy is UPGRADE',
        'dr.connectionPool.h2Upgrade',
      );
    }
    const ka = h.http2KeepAlive;
    if (ka) {
      if (ka.interval === undefined)
        r.error(
          [...at, 'http2KeepAlive', 'interval'],
          'http2 keepalive interval is required',
          'dr.connectionPool.keepalive',
        );
      else duration(ka.interval, [...at, 'http2KeepAlive', 'interval'], r, 'dr.connectionPool.duration');
      if (ka.timeout === undefined)
        r.error(
          [...at, 'http2KeepAlive', 'timeout'],
          'http2 keepalive timeout is required',
          'dr.connectionPool.keepalive',
        );
      else duration(ka.timeout, [...at, 'http2KeepAlive', 'timeout'], r, 'dr.connectionPool.duration');
    }
  }
  const t = cp.tcp;
  if (t) {
    const at = [...path, 'tcp'];
    if (t.maxConnections !== undefined && t.maxConnections < 0)
      r.error(
        [...at, 'maxConnections'],
        'max connections must be non-negative',
        'dr.connectionPool.negative',
      );
    if (t.connectTimeout !== undefined)
      duration(t.connectTimeout, [...at, 'connectTimeout'], r, 'dr.connectionPool.duration');
    if (t.maxConnectionDuration !== undefined)
      duration(t.maxConnectionDuration, [...at, 'maxConnectionDuration'], r, 'dr.connectionPool.duration');
    if (t.tcpKeepalive?.time !== undefined)
      duration(t.tcpKeepalive.time, [...at, 'tcpKeepalive', 'time'], r, 'dr.connectionPool.duration');
    if (t.tcpKeepalive?.interval !== undefined)
      duration(t.tcpKeepalive.interval, [...at, 'tcpKeepalive', 'interval'], r, 'dr.connectionPool.duration');
    // 0 (anything under 1ms) disables the idle timeout, so only longer values are checked.
    if (t.idleTimeout !== undefined && (parseGoDuration(t.idleTimeout) ?? Infinity) >= 1e6)
      duration(t.idleTimeout, [...at, 'idleTimeout'], r, 'dr.connectionPool.duration');
  }
}

function validateOutlierDetection(od: OutlierDetection, path: Path, r: Report): void {
  if (od.baseEjectionTime !== undefined)
    duration(od.baseEjectionTime, [...path, 'baseEjectionTime'], r, 'dr.outlier.duration');
  if (od.interval !== undefined) duration(od.interval, [...path, 'interval'], r, 'dr.outlier.duration');
  for (const f of ['maxEjectionPercent', 'minHealthPercent'] as const) {
    const v = od[f];
    if (v !== undefined && (v < 0 || v > 100))
      r.error([...path, f], `percentage ${v} is not in range 0..100`, 'dr.outlier.percent');
  }
  if (od.consecutiveErrors !== undefined) {
    r.warn(
      [...path, 'consecutiveErrors'],
      'outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead',
      'dr.outlier.consecutiveErrorsDeprecated',
    );
  }
  if ((od.consecutiveLocalOriginFailures ?? 0) > 0 && !od.splitExternalLocalOriginErrors) {
    r.error(
      [...path, 'consecutiveLocalOriginFailures'],
      'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false',
      'dr.outlier.localOrigin',
    );
  }
}

// ---- client TLS ---------------------------------------------------------------------------

function validateClientTLS(tls: ClientTLSSettings, path: Path, ctx: RuleContext): void {
  const r = ctx.report;
  const cred = tls.credentialName ?? '';
  if (cred.startsWith('configmap://')) {
    const rest = cred.slice('configmap://'.length);
    const parts = rest.split('/');
    const ns = parts.length === 2 ? parts[0] : ctx.namespace;
    const name = parts.length === 2 ? parts[1] : parts[0];
    if (parts.length > 2 || !name)
      r.error(
        [...path, 'credentialName'],
        `invalid credentialName ${JSON.stringify(cred)}: expected configmap://<name>`,
        'dr.tls.configmap',
      );
    else if (ns !== ctx.namespace)
      r.error(
        [...path, 'credentialName'],
        `credential ${JSON.stringify(cred)} must be in the same namespace as the DestinationRule (${ctx.namespace})`,
        'dr.tls.configmap',
      );
  }
  const mode = tls.mode;
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL') return;
  const set = (v: string | undefined): boolean => v !== undefined && v !== '';
  const sans = (tls.subjectAltNames ?? []).length > 0;
  if (tls.insecureSkipVerify === true) {
    if (mode === 'SIMPLE' && (set(tls.caCertificates) || set(cred) || sans)) {
      r.error(
        path,
        'cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true',
        'dr.tls.insecureSkipVerify',
      );
    }
    if (mode === 'MUTUAL' && (set(tls.caCertificates) || sans)) {
      r.error(
        path,
        'cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true',
        'dr.tls.insecureSkipVerify',
      );
    }
  }
  if (set(cred)) {
    if (set(tls.clientCertificate) || set(tls.caCertificates) || set(tls.privateKey) || set(tls.caCrl)) {
      r.error(
        path,
        'cannot specify client certificates or CA certificate or CA CRL If credentialName is set',
        'dr.tls.credentialNameConflict',
      );
    }
    return;
  }
  if (mode === 'MUTUAL') {
    if (!set(tls.clientCertificate))
      r.error(
        [...path, 'clientCertificate'],
        'client certificate required for mutual tls',
        'dr.tls.mutualCert',
      );
    if (!set(tls.privateKey))
      r.error([...path, 'privateKey'], 'private key required for mutual tls', 'dr.tls.mutualKey');
  }
}

function duration(value: string, path: Path, r: Report, rule: string): void {
  const err = checkDuration(value);
  if (err) r.error(path, err, rule);
}
