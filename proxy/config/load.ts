/**
 * Reads a config file for standalone mode. Two forms are accepted:
 *  - the proxy's own model: one document with `kind: ProxyConfig` (JSON or YAML);
 *  - plain Istio YAML (ServiceEntry, VirtualService, DestinationRule, multi-document), exactly
 *    what a user would apply to a cluster; each object is validated with weft's validation
 *    engine and then translated. A `Mesh` (mesh.weft.dev) document may set
 *    `spec.pathNormalization` (Istio's meshConfig shape); its other fields are the operator's.
 * Any problem throws WEFT_PROXY_CONFIG_INVALID (or a more specific code) listing every problem,
 * so the caller can reject the file and keep the last good config.
 */
import { readFile, stat } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { WeftError } from '../../pkg/errors/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { validateProxyConfig } from '../../pkg/proxyconfig/validate.js';
import { translate, type TranslateInput } from '../../pkg/translate/index.js';
import type { LocalityLbPolicy } from '../../pkg/translate/locality.js';
import { validateObject, objectRef, formatFinding } from '../../pkg/validation/index.js';
import type { DestinationRule, Mesh, ServiceEntry, VirtualService } from '../../pkg/api/index.js';
import type { WorkloadEntry } from '../../pkg/api/workloadentry.js';

export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
const IGNORED_KINDS = new Set(['Gateway', 'Sidecar', 'PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'Telemetry']);

export interface LoadedConfig {
  config: ProxyConfig;
  warnings: string[];
  /** 'proxy' or 'istio'. */
  form: 'proxy' | 'istio';
}

function parseDocs(text: string, file: string): unknown[] {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const d of list) {
    if (d.errors.length > 0) {
      const e = d.errors[0]!;
      throw new WeftError('WEFT_YAML_SYNTAX', `${file}: ${e.message.split('\n')[0]!}`);
    }
    const v: unknown = d.toJS({ maxAliasCount: 100 });
    if (v === null || v === undefined) continue;
    // a `kind: List` (kubectl get -o yaml) unwraps to its items
    if (typeof v === 'object' && (v as { kind?: unknown }).kind === 'List' && Array.isArray((v as { items?: unknown }).items)) out.push(...((v as { items: unknown[] }).items));
    else out.push(v);
  }
  return out;
}

export function configFromText(text: string, file = 'config', telemetry?: ProxyConfig['telemetry']): LoadedConfig {
  const docs = parseDocs(text, file);
  if (docs.length === 0) throw new WeftError('WEFT_PROXY_CONFIG_INVALID', `${file}: no documents`);
  const first = docs[0] as { kind?: unknown };
  if (docs.length === 1 && first.kind === 'ProxyConfig') {
    const problems = validateProxyConfig(first);
    if (problems.length > 0) {
      throw new WeftError('WEFT_PROXY_CONFIG_INVALID', `${file}: ${problems.length} problem(s):\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`, { details: { problems } });
    }
    return { config: first as ProxyConfig, warnings: [], form: 'proxy' };
  }
  return fromIstio(docs, file, telemetry);
}

function fromIstio(docs: unknown[], file: string, telemetry?: ProxyConfig['telemetry']): LoadedConfig {
  const errors: string[] = [];
  const warnings: string[] = [];
  const input: Required<Pick<TranslateInput, 'virtualServices' | 'destinationRules' | 'serviceEntries' | 'workloadEntries'>> & Pick<TranslateInput, 'pathNormalization' | 'proxyHeaders'> = { virtualServices: [], destinationRules: [], serviceEntries: [], workloadEntries: [] };
  docs.forEach((doc, i) => {
    const ref = objectRef(doc);
    if (IGNORED_KINDS.has(ref.kind)) {
      warnings.push(`document ${i + 1}: ${ref.kind} ${ref.name} is not used in standalone mode`);
      return;
    }
    const result = validateObject(doc);
    for (const f of result.errors) errors.push(formatFinding(ref, f));
    for (const f of result.warnings) warnings.push(formatFinding(ref, f));
    if (result.errors.length > 0) return;
    if (ref.kind === 'Mesh') {
      // the mesh-wide settings a standalone proxy honours (the rest is for the operator)
      if (input.pathNormalization !== undefined) errors.push(`document ${i + 1}: a second Mesh (only one is allowed)`);
      input.pathNormalization = (doc as Mesh).spec?.pathNormalization ?? {};
      const ph = (doc as Mesh).spec?.defaultConfig?.proxyHeaders;
      if (ph !== undefined) input.proxyHeaders = ph;
    } else if (ref.kind === 'VirtualService') input.virtualServices.push(doc as VirtualService);
    else if (ref.kind === 'DestinationRule') input.destinationRules.push(doc as DestinationRule);
    else if (ref.kind === 'ServiceEntry') input.serviceEntries.push(doc as ServiceEntry);
    else if (ref.kind === 'WorkloadEntry') input.workloadEntries.push(doc as WorkloadEntry);
    else warnings.push(`document ${i + 1}: ${ref.kind} ${ref.name} is not used by the proxy`);
  });
  if (errors.length > 0) {
    throw new WeftError('WEFT_PROXY_CONFIG_INVALID', `${file}: ${errors.length} invalid field(s):\n${errors.map((e) => `  ${e}`).join('\n')}`, { details: { errors } });
  }
  if (input.serviceEntries.length === 0) warnings.push(`${file}: no ServiceEntry: standalone mode has no services to route to`);
  const t = translate({ ...input, ...(telemetry ? { telemetry } : {}) });
  const problems = validateProxyConfig(t.config);
  if (problems.length > 0) {
    throw new WeftError('WEFT_PROXY_CONFIG_INVALID', `${file}: translated config is invalid:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`);
  }
  return { config: t.config, warnings: [...warnings, ...t.warnings, ...localityWarnings(t.localityLb)], form: 'istio' };
}

/**
 * A standalone proxy runs outside Kubernetes, so it has no locality to rank endpoints from: a
 * DestinationRule's explicit localityLbSetting cannot apply, and says so (no silent no-op).
 */
function localityWarnings(policies: Record<string, LocalityLbPolicy> | undefined): string[] {
  return Object.entries(policies ?? {})
    .filter(([, p]) => p.distribute !== undefined || p.failover !== undefined || p.failoverPriority !== undefined)
    .map(
      ([cluster]) =>
        `cluster ${cluster}: localityLbSetting is not applied in standalone mode (the proxy has no locality); every endpoint is used alike`,
    );
}

export async function loadConfigFile(file: string, telemetry?: ProxyConfig['telemetry']): Promise<LoadedConfig> {
  let text: string;
  try {
    const st = await stat(file);
    if (st.size > MAX_CONFIG_BYTES) throw new WeftError('WEFT_INPUT_TOO_LARGE', `${file}: ${st.size} bytes is over the ${MAX_CONFIG_BYTES}-byte limit`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof WeftError) throw err;
    throw new WeftError('WEFT_INPUT_UNREADABLE', `${file}: ${(err as Error).message}`, { cause: err });
  }
  return configFromText(text, file, telemetry);
}
