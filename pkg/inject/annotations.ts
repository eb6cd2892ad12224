/**
 * The Istio annotations and labels the injector honours, and their parsing. Every value is
 * checked here so a typo in a pod template fails pod creation with a message naming the
 * annotation, instead of producing a proxy that silently ignores it (what Istio also does:
 * its injector rejects invalid annotations).
 */
import { WeftError } from '../errors/index.js';
import { parseQuantity } from './quantity.js';
import { parseDurationMs } from '../translate/duration.js';

export const ANNOTATION = {
  inject: 'sidecar.istio.io/inject',
  status: 'sidecar.istio.io/status',
  proxyImage: 'sidecar.istio.io/proxyImage',
  proxyCPU: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCPULimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  nativeSidecar: 'sidecar.istio.io/nativeSidecar',
  rewriteAppHTTPProbers: 'sidecar.istio.io/rewriteAppHTTPProbers',
  proxyConfig: 'proxy.istio.io/config',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
  defaultContainer: 'kubectl.kubernetes.io/default-container',
  defaultLogsContainer: 'kubectl.kubernetes.io/default-logs-container',
  /**
   * weft's own: how long the sidecar waits for weftd's answer to a global rate-limit check before
   * applying the limit's failure mode (a Go duration, 1ms-10s; default 50ms, ADR 0017).
   */
  rateLimitCheckTimeout: 'ratelimit.weft.dev/check-timeout',
} as const;

export const NAMESPACE_LABELS = ['istio-injection', 'weft.dev/inject'] as const;

type Annotations = Readonly<Record<string, string>>;

function invalid(key: string, value: string, why: string): WeftError {
  return new WeftError(
    'WEFT_INJECTION_ANNOTATION_INVALID',
    `metadata.annotations[${key}]: ${JSON.stringify(value)} ${why}`,
    { details: { annotation: key, value } },
  );
}

/** Istio's boolean spellings (strconv.ParseBool plus y/yes/on/n/no/off), case-insensitive. */
export function parseBool(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (['true', 't', '1', 'y', 'yes', 'on', 'enabled'].includes(v)) return true;
  if (['false', 'f', '0', 'n', 'no', 'off', 'disabled'].includes(v)) return false;
  return undefined;
}

function boolAnnotation(ann: Annotations, key: string): boolean | undefined {
  const raw = ann[key];
  if (raw === undefined) return undefined;
  const b = parseBool(raw);
  if (b === undefined) throw invalid(key, raw, 'is not a boolean (use "true" or "false")');
  return b;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isCidr(s: string): boolean {
  const [ip, bits, extra] = s.split('/');
  if (ip === undefined || bits === undefined || extra !== undefined || !/^\d{1,3}$/.test(bits)) return false;
  if (IPV4.test(ip)) return Number(bits) <= 32;
  // IPv6: hex groups with at most one '::'; the proxy init re-parses it, we only reject obvious garbage.
  return /^[0-9a-fA-F:]+$/.test(ip) && ip.includes(':') && ip.split('::').length <= 2 && Number(bits) <= 128;
}

/** A comma list of CIDRs, or `*` (all). Empty means "none". Returned normalised (no spaces). */
export function parseCidrList(ann: Annotations, key: string): string | undefined {
  const raw = ann[key];
  if (raw === undefined) return undefined;
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 1 && items[0] === '*') return '*';
  for (const item of items) {
    if (!isCidr(item))
      throw invalid(
        key,
        raw,
        `has ${JSON.stringify(item)}, which is not a CIDR like 10.0.0.0/8 (or use "*")`,
      );
  }
  return items.join(',');
}

/** A comma list of ports 1–65535, or `*` when `allowStar`. */
export function parsePortList(ann: Annotations, key: string, allowStar: boolean): string | undefined {
  const raw = ann[key];
  if (raw === undefined) return undefined;
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (allowStar && items.length === 1 && items[0] === '*') return '*';
  for (const item of items) {
    const n = /^\d{1,5}$/.test(item) ? Number(item) : NaN;
    if (!(n >= 1 && n <= 65535))
      throw invalid(key, raw, `has ${JSON.stringify(item)}, which is not a port number 1-65535`);
  }
  return items.join(',');
}

function quantityAnnotation(ann: Annotations, key: string): string | undefined {
  const raw = ann[key];
  if (raw === undefined) return undefined;
  const v = raw.trim();
  if (parseQuantity(v) === undefined)
    throw invalid(key, raw, 'is not a Kubernetes quantity (e.g. 100m, 0.5, 128Mi)');
  return v;
}

/** The per-pod overrides the injector reads, already validated. */
export interface PodOverrides {
  proxyImage?: string;
  requests: { cpu?: string; memory?: string };
  limits: { cpu?: string; memory?: string };
  nativeSidecar?: boolean;
  rewriteAppProbes?: boolean;
  holdApplicationUntilProxyStarts?: boolean;
  includeOutboundIPRanges?: string;
  excludeOutboundIPRanges?: string;
  includeInboundPorts?: string;
  excludeInboundPorts?: string;
  excludeOutboundPorts?: string;
  /** `--ratelimit-timeout-ms` of the sidecar. */
  rateLimitCheckTimeoutMs?: number;
}

/** `proxy.istio.io/config` is a ProxyConfig in YAML or JSON; we honour holdApplicationUntilProxyStarts from it. */
function holdFromProxyConfig(ann: Annotations): boolean | undefined {
  const raw = ann[ANNOTATION.proxyConfig];
  if (raw === undefined) return undefined;
  const m = /(^|[\s{,"])holdApplicationUntilProxyStarts"?\s*:\s*"?(\w+)"?/.exec(raw);
  if (!m?.[2]) return undefined;
  const b = parseBool(m[2]);
  if (b === undefined)
    throw invalid(ANNOTATION.proxyConfig, raw, 'sets holdApplicationUntilProxyStarts to a non-boolean');
  return b;
}

/** The sidecar's bound on the deadline (proxy/sidecar/agent.ts: 1..10000 ms). */
const MAX_CHECK_TIMEOUT_MS = 10_000;

function checkTimeoutAnnotation(ann: Annotations): number | undefined {
  const key = ANNOTATION.rateLimitCheckTimeout;
  const raw = ann[key];
  if (raw === undefined) return undefined;
  const ms = parseDurationMs(raw.trim());
  if (ms === null || ms < 1 || ms > MAX_CHECK_TIMEOUT_MS)
    throw invalid(key, raw, 'is not a duration from 1ms to 10s (e.g. 50ms, 2s)');
  return ms;
}

function setIfDefined<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}

/** Reads and validates every override annotation; throws WEFT_INJECTION_ANNOTATION_INVALID on the first bad one. */
export function readOverrides(ann: Annotations): PodOverrides {
  const o: PodOverrides = { requests: {}, limits: {} };
  const image = ann[ANNOTATION.proxyImage]?.trim();
  if (image !== undefined) {
    if (image === '' || /\s/.test(image))
      throw invalid(ANNOTATION.proxyImage, image, 'is not an image reference');
    o.proxyImage = image;
  }
  setIfDefined(o.requests, 'cpu', quantityAnnotation(ann, ANNOTATION.proxyCPU));
  setIfDefined(o.requests, 'memory', quantityAnnotation(ann, ANNOTATION.proxyMemory));
  setIfDefined(o.limits, 'cpu', quantityAnnotation(ann, ANNOTATION.proxyCPULimit));
  setIfDefined(o.limits, 'memory', quantityAnnotation(ann, ANNOTATION.proxyMemoryLimit));
  setIfDefined(o, 'nativeSidecar', boolAnnotation(ann, ANNOTATION.nativeSidecar));
  setIfDefined(o, 'rewriteAppProbes', boolAnnotation(ann, ANNOTATION.rewriteAppHTTPProbers));
  setIfDefined(o, 'holdApplicationUntilProxyStarts', holdFromProxyConfig(ann));
  setIfDefined(o, 'includeOutboundIPRanges', parseCidrList(ann, ANNOTATION.includeOutboundIPRanges));
  setIfDefined(o, 'excludeOutboundIPRanges', parseCidrList(ann, ANNOTATION.excludeOutboundIPRanges));
  setIfDefined(o, 'includeInboundPorts', parsePortList(ann, ANNOTATION.includeInboundPorts, true));
  setIfDefined(o, 'excludeInboundPorts', parsePortList(ann, ANNOTATION.excludeInboundPorts, false));
  setIfDefined(o, 'excludeOutboundPorts', parsePortList(ann, ANNOTATION.excludeOutboundPorts, false));
  setIfDefined(o, 'rateLimitCheckTimeoutMs', checkTimeoutAnnotation(ann));
  return o;
}

/** Istio's annotation namespaces: a key under one of these that we do not read is worth a warning. */
const ISTIO_PREFIXES = [
  'sidecar.istio.io/',
  'traffic.sidecar.istio.io/',
  'proxy.istio.io/',
  'status.sidecar.istio.io/',
  'readiness.status.sidecar.istio.io/',
];
const HONOURED: ReadonlySet<string> = new Set(Object.values(ANNOTATION));

/**
 * Istio sidecar annotations weft does not implement (e.g. `sidecar.istio.io/userVolume`), as
 * warnings: a team migrating from Istio should hear that a setting is ignored, not find out later.
 */
export function unsupportedAnnotations(ann: Annotations): string[] {
  return Object.keys(ann)
    .filter((k) => !HONOURED.has(k) && ISTIO_PREFIXES.some((p) => k.startsWith(p)))
    .sort()
    .map((k) => `metadata.annotations[${k}]: not supported by weft's injector; ignored`);
}
