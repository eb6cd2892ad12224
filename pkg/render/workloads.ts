/**
 * Builders for the namespaced workload objects: ServiceAccount, Deployment, Service and
 * PodDisruptionBudget. Each writes every field it cares about explicitly (no reliance on
 * server defaults that would make a GitOps diff flap) and nothing else.
 */
import type { V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { ResourceRequirements } from '../api/mesh.js';
import type { KubeObject } from '../kube/types.js';
import { COMPONENT_LABEL, selectorLabels, standardLabels } from './labels.js';

export interface WorkloadParams {
  mesh: string;
  name: string;
  namespace: string;
  component: string;
  image: string;
  replicas: number;
  args: string[];
  ports: { name: string; containerPort: number; protocol?: 'TCP' | 'UDP' }[];
  resources: ResourceRequirements;
  /** An HTTP GET, or a TCP connect for servers without HTTP (the operator-deployed Redis). */
  readiness: { path: string; port: number; scheme?: 'HTTP' | 'HTTPS' } | { tcpPort: number };
  secretName?: string;
  configMapName?: string;
  extraPodLabels?: Record<string, string>;
  /** Lets the non-root proxy bind ports below 1024 (gateways serve Gateway ports like 80 and 443). */
  bindLowPorts?: boolean;
  /** Replaces the default POD_NAMESPACE/POD_NAME downward-API variables (gateways use the proxy's set). */
  identityEnv?: V1EnvVar[];
  env?: V1EnvVar[];
  /** Volumes beyond the TLS Secret and the mesh config, with their mounts in the one container. */
  extraVolumes?: V1Volume[];
  extraMounts?: V1VolumeMount[];
  /**
   * Seconds the pod keeps serving after its deletion starts, before SIGTERM (a kubelet `sleep`
   * preStop hook, Kubernetes ≥ 1.30): kube-proxy and the API server's endpoint cache drop a
   * terminating pod a moment later, and a server that exits at once leaves callers connecting to
   * an address nothing answers (for the webhook: `kubectl apply` fails with "context deadline
   * exceeded" during a rolling update).
   */
  drainSeconds?: number;
}

export function serviceAccount(mesh: string, name: string, namespace: string, component: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name, namespace, labels: standardLabels(mesh, name, component) },
  };
}

function volumes(p: WorkloadParams): { volumes: unknown[]; mounts: unknown[] } {
  const vols: unknown[] = [];
  const mounts: unknown[] = [];
  if (p.secretName) {
    vols.push({ name: 'tls', secret: { secretName: p.secretName, defaultMode: 0o440 } });
    mounts.push({ name: 'tls', mountPath: '/etc/weft/tls', readOnly: true });
  }
  if (p.configMapName) {
    vols.push({ name: 'config', configMap: { name: p.configMapName } });
    mounts.push({ name: 'config', mountPath: '/etc/weft/config', readOnly: true });
  }
  vols.push(...(p.extraVolumes ?? []));
  mounts.push(...(p.extraMounts ?? []));
  return { volumes: vols, mounts };
}

function container(p: WorkloadParams, mounts: unknown[]): Record<string, unknown> {
  return {
    name: p.component,
    image: p.image,
    imagePullPolicy: 'IfNotPresent',
    args: p.args,
    ports: p.ports.map((port) => ({ ...port, protocol: port.protocol ?? 'TCP' })),
    env: [
      ...(p.identityEnv ?? [
        { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      ]),
      ...(p.env ?? []),
    ],
    resources: p.resources,
    readinessProbe: {
      ...('tcpPort' in p.readiness
        ? { tcpSocket: { port: p.readiness.tcpPort } }
        : {
            httpGet: { path: p.readiness.path, port: p.readiness.port, scheme: p.readiness.scheme ?? 'HTTP' },
          }),
      periodSeconds: 5,
      failureThreshold: 3,
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1337,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: mounts,
    ...(p.drainSeconds ? { lifecycle: { preStop: { sleep: { seconds: p.drainSeconds } } } } : {}),
  };
}

export function deployment(p: WorkloadParams): KubeObject {
  const { volumes: vols, mounts } = volumes(p);
  const labels = standardLabels(p.mesh, p.name, p.component);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: p.name, namespace: p.namespace, labels },
    spec: {
      replicas: p.replicas,
      selector: { matchLabels: selectorLabels(p.name) },
      template: {
        metadata: {
          labels: { ...p.extraPodLabels, ...selectorLabels(p.name), [COMPONENT_LABEL]: p.component },
          // The mutating webhook must never inject weft's own pods.
          annotations: { 'sidecar.istio.io/inject': 'false' },
        },
        spec: {
          serviceAccountName: p.name,
          // fsGroup: the TLS Secret is mounted 0440 root-owned; the non-root container reads it
          // through this supplementary group (without it: EACCES on tls.crt).
          securityContext: {
            fsGroup: 1337,
            seccompProfile: { type: 'RuntimeDefault' },
            // A namespaced, "safe" sysctl (allowed by default since Kubernetes 1.22), as Istio's
            // gateways use: no capability needed to listen on 80/443.
            ...(p.bindLowPorts
              ? { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] }
              : {}),
          },
          containers: [container(p, mounts)],
          volumes: vols,
        },
      },
    },
  };
}

export interface ServicePort {
  name: string;
  port: number;
  targetPort: number;
  protocol: 'TCP' | 'UDP';
  nodePort?: number;
}

export function service(
  mesh: string,
  name: string,
  namespace: string,
  component: string,
  ports: ServicePort[],
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' = 'ClusterIP',
  /** Default: the pods of its namesake Deployment. */
  selector: Record<string, string> = selectorLabels(name),
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: standardLabels(mesh, name, component) },
    spec: { type, selector, ports },
  };
}

/** Only when replicas > 1: a PDB on a single replica would block node drains forever. */
export function podDisruptionBudget(
  mesh: string,
  name: string,
  namespace: string,
  component: string,
  replicas: number,
): KubeObject[] {
  if (replicas <= 1) return [];
  return [
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name, namespace, labels: standardLabels(mesh, name, component) },
      spec: { minAvailable: 1, selector: { matchLabels: selectorLabels(name) } },
    },
  ];
}
