/** Proxy configs for integration suites that terminate TLS at a gateway (proxy/gateway-tls.ts). */
import type { CertPem } from '../../hack/cluster/pki.js';
import {
  PROXY_CONFIG_API_VERSION,
  type Cluster,
  type GatewayTlsServer,
  type ProxyConfig,
  type VirtualHost,
} from '../../pkg/proxyconfig/types.js';

export interface GatewayTlsSpec {
  servers: GatewayTlsServer[];
  virtualHosts: VirtualHost[];
  clusters: Cluster[];
  /** The certificates the servers' `credentialName`s name (as from Secrets `istio-system/<name>`). */
  certs: Record<string, CertPem>;
}

/** One edge listener (port 0: startProxy binds an ephemeral one) terminating TLS with `servers`. */
export function gatewayTlsConfig(spec: GatewayTlsSpec): ProxyConfig {
  return {
    apiVersion: PROXY_CONFIG_API_VERSION,
    kind: 'ProxyConfig',
    version: 'v1',
    listeners: [
      {
        name: 'gateway-443',
        protocol: 'HTTP',
        port: 0,
        edge: true,
        tls: { servers: spec.servers },
        virtualHosts: spec.virtualHosts,
      },
    ],
    clusters: spec.clusters,
    credentials: Object.fromEntries(
      Object.entries(spec.certs).map(([name, c]) => [
        name,
        { source: `istio-system/${name}`, certChain: c.certPem, privateKey: c.keyPem },
      ]),
    ),
  };
}
