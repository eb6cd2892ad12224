/**
 * PeerAuthentication (security.istio.io): what kind of mTLS a workload accepts from its peers.
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { KubeObject, WorkloadSelector } from './common.js';
import { istioStatusSchema } from './common.js';
import { enumOf, map, obj, workloadSelector } from './schema.js';

export type MutualTLSMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationMutualTLS {
  mode?: MutualTLSMode;
}

export interface PeerAuthenticationSpec {
  selector?: WorkloadSelector;
  mtls?: PeerAuthenticationMutualTLS;
  /** Keyed by port number (as a string in JSON). */
  portLevelMtls?: Record<string, PeerAuthenticationMutualTLS>;
}

export type PeerAuthentication = KubeObject<PeerAuthenticationSpec>;

const mtlsSchema = (): JSONSchema => obj({ mode: enumOf('UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT') });

export const peerAuthenticationSpecSchema = (): JSONSchema =>
  obj({
    selector: workloadSelector(),
    mtls: mtlsSchema(),
    portLevelMtls: { ...map(mtlsSchema()), minProperties: 1 },
  });

export const peerAuthenticationKind: KindDefinition = {
  group: 'security.istio.io',
  kind: 'PeerAuthentication',
  plural: 'peerauthentications',
  singular: 'peerauthentication',
  listKind: 'PeerAuthenticationList',
  shortNames: ['pa'],
  categories: ['istio-io', 'security-istio-io'],
  scope: 'Namespaced',
  versions: ['v1', 'v1beta1'],
  storageVersion: 'v1',
  printerColumns: [
    {
      name: 'Mode',
      type: 'string',
      jsonPath: '.spec.mtls.mode',
      description: 'Defines the mTLS mode used for peer authentication.',
    },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  specSchema: peerAuthenticationSpecSchema(),
  statusSchema: istioStatusSchema(),
};
