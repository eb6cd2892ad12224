/**
 * ProxyConfig (networking.istio.io/v1beta1): per-workload proxy settings (worker threads,
 * environment variables, image type). Not Istio's meshConfig.defaultConfig, and unrelated to
 * weft's own proxy config model (pkg/proxyconfig). Served and validated so Istio YAML applies;
 * weft does not apply it yet (pkg/api/not-enforced.ts).
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { KubeObject, WorkloadSelector } from './common.js';
import { istioStatusSchema } from './common.js';
import { int32, map, obj, str, workloadSelector } from './schema.js';

export interface IstioProxyConfigSpec {
  selector?: WorkloadSelector;
  concurrency?: number | null;
  environmentVariables?: Record<string, string>;
  image?: { imageType?: string };
}

export type IstioProxyConfig = KubeObject<IstioProxyConfigSpec>;

export const istioProxyConfigSpecSchema = (): JSONSchema =>
  obj({
    selector: workloadSelector(),
    concurrency: int32({ minimum: 0, nullable: true }),
    environmentVariables: map(str({ maxLength: 2048 })),
    image: obj({ imageType: str() }),
  });

export const istioProxyConfigKind: KindDefinition = {
  group: 'networking.istio.io',
  kind: 'ProxyConfig',
  plural: 'proxyconfigs',
  singular: 'proxyconfig',
  listKind: 'ProxyConfigList',
  shortNames: [],
  categories: ['istio-io', 'networking-istio-io'],
  scope: 'Namespaced',
  versions: ['v1beta1'],
  storageVersion: 'v1beta1',
  printerColumns: [],
  specSchema: istioProxyConfigSpecSchema(),
  statusSchema: istioStatusSchema(),
};
