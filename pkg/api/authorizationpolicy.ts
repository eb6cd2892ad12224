/**
 * AuthorizationPolicy (security.istio.io): access control for workloads (ALLOW, DENY, AUDIT,
 * CUSTOM), evaluated by the inbound proxy after mTLS and JWT authentication.
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { KubeObject, PolicyTargetReference, WorkloadSelector } from './common.js';
import { istioStatusSchema } from './common.js';
import { arr, enumOf, obj, policyTargetRef, str, strArr, workloadSelector } from './schema.js';

export interface Source {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  trustDomains?: string[];
  notTrustDomains?: string[];
}

export interface Operation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface Condition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface Rule {
  from?: { source?: Source }[];
  to?: { operation?: Operation }[];
  when?: Condition[];
}

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthorizationPolicySpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  rules?: Rule[];
  action?: AuthorizationAction;
  provider?: { name?: string };
}

export type AuthorizationPolicy = KubeObject<AuthorizationPolicySpec>;

const sourceFields = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'serviceAccounts',
  'notServiceAccounts',
  'trustDomains',
  'notTrustDomains',
];
const operationFields = [
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
];

const listOf = (fields: string[]): Record<string, JSONSchema> =>
  Object.fromEntries(fields.map((f) => [f, strArr()]));

export const authorizationPolicySpecSchema = (): JSONSchema =>
  obj(
    {
      selector: workloadSelector(),
      targetRef: policyTargetRef(),
      targetRefs: arr(policyTargetRef()),
      rules: arr(
        obj({
          from: arr(obj({ source: obj(listOf(sourceFields)) })),
          to: arr(obj({ operation: obj(listOf(operationFields)) })),
          when: arr(obj({ key: str(), values: strArr(), notValues: strArr() }, { required: ['key'] })),
        }),
      ),
      action: enumOf('ALLOW', 'DENY', 'AUDIT', 'CUSTOM'),
      provider: obj({ name: str() }),
    },
    { oneOf: [['selector', 'targetRef', 'targetRefs']] },
  );

export const authorizationPolicyKind: KindDefinition = {
  group: 'security.istio.io',
  kind: 'AuthorizationPolicy',
  plural: 'authorizationpolicies',
  singular: 'authorizationpolicy',
  listKind: 'AuthorizationPolicyList',
  shortNames: ['ap'],
  categories: ['istio-io', 'security-istio-io'],
  scope: 'Namespaced',
  versions: ['v1', 'v1beta1'],
  storageVersion: 'v1',
  printerColumns: [
    { name: 'Action', type: 'string', jsonPath: '.spec.action', description: 'The operation to take.' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  specSchema: authorizationPolicySpecSchema(),
  statusSchema: istioStatusSchema(),
};
