/**
 * Istio's rules for the kinds weft serves so that Istio YAML applies but does not act on yet
 * (pkg/api/registry.ts `servedOnlyKinds`): WorkloadEntry, WorkloadGroup, Telemetry, ProxyConfig,
 * EnvoyFilter, WasmPlugin. Rule ids `we.*`, `wg.*`, `telemetry.*`, `proxyconfig.*`, `ef.*`,
 * `wasm.*`. They follow istio/istio pkg/config/validation (validation.go, envoyfilter/) and the
 * CEL rules of Istio's CRDs, which weft's CRDs leave to this webhook so that every refusal reads
 * like weft's other messages. What Istio checks and weft cannot: an EnvoyFilter patch value
 * against Envoy's protobuf types (weft has no Envoy; the whole kind is warned about anyway).
 */
import type { PolicyTargetReference, WorkloadSelector } from '../api/common.js';
import type { WorkloadEntrySpec } from '../api/serviceentry.js';
import type { ReadinessProbe, WorkloadGroupSpec } from '../api/workloadentry.js';
import type { TelemetrySpec } from '../api/telemetry.js';
import type { IstioProxyConfigSpec } from '../api/proxyconfig.js';
import type { EnvoyFilterSpec } from '../api/envoyfilter.js';
import type { WasmPluginSpec } from '../api/wasmplugin.js';
import type { PathSegment, Report } from './report.js';
import type { RuleContext } from './rules.js';
import { checkSelector } from './destinationrule.js';
import {
  checkDuration,
  checkFQDN,
  checkLabelMap,
  checkPort,
  checkRegex,
  isDNS1123Label,
  isIPAddress,
} from './primitives.js';

type Path = readonly PathSegment[];

const UNIX = 'unix://';

// ---- shared ---------------------------------------------------------------------------------

/** Istio's ValidateUnixAddress, on what follows `unix://`. */
function checkUnixAddress(addr: string): string | undefined {
  if (addr === '') return 'unix address must not be empty';
  if (addr.startsWith('@')) return undefined;
  if (!addr.startsWith('/') || addr.endsWith('/')) return `${addr} is not an absolute path to a file`;
  return undefined;
}

/** Kinds a policy's targetRef may name (Istio's allowedTargetRefs; the version is not checked). */
const TARGET_KINDS = new Set([
  '/Service',
  'networking.istio.io/ServiceEntry',
  'gateway.networking.k8s.io/Gateway',
  'gateway.networking.k8s.io/GatewayClass',
]);

function checkTargetRef(ref: PolicyTargetReference, path: Path, r: Report): void {
  if (ref.name === '') r.error([...path, 'name'], 'targetRef name must be set', 'targetRef.name');
  if (ref.namespace !== undefined && ref.namespace !== '')
    r.error(
      [...path, 'namespace'],
      'targetRef namespace must not be set; cross namespace referencing is not supported',
      'targetRef.namespace',
    );
  const group = ref.group === 'core' ? '' : (ref.group ?? '');
  if (!TARGET_KINDS.has(`${group}/${ref.kind}`))
    r.error(
      path,
      `targetRef must be to one of Service, ServiceEntry (networking.istio.io), Gateway or GatewayClass (gateway.networking.k8s.io) but was ${group}/${ref.kind}`,
      'targetRef.kind',
    );
}

/** selector / targetRef / targetRefs: the schema's oneOf allows one; each is checked as Istio does. */
function checkPolicyTarget(
  spec: {
    selector?: WorkloadSelector;
    targetRef?: PolicyTargetReference;
    targetRefs?: PolicyTargetReference[];
  },
  r: Report,
): void {
  if (spec.selector) checkSelector(spec.selector.matchLabels ?? {}, ['spec', 'selector', 'matchLabels'], r);
  if (spec.targetRef) checkTargetRef(spec.targetRef, ['spec', 'targetRef'], r);
  (spec.targetRefs ?? []).forEach((t, i) => checkTargetRef(t, ['spec', 'targetRefs', i], r));
}

function port(n: number, path: Path, r: Report, rule: string): void {
  const err = checkPort(n);
  if (err) r.error(path, err, rule);
}

// ---- WorkloadEntry --------------------------------------------------------------------------

/** Istio's validateWorkloadEntry (no ServiceEntry to check the port names against; FQDNs allowed). */
export function validateWorkloadEntry(spec: WorkloadEntrySpec, ctx: RuleContext): void {
  const r = ctx.report;
  const at = ['spec'];
  const addr = spec.address ?? '';
  if (addr === '') {
    if ((spec.network ?? '') === '') {
      r.error(
        [...at, 'address'],
        'address is required (or a network, for a workload reached through its gateway)',
        'we.address.required',
      );
      return;
    }
    r.warn(
      [...at, 'address'],
      `address is unset with network ${JSON.stringify(spec.network)}`,
      'we.address.network',
    );
  }
  checkSocketAndPorts(spec, at, r);
  if (addr !== '' && !addr.startsWith(UNIX) && !isIPAddress(addr) && checkFQDN(addr) !== undefined)
    r.error(
      [...at, 'address'],
      `endpoint address ${JSON.stringify(addr)} is not a valid FQDN or an IP address`,
      'we.address.invalid',
    );
  for (const msg of checkLabelMap(spec.labels ?? {})) r.error([...at, 'labels'], msg, 'labels.invalid');
}

// ---- WorkloadGroup --------------------------------------------------------------------------

const PROBE_HEADER = /^[-A-Za-z0-9]+$/;

export function validateWorkloadGroup(spec: WorkloadGroupSpec, ctx: RuleContext): void {
  const r = ctx.report;
  // Istio does not run the WorkloadEntry rules on the template (address and ports are filled in
  // when a workload registers); the CRD's CEL rules still apply to it.
  checkSocketAndPorts(spec.template, ['spec', 'template'], r);
  for (const msg of checkLabelMap(spec.metadata?.labels ?? {}))
    r.error(['spec', 'metadata', 'labels'], `invalid labels: ${msg}`, 'wg.metadata.labels');
  if (spec.probe) checkProbe(spec.probe, ['spec', 'probe'], r);
}

/** A `unix://` address is an absolute or abstract socket without ports; port names and numbers are valid. */
function checkSocketAndPorts(spec: WorkloadEntrySpec, at: Path, r: Report): void {
  const addr = spec.address ?? '';
  if (addr.startsWith(UNIX)) {
    const err = checkUnixAddress(addr.slice(UNIX.length));
    if (err) r.error([...at, 'address'], err, 'we.address.unix');
    if (spec.ports !== undefined)
      r.error([...at, 'ports'], `unix endpoint ${addr} must not include ports`, 'we.address.unixPorts');
  }
  for (const [name, n] of Object.entries(spec.ports ?? {})) {
    if (!isDNS1123Label(name)) r.error([...at, 'ports', name], `invalid port name: ${name}`, 'we.ports.name');
    port(n, [...at, 'ports', name], r, 'we.ports.number');
  }
}

function checkProbe(p: ReadinessProbe, at: Path, r: Report): void {
  if (p.httpGet) {
    port(p.httpGet.port, [...at, 'httpGet', 'port'], r, 'wg.probe.port');
    const scheme = p.httpGet.scheme ?? '';
    if (scheme !== '' && scheme !== 'HTTP' && scheme !== 'HTTPS')
      r.error(
        [...at, 'httpGet', 'scheme'],
        'httpGet.scheme must be one of "HTTPS", "HTTP"',
        'wg.probe.scheme',
      );
    (p.httpGet.httpHeaders ?? []).forEach((h, i) => {
      const name = h.name ?? '';
      const msg =
        name === ''
          ? 'header name cannot be empty'
          : PROBE_HEADER.test(name)
            ? undefined
            : `header name ${name} is not a valid header name`;
      if (msg) r.error([...at, 'httpGet', 'httpHeaders', i, 'name'], msg, 'wg.probe.header');
    });
  } else if (p.tcpSocket) {
    port(p.tcpSocket.port, [...at, 'tcpSocket', 'port'], r, 'wg.probe.port');
  } else if (p.exec) {
    if (p.exec.command.length === 0)
      r.error([...at, 'exec', 'command'], 'exec.command is required', 'wg.probe.exec');
  } else if (p.grpc) {
    // Istio's validateReadinessProbe has no case for grpc, so istiod refuses it.
    r.error(
      [...at, 'grpc'],
      'grpc health checks are not supported for WorkloadGroup probes; use httpGet, tcpSocket or exec',
      'wg.probe.method',
    );
  } else {
    r.error(at, 'probe needs a health check method: httpGet, tcpSocket or exec', 'wg.probe.method');
  }
}

// ---- Telemetry ------------------------------------------------------------------------------

export function validateTelemetry(spec: TelemetrySpec, ctx: RuleContext): void {
  const r = ctx.report;
  checkPolicyTarget(spec, r);
  if ((spec.tracing ?? []).length > 1)
    r.warn(['spec', 'tracing'], 'multiple tracing is not currently supported', 'telemetry.tracing.multiple');
  (spec.tracing ?? []).forEach((t, i) => {
    const at = ['spec', 'tracing', i];
    if ((t.providers ?? []).length > 1)
      r.warn(
        [...at, 'providers'],
        'multiple providers is not currently supported',
        'telemetry.providers.multiple',
      );
    for (const [name, tag] of Object.entries(t.customTags ?? {})) {
      if (name === '') r.error([...at, 'customTags'], 'tag name may not be empty', 'telemetry.tag.name');
      if (!tag.literal && !tag.environment && !tag.header && !tag.formatter)
        r.error(
          [...at, 'customTags', name],
          `tag '${name}' may not have an empty value`,
          'telemetry.tag.value',
        );
    }
  });
  (spec.metrics ?? []).forEach((m, i) => {
    const at = ['spec', 'metrics', i];
    if (m.reportingInterval !== undefined) {
      const err = checkDuration(m.reportingInterval);
      if (err)
        r.error(
          [...at, 'reportingInterval'],
          `must be a valid duration greater than 1ms: ${err}`,
          'telemetry.reportingInterval',
        );
    }
    (m.overrides ?? []).forEach((o, j) => {
      for (const [tag, op] of Object.entries(o.tagOverrides ?? {})) {
        const tat = [...at, 'overrides', j, 'tagOverrides', tag];
        if (tag === '') r.warn(tat, 'tagOverrides.name may not be empty', 'telemetry.tagOverride.name');
        const operation = op.operation ?? 'UPSERT';
        if (operation === 'UPSERT' && (op.value ?? '') === '')
          r.error(
            [...tat, 'value'],
            'value must be set when operation is UPSERT',
            'telemetry.tagOverride.value',
          );
        if (operation === 'REMOVE' && op.value !== undefined)
          r.error(
            [...tat, 'value'],
            'value must not be set when operation is REMOVE',
            'telemetry.tagOverride.value',
          );
      }
    });
  });
}

// ---- ProxyConfig ----------------------------------------------------------------------------

export function validateIstioProxyConfig(spec: IstioProxyConfigSpec, ctx: RuleContext): void {
  const r = ctx.report;
  if (spec.selector) checkSelector(spec.selector.matchLabels ?? {}, ['spec', 'selector', 'matchLabels'], r);
  if (typeof spec.concurrency === 'number' && spec.concurrency < 0)
    r.error(
      ['spec', 'concurrency'],
      'concurrency must be greater than or equal to 0',
      'proxyconfig.concurrency',
    );
}

// ---- EnvoyFilter ----------------------------------------------------------------------------

const LISTENER_CLASS = new Set(['LISTENER', 'FILTER_CHAIN', 'NETWORK_FILTER', 'HTTP_FILTER']);
const ROUTE_CLASS = new Set(['ROUTE_CONFIGURATION', 'VIRTUAL_HOST', 'HTTP_ROUTE']);
const HCM = new Set(['envoy.filters.network.http_connection_manager', 'envoy.http_connection_manager']);

export function validateEnvoyFilter(spec: EnvoyFilterSpec, ctx: RuleContext): void {
  const r = ctx.report;
  if (spec.workloadSelector) {
    const labels = spec.workloadSelector.labels ?? {};
    if (Object.keys(labels).length === 0)
      r.warn(
        ['spec', 'workloadSelector'],
        'Envoy filter: workload selector specified without labels, will be applied to all services in namespace',
        'ef.selector.empty',
      );
    for (const [k, v] of Object.entries(labels)) {
      if (k === '')
        r.error(
          ['spec', 'workloadSelector', 'labels'],
          `empty key is not supported in selector: "=${v}"`,
          'selector.emptyKey',
        );
      if (k.includes('*') || v.includes('*'))
        r.error(
          ['spec', 'workloadSelector', 'labels', k],
          `wildcard is not supported in selector: ${JSON.stringify(`${k}=${v}`)}`,
          'selector.wildcard',
        );
    }
  }
  (spec.targetRefs ?? []).forEach((t, i) => checkTargetRef(t, ['spec', 'targetRefs', i], r));
  (spec.configPatches ?? []).forEach((cp, i) => {
    const at = ['spec', 'configPatches', i];
    const match = (cp.match ?? undefined) as
      | {
          context?: string;
          proxy?: { proxyVersion?: string };
          listener?: { filterChain?: { filter?: { name?: string; subFilter?: { name?: string } } } };
          routeConfiguration?: unknown;
          cluster?: unknown;
          waypoint?: { portNumber?: number };
        }
      | undefined;
    // the CRD's CEL rules
    if (match?.waypoint !== undefined && match.context !== 'WAYPOINT')
      r.error([...at, 'match'], 'only support waypointMatch when context is WAYPOINT', 'ef.waypoint.context');
    if (match?.context === 'WAYPOINT' && match.waypoint === undefined)
      r.error([...at, 'match'], 'only support waypointMatch when context is WAYPOINT', 'ef.waypoint.context');
    if (match?.waypoint?.portNumber !== undefined)
      port(match.waypoint.portNumber, [...at, 'match', 'waypoint', 'portNumber'], r, 'ef.waypoint.port');
    if (match?.context === 'WAYPOINT') return; // Istio does not validate waypoint patches further yet
    if (cp.applyTo === undefined || cp.applyTo === 'INVALID') {
      r.error([...at, 'applyTo'], 'Envoy filter: missing applyTo', 'ef.applyTo');
      return;
    }
    if (!cp.patch) {
      r.error([...at, 'patch'], 'Envoy filter: missing patch', 'ef.patch');
      return;
    }
    if (cp.patch.operation === undefined || cp.patch.operation === 'INVALID') {
      r.error([...at, 'patch', 'operation'], 'Envoy filter: missing patch operation', 'ef.patch.operation');
      return;
    }
    if (cp.patch.operation !== 'REMOVE' && cp.patch.value === undefined) {
      r.error(
        [...at, 'patch', 'value'],
        'Envoy filter: missing patch value for non-remove operation',
        'ef.patch.value',
      );
      return;
    }
    const version = match?.proxy?.proxyVersion ?? '';
    if (version.length > 1024)
      r.warn(
        [...at, 'match', 'proxy', 'proxyVersion'],
        'Envoy filter: proxyVersion match exceeds 1024 characters and will be ignored',
        'ef.proxyVersion.long',
      );
    else if (version !== '') {
      const err = checkRegex(version);
      if (err) {
        r.error(
          [...at, 'match', 'proxy', 'proxyVersion'],
          `Envoy filter: invalid regex for proxy version, ${err}`,
          'ef.proxyVersion',
        );
        return;
      }
    }
    const objectType = match?.listener ?? match?.routeConfiguration ?? match?.cluster;
    if (LISTENER_CLASS.has(cp.applyTo) && objectType !== undefined) {
      if (!match?.listener) {
        r.error(
          [...at, 'match'],
          'Envoy filter: applyTo for listener class objects cannot have non listener match',
          'ef.match.class',
        );
        return;
      }
      const filter = match.listener.filterChain?.filter;
      if (filter) {
        if (cp.applyTo === 'LISTENER' || cp.applyTo === 'FILTER_CHAIN')
          r.warn(
            [...at, 'match', 'listener', 'filterChain', 'filter'],
            `Envoy filter: filter match has no effect when used with ${cp.applyTo}`,
            'ef.filter.noEffect',
          );
        const fat = [...at, 'match', 'listener', 'filterChain', 'filter'];
        if ((filter.name ?? '') === '')
          r.error([...fat, 'name'], 'Envoy filter: filter match has no name to match on', 'ef.filter.name');
        else if (filter.subFilter) {
          if (cp.applyTo !== 'HTTP_FILTER')
            r.error(
              [...fat, 'subFilter'],
              'Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only',
              'ef.subFilter.applyTo',
            );
          else if (!HCM.has(filter.name ?? ''))
            r.error(
              [...fat, 'subFilter'],
              'Envoy filter: subfilter match requires filter match with envoy.filters.network.http_connection_manager',
              'ef.subFilter.hcm',
            );
          else if ((filter.subFilter.name ?? '') === '')
            r.error(
              [...fat, 'subFilter', 'name'],
              'Envoy filter: subfilter match has no name to match on',
              'ef.subFilter.name',
            );
        }
      }
    } else if (ROUTE_CLASS.has(cp.applyTo) && objectType !== undefined && !match?.routeConfiguration) {
      r.error(
        [...at, 'match'],
        'Envoy filter: applyTo for http route class objects cannot have non route configuration match',
        'ef.match.class',
      );
    } else if (cp.applyTo === 'CLUSTER' && objectType !== undefined && !match?.cluster) {
      r.error(
        [...at, 'match'],
        'Envoy filter: applyTo for cluster class objects cannot have non cluster match',
        'ef.match.class',
      );
    }
  });
}

// ---- WasmPlugin -----------------------------------------------------------------------------

const WASM_SCHEMES = new Set(['', 'file', 'http', 'https', 'oci']);

/** Istio's strictParseURL: as a URL, else with `http://` in front; the scheme must be one Istio fetches. */
function checkWasmUrl(url: string): string | undefined {
  if (url === '') return 'url field needs to be set';
  const parse = (s: string): URL | undefined => {
    try {
      return new URL(s);
    } catch {
      return undefined;
    }
  };
  const direct = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(url) ? parse(url) : undefined;
  const u = direct ?? parse(`http://${url}`);
  if (!u || /\s/.test(url)) return `failed to parse url ${JSON.stringify(url)}`;
  const scheme = u.protocol.replace(/:$/, '');
  if (!WASM_SCHEMES.has(scheme))
    return `url contains unsupported scheme: ${scheme} (use http, https, oci or file)`;
  return undefined;
}

export function validateWasmPlugin(spec: WasmPluginSpec, ctx: RuleContext): void {
  const r = ctx.report;
  checkPolicyTarget(spec, r);
  const urlErr = checkWasmUrl(spec.url);
  if (urlErr) r.error(['spec', 'url'], urlErr, 'wasm.url');
  const names = new Set<string>();
  (spec.vmConfig?.env ?? []).forEach((e, i) => {
    const at = ['spec', 'vmConfig', 'env', i];
    if (names.has(e.name))
      r.error([...at, 'name'], `duplicate env ${JSON.stringify(e.name)}`, 'wasm.env.duplicate');
    names.add(e.name);
    if ((e.valueFrom ?? 'INLINE') !== 'INLINE' && e.value !== undefined && e.value !== '')
      r.error([...at, 'value'], 'value may only be set when valueFrom is INLINE', 'wasm.env.value');
  });
}
