/**
 * The one catalogue of weft's coded errors. Every error a user can see carries a stable code
 * (grep-able in docs and logs) and a message that says what to do about it.
 *
 * Add new codes here, grouped by area; never reuse or renumber a code.
 */
export const ErrorCodes = {
  // input and configuration files
  WEFT_INPUT_UNREADABLE: 'input cannot be read',
  WEFT_INPUT_TOO_LARGE: 'input is larger than the limit',
  WEFT_YAML_SYNTAX: 'YAML syntax error',
  WEFT_NOT_AN_OBJECT: 'document is not a Kubernetes object',
  WEFT_UNKNOWN_KIND: 'kind is not one weft knows',
  WEFT_INVALID_OBJECT: 'object is invalid',
  // local cluster and tooling
  WEFT_CLUSTER_START_FAILED: 'local cluster failed to start',
  WEFT_BINARY_MISSING: 'a required binary is missing',
  WEFT_CLUSTER_STATE_INVALID: 'local cluster state is unreadable or of another kind',
  WEFT_CLUSTER_NOT_RUNNING: 'local cluster is not running',
  WEFT_CLUSTER_TIMEOUT: 'local cluster did not reach the expected state in time',
  WEFT_CLUSTER_USAGE: 'local cluster or test helper used incorrectly',
  WEFT_NODE_PRECONDITION: 'the local node cannot start on this machine',
  WEFT_NODE_CLEANUP_INCOMPLETE: 'local node teardown left something behind',
  WEFT_IMAGE_BUILD_FAILED: 'container image build or import failed',
  // admission
  WEFT_ADMISSION_MALFORMED: 'AdmissionReview is malformed',
  WEFT_INJECTION_ANNOTATION_INVALID: 'a sidecar injection annotation on the pod is invalid',
  WEFT_INJECTION_INPUT_INVALID: 'the object to inject is not a pod or workload with a pod template',
  WEFT_TLS_UNREADABLE: 'TLS certificate or key cannot be read',
  WEFT_ADMISSION_TIMEOUT: 'no admission verdict within the time budget',
  WEFT_ADMISSION_OVERLOADED: 'the webhook is busy validating other expensive objects; retry shortly',
  // operator
  WEFT_RECONCILE_FAILED: 'reconcile failed',
  WEFT_MESH_INVALID: 'Mesh spec is invalid',
  WEFT_CERT_INVALID: 'certificate or key is invalid',
  WEFT_MESH_CONFLICT: 'another Mesh is already active in this cluster',
  WEFT_OPERATOR_CONFIG: 'operator flags or environment are invalid',
  // proxy
  WEFT_PROXY_CONFIG_INVALID: 'proxy configuration is invalid',
  WEFT_PROXY_REQUEST_UNSENDABLE:
    'the request cannot be written upstream (a header with CR, LF, NUL or a character above U+00FF, a Host that is no authority, a field HTTP/2 forbids, or a bad method or target): the proxy answers it locally',
  WEFT_PROXY_REDIRECT_UNSENDABLE:
    "the redirect Location has a character HTTP forbids (CR, LF, NUL or above U+00FF, from the route's redirect.authority or redirect.uri): the proxy answers 503 instead",
  // discovery (weftd <-> proxies, pkg/discovery)
  WEFT_DISCOVERY_REQUEST_INVALID: 'discovery request is missing or has an invalid parameter',
  WEFT_DISCOVERY_STREAM_INVALID: 'discovery stream carried something that is not a message',
  WEFT_DISCOVERY_ACK_INVALID: 'an ACK/NACK body is not JSON or misses a field',
  WEFT_DISCOVERY_ONDEMAND_INVALID: 'an on-demand host request is not JSON, misses a field or names no host',
  WEFT_DISCOVERY_DELTA_MISMATCH:
    'a delta push does not apply to the state the proxy holds (it asks for the whole config)',
  // global rate limits (weftd's POST /v1/ratelimit/check, pkg/ratelimit)
  WEFT_RATELIMIT_REQUEST_INVALID: 'a global rate-limit check body is not JSON or has an invalid field',
  WEFT_RATELIMIT_BACKEND: 'the global rate-limit store (Redis) failed or did not answer in time',
  WEFT_RATELIMIT_DISABLED: 'global rate limits are off: weftd has no --ratelimit-redis',
  // weftd (controlplane/)
  WEFT_WEFTD_CONFIG: 'weftd flags or mesh config file are invalid',
  WEFT_UNAUTHENTICATED: 'the bearer token is missing, invalid, expired or for another audience',
  WEFT_FORBIDDEN: "the token's identity may not ask for this namespace or pod",
  WEFT_POD_UNKNOWN: 'weftd does not know this pod (yet)',
  WEFT_TOKEN_REVIEW_FAILED: 'the API server could not review the token',
  // workload CA (weftd, controlplane/ca.ts)
  WEFT_CSR_INVALID: 'certificate signing request is invalid or not acceptable',
  WEFT_CA_NOT_READY: 'the workload CA has no usable root CA yet',
  // weftctl talking to a running mesh (cli/weftd.ts)
  WEFT_KUBECONFIG_MISSING: 'no kubeconfig to reach the cluster (or the named context is not in it)',
  // reaching the API server (pkg/kube/kubeconfig.ts)
  WEFT_KUBECONFIG_INVALID: 'the kubeconfig is unreadable, incomplete or uses a field weft does not support',
  WEFT_KUBE_AUTH_UNSUPPORTED:
    "the kubeconfig user authenticates with exec or auth-provider, which weft's daemons do not run",
  WEFT_MESH_NOT_INSTALLED: 'the weftd Service is not in the mesh namespace',
  WEFT_RBAC_DENIED: 'the API server refused a request weftctl needs (RBAC)',
  WEFT_WEFTD_UNREACHABLE: 'weftd is not ready or cannot be reached',
  WEFT_WEFTD_ANSWER: 'weftd answered with an error or something that is not its debug JSON',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class WeftError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message ?? ErrorCodes[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WeftError';
    this.code = code;
    this.details = options?.details;
  }

  /** `WEFT_YAML_SYNTAX: bad indentation at line 3` — the form used in CLI output and logs. */
  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

export function isWeftError(err: unknown, code?: ErrorCode): err is WeftError {
  return err instanceof WeftError && (code === undefined || err.code === code);
}

/** A message for any thrown value, without a stack trace. */
export function errorMessage(err: unknown): string {
  if (err instanceof WeftError) return err.toString();
  if (err instanceof Error) return err.message;
  return String(err);
}
