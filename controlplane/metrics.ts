/**
 * weftd's Prometheus metrics, named as istiod names them where one exists, so existing
 * dashboards and alerts (pilot_xds, pilot_xds_pushes, pilot_proxy_convergence_time, ...) work:
 *
 * - `pilot_xds{type}`: connected proxies by type (sidecar|gateway).
 * - `pilot_xds_pushes{type}`: configs sent (`config`), deltas sent (`delta`, ADR 0020) and sends
 *   that failed (`config_senderr`, `delta_senderr`); istiod's type is the xDS type (cds, lds...),
 *   weft has one config (whole or as a delta of its resources).
 * - `pilot_proxy_convergence_time`: seconds from the first change of a burst to the new config
 *   written to a proxy's stream (istiod's buckets).
 * - `pilot_push_triggers{type}`: changes that scheduled a push (service|endpoint|pod|config).
 * - `pilot_services`, `pilot_virt_services`: registry sizes.
 * - `weft_weftd_token_reviews_total{result}`: ok|cached|denied|error (weft's own).
 * - `weft_weftd_credentials{state}`: usable|unusable credentials of DestinationRule
 *   `tls.credentialName` delivered to gateways (controlplane/credentials.ts).
 * - The workload CA, as istiod's CA (Citadel) names them: `citadel_server_csr_count` (CSRs
 *   received), `citadel_server_success_cert_issuance_count`, `citadel_server_authentication_failure_count`
 *   (a token refused on the certificate endpoint: another audience, expired, not a service
 *   account), `citadel_server_csr_sign_err_count{error_type}` (a CSR refused: malformed,
 *   signature, key, identity, ca, extension, or not_ready when the CA has no root),
 *   `citadel_server_root_cert_expiry_timestamp` (Unix seconds; 0 before a root is loaded).
 * - `weft_weftd_status_writes_total{result}`: status conditions written to mesh objects
 *   (controlplane/statuswriter.ts), ok|error.
 *
 * - `pilot_total_xds_rejects{type}`: configs a proxy NACKed (istiod's name; type is `config`, weft's
 *   one state-of-the-world config, as in pilot_xds_pushes).
 * - `weft_weftd_xds_acks_total{result}`: answers to pushes: ack, nack, or stale (a nonce that is not
 *   the newest push of the answering proxy's stream: late, forged or for a closed stream; ignored).
 * - `weft_weftd_xds_pushed_bytes_total{kind}`: bytes of config pushed, `full` (whole configs) or
 *   `delta` (ADR 0020: only what changed); pilot_xds_pushes counts delta pushes as `type="delta"`.
 * - `weft_weftd_xds_delta_fallbacks_total{reason}`: pushes on a delta stream sent whole instead:
 *   `resync` (the proxy NACKed a delta it could not apply), `resume_unknown` (a reconnecting
 *   proxy named a state weftd cannot verify), `too_large` (the delta would be over half the
 *   config), `unsplittable` (duplicate resource names).
 * - `weft_weftd_xds_write_inflight_bytes`, `weft_weftd_xds_write_waiting_streams`: whole configs
 *   being written and not yet flushed, and the streams whose whole config waits for that to drop
 *   under the write budget (controlplane/pushwrite.ts).
 * - `weft_weftd_registry_events_total{kind,result}`: informer events by kind, `changed` (a new
 *   generation and a push cycle), `ignored` (nothing a config reads changed: labels on a
 *   VirtualService, status, managedFields, resyncs) or `invalid` (a new version of a mesh object
 *   that fails validation, counted once per version: weftd leaves it out of every config,
 *   controlplane/validity.ts).
 * - `weft_weftd_sidecar_translations_total{result}`: sidecar translations made for a generation
 *   (`translated`) and scoped ones reused from the previous generation (`carried`: nothing they
 *   read changed, controlplane/carryover.ts). Proxies sharing a translation count once.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WeftdMetrics {
  registry: Registry;
  xds: Gauge<'type'>;
  pushes: Counter<'type'>;
  convergence: Histogram<string>;
  triggers: Counter<'type'>;
  services: Gauge<string>;
  virtualServices: Gauge<string>;
  tokenReviews: Counter<'result'>;
  csrs: Counter<string>;
  certsIssued: Counter<string>;
  certAuthFailures: Counter<string>;
  csrRefused: Counter<'error_type'>;
  rootCertExpiry: Gauge<string>;
  credentials: Gauge<'state'>;
  statusWrites: Counter<'result'>;
  rejects: Counter<'type'>;
  acks: Counter<'result'>;
  pushedBytes: Counter<'kind'>;
  writeInFlightBytes: Gauge<string>;
  writeWaitingStreams: Gauge<string>;
  deltaFallbacks: Counter<'reason'>;
  registryEvents: Counter<'kind' | 'result'>;
  onDemand: Counter<'result'>;
  translations: Counter<'result'>;
}

export function createWeftdMetrics(defaultMetrics = true): WeftdMetrics {
  const registry = new Registry();
  if (defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    xds: new Gauge({
      name: 'pilot_xds',
      help: 'Connected proxies, by type (sidecar|gateway).',
      labelNames: ['type'],
      registers,
    }),
    pushes: new Counter({
      name: 'pilot_xds_pushes',
      help: 'Configs pushed to proxies (type=config) and failed sends (type=config_senderr).',
      labelNames: ['type'],
      registers,
    }),
    convergence: new Histogram({
      name: 'pilot_proxy_convergence_time',
      help: 'Seconds from the first change of a debounced burst to the new config written to a proxy.',
      buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30],
      registers,
    }),
    triggers: new Counter({
      name: 'pilot_push_triggers',
      help: 'Registry changes that scheduled a push, by type (service|endpoint|pod|config).',
      labelNames: ['type'],
      registers,
    }),
    services: new Gauge({
      name: 'pilot_services',
      help: 'Services in the registry (Kubernetes and ServiceEntry).',
      registers,
    }),
    virtualServices: new Gauge({
      name: 'pilot_virt_services',
      help: 'VirtualServices weftd applies (those failing validation are left out of configs and not counted).',
      registers,
    }),
    tokenReviews: new Counter({
      name: 'weft_weftd_token_reviews_total',
      help: 'Bearer tokens checked, by result (ok|cached|denied|error).',
      labelNames: ['result'],
      registers,
    }),
    csrs: new Counter({
      name: 'citadel_server_csr_count',
      help: 'CSRs received on POST /v1/certificates.',
      registers,
    }),
    certsIssued: new Counter({
      name: 'citadel_server_success_cert_issuance_count',
      help: 'Workload certificates issued.',
      registers,
    }),
    certAuthFailures: new Counter({
      name: 'citadel_server_authentication_failure_count',
      help: 'Certificate requests whose token was refused (audience, expiry, not a service account).',
      registers,
    }),
    csrRefused: new Counter({
      name: 'citadel_server_csr_sign_err_count',
      help: 'CSRs refused, by error_type (malformed|signature|key|identity|ca|extension|not_ready|other).',
      labelNames: ['error_type'],
      registers,
    }),
    rootCertExpiry: new Gauge({
      name: 'citadel_server_root_cert_expiry_timestamp',
      help: 'When the root certificate weftd signs under expires (Unix seconds; 0 before one is loaded).',
      registers,
    }),
    credentials: new Gauge({
      name: 'weft_weftd_credentials',
      help: 'Gateway credentials (DestinationRule tls.credentialName Secrets) by state: usable, or unusable (missing, forbidden, bad PEM: their clusters fail).',
      labelNames: ['state'],
      registers,
    }),
    statusWrites: new Counter({
      name: 'weft_weftd_status_writes_total',
      help: 'Status subresource writes of mesh objects by the elected status writer, by result (ok|error).',
      labelNames: ['result'],
      registers,
    }),
    rejects: new Counter({
      name: 'pilot_total_xds_rejects',
      help: 'Configs proxies rejected (NACKed), by type (config).',
      labelNames: ['type'],
      registers,
    }),
    acks: new Counter({
      name: 'weft_weftd_xds_acks_total',
      help: 'Answers of proxies to pushes, by result (ack|nack|stale: not the newest push of that stream, ignored|invalid: a line on an upgraded stream weftd could not read, which ends that stream).',
      labelNames: ['result'],
      registers,
    }),
    pushedBytes: new Counter({
      name: 'weft_weftd_xds_pushed_bytes_total',
      help: 'Bytes of config pushed to proxies, by kind (full|delta).',
      labelNames: ['kind'],
      registers,
    }),
    writeInFlightBytes: new Gauge({
      name: 'weft_weftd_xds_write_inflight_bytes',
      help: 'Bytes of whole configs being written to proxies and not yet flushed (bounded by the write budget).',
      registers,
    }),
    writeWaitingStreams: new Gauge({
      name: 'weft_weftd_xds_write_waiting_streams',
      help: 'Discovery streams whose whole config waits for the write budget (earlier ones are still being written).',
      registers,
    }),
    deltaFallbacks: new Counter({
      name: 'weft_weftd_xds_delta_fallbacks_total',
      help: 'Pushes on delta streams sent as the whole config, by reason (resync|resume_unknown|too_large|unsplittable).',
      labelNames: ['reason'],
      registers,
    }),
    onDemand: new Counter({
      name: 'weft_weftd_ondemand_hosts_total',
      help: 'On-demand host names asked for by sidecars, by result (found|held: already subscribed|not_found|negative: a cached not_found|rate_limited|too_many: the subscription cap).',
      labelNames: ['result'],
      registers,
    }),
    translations: new Counter({
      name: 'weft_weftd_sidecar_translations_total',
      help: 'Sidecar translations a registry generation needed, by result (translated; carried: a scoped translation reused from the previous generation because nothing it reads changed).',
      labelNames: ['result'],
      registers,
    }),
    registryEvents: new Counter({
      name: 'weft_weftd_registry_events_total',
      help: 'Informer events by kind and result (changed: a push cycle; ignored: nothing a proxy config reads changed; invalid: a new object version that fails validation, left out of every config).',
      labelNames: ['kind', 'result'],
      registers,
    }),
  };
}
