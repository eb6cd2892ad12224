/**
 * Kubelet probe rewriting, as Istio does it. With the sidecar in place, an HTTP probe from the
 * kubelet would be captured by iptables and fail under STRICT mTLS, and a TCP probe would always
 * succeed (the proxy accepts every port). So each app probe is pointed at the proxy's health port
 * under `/app-health/<container>/<livez|readyz|startupz>`, and the original probe is handed to
 * the proxy in the `ISTIO_KUBE_APP_PROBERS` env var (same name and JSON shape as Istio's), which
 * the proxy replays against the app from inside the pod.
 */
import type { V1Container, V1Probe } from '@kubernetes/client-node';
import { PORT_HEALTH } from './ports.js';

export const APP_PROBERS_ENV = 'ISTIO_KUBE_APP_PROBERS';

const KINDS = [
  ['livenessProbe', 'livez'],
  ['readinessProbe', 'readyz'],
  ['startupProbe', 'startupz'],
] as const;

/** What the proxy needs to replay one probe. Port names are resolved here: the proxy has no pod spec. */
export interface AppProber {
  httpGet?: {
    path?: string | undefined;
    port: number;
    scheme?: string | undefined;
    host?: string | undefined;
    httpHeaders?: { name: string; value: string }[] | undefined;
  };
  tcpSocket?: { port: number; host?: string | undefined };
  grpc?: { port: number; service?: string | undefined };
  /** Undefined members are dropped by JSON.stringify when the probers become the env value. */
  timeoutSeconds?: number | undefined;
}

function resolvePort(container: V1Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  if (typeof port !== 'string') return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** The prober for one probe, or undefined when it is not one we can replay (exec probes need no rewrite). */
export function proberFor(container: V1Container, probe: V1Probe): AppProber | undefined {
  const timeout = probe.timeoutSeconds;
  if (probe.httpGet) {
    const port = resolvePort(container, probe.httpGet.port);
    if (port === undefined) return undefined;
    const { path, scheme, host, httpHeaders } = probe.httpGet;
    return { httpGet: { path, port, scheme, host, httpHeaders }, timeoutSeconds: timeout };
  }
  if (probe.tcpSocket) {
    const port = resolvePort(container, probe.tcpSocket.port);
    if (port === undefined) return undefined;
    return { tcpSocket: { port, host: probe.tcpSocket.host }, timeoutSeconds: timeout };
  }
  if (probe.grpc) {
    return { grpc: { port: probe.grpc.port, service: probe.grpc.service }, timeoutSeconds: timeout };
  }
  return undefined;
}

/** The probe the kubelet runs after the rewrite: the same timings, an HTTP GET on the proxy's health port. */
function rewritten(probe: V1Probe, path: string): V1Probe {
  const { httpGet: _h, tcpSocket: _t, grpc: _g, exec: _e, ...timings } = probe;
  return { ...timings, httpGet: { path, port: PORT_HEALTH, scheme: 'HTTP' } };
}

/**
 * Rewrites the probes of `containers` in place and returns the probers to hand to the proxy,
 * keyed by the new path. Containers are mutated because the caller works on its own clone.
 */
export function rewriteProbes(containers: V1Container[]): Record<string, AppProber> {
  const probers: Record<string, AppProber> = {};
  for (const c of containers) {
    for (const [field, suffix] of KINDS) {
      const probe = c[field];
      if (!probe) continue;
      const prober = proberFor(c, probe);
      if (!prober) continue;
      const path = `/app-health/${c.name}/${suffix}`;
      probers[path] = prober;
      c[field] = rewritten(probe, path);
    }
  }
  return probers;
}
