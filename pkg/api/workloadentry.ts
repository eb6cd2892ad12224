/**
 * WorkloadEntry and WorkloadGroup (networking.istio.io): a workload outside Kubernetes (a VM, a
 * bare-metal host) described as an address with labels, and the template such entries are made
 * from. weft serves and validates both so Istio YAML applies; it does not use them as endpoints
 * yet (pkg/api/not-enforced.ts).
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { KubeObject } from './common.js';
import { istioStatusSchema } from './common.js';
import type { WorkloadEntrySpec } from './serviceentry.js';
import { workloadEntrySchema } from './serviceentry.js';
import { arr, int32, obj, str, strArr, strMap, uint32 } from './schema.js';

export type WorkloadEntry = KubeObject<WorkloadEntrySpec>;

export interface ReadinessProbe {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  httpGet?: {
    path?: string;
    port: number;
    host?: string;
    scheme?: string;
    httpHeaders?: { name?: string; value?: string }[];
  };
  tcpSocket?: { host?: string; port: number };
  exec?: { command: string[] };
  grpc?: { port?: number; service?: string };
}

export interface WorkloadGroupSpec {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  template: WorkloadEntrySpec;
  probe?: ReadinessProbe;
}

export type WorkloadGroup = KubeObject<WorkloadGroupSpec>;

const VERSIONS = ['v1', 'v1beta1', 'v1alpha3'];
const CATEGORIES = ['istio-io', 'networking-istio-io'];

export const workloadEntryKind: KindDefinition = {
  group: 'networking.istio.io',
  kind: 'WorkloadEntry',
  plural: 'workloadentries',
  singular: 'workloadentry',
  listKind: 'WorkloadEntryList',
  shortNames: ['we'],
  categories: CATEGORIES,
  scope: 'Namespaced',
  versions: VERSIONS,
  storageVersion: 'v1',
  printerColumns: [
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    {
      name: 'Address',
      type: 'string',
      jsonPath: '.spec.address',
      description: 'Address associated with the network endpoint.',
    },
  ],
  specSchema: workloadEntrySchema(),
  statusSchema: istioStatusSchema(),
};

const nonNegative = (): JSONSchema => int32({ minimum: 0 });

export const readinessProbeSchema = (): JSONSchema =>
  obj(
    {
      initialDelaySeconds: nonNegative(),
      timeoutSeconds: nonNegative(),
      periodSeconds: nonNegative(),
      successThreshold: nonNegative(),
      failureThreshold: nonNegative(),
      httpGet: obj(
        {
          path: str(),
          port: uint32(),
          host: str(),
          scheme: str(),
          httpHeaders: arr(obj({ name: str({ pattern: '^[-_A-Za-z0-9]+$' }), value: str() })),
        },
        { required: ['port'] },
      ),
      tcpSocket: obj({ host: str(), port: uint32() }, { required: ['port'] }),
      exec: obj({ command: strArr() }, { required: ['command'] }),
      grpc: obj({ port: uint32(), service: str() }),
    },
    { oneOf: [['httpGet', 'tcpSocket', 'exec', 'grpc']] },
  );

export const workloadGroupSpecSchema = (): JSONSchema =>
  obj(
    {
      metadata: obj({ labels: strMap(), annotations: strMap() }),
      template: workloadEntrySchema(),
      probe: readinessProbeSchema(),
    },
    { required: ['template'] },
  );

export const workloadGroupKind: KindDefinition = {
  group: 'networking.istio.io',
  kind: 'WorkloadGroup',
  plural: 'workloadgroups',
  singular: 'workloadgroup',
  listKind: 'WorkloadGroupList',
  shortNames: ['wg'],
  categories: CATEGORIES,
  scope: 'Namespaced',
  versions: VERSIONS,
  storageVersion: 'v1',
  printerColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
  specSchema: workloadGroupSpecSchema(),
  statusSchema: istioStatusSchema(),
};
