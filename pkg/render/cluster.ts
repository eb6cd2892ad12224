/**
 * Cluster-scoped objects: RBAC for weftd and the webhook, and the two webhook configurations.
 *
 * The webhook configurations spell out every field the API server would otherwise default
 * (matchPolicy, selectors, scope, timeouts, ...) so a GitOps diff of `weftctl render` output
 * against the live object is empty. `caBundle` is the one field the operator fills in at run
 * time; `weftctl render` leaves it out (see docs/operator.md for the Argo CD ignoreDifferences).
 */
import { buildWebhookConfigurations } from '../admission/webhook-config.js';
import type { KubeObject } from '../kube/types.js';
import { ROOT_CERT_CONFIGMAP } from '../discovery/protocol.js';
import { standardLabels } from './labels.js';
import { MESH_NAMESPACE } from './spec.js';

const ISTIO_KINDS: Record<string, string[]> = {
  'networking.istio.io': [
    'virtualservices',
    'destinationrules',
    'gateways',
    'serviceentries',
    'sidecars',
    'workloadentries',
  ],
  'security.istio.io': ['peerauthentications', 'authorizationpolicies', 'requestauthentications'],
  // rate limits (ADR 0013): Istio's Mixer-era memquota and weft's own RateLimit
  'config.istio.io': ['memquotas'],
  'mesh.weft.dev': ['ratelimits'],
};

export const WEBHOOK_SERVICE = { name: 'weft-webhook', namespace: MESH_NAMESPACE, port: 443 } as const;
export const VALIDATING_WEBHOOK_NAME = 'weft-validator';
export const MUTATING_WEBHOOK_NAME = 'weft-sidecar-injector';

function clusterRole(mesh: string, name: string, component: string, rules: unknown[]): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name, labels: standardLabels(mesh, name, component) },
    rules,
  };
}

function clusterRoleBinding(
  mesh: string,
  name: string,
  component: string,
  saNamespace: string,
  serviceAccount = name,
): KubeObject {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: standardLabels(mesh, name, component) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
    subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: saNamespace }],
  };
}

const READ = ['get', 'list', 'watch'];

/** The Secret weftd's workload CA signs with: the operator's self-signed root, or the user's CA. */
export interface CaSecretRef {
  namespace: string;
  name: string;
}

/**
 * weftd's permissions: read what it translates, write the root-cert ConfigMap it publishes in
 * every namespace, review proxies' tokens, and read exactly one Secret, the CA it signs with (a
 * namespaced Role with resourceNames: weftd can list/watch it only with a
 * `metadata.name=` field selector, which is what controlplane/ca.ts does).
 */
export function weftdRbac(mesh: string, caSecret: CaSecretRef): KubeObject[] {
  const rules = [
    {
      apiGroups: [''],
      resources: ['services', 'endpoints', 'pods', 'namespaces', 'nodes', 'configmaps'],
      verbs: READ,
    },
    // The root-cert publisher (weft-ca-root-cert in every namespace, server-side apply): it may
    // change only that ConfigMap, never another one (kube-system's coredns, say). `create` cannot
    // be limited by name, so weftd can add ConfigMaps but not alter anyone else's.
    { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
    {
      apiGroups: [''],
      resources: ['configmaps'],
      resourceNames: [ROOT_CERT_CONFIGMAP],
      verbs: ['patch', 'update'],
    },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: READ },
    ...Object.entries(ISTIO_KINDS).flatMap(([group, resources]) => [
      { apiGroups: [group], resources, verbs: READ },
      {
        apiGroups: [group],
        resources: resources.map((r) => `${r}/status`),
        verbs: ['get', 'patch', 'update'],
      },
    ]),
    { apiGroups: ['mesh.weft.dev'], resources: ['meshes'], verbs: READ },
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  ];
  return [
    clusterRole(mesh, 'weftd', 'control-plane', rules),
    clusterRoleBinding(mesh, 'weftd', 'control-plane', MESH_NAMESPACE),
    ...caSecretReader(mesh, caSecret),
    ...statusLease(mesh),
  ];
}

export const WEFTD_STATUS_ROLE = 'weftd-status';

/**
 * The Lease electing the one weftd replica that writes mesh objects' status
 * (controlplane/statuswriter.ts, `--status-lease`): Leases in weft's namespace only.
 */
function statusLease(mesh: string): KubeObject[] {
  const meta = { name: WEFTD_STATUS_ROLE, namespace: MESH_NAMESPACE };
  const labels = standardLabels(mesh, WEFTD_STATUS_ROLE, 'control-plane');
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { ...meta, labels },
      rules: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { ...meta, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: WEFTD_STATUS_ROLE },
      subjects: [{ kind: 'ServiceAccount', name: 'weftd', namespace: MESH_NAMESPACE }],
    },
  ];
}

export const WEFTD_CA_ROLE = 'weftd-ca';

function caSecretReader(mesh: string, caSecret: CaSecretRef): KubeObject[] {
  const meta = { name: WEFTD_CA_ROLE, namespace: caSecret.namespace };
  const labels = standardLabels(mesh, WEFTD_CA_ROLE, 'control-plane');
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { ...meta, labels },
      rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: [caSecret.name], verbs: READ }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { ...meta, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: WEFTD_CA_ROLE },
      subjects: [{ kind: 'ServiceAccount', name: 'weftd', namespace: MESH_NAMESPACE }],
    },
  ];
}

export const WEFTD_GATEWAY_CREDENTIALS_ROLE = 'weftd-gateway-credentials';

/**
 * Gateway `tls.credentialName` (and DestinationRule `credentialName` at a gateway) Secrets: weftd
 * reads them in the gateway pod's own namespace only (controlplane/credentials.ts; Istio: "the
 * namespace of the proxy using the certificates"), so it may read Secrets in each namespace where
 * this Mesh runs a gateway, and nowhere else: one Role and RoleBinding per such namespace, so
 * `credentialName` works as in Istio without a hand-made Role, and pruned with the last gateway
 * there. No resourceNames: which Secrets Gateways name is not known at render time. weftd still
 * watches only the Secrets named (one field-selected informer each) and never delivers weft's own
 * (its CA, operator-issued certificates) or a service-account token.
 */
export function gatewayCredentialReaders(mesh: string, gatewayNamespaces: readonly string[]): KubeObject[] {
  const labels = standardLabels(mesh, WEFTD_GATEWAY_CREDENTIALS_ROLE, 'control-plane');
  return [...new Set(gatewayNamespaces)].sort().flatMap((namespace) => {
    const meta = { name: WEFTD_GATEWAY_CREDENTIALS_ROLE, namespace };
    return [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { ...meta, labels },
        rules: [{ apiGroups: [''], resources: ['secrets'], verbs: READ }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { ...meta, labels },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'Role',
          name: WEFTD_GATEWAY_CREDENTIALS_ROLE,
        },
        subjects: [{ kind: 'ServiceAccount', name: 'weftd', namespace: MESH_NAMESPACE }],
      },
    ];
  });
}

/**
 * The webhook's permissions, bound to its own ServiceAccount, or in the Combined control plane
 * (ADR 0024) to weftd's: the one process then holds the union of both roles, each role still
 * saying what its half needs (today the webhook's reads are a subset of weftd's; binding the role
 * instead of relying on that keeps the union true when either changes).
 */
export function webhookRbac(mesh: string, serviceAccount: string = WEBHOOK_SERVICE.name): KubeObject[] {
  const rules = [
    { apiGroups: [''], resources: ['namespaces', 'services', 'configmaps'], verbs: READ },
    ...Object.entries(ISTIO_KINDS).map(([group, resources]) => ({
      apiGroups: [group],
      resources,
      verbs: READ,
    })),
    { apiGroups: ['mesh.weft.dev'], resources: ['meshes'], verbs: READ },
  ];
  return [
    clusterRole(mesh, 'weft-webhook', 'webhook', rules),
    clusterRoleBinding(mesh, 'weft-webhook', 'webhook', MESH_NAMESPACE, serviceAccount),
  ];
}

export interface WebhookTarget {
  caBundle?: string | undefined;
  /**
   * Normally the in-cluster Service. With `url` (a webhook running outside the cluster, as in
   * `npm start` and the integration tests, where the API server cannot reach Services) the
   * configurations call `<url><path>` instead, as envtest does.
   */
  url?: string | undefined;
}

/**
 * The two webhook configurations, built by the webhook's own builder (pkg/admission) so their
 * safe defaults exist once; render adds the target, the caBundle and the standard labels.
 */
function webhookConfigurations(mesh: string, target: WebhookTarget): [KubeObject, KubeObject] {
  const [validating, mutating] = buildWebhookConfigurations({
    target: target.url
      ? { url: target.url }
      : {
          service: {
            namespace: WEBHOOK_SERVICE.namespace,
            name: WEBHOOK_SERVICE.name,
            port: WEBHOOK_SERVICE.port,
          },
        },
    ...(target.caBundle ? { caBundle: target.caBundle } : {}),
    meshNamespace: MESH_NAMESPACE,
    validatingName: VALIDATING_WEBHOOK_NAME,
    mutatingName: MUTATING_WEBHOOK_NAME,
  });
  const withLabels = (o: object, name: string): KubeObject => {
    const obj = structuredClone(o) as KubeObject;
    obj.metadata = {
      ...obj.metadata,
      name,
      labels: { ...obj.metadata.labels, ...standardLabels(mesh, name, 'webhook') },
    };
    return obj;
  };
  return [withLabels(validating, VALIDATING_WEBHOOK_NAME), withLabels(mutating, MUTATING_WEBHOOK_NAME)];
}

export function validatingWebhook(mesh: string, target: WebhookTarget = {}): KubeObject {
  return webhookConfigurations(mesh, target)[0];
}

export function mutatingWebhook(mesh: string, target: WebhookTarget = {}): KubeObject {
  return webhookConfigurations(mesh, target)[1];
}
