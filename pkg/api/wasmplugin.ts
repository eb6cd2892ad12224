/**
 * WasmPlugin (extensions.istio.io/v1alpha1): a WebAssembly filter loaded into Istio's Envoy
 * proxies. weft's proxy does not run Wasm; the kind is served and validated so Istio YAML
 * applies, and every one is answered with a warning (pkg/api/not-enforced.ts).
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { KubeObject, PolicyTargetReference, WorkloadSelector } from './common.js';
import { istioStatusSchema } from './common.js';
import { arr, enumOf, int32, obj, openObject, policyTargetRef, str, workloadSelector } from './schema.js';

export interface WasmPluginSpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  url: string;
  sha256?: string;
  imagePullPolicy?: 'UNSPECIFIED_POLICY' | 'IfNotPresent' | 'Always';
  imagePullSecret?: string;
  verificationKey?: string;
  pluginConfig?: Record<string, unknown>;
  pluginName?: string;
  phase?: 'UNSPECIFIED_PHASE' | 'AUTHN' | 'AUTHZ' | 'STATS';
  priority?: number | null;
  failStrategy?: 'FAIL_CLOSE' | 'FAIL_OPEN' | 'FAIL_RELOAD';
  vmConfig?: { env?: { name: string; value?: string; valueFrom?: 'INLINE' | 'HOST' }[] };
  match?: { mode?: string; ports?: { number: number }[] }[];
  type?: 'UNSPECIFIED_PLUGIN_TYPE' | 'HTTP' | 'NETWORK';
}

export type WasmPlugin = KubeObject<WasmPluginSpec>;

export const wasmPluginSpecSchema = (): JSONSchema =>
  obj(
    {
      selector: workloadSelector(),
      targetRef: policyTargetRef(),
      targetRefs: arr(policyTargetRef(), { maxItems: 16 }),
      url: str({ minLength: 1 }),
      sha256: str({ pattern: '(^$|^[a-f0-9]{64}$)' }),
      imagePullPolicy: enumOf('UNSPECIFIED_POLICY', 'IfNotPresent', 'Always'),
      imagePullSecret: str({ minLength: 1, maxLength: 253 }),
      verificationKey: str(),
      pluginConfig: openObject(),
      pluginName: str({ minLength: 1, maxLength: 256 }),
      phase: enumOf('UNSPECIFIED_PHASE', 'AUTHN', 'AUTHZ', 'STATS'),
      priority: int32({ nullable: true }),
      failStrategy: enumOf('FAIL_CLOSE', 'FAIL_OPEN', 'FAIL_RELOAD'),
      vmConfig: obj({
        env: arr(
          obj(
            {
              name: str({ minLength: 1, maxLength: 256 }),
              value: str({ maxLength: 2048 }),
              valueFrom: enumOf('INLINE', 'HOST'),
            },
            { required: ['name'] },
          ),
          { maxItems: 256, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] },
        ),
      }),
      match: arr(
        obj({
          mode: enumOf('UNDEFINED', 'CLIENT', 'SERVER', 'CLIENT_AND_SERVER'),
          ports: arr(obj({ number: int32({ minimum: 1, maximum: 65535 }) }, { required: ['number'] }), {
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['number'],
          }),
        }),
      ),
      type: enumOf('UNSPECIFIED_PLUGIN_TYPE', 'HTTP', 'NETWORK'),
    },
    { required: ['url'], oneOf: [['selector', 'targetRef', 'targetRefs']] },
  );

export const wasmPluginKind: KindDefinition = {
  group: 'extensions.istio.io',
  kind: 'WasmPlugin',
  plural: 'wasmplugins',
  singular: 'wasmplugin',
  listKind: 'WasmPluginList',
  shortNames: [],
  categories: ['istio-io', 'extensions-istio-io'],
  scope: 'Namespaced',
  versions: ['v1alpha1'],
  storageVersion: 'v1alpha1',
  printerColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
  specSchema: wasmPluginSpecSchema(),
  statusSchema: istioStatusSchema(),
};
