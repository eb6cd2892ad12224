/**
 * The config's `inbound` block compiled once per version: per workload port the mTLS mode (and
 * the policy that decided it), the declared protocol and the Service for metrics; and the
 * reporter="destination" metric groups, interned per (port plan, peer, security) so a request
 * costs one Map lookup on its connection's plan, never a config lookup.
 */
import type { Inbound, PeerMode, ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { esc, type MetricGroup, type MetricsRegistry, type TcpGroup } from '../telemetry/metrics.js';

/** Without an inbound block (a standalone or older config) the workload is PERMISSIVE, as Istio's default. */
export const NO_INBOUND_POLICY = 'no inbound policy in the config (PERMISSIVE)';

/** Distinct peers per port plan with series of their own; later ones share source_principal="other". */
export const MAX_PEER_SERIES = 1000;

export interface SecurityView {
  /** The peer's SPIFFE ID (null: plaintext). */
  principal: string | null;
  /** Its namespace (from the SPIFFE ID). */
  peerNamespace: string | null;
  /** This workload's SPIFFE ID when the connection is mTLS. */
  localPrincipal: string | null;
}

export class PortPlan {
  private readonly http = new Map<string, MetricGroup>();
  private readonly tcp = new Map<string, TcpGroup>();

  constructor(
    readonly mode: PeerMode,
    readonly policy: string,
    /** null: sniffed. */
    readonly protocol: 'HTTP' | 'TCP' | null,
    readonly service: string | null,
    /** destination_* label text of this workload and Service. */
    private readonly destination: string,
    private readonly metrics: MetricsRegistry,
    /** Declared GRPC/HTTP2: HTTP/2 requests go to the app as HTTP/2 (InboundPort.http2). */
    readonly http2 = false,
  ) {}

  private labels(sec: SecurityView, protocol: 'http' | 'tcp', principal: string | null): string {
    const mtls = sec.principal !== null;
    return [
      'reporter="destination"',
      'source_workload="unknown"',
      `source_workload_namespace="${esc(sec.peerNamespace ?? 'unknown')}"`,
      `source_principal="${esc(principal ?? 'unknown')}"`,
      'source_app="unknown"',
      'source_version="unknown"',
      this.destination,
      `destination_principal="${esc((mtls ? sec.localPrincipal : null) ?? 'unknown')}"`,
      `request_protocol="${protocol}"`,
      `connection_security_policy="${mtls ? 'mutual_tls' : 'none'}"`,
    ].join(',');
  }

  private key(sec: SecurityView): string {
    return `${sec.principal ?? ''}|${sec.localPrincipal ?? ''}`;
  }

  /** Per connection: the group its requests record into. */
  httpGroup(sec: SecurityView): MetricGroup {
    return this.intern(this.http, sec, (p) => this.metrics.groupFor(this.labels(sec, 'http', p)));
  }

  tcpGroup(sec: SecurityView): TcpGroup {
    return this.intern(this.tcp, sec, (p) => this.metrics.tcpGroupFor(this.labels(sec, 'tcp', p)));
  }

  private intern<G>(m: Map<string, G>, sec: SecurityView, make: (principal: string | null) => G): G {
    const key = this.key(sec);
    let g = m.get(key);
    if (g !== undefined) return g;
    // identities are bounded by what the mesh CA signs; the cap bounds them anyway
    const overflow = m.size >= MAX_PEER_SERIES;
    g = make(overflow && sec.principal !== null ? 'other' : sec.principal);
    if (!overflow) m.set(key, g);
    return g;
  }
}

function destinationLabels(cfg: ProxyConfig, service: string | null): string {
  const w = cfg.telemetry?.workload ?? {};
  const parts = (service ?? '').split('.');
  const svcNs = service !== null && parts.length > 2 && parts[2] === 'svc' ? parts[1]! : 'unknown';
  return [
    `destination_workload="${esc(w.name ?? 'unknown')}"`,
    `destination_workload_namespace="${esc(w.namespace ?? 'unknown')}"`,
    `destination_app="${esc(w.app ?? 'unknown')}"`,
    `destination_version="${esc(w.version ?? 'unknown')}"`,
    `destination_service="${esc(service ?? 'unknown')}"`,
    `destination_service_name="${esc(service === null ? 'unknown' : parts[0]!)}"`,
    `destination_service_namespace="${esc(svcNs)}"`,
    'destination_cluster="unknown"',
  ].join(',');
}

export class InboundPlan {
  /** The workload's plan: ports without an entry, and connections whose port is unknown. */
  readonly workload: PortPlan;
  private readonly ports = new Map<number, PortPlan>();

  constructor(
    readonly version: string,
    readonly source: Inbound | undefined,
    cfg: ProxyConfig,
    metrics: MetricsRegistry,
  ) {
    const mtls = source?.mtls ?? { mode: 'PERMISSIVE' as const, policy: NO_INBOUND_POLICY };
    const policyOf = (m: { policy?: string }): string => m.policy ?? 'the config';
    this.workload = new PortPlan(
      mtls.mode,
      policyOf(mtls),
      null,
      null,
      destinationLabels(cfg, null),
      metrics,
    );
    for (const p of source?.ports ?? []) {
      const m = p.mtls ?? mtls;
      const service = p.service ?? null;
      this.ports.set(
        p.port,
        new PortPlan(
          m.mode,
          policyOf(m),
          p.protocol ?? null,
          service,
          destinationLabels(cfg, service),
          metrics,
          p.http2 === true,
        ),
      );
    }
  }

  forPort(port: number | null): PortPlan {
    return (port === null ? undefined : this.ports.get(port)) ?? this.workload;
  }

  /** Every port with a plan of its own, for explain. */
  listed(): [number, PortPlan][] {
    return [...this.ports];
  }
}
