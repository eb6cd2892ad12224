/**
 * Adds each proxy's `jwt` block (RequestAuthentication, pkg/translate/requestauthn.ts) to the
 * config the generator made for it. Kept apart from configgen.ts's sidecar/gateway paths: a pod
 * no RequestAuthentication selects keeps its config (and version) untouched; a selected pod gets
 * a new version (content hash of the old one and the block) and a full serialization.
 */
import { createHash } from 'node:crypto';
import { encodeMessage } from '../pkg/discovery/protocol.js';
import type { Logger } from '../pkg/log/index.js';
import { requestAuthnFor, type JwksSource } from '../pkg/translate/requestauthn.js';
import type { GeneratedConfig } from './configgen.js';
import type { PodInfo, Snapshot } from './registry.js';
import type { ProxyKind } from '../pkg/discovery/protocol.js';

const logged = new Set<string>();

export function withJwt(
  g: GeneratedConfig,
  kind: ProxyKind,
  snapshot: Snapshot,
  pod: PodInfo,
  rootNamespace: string,
  jwks: JwksSource,
  log: Logger,
): GeneratedConfig {
  const policies = snapshot.requestAuthentications ?? [];
  if (policies.length === 0) return g;
  const { jwt, warnings } = requestAuthnFor({
    policies,
    workload: { namespace: pod.namespace, labels: pod.labels },
    rootNamespace,
    jwks,
  });
  for (const w of warnings) {
    if (logged.has(w)) continue;
    if (logged.size > 1000) logged.clear();
    logged.add(w);
    log.warn('RequestAuthentication warning', { warning: w });
  }
  if (jwt === undefined) return g;
  // a sidecar's HTTP listeners carry its app's outbound requests: the inbound side checks tokens
  if (kind === 'sidecar') jwt.listeners = [];
  const version = createHash('sha256')
    .update(`${g.version}\n${JSON.stringify(jwt)}`)
    .digest('hex')
    .slice(0, 12);
  const config = { ...g.config, version, jwt };
  return { config, version, encode: () => encodeMessage({ type: 'config', version, config }) };
}
