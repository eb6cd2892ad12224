/**
 * ServiceEntry (networking.istio.io): adds a service (usually outside the cluster) to weft's
 * service registry so it can be routed to and have policies applied.
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { KubeObject } from './common.js';
import { istioStatusSchema } from './common.js';
import { arr, enumOf, map, obj, str, strArr, strMap, uint32 } from './schema.js';

export interface ServicePort {
  number: number;
  protocol?: string;
  name: string;
  targetPort?: number;
}

export interface WorkloadEntrySpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface ServiceEntrySpec {
  hosts: string[];
  addresses?: string[];
  ports?: ServicePort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  exportTo?: string[];
  subjectAltNames?: string[];
}

export type ServiceEntry = KubeObject<ServiceEntrySpec>;

export const workloadEntrySchema = (): JSONSchema =>
  obj({
    address: str({ maxLength: 256 }),
    ports: map(uint32()),
    labels: strMap(),
    network: str(),
    locality: str(),
    weight: uint32(),
    serviceAccount: str(),
  });

export const serviceEntrySpecSchema = (): JSONSchema =>
  obj(
    {
      hosts: strArr(),
      addresses: strArr(),
      ports: arr(
        obj(
          { number: uint32(), protocol: str(), name: str(), targetPort: uint32() },
          { required: ['number', 'name'] },
        ),
      ),
      location: enumOf('MESH_EXTERNAL', 'MESH_INTERNAL'),
      resolution: enumOf('NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'),
      endpoints: arr(workloadEntrySchema()),
      workloadSelector: obj({ labels: strMap() }),
      exportTo: strArr(),
      subjectAltNames: strArr(),
    },
    { required: ['hosts'] },
  );

export const serviceEntryKind: KindDefinition = {
  group: 'networking.istio.io',
  kind: 'ServiceEntry',
  plural: 'serviceentries',
  singular: 'serviceentry',
  listKind: 'ServiceEntryList',
  shortNames: ['se'],
  categories: ['istio-io', 'networking-istio-io'],
  scope: 'Namespaced',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  storageVersion: 'v1',
  printerColumns: [
    {
      name: 'Hosts',
      type: 'string',
      jsonPath: '.spec.hosts',
      description: 'The hosts associated with the ServiceEntry',
    },
    {
      name: 'Location',
      type: 'string',
      jsonPath: '.spec.location',
      description:
        'Whether the service is external to the mesh or part of the mesh (MESH_EXTERNAL or MESH_INTERNAL)',
    },
    {
      name: 'Resolution',
      type: 'string',
      jsonPath: '.spec.resolution',
      description: 'Service resolution mode for the hosts (NONE, STATIC, or DNS)',
    },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  specSchema: serviceEntrySpecSchema(),
  statusSchema: istioStatusSchema(),
};
