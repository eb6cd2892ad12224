/**
 * The mesh of the on-demand bench (bench/weftd/ondemand.ts, config-size.ts): SERVICES services in
 * NAMESPACES namespaces (2 ports, 3 endpoints each, a VirtualService on every fifth).
 */
export const NAMESPACES = 20;

/** The mesh; `upstreamPort`: every endpoint is this local server (the latency part routes to it). */
export function meshSnapshot(SERVICES: number, upstreamPort: number | null): Record<string, unknown> {
  const services = [];
  const virtualServices = [];
  for (let i = 0; i < SERVICES; i++) {
    const ns = `ns${i % NAMESPACES}`;
    const host = `svc${i}.${ns}.svc.cluster.local`;
    services.push({
      host,
      namespace: ns,
      addresses: [`10.96.${i >> 8}.${i & 255}`],
      ports: [
        { number: 80, name: 'http', protocol: 'HTTP' },
        { number: 9090, name: 'grpc', protocol: 'GRPC' },
      ],
      endpoints: [0, 1, 2].map((j) =>
        upstreamPort === null
          ? {
              address: `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`,
              labels: { app: `svc${i}` },
              ports: { http: 8080, grpc: 9090 },
            }
          : {
              address: '127.0.0.1',
              labels: { app: `svc${i}`, j: String(j) },
              ports: { http: upstreamPort, grpc: upstreamPort },
            },
      ),
    });
    if (i % 5 === 0)
      virtualServices.push({
        metadata: { name: `svc${i}`, namespace: ns },
        spec: {
          hosts: [host],
          http: [{ route: [{ destination: { host, port: { number: 80 } } }], retries: { attempts: 2 } }],
        },
      });
  }
  return { services, virtualServices };
}
