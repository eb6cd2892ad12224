/**
 * EnvoyFilter (networking.istio.io/v1alpha3): patches to the Envoy configuration Istio
 * generates. weft has no Envoy, so an EnvoyFilter can never take effect; the kind is served
 * and validated only so Istio YAML applies, and every one is answered with a warning naming
 * what to use instead (pkg/api/not-enforced.ts).
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { KubeObject, PolicyTargetReference } from './common.js';
import { istioStatusSchema } from './common.js';
import { arr, enumOf, int32, obj, openObject, policyTargetRef, str, strMap, uint32 } from './schema.js';

export interface EnvoyConfigObjectPatch {
  applyTo?: string;
  match?: Record<string, unknown>;
  patch?: { operation?: string; value?: Record<string, unknown>; filterClass?: string };
}

export interface EnvoyFilterSpec {
  workloadSelector?: { labels?: Record<string, string> };
  targetRefs?: PolicyTargetReference[];
  configPatches?: EnvoyConfigObjectPatch[];
  priority?: number;
}

export type EnvoyFilter = KubeObject<EnvoyFilterSpec>;

const filterMatch = (): JSONSchema => obj({ name: str(), subFilter: obj({ name: str() }) });

const matchSchema = (): JSONSchema =>
  obj(
    {
      context: enumOf('ANY', 'SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'GATEWAY', 'WAYPOINT'),
      proxy: obj({ proxyVersion: str(), metadata: strMap() }),
      listener: obj({
        portNumber: uint32(),
        portName: str(),
        filterChain: obj({
          name: str(),
          sni: str(),
          transportProtocol: str(),
          applicationProtocols: str(),
          filter: filterMatch(),
          destinationPort: uint32(),
          transportSocket: str(),
        }),
        listenerFilter: str(),
        name: str(),
      }),
      routeConfiguration: obj({
        portNumber: uint32(),
        portName: str(),
        gateway: str(),
        vhost: obj({
          name: str(),
          domainName: str(),
          route: obj({ name: str(), action: enumOf('ANY', 'ROUTE', 'REDIRECT', 'DIRECT_RESPONSE') }),
        }),
        name: str(),
      }),
      cluster: obj({ portNumber: uint32(), service: str(), subset: str(), name: str() }),
      waypoint: obj({ filter: filterMatch(), route: obj({ name: str() }), portNumber: uint32() }),
    },
    { oneOf: [['listener', 'routeConfiguration', 'cluster', 'waypoint']] },
  );

export const ENVOY_FILTER_APPLY_TO = [
  'INVALID',
  'LISTENER',
  'FILTER_CHAIN',
  'NETWORK_FILTER',
  'HTTP_FILTER',
  'ROUTE_CONFIGURATION',
  'VIRTUAL_HOST',
  'HTTP_ROUTE',
  'CLUSTER',
  'EXTENSION_CONFIG',
  'BOOTSTRAP',
  'LISTENER_FILTER',
] as const;

export const ENVOY_FILTER_OPERATIONS = [
  'INVALID',
  'MERGE',
  'ADD',
  'REMOVE',
  'INSERT_BEFORE',
  'INSERT_AFTER',
  'INSERT_FIRST',
  'REPLACE',
  'MERGE_AND_REPLACE_LIST',
] as const;

export const envoyFilterSpecSchema = (): JSONSchema =>
  obj({
    workloadSelector: obj({ labels: { ...strMap(), maxProperties: 256 } }),
    targetRefs: arr(policyTargetRef(), { maxItems: 16 }),
    configPatches: arr(
      obj({
        applyTo: enumOf(...ENVOY_FILTER_APPLY_TO),
        match: matchSchema(),
        patch: obj({
          operation: enumOf(...ENVOY_FILTER_OPERATIONS),
          value: openObject(),
          filterClass: enumOf('UNSPECIFIED', 'AUTHN', 'AUTHZ', 'STATS'),
        }),
      }),
    ),
    priority: int32(),
  });

export const envoyFilterKind: KindDefinition = {
  group: 'networking.istio.io',
  kind: 'EnvoyFilter',
  plural: 'envoyfilters',
  singular: 'envoyfilter',
  listKind: 'EnvoyFilterList',
  shortNames: [],
  categories: ['istio-io', 'networking-istio-io'],
  scope: 'Namespaced',
  versions: ['v1alpha3'],
  storageVersion: 'v1alpha3',
  printerColumns: [],
  specSchema: envoyFilterSpecSchema(),
  statusSchema: istioStatusSchema(),
};
