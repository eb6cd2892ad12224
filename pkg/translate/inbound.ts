/**
 * A sidecar's `inbound` block: the mTLS mode per workload port (PeerAuthentication, resolved by
 * peerauth.ts) and, for each port a Service of the pod's namespace targets, the declared protocol
 * and the Service host its metrics carry as `destination_service`.
 *
 * Protocols, as Istio selects them (appProtocol, then the port-name prefix): HTTP, HTTP_PROXY,
 * GRPC-WEB, GRPC and HTTP2 go to the HTTP hop (HTTP/1.x or HTTP/2, whichever the client speaks:
 * proxy/h2/downstream.ts); every other declared protocol is piped as TCP; an undeclared port is
 * sniffed. Services that disagree about one target port leave it sniffed.
 */
import type { PeerAuthentication } from '../api/peerauthentication.js';
import type { Inbound, InboundPort, PeerMode } from '../proxyconfig/types.js';
import type { ServiceRecord } from './index.js';
import { declaredProtocol, type KubeService } from './kube.js';
import { resolvePeerAuthentication } from './peerauth.js';

export interface InboundInput {
  pod: { namespace: string; labels: Record<string, string>; ip?: string };
  /** Services of the pod's namespace (others are skipped anyway). */
  kubeServices: readonly KubeService[];
  peerAuthentications: readonly PeerAuthentication[];
  rootNamespace: string;
  meshMode: PeerMode;
  domainSuffix: string;
  /** For named targetPorts: the Service's record (its EndpointSlice ports per address). */
  serviceByHost?: (host: string) => ServiceRecord | undefined;
}

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP_PROXY', 'GRPC-WEB', 'GRPC', 'HTTP2']);
/** Declared HTTP/2: the app is spoken to in HTTP/2 when the client spoke it. */
const HTTP2_PROTOCOLS = new Set(['GRPC', 'HTTP2', 'GRPC-WEB']);

function inboundProtocol(declared: string | undefined): 'HTTP' | 'TCP' | undefined | null {
  if (declared === undefined) return undefined;
  if (declared === 'UDP' || declared === 'SCTP') return null; // never reaches the TCP capture
  return HTTP_PROTOCOLS.has(declared) ? 'HTTP' : 'TCP';
}

function selectsPod(svc: KubeService, pod: InboundInput['pod']): boolean {
  const selector = svc.spec?.selector ?? {};
  if ((svc.metadata.namespace ?? 'default') !== pod.namespace || Object.keys(selector).length === 0)
    return false;
  return Object.entries(selector).every(([k, v]) => pod.labels[k] === v);
}

/** The pod port a Service port lands on; a named targetPort through the EndpointSlice of the pod's IP. */
function targetPort(
  svc: KubeService,
  p: NonNullable<NonNullable<KubeService['spec']>['ports']>[number],
  host: string,
  input: InboundInput,
): number | undefined {
  if (p.targetPort === undefined) return p.port;
  if (typeof p.targetPort === 'number') return p.targetPort;
  if (input.pod.ip === undefined || input.serviceByHost === undefined) return undefined;
  const ep = input.serviceByHost(host)?.endpoints.find((e) => e.address === input.pod.ip);
  return ep?.ports?.[p.name ?? ''];
}

interface PortFacts {
  protocols: Set<'HTTP' | 'TCP' | undefined>;
  /** Every Service declares it GRPC, HTTP2 or GRPC-WEB (a gRPC server behind the gRPC-Web bridge). */
  http2?: boolean;
  service?: string;
}

function declaredPorts(input: InboundInput): Map<number, PortFacts> {
  const out = new Map<number, PortFacts>();
  const sorted = [...input.kubeServices].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const svc of sorted) {
    if (!selectsPod(svc, input.pod)) continue;
    const host = `${svc.metadata.name}.${input.pod.namespace}.svc.${input.domainSuffix}`;
    for (const p of svc.spec?.ports ?? []) {
      const protocol = inboundProtocol(declaredProtocol(p));
      const port = targetPort(svc, p, host, input);
      if (protocol === null || port === undefined) continue;
      const facts = out.get(port) ?? { protocols: new Set() };
      const h2 = HTTP2_PROTOCOLS.has(declaredProtocol(p) ?? '');
      facts.http2 = facts.protocols.size === 0 ? h2 : facts.http2 === true && h2;
      facts.protocols.add(protocol);
      facts.service ??= host;
      out.set(port, facts);
    }
  }
  return out;
}

export function inboundFor(input: InboundInput): Inbound {
  const pa = resolvePeerAuthentication(input.peerAuthentications, input.pod, {
    rootNamespace: input.rootNamespace,
    meshMode: input.meshMode,
  });
  const ports = new Map<number, InboundPort>();
  for (const [port, facts] of declaredPorts(input)) {
    const declared = [...facts.protocols].filter((x) => x !== undefined);
    const entry: InboundPort = { port };
    if (declared.length > 0 && declared.every((x) => x === declared[0])) entry.protocol = declared[0]!;
    if (entry.protocol === 'HTTP' && facts.http2 === true) entry.http2 = true;
    if (facts.service !== undefined) entry.service = facts.service;
    ports.set(port, entry);
  }
  for (const [key, decision] of Object.entries(pa.ports)) {
    const port = Number(key);
    ports.set(port, { ...(ports.get(port) ?? { port }), mtls: decision });
  }
  const list = [...ports.values()].sort((a, b) => a.port - b.port);
  return { mtls: { mode: pa.mode, policy: pa.policy }, ...(list.length > 0 ? { ports: list } : {}) };
}
