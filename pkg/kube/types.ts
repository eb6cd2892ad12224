/**
 * Minimal Kubernetes object shapes used by weft's own REST helpers. They are deliberately
 * loose (`[key: string]: unknown`) because the operator applies many kinds and only ever reads
 * a few well-known fields; the generated client's per-kind classes would add weight without
 * catching anything server-side apply does not already check.
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** Group/version/kind of a resource, plus what the REST path needs. */
export interface ResourceType {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

/** Identifies one object; `namespace` is absent for cluster-scoped kinds. */
export interface ObjectKey {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export function keyOf(obj: KubeObject): ObjectKey {
  const key: ObjectKey = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name };
  if (obj.metadata.namespace !== undefined) key.namespace = obj.metadata.namespace;
  return key;
}

/** `Deployment weft-system/weftd` — the form used in logs, events and messages. */
export function describeKey(key: ObjectKey): string {
  return key.namespace ? `${key.kind} ${key.namespace}/${key.name}` : `${key.kind} ${key.name}`;
}

/** A stable string identity, used as a map key (group matters: two kinds may share a name). */
export function idOf(key: ObjectKey): string {
  const group = key.apiVersion.includes('/') ? key.apiVersion.split('/')[0] : '';
  return `${group}/${key.kind}/${key.namespace ?? ''}/${key.name}`;
}
