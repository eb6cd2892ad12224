/**
 * VirtualService (networking.istio.io): routing rules for traffic addressed to a set of hosts.
 * Field names and nesting follow Istio's API reference exactly.
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { Duration, KubeObject, Percent, PortSelector, StringMatch } from './common.js';
import {
  istioStatusSchema,
  percentSchema,
  portSelectorSchema,
  stringMatchMapSchema,
  stringMatchSchema,
} from './common.js';
import { arr, bool, duration, enumOf, int32, obj, str, strArr, strMap, uint32 } from './schema.js';

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  withoutHeaders?: Record<string, StringMatch>;
  sourceNamespace?: string;
  statPrefix?: string;
}

export interface HTTPRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: Headers;
}

export interface RouteDestination {
  destination: Destination;
  weight?: number;
}

export interface HTTPRedirect {
  uri?: string;
  /** Replaces the matched prefix of the path (every `match.uri` must then be a prefix match). */
  prefixRewrite?: string;
  authority?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  redirectCode?: number;
}

export interface HTTPBody {
  string?: string;
  /** base64 */
  bytes?: string;
}

export interface HTTPDirectResponse {
  status: number;
  body?: HTTPBody;
}

export interface Delegate {
  name?: string;
  namespace?: string;
}

export interface RegexRewrite {
  match?: string;
  rewrite?: string;
}

export interface HTTPRewrite {
  uri?: string;
  authority?: string;
  uriRegexRewrite?: RegexRewrite;
}

export interface HTTPRetry {
  attempts?: number;
  perTryTimeout?: Duration;
  retryOn?: string;
  retryRemoteLocalities?: boolean;
  /** Istio's default is true (a retry avoids the hosts already tried). */
  retryIgnorePreviousHosts?: boolean;
  backoff?: Duration;
}

export interface HTTPFaultInjectionDelay {
  fixedDelay?: Duration;
  exponentialDelay?: Duration;
  percentage?: Percent;
  /** Deprecated integer percentage. */
  percent?: number;
}

/** gRPC status names in code order (`UNAVAILABLE` is 14): what `abort.grpcStatus` accepts. */
export const GRPC_CODE_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

export interface HTTPFaultInjectionAbort {
  httpStatus?: number;
  grpcStatus?: string;
  http2Error?: string;
  percentage?: Percent;
}

export interface HTTPFaultInjection {
  delay?: HTTPFaultInjectionDelay;
  abort?: HTTPFaultInjectionAbort;
}

export interface HTTPMirrorPolicy {
  destination: Destination;
  percentage?: Percent;
}

export interface CorsPolicy {
  allowOrigins?: StringMatch[];
  /** Deprecated. */
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: Duration;
  allowCredentials?: boolean;
  unmatchedPreflights?: 'UNSPECIFIED' | 'FORWARD' | 'IGNORE';
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  delegate?: Delegate;
  rewrite?: HTTPRewrite;
  timeout?: Duration;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrors?: HTTPMirrorPolicy[];
  /** Deprecated. */
  mirrorPercent?: number;
  /** The same deprecated field under its protobuf name (Istio's CRD lists both spellings). */
  mirror_percent?: number;
  mirrorPercentage?: Percent;
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}

export interface TLSMatchAttributes {
  sniHosts: string[];
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

export interface TLSRoute {
  match: TLSMatchAttributes[];
  route?: RouteDestination[];
}

export interface L4MatchAttributes {
  destinationSubnets?: string[];
  port?: number;
  sourceSubnet?: string;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

export interface TCPRoute {
  match?: L4MatchAttributes[];
  route?: RouteDestination[];
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: TLSRoute[];
  tcp?: TCPRoute[];
  exportTo?: string[];
}

export type VirtualService = KubeObject<VirtualServiceSpec>;

// ---- schema -------------------------------------------------------------------------------

export const destinationSchema = (): JSONSchema =>
  obj({ host: str(), subset: str(), port: portSelectorSchema() }, { required: ['host'] });

const headerOpsSchema = (): JSONSchema => obj({ set: strMap(), add: strMap(), remove: strArr() });
export const headersSchema = (): JSONSchema =>
  obj({ request: headerOpsSchema(), response: headerOpsSchema() });

const httpMatchSchema = (): JSONSchema =>
  obj({
    name: str(),
    uri: stringMatchSchema(),
    scheme: stringMatchSchema(),
    method: stringMatchSchema(),
    authority: stringMatchSchema(),
    headers: stringMatchMapSchema(),
    port: uint32(),
    sourceLabels: strMap(),
    gateways: strArr(),
    queryParams: stringMatchMapSchema(),
    ignoreUriCase: bool(),
    withoutHeaders: stringMatchMapSchema(),
    sourceNamespace: str(),
    statPrefix: str(),
  });

const routeDestinationSchema = (withHeaders: boolean): JSONSchema =>
  obj(
    {
      destination: destinationSchema(),
      weight: int32(),
      ...(withHeaders ? { headers: headersSchema() } : {}),
    },
    { required: ['destination'] },
  );

const httpRouteSchema = (): JSONSchema =>
  obj({
    name: str(),
    match: arr(httpMatchSchema()),
    route: arr(routeDestinationSchema(true)),
    redirect: obj(
      {
        uri: str(),
        prefixRewrite: str(),
        authority: str(),
        port: uint32(),
        derivePort: enumOf('FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'),
        scheme: str(),
        redirectCode: uint32(),
      },
      { oneOf: [['port', 'derivePort']] },
    ),
    directResponse: obj(
      {
        status: uint32(),
        body: obj({ string: str(), bytes: str() }, { oneOf: [['string', 'bytes']] }),
      },
      { required: ['status'] },
    ),
    delegate: obj({ name: str(), namespace: str() }),
    rewrite: obj({ uri: str(), authority: str(), uriRegexRewrite: obj({ match: str(), rewrite: str() }) }),
    timeout: duration(),
    retries: obj({
      attempts: int32(),
      perTryTimeout: duration(),
      retryOn: str(),
      retryRemoteLocalities: { type: 'boolean', nullable: true },
      retryIgnorePreviousHosts: { type: 'boolean', nullable: true },
      backoff: duration(),
    }),
    fault: obj({
      delay: obj(
        {
          fixedDelay: duration(),
          exponentialDelay: duration(),
          percentage: percentSchema(),
          percent: int32(),
        },
        { oneOf: [['fixedDelay', 'exponentialDelay']] },
      ),
      abort: obj(
        { httpStatus: int32(), grpcStatus: str(), http2Error: str(), percentage: percentSchema() },
        { oneOf: [['httpStatus', 'grpcStatus', 'http2Error']] },
      ),
    }),
    mirror: destinationSchema(),
    mirrors: arr(
      obj({ destination: destinationSchema(), percentage: percentSchema() }, { required: ['destination'] }),
    ),
    mirrorPercent: { type: 'integer', minimum: 0, maximum: 4294967295, nullable: true },
    mirror_percent: { type: 'integer', minimum: 0, maximum: 4294967295, nullable: true },
    mirrorPercentage: percentSchema(),
    corsPolicy: obj({
      allowOrigins: arr(stringMatchSchema()),
      allowOrigin: strArr(),
      allowMethods: strArr(),
      allowHeaders: strArr(),
      exposeHeaders: strArr(),
      maxAge: duration(),
      allowCredentials: { type: 'boolean', nullable: true },
      unmatchedPreflights: enumOf('UNSPECIFIED', 'FORWARD', 'IGNORE'),
    }),
    headers: headersSchema(),
  });

const tlsRouteSchema = (): JSONSchema =>
  obj(
    {
      match: arr(
        obj(
          {
            sniHosts: strArr(),
            destinationSubnets: strArr(),
            port: uint32(),
            sourceLabels: strMap(),
            gateways: strArr(),
            sourceNamespace: str(),
          },
          { required: ['sniHosts'] },
        ),
      ),
      route: arr(routeDestinationSchema(false)),
    },
    { required: ['match'] },
  );

const tcpRouteSchema = (): JSONSchema =>
  obj({
    match: arr(
      obj({
        destinationSubnets: strArr(),
        port: uint32(),
        sourceSubnet: str(),
        sourceLabels: strMap(),
        gateways: strArr(),
        sourceNamespace: str(),
      }),
    ),
    route: arr(routeDestinationSchema(false)),
  });

export const virtualServiceSpecSchema = (): JSONSchema =>
  obj({
    hosts: strArr(),
    gateways: strArr(),
    http: arr(httpRouteSchema()),
    tls: arr(tlsRouteSchema()),
    tcp: arr(tcpRouteSchema()),
    exportTo: strArr(),
  });

export const virtualServiceKind: KindDefinition = {
  group: 'networking.istio.io',
  kind: 'VirtualService',
  plural: 'virtualservices',
  singular: 'virtualservice',
  listKind: 'VirtualServiceList',
  shortNames: ['vs'],
  categories: ['istio-io', 'networking-istio-io'],
  scope: 'Namespaced',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  storageVersion: 'v1',
  printerColumns: [
    {
      name: 'Gateways',
      type: 'string',
      jsonPath: '.spec.gateways',
      description: 'The names of gateways and sidecars that should apply these routes',
    },
    {
      name: 'Hosts',
      type: 'string',
      jsonPath: '.spec.hosts',
      description: 'The destination hosts to which traffic is being sent',
    },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  specSchema: virtualServiceSpecSchema(),
  statusSchema: istioStatusSchema(),
};
