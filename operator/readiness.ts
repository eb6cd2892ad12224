/**
 * Child readiness, read from the children's own status as their controllers report it.
 * A Deployment counts as available the way `kubectl rollout status` and Argo CD judge it: the
 * controller has seen the latest generation, every replica is updated, and enough are available.
 */
import type { MeshComponentStatus } from '../pkg/api/mesh.js';
import type { KubeObject } from '../pkg/kube/types.js';

interface DeploymentShape {
  metadata: { generation?: number; name: string; namespace?: string };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    readyReplicas?: number;
  };
}

export function deploymentStatus(name: string, dep: KubeObject | undefined): MeshComponentStatus {
  if (!dep) return { name, kind: 'Deployment', ready: false, message: 'not created yet' };
  const d = dep as unknown as DeploymentShape;
  const want = d.spec?.replicas ?? 1;
  const st = d.status ?? {};
  const base = {
    name,
    kind: 'Deployment',
    ...(d.metadata.namespace ? { namespace: d.metadata.namespace } : {}),
    replicas: want,
    readyReplicas: st.readyReplicas ?? 0,
  };
  if ((st.observedGeneration ?? 0) < (d.metadata.generation ?? 0))
    return { ...base, ready: false, message: 'rollout not yet observed' };
  if (want === 0) return { ...base, ready: true, message: 'scaled to zero' };
  if ((st.updatedReplicas ?? 0) < want)
    return { ...base, ready: false, message: `${st.updatedReplicas ?? 0}/${want} updated` };
  if ((st.availableReplicas ?? 0) < want)
    return { ...base, ready: false, message: `${st.availableReplicas ?? 0}/${want} available` };
  if ((st.replicas ?? 0) > want) return { ...base, ready: false, message: 'old replicas terminating' };
  return { ...base, ready: true };
}

/** Both webhook configurations exist and carry the CA bundle the operator expects. */
export function webhookConfigStatus(
  name: string,
  cfg: KubeObject | undefined,
  caBundle: string,
): MeshComponentStatus {
  if (!cfg) return { name, kind: 'WebhookConfiguration', ready: false, message: 'not created yet' };
  const hooks = (cfg as unknown as { webhooks?: { clientConfig?: { caBundle?: string } }[] }).webhooks ?? [];
  const stale = hooks.filter((h) => h.clientConfig?.caBundle !== caBundle).length;
  if (hooks.length === 0 || stale > 0)
    return { name, kind: 'WebhookConfiguration', ready: false, message: 'caBundle not in step with the CA' };
  return { name, kind: 'WebhookConfiguration', ready: true };
}
