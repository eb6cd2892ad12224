/**
 * The labels and names every rendered object carries. The inventory label is how the operator
 * finds what it applied earlier (to prune what is no longer desired); the standard
 * `app.kubernetes.io/*` labels are what `kubectl get -l` users and dashboards expect.
 * Never copied from the Mesh: Argo CD's tracking label on a child would make Argo CD prune it.
 */
export const MANAGED_BY = 'weft-operator';
export const PART_OF = 'weft';
/** Value: the Mesh name. Selects every object one Mesh owns. */
export const INVENTORY_LABEL = 'mesh.weft.dev/mesh';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const FIELD_MANAGER = 'weft-operator';
export const FINALIZER = 'mesh.weft.dev/cleanup';

/**
 * On weftd's pods in Combined mode (ADR 0024), which answer admission: the webhook Service selects
 * it, so it never reaches weftd pods without the webhook port (those of a rollout from Separate).
 * The operator moves the Service and prunes the webhook Deployment only once weftd's is available
 * (operator/reconciler.ts, admissionHandover).
 */
export const ADMISSION_POD_LABEL = 'weft.dev/admission-webhook';

export const SERVING_SECRET = { weftd: 'weftd-tls', webhook: 'weft-webhook-tls' } as const;
export const CA_SECRET = 'weft-root-ca';

export function standardLabels(meshName: string, name: string, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': name,
    [COMPONENT_LABEL]: component,
    'app.kubernetes.io/managed-by': MANAGED_BY,
    'app.kubernetes.io/part-of': PART_OF,
    [INVENTORY_LABEL]: meshName,
  };
}

/** Pod selector labels: a stable subset (selectors are immutable on Deployments). */
export function selectorLabels(name: string): Record<string, string> {
  return { app: name, 'app.kubernetes.io/name': name };
}

export function inventorySelector(meshName: string): string {
  return `${INVENTORY_LABEL}=${meshName},app.kubernetes.io/managed-by=${MANAGED_BY}`;
}
