/**
 * Istio standard metrics, hand-rolled: a request costs one Map lookup (keyed by code and flags
 * within a per-destination group whose label text is precomputed at compile time) and a few
 * integer increments; the Prometheus text is built only on scrape. prom-client's
 * `labels(...).inc()` hashes every label value per call (bench/proxy/micro.ts measures both).
 *
 * Groups are interned by label text so counters survive config reloads.
 */

/** Istio's default duration buckets (ms). */
export const DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];
/** Istio's default size buckets (bytes). */
export const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
  render(name: string, labels: string, out: string[]): void {
    let cum = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cum += this.counts[i]!;
      out.push(`${name}_bucket{${labels},le="${this.bounds[i]!}"} ${cum}`);
    }
    out.push(`${name}_bucket{${labels},le="+Inf"} ${this.count}`);
    out.push(`${name}_sum{${labels}} ${this.sum}`);
    out.push(`${name}_count{${labels}} ${this.count}`);
  }
}

class Series {
  requests = 0;
  readonly duration = new Histogram(DURATION_BUCKETS);
  readonly reqBytes = new Histogram(SIZE_BUCKETS);
  readonly respBytes = new Histogram(SIZE_BUCKETS);
  constructor(readonly labels: string) {}
}

export interface DestinationLabels {
  destinationService: string;
  destinationServiceName: string;
  destinationServiceNamespace: string;
  destinationVersion: string;
  destinationCluster?: string;
}

export interface SourceLabels {
  workload: string;
  namespace: string;
  app: string;
  version: string;
}

export const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** All series for one (source, destination) pair. */
export class MetricGroup {
  private readonly series = new Map<string, Series>();
  constructor(private readonly prefix: string) {}

  record(code: number, flags: string, durationMs: number, reqBytes: number, respBytes: number): void {
    const key = flags === '-' ? code : `${code}|${flags}`;
    let s = this.series.get(key as string);
    if (s === undefined) {
      s = new Series(`${this.prefix},response_code="${code}",response_flags="${esc(flags)}"`);
      this.series.set(key as string, s);
    }
    s.requests++;
    s.duration.observe(durationMs);
    s.reqBytes.observe(reqBytes);
    s.respBytes.observe(respBytes);
  }

  render(out: { req: string[]; dur: string[]; rqb: string[]; rsb: string[] }): void {
    for (const s of this.series.values()) {
      out.req.push(`istio_requests_total{${s.labels}} ${s.requests}`);
      s.duration.render('istio_request_duration_milliseconds', s.labels, out.dur);
      s.reqBytes.render('istio_request_bytes', s.labels, out.rqb);
      s.respBytes.render('istio_response_bytes', s.labels, out.rsb);
    }
  }
}

/** TCP counters per destination. */
export class TcpGroup {
  opened = 0;
  closed = 0;
  sent = 0;
  received = 0;
  constructor(readonly labels: string) {}
}

export class MetricsRegistry {
  private readonly groups = new Map<string, MetricGroup>();
  private readonly tcp = new Map<string, TcpGroup>();
  /** Proxy-level counters (`weft_*`), e.g. config reloads and rejected downstream requests. */
  readonly counters = new Map<string, number>();
  /** Counters with labels: name → label text → value (one TYPE line per name when rendered). */
  readonly labelledCounters = new Map<string, Map<string, number>>();

  constructor(private source: SourceLabels) {}

  setSource(source: SourceLabels): void {
    this.source = source;
  }

  private labelText(d: DestinationLabels): string {
    const s = this.source;
    return [
      `reporter="source"`,
      `source_workload="${esc(s.workload)}"`,
      `source_workload_namespace="${esc(s.namespace)}"`,
      `source_app="${esc(s.app)}"`,
      `source_version="${esc(s.version)}"`,
      `destination_service="${esc(d.destinationService)}"`,
      `destination_service_name="${esc(d.destinationServiceName)}"`,
      `destination_service_namespace="${esc(d.destinationServiceNamespace)}"`,
      `destination_version="${esc(d.destinationVersion)}"`,
      `destination_cluster="${esc(d.destinationCluster ?? 'unknown')}"`,
      `request_protocol="http"`,
      `connection_security_policy="unknown"`,
    ].join(',');
  }

  /** Interned per label set: call at compile time, keep the group on the compiled destination. */
  group(d: DestinationLabels): MetricGroup {
    const key = this.labelText(d);
    let g = this.groups.get(key);
    if (g === undefined) {
      g = new MetricGroup(key);
      this.groups.set(key, g);
    }
    return g;
  }

  tcpGroup(d: DestinationLabels): TcpGroup {
    const key = this.labelText(d).replace('request_protocol="http"', 'request_protocol="tcp"');
    let g = this.tcp.get(key);
    if (g === undefined) {
      g = new TcpGroup(key);
      this.tcp.set(key, g);
    }
    return g;
  }

  inc(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  /** `labels` is label text such as `reason="plaintext"` (values escaped by the caller, bounded sets only). */
  incLabelled(name: string, labels: string, by = 1): void {
    let m = this.labelledCounters.get(name);
    if (m === undefined) this.labelledCounters.set(name, (m = new Map()));
    m.set(labels, (m.get(labels) ?? 0) + by);
  }

  render(): string {
    const out = { req: [] as string[], dur: [] as string[], rqb: [] as string[], rsb: [] as string[] };
    for (const g of this.groups.values()) g.render(out);
    const lines: string[] = [];
    const section = (name: string, type: string, help: string, body: string[]): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...body);
    };
    section('istio_requests_total', 'counter', 'Requests handled by the proxy.', out.req);
    section('istio_request_duration_milliseconds', 'histogram', 'Request duration.', out.dur);
    section('istio_request_bytes', 'histogram', 'Request body sizes.', out.rqb);
    section('istio_response_bytes', 'histogram', 'Response body sizes.', out.rsb);
    const tcpLines = (pick: (g: TcpGroup) => number): string[] =>
      [...this.tcp.values()].map((g) => `{${g.labels}} ${pick(g)}`);
    section(
      'istio_tcp_connections_opened_total',
      'counter',
      'TCP connections opened.',
      tcpLines((g) => g.opened).map((l) => 'istio_tcp_connections_opened_total' + l),
    );
    section(
      'istio_tcp_connections_closed_total',
      'counter',
      'TCP connections closed.',
      tcpLines((g) => g.closed).map((l) => 'istio_tcp_connections_closed_total' + l),
    );
    section(
      'istio_tcp_sent_bytes_total',
      'counter',
      'Bytes sent to the destination.',
      tcpLines((g) => g.sent).map((l) => 'istio_tcp_sent_bytes_total' + l),
    );
    section(
      'istio_tcp_received_bytes_total',
      'counter',
      'Bytes received from the destination.',
      tcpLines((g) => g.received).map((l) => 'istio_tcp_received_bytes_total' + l),
    );
    for (const [name, v] of this.counters) lines.push(`# TYPE ${name} counter`, `${name} ${v}`);
    for (const [name, m] of this.labelledCounters) {
      lines.push(`# TYPE ${name} counter`);
      for (const [labels, v] of m) lines.push(`${name}{${labels}} ${v}`);
    }
    return lines.join('\n') + '\n';
  }
}
