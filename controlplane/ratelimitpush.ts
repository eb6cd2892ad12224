/**
 * Adds each proxy's `rateLimits` block (RateLimit and memquota, pkg/translate/ratelimit.ts) to
 * the config the generator made for it, as jwtpush.ts does for tokens: a pod no limit selects
 * keeps its config (and version) untouched; a limited pod gets a new version (content hash of the
 * old one and the block). A sidecar enforces its block on its inbound side; a gateway on its
 * listeners (ingress), with the mesh's gatewayTopology.numTrustedProxies deciding whether a
 * `clientIP` key may read x-forwarded-for (ADR 0021).
 */
import { createHash } from 'node:crypto';
import { encodeMessage, type ProxyKind } from '../pkg/discovery/protocol.js';
import type { Logger } from '../pkg/log/index.js';
import { rateLimitsFor } from '../pkg/translate/ratelimit.js';
import type { GeneratedConfig } from './configgen.js';
import type { PodInfo, Snapshot } from './registry.js';

/** Warnings already logged (bounded: cleared past 1000), so a push cycle does not repeat them. */
const logged = new Set<string>();

export function withRateLimits(
  g: GeneratedConfig,
  kind: ProxyKind,
  snapshot: Snapshot,
  pod: PodInfo,
  domainSuffix: string,
  log: Logger,
  options: { rootNamespace?: string; globalRateLimits?: boolean; gatewayNumTrustedProxies?: number } = {},
): GeneratedConfig {
  const rateLimits = snapshot.rateLimits ?? [];
  // memquota is Mixer's destination-side quota: it names workloads, never a gateway's listeners
  const memquotas = kind === 'sidecar' ? (snapshot.memquotas ?? []) : [];
  if (rateLimits.length === 0 && memquotas.length === 0) return g;
  const { block, warnings } = rateLimitsFor({
    pod: {
      namespace: pod.namespace,
      labels: pod.labels,
      ...(pod.serviceAccount ? { serviceAccount: pod.serviceAccount } : {}),
    },
    rateLimits,
    memquotas,
    kubeServices: snapshot.kubeServices,
    pods: snapshot.pods ?? [],
    domainSuffix,
    ...(options.rootNamespace !== undefined ? { rootNamespace: options.rootNamespace } : {}),
    globalRateLimits: options.globalRateLimits === true,
  });
  for (const w of warnings) {
    if (logged.has(w)) continue;
    if (logged.size > 1000) logged.clear();
    logged.add(w);
    log.warn('Rate limit not enforced', { warning: w });
  }
  if (block === undefined) return g;
  const hops = options.gatewayNumTrustedProxies ?? 0;
  if (kind === 'gateway' && hops > 0) block.numTrustedProxies = hops;
  const version = createHash('sha256')
    .update(`${g.version}\n${JSON.stringify(block)}`)
    .digest('hex')
    .slice(0, 12);
  const config = { ...g.config, version, rateLimits: block };
  return { config, version, encode: () => encodeMessage({ type: 'config', version, config }) };
}
