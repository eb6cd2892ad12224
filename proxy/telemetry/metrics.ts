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

/** `{reason: 'plaintext'}` → `reason="plaintext"` (Prometheus label text, values escaped). */
export const labelText = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}="${esc(v)}"`)
    .join(',');

const HTTP_PROTOCOL = 'request_protocol="http"';
const GRPC_PROTOCOL = 'request_protocol="grpc"';

/** All series for one (source, destination) pair. */
export class MetricGroup {
  private readonly series = new Map<string, Series>();
  constructor(private readonly prefix: string) {}

  /** `grpc`: the gRPC status of a gRPC request (label `grpc_response_status`, only on gRPC series). */
  record(
    code: number,
    flags: string,
    durationMs: number,
    reqBytes: number,
    respBytes: number,
    grpc?: string,
  ): void {
    let key = flags === '-' ? String(code) : `${code}|${flags}`;
    if (grpc !== undefined) key += `|g${grpc}`;
    let s = this.series.get(key);
    if (s === undefined) {
      // Istio reports a gRPC request as request_protocol="grpc", with its status
      const prefix = grpc === undefined ? this.prefix : this.prefix.replace(HTTP_PROTOCOL, GRPC_PROTOCOL);
      const g = grpc === undefined ? '' : `,grpc_response_status="${esc(grpc)}"`;
      s = new Series(`${prefix},response_code="${code}",response_flags="${esc(flags)}"${g}`);
      this.series.set(key, s);
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
  private readonly gauges = new Map<string, { help: string; read: () => [string, number][] }>();
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
    return this.groupFor(this.labelText(d));
  }

  tcpGroup(d: DestinationLabels): TcpGroup {
    return this.tcpGroupFor(this.labelText(d).replace('request_protocol="http"', 'request_protocol="tcp"'));
  }

  /**
   * Interned by a label text the caller built (the inbound side reports with
   * reporter="destination" and a label set of its own); call per connection, not per request.
   */
  groupFor(labels: string): MetricGroup {
    let g = this.groups.get(labels);
    if (g === undefined) {
      g = new MetricGroup(labels);
      this.groups.set(labels, g);
    }
    return g;
  }

  tcpGroupFor(key: string): TcpGroup {
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

  /**
   * A gauge read at scrape time (certificate expiry and the like): `read` returns one value per
   * label set, labels as Prometheus text without braces (`resource_name="default"`), or '' for none.
   */
  gauge(name: string, help: string, read: () => [labels: string, value: number][]): void {
    this.gauges.set(name, { help, read });
  }

  /** A counter with labels (bounded sets only: a reason, a policy name); values are escaped here. */
  incLabelled(name: string, labels: Record<string, string>, by = 1): void {
    const text = labelText(labels);
    let m = this.labelledCounters.get(name);
    if (m === undefined) this.labelledCounters.set(name, (m = new Map()));
    m.set(text, (m.get(text) ?? 0) + by);
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
    for (const [name, g] of this.gauges) {
      const values = g.read();
      if (values.length === 0) continue;
      section(
        name,
        'gauge',
        g.help,
        values.map(([l, v]) => `${name}${l === '' ? '' : `{${l}}`} ${v}`),
      );
    }
    for (const [name, m] of this.labelledCounters) {
      lines.push(`# TYPE ${name} counter`);
      for (const [labels, v] of m) lines.push(`${name}{${labels}} ${v}`);
    }
    return lines.join('\n') + '\n';
  }
}
