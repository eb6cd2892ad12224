/**
 * The REST names of the kinds weft reads and writes. A static table instead of discovery: the
 * operator only ever touches this fixed set, and a table keeps every call one round trip and
 * makes a typo a clear error at the call site rather than a 404 from the server.
 */
import { WeftError } from '../errors/index.js';
import type { ObjectKey, ResourceType } from './types.js';
import { findKind } from '../api/registry.js';

const TABLE: ResourceType[] = [
  { apiVersion: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false },
  { apiVersion: 'v1', kind: 'Node', plural: 'nodes', namespaced: false },
  { apiVersion: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', namespaced: true },
  { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
  { apiVersion: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
  { apiVersion: 'v1', kind: 'Service', plural: 'services', namespaced: true },
  { apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
  { apiVersion: 'v1', kind: 'Event', plural: 'events', namespaced: true },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', plural: 'endpointslices', namespaced: true },
  { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', namespaced: true },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets', namespaced: true },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    plural: 'clusterroles',
    namespaced: false,
  },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    plural: 'clusterrolebindings',
    namespaced: false,
  },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', plural: 'roles', namespaced: true },
  {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    plural: 'rolebindings',
    namespaced: true,
  },
  {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    plural: 'validatingwebhookconfigurations',
    namespaced: false,
  },
  {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    plural: 'mutatingwebhookconfigurations',
    namespaced: false,
  },
  { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespaced: true },
  {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    plural: 'customresourcedefinitions',
    namespaced: false,
  },
  { apiVersion: 'mesh.weft.dev/v1alpha1', kind: 'Mesh', plural: 'meshes', namespaced: false },
];

const byKind = new Map(TABLE.map((r) => [`${r.apiVersion}/${r.kind}`, r]));

export function resourceFor(apiVersion: string, kind: string): ResourceType {
  const found = byKind.get(`${apiVersion}/${kind}`) ?? fromKindDefinitions(apiVersion, kind);
  if (!found) {
    throw new WeftError(
      'WEFT_UNKNOWN_KIND',
      `${kind} (${apiVersion}) is not in weft's resource table (pkg/kube/resources.ts)`,
    );
  }
  return found;
}

/** The Istio kinds (every served version) come from pkg/api's registry, so they are never listed twice. */
function fromKindDefinitions(apiVersion: string, kind: string): ResourceType | undefined {
  const def = findKind(apiVersion, kind);
  return def ? { apiVersion, kind, plural: def.plural, namespaced: def.scope === 'Namespaced' } : undefined;
}

export function isNamespaced(apiVersion: string, kind: string): boolean {
  return resourceFor(apiVersion, kind).namespaced;
}

/** Every kind in the table (tests and the operator's watch set use it). */
export function knownResources(): readonly ResourceType[] {
  return TABLE;
}

/** The collection path: `/apis/apps/v1/namespaces/ns/deployments` or `/api/v1/namespaces`. */
export function collectionPath(
  type: Pick<ResourceType, 'apiVersion' | 'plural' | 'namespaced'>,
  namespace?: string,
): string {
  const root = type.apiVersion.includes('/') ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  if (type.namespaced && namespace !== undefined && namespace !== '') {
    return `${root}/namespaces/${encodeURIComponent(namespace)}/${type.plural}`;
  }
  return `${root}/${type.plural}`;
}

export function objectPath(key: ObjectKey, subresource?: string): string {
  const type = resourceFor(key.apiVersion, key.kind);
  if (type.namespaced && !key.namespace) {
    throw new WeftError('WEFT_INVALID_OBJECT', `${key.kind} ${key.name} is namespaced but has no namespace`);
  }
  const base = `${collectionPath(type, key.namespace)}/${encodeURIComponent(key.name)}`;
  return subresource ? `${base}/${subresource}` : base;
}
