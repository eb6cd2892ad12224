/**
 * The mesh of the weftd benches: on-demand (bench/weftd/ondemand.ts, ondemand-rss.ts,
 * config-size.ts) whole, delta pushes (delta.ts) through its service and VirtualService builders.
 * SERVICES services in NAMESPACES namespaces (2 ports, 3 endpoints each, a VirtualService on
 * every fifth).
 */
export const NAMESPACES = 20;

/** One service of the mesh, as the snapshot registry reads it (test/support/snapshot-registry.ts). */
export interface MeshService {
  host: string;
  namespace: string;
  addresses: string[];
  ports: { number: number; name: string; protocol: string }[];
  endpoints: Record<string, unknown>[];
}

/** Service `i`: svc<i> in ns<i % NAMESPACES>, an HTTP and a gRPC port, endpoints 0–2 from `endpoint`. */
export function meshService(i: number, endpoint: (j: number) => Record<string, unknown>): MeshService {
  const ns = `ns${i % NAMESPACES}`;
  return {
    host: `svc${i}.${ns}.svc.cluster.local`,
    namespace: ns,
    addresses: [`10.96.${i >> 8}.${i & 255}`],
    ports: [
      { number: 80, name: 'http', protocol: 'HTTP' },
      { number: 9090, name: 'grpc', protocol: 'GRPC' },
    ],
    endpoints: [0, 1, 2].map(endpoint),
  };
}

/** A pod address for endpoint `j` of service `i`, distinct for up to 65,536 services. */
export function podAddress(i: number, j: number): string {
  return `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`;
}

/** The VirtualService of service `i` (every fifth has one): `first` routes, then its default route. */
export function meshVirtualService(
  i: number,
  svc: MeshService,
  first: unknown[] = [],
): Record<string, unknown> {
  const host = svc.host;
  return {
    metadata: { name: `svc${i}`, namespace: svc.namespace },
    spec: {
      hosts: [host],
      http: [
        ...first,
        { route: [{ destination: { host, port: { number: 80 } } }], retries: { attempts: 2 } },
      ],
    },
  };
}

/** The mesh; `upstreamPort`: every endpoint is this local server (the latency part routes to it). */
export function meshSnapshot(SERVICES: number, upstreamPort: number | null): Record<string, unknown> {
  const services: MeshService[] = [];
  const virtualServices: Record<string, unknown>[] = [];
  for (let i = 0; i < SERVICES; i++) {
    const svc = meshService(i, (j) =>
      upstreamPort === null
        ? { address: podAddress(i, j), labels: { app: `svc${i}` }, ports: { http: 8080, grpc: 9090 } }
        : {
            address: '127.0.0.1',
            labels: { app: `svc${i}`, j: String(j) },
            ports: { http: upstreamPort, grpc: upstreamPort },
          },
    );
    services.push(svc);
    if (i % 5 === 0) virtualServices.push(meshVirtualService(i, svc));
  }
  return { services, virtualServices };
}
