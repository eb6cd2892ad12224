/**
 * Gateway (networking.istio.io): a load balancer at the edge of the mesh and the ports, hosts
 * and TLS settings it exposes. Selected pods run weft's proxy in gateway mode.
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { KubeObject } from './common.js';
import { istioStatusSchema } from './common.js';
import { arr, bool, enumOf, obj, str, strArr, strMap, uint32 } from './schema.js';

export interface Port {
  number: number;
  protocol: string;
  name: string;
  targetPort?: number;
}

export type ServerTLSMode =
  'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';
export type TLSProtocol = 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';

export interface ServerTLSSettings {
  httpsRedirect?: boolean;
  mode?: ServerTLSMode;
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  caCrl?: string;
  credentialName?: string;
  /** For MUTUAL/OPTIONAL_MUTUAL: the Secret or ConfigMap with the client CA certificates. */
  caCertCredentialName?: string;
  credentialNames?: string[];
  tlsCertificates?: { serverCertificate?: string; privateKey?: string; caCertificates?: string }[];
  subjectAltNames?: string[];
  verifyCertificateSpki?: string[];
  verifyCertificateHash?: string[];
  minProtocolVersion?: TLSProtocol;
  maxProtocolVersion?: TLSProtocol;
  cipherSuites?: string[];
}

export interface Server {
  port: Port;
  bind?: string;
  hosts: string[];
  tls?: ServerTLSSettings;
  defaultEndpoint?: string;
  name?: string;
}

export interface GatewaySpec {
  servers?: Server[];
  selector?: Record<string, string>;
}

export type Gateway = KubeObject<GatewaySpec>;

const tlsProtocol = (): JSONSchema => enumOf('TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3');

export const serverTLSSchema = (): JSONSchema =>
  obj({
    httpsRedirect: bool(),
    mode: enumOf('PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'),
    serverCertificate: str(),
    privateKey: str(),
    caCertificates: str(),
    caCrl: str(),
    credentialName: str(),
    caCertCredentialName: str(),
    credentialNames: arr(str(), { maxItems: 2, minItems: 1 }),
    tlsCertificates: arr(obj({ serverCertificate: str(), privateKey: str(), caCertificates: str() }), {
      maxItems: 2,
      minItems: 1,
    }),
    subjectAltNames: strArr(),
    verifyCertificateSpki: strArr(),
    verifyCertificateHash: strArr(),
    minProtocolVersion: tlsProtocol(),
    maxProtocolVersion: tlsProtocol(),
    cipherSuites: strArr(),
  });

export const portSchema = (): JSONSchema =>
  obj(
    { number: uint32(), protocol: str(), name: str(), targetPort: uint32() },
    { required: ['number', 'protocol', 'name'] },
  );

export const gatewaySpecSchema = (): JSONSchema =>
  obj({
    servers: arr(
      obj(
        {
          port: portSchema(),
          bind: str(),
          hosts: strArr(),
          tls: serverTLSSchema(),
          defaultEndpoint: str(),
          name: str(),
        },
        { required: ['port', 'hosts'] },
      ),
    ),
    selector: strMap(),
  });

export const gatewayKind: KindDefinition = {
  group: 'networking.istio.io',
  kind: 'Gateway',
  plural: 'gateways',
  singular: 'gateway',
  listKind: 'GatewayList',
  shortNames: ['gw'],
  categories: ['istio-io', 'networking-istio-io'],
  scope: 'Namespaced',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  storageVersion: 'v1',
  printerColumns: [],
  specSchema: gatewaySpecSchema(),
  statusSchema: istioStatusSchema(),
};
