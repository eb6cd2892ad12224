/**
 * RateLimit (mesh.weft.dev/v1alpha1): weft's own rate-limit policy. It selects destination
 * workloads (a pod selector or a Service host in its namespace), optionally narrowed to ports,
 * path prefixes and methods; gives them a default budget (`requests` per `unit` or `interval`,
 * with `burst`); and lists per-source overrides, first match wins. `scope: local` is a token
 * bucket in each destination sidecar (the budget is per pod). `scope: global` (one budget across
 * all pods) keeps its buckets in weftd's Redis (ADR 0017); the webhook refuses it unless the mesh
 * enables the global backend (weftd --ratelimit-redis, webhook --global-ratelimits): nothing is
 * accepted and silently not enforced. A RateLimit whose selector (or targetHost) picks gateway
 * pods limits ingress on the gateway's listeners (`ports` are listener ports), typically per
 * client address (`sourceKey: {by: clientIP}`).
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { Duration, KubeObject, WorkloadSelector } from './common.js';
import { istioStatusSchema } from './common.js';
import {
  arr,
  duration,
  enumOf,
  int64,
  obj,
  str,
  strArr,
  strMap,
  uint32,
  workloadSelector,
} from './schema.js';

export type RateLimitUnit = 'second' | 'minute' | 'hour' | 'day';
export const RATE_LIMIT_UNIT_MS: Record<RateLimitUnit, number> = {
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};

export interface RateLimitBudgetSpec {
  requests: number;
  /** One of unit or interval; neither: per second. */
  unit?: RateLimitUnit;
  interval?: Duration;
  /** Bucket capacity (requests allowed at once); default `requests`. */
  burst?: number;
  /** `shared` (default): one bucket for every caller it applies to; `source`: one per caller. */
  per?: 'shared' | 'source';
}

export interface ValueMatch {
  name: string;
  /** Any of these values; absent: the header or claim is present. */
  values?: string[];
}

export interface RateLimitSource {
  /** `sa` (this namespace) or `namespace/sa`: the mTLS peer's service account. */
  serviceAccounts?: string[];
  /** The mTLS peer's namespace. */
  namespaces?: string[];
  /** SPIFFE principals as AuthorizationPolicy writes them (`*` prefix/suffix allowed). */
  principals?: string[];
  /**
   * Pods with these labels in the RateLimit's namespace (or in `namespaces`, if set), resolved by
   * weftd to their service accounts. Not any namespace: labels are anyone's to set.
   */
  workloadLabels?: Record<string, string>;
  /** A request header (forgeable by the caller: a convenience, not a security boundary). */
  header?: ValueMatch;
  /** A claim of the JWT verified by RequestAuthentication. */
  claim?: ValueMatch;
}

export interface RateLimitOverrideSpec {
  /** Shown in metrics, the access log and explain; default `overrides[i]`. */
  name?: string;
  source: RateLimitSource;
  limit: RateLimitBudgetSpec;
}

/**
 * `clientIP`: the downstream peer's address; at a gateway whose mesh sets
 * gatewayTopology.numTrustedProxies, the client address those proxies put in x-forwarded-for.
 */
export type RateLimitKeyBy = 'principal' | 'namespace' | 'clientIP' | 'header' | 'claim';

export interface RateLimitSpec {
  /** Default local. */
  scope?: 'local' | 'global';
  /** Destination pods in this namespace (one of selector / targetHost). */
  selector?: WorkloadSelector;
  /** A Service in this namespace: `ratings` or `ratings.<ns>.svc.<domain>`; its pods are limited. */
  targetHost?: string;
  /** Workload (container) ports; absent: every port. */
  ports?: number[];
  /** Path prefixes; absent: every path. */
  paths?: string[];
  methods?: string[];
  limit: RateLimitBudgetSpec;
  overrides?: RateLimitOverrideSpec[];
  /** How `per: source` buckets tell callers apart; default the mTLS principal. */
  sourceKey?: { by: RateLimitKeyBy; name?: string };
  /**
   * scope global only: what a request gets when weftd or Redis does not answer within the
   * sidecar's deadline. `allow` (default): fail open; `deny`: 429.
   */
  failureMode?: 'allow' | 'deny';
}

export type RateLimit = KubeObject<RateLimitSpec>;

const budgetSchema = (): JSONSchema =>
  obj(
    {
      requests: int64(),
      unit: enumOf('second', 'minute', 'hour', 'day'),
      interval: duration(),
      burst: int64(),
      per: enumOf('shared', 'source'),
    },
    { required: ['requests'], oneOf: [['unit', 'interval']] },
  );

const valueMatchSchema = (): JSONSchema =>
  obj({ name: str({ maxLength: 256 }), values: strArr() }, { required: ['name'] });

export const rateLimitSpecSchema = (): JSONSchema =>
  obj(
    {
      scope: enumOf('local', 'global'),
      selector: workloadSelector(),
      targetHost: str({ maxLength: 253 }),
      ports: arr(uint32()),
      paths: strArr(),
      methods: strArr(),
      limit: budgetSchema(),
      overrides: arr(
        obj(
          {
            name: str({ maxLength: 63 }),
            source: obj({
              serviceAccounts: strArr(),
              namespaces: strArr(),
              principals: strArr(),
              workloadLabels: strMap(),
              header: valueMatchSchema(),
              claim: valueMatchSchema(),
            }),
            limit: budgetSchema(),
          },
          { required: ['source', 'limit'] },
        ),
      ),
      sourceKey: obj(
        {
          by: enumOf('principal', 'namespace', 'clientIP', 'header', 'claim'),
          name: str({ maxLength: 256 }),
        },
        { required: ['by'] },
      ),
      failureMode: enumOf('allow', 'deny'),
    },
    { required: ['limit'], oneOf: [['selector', 'targetHost']] },
  );

export const rateLimitKind: KindDefinition = {
  group: 'mesh.weft.dev',
  kind: 'RateLimit',
  plural: 'ratelimits',
  singular: 'ratelimit',
  listKind: 'RateLimitList',
  shortNames: ['rl'],
  categories: ['weft'],
  scope: 'Namespaced',
  versions: ['v1alpha1'],
  storageVersion: 'v1alpha1',
  printerColumns: [
    { name: 'Scope', type: 'string', jsonPath: '.spec.scope' },
    { name: 'Requests', type: 'integer', jsonPath: '.spec.limit.requests' },
    { name: 'Unit', type: 'string', jsonPath: '.spec.limit.unit' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  specSchema: rateLimitSpecSchema(),
  statusSchema: istioStatusSchema(),
};
