/**
 * `weft operator certs`: the operator's certificate step run once, for the standalone overlays
 * (config/controlplane, config/webhook) that install weftd or the webhook without the operator.
 * It issues exactly what the operator would for the default Mesh — the root CA in
 * weft-system/weft-root-ca, weftd-tls and weft-webhook-tls signed by it — keeps whatever is
 * still valid (planCertificates decides), and writes the root into the caBundle of weft's webhook
 * configurations when they exist. Run at install by a Job and daily by a CronJob (renewal), it is
 * idempotent: a second run with valid certificates changes nothing.
 *
 * One certificate logic for both paths: a cluster that later gets the operator keeps these
 * Secrets (same names, same labels), and the operator takes over their renewal.
 */
import type { KubeClient } from '../pkg/kube/client.js';
import type { KubeObject } from '../pkg/kube/types.js';
import type { Logger } from '../pkg/log/index.js';
import { MUTATING_WEBHOOK_NAME, VALIDATING_WEBHOOK_NAME } from '../pkg/render/cluster.js';
import { effectiveSpec } from '../pkg/render/index.js';
import { planCertificates } from './certificates.js';

export const CERTS_FIELD_MANAGER = 'weft-certs';
const WEBHOOK_CONFIGS = [
  { kind: 'ValidatingWebhookConfiguration', name: VALIDATING_WEBHOOK_NAME },
  { kind: 'MutatingWebhookConfiguration', name: MUTATING_WEBHOOK_NAME },
] as const;

export interface CertsOnceResult {
  /** Secrets (re)issued by this run, with why. */
  issued: { secret: string; reason: string }[];
  /** Webhook configurations whose caBundle this run changed. */
  patched: string[];
}

interface WebhookEntry {
  name?: string;
  clientConfig?: { caBundle?: string };
}

/** JSON-patch ops that set caBundle on every webhook of a configuration that lacks this one. */
export function caBundleOps(config: KubeObject, caBundle: string): unknown[] {
  const hooks = (config as { webhooks?: WebhookEntry[] }).webhooks ?? [];
  const ops: unknown[] = [];
  hooks.forEach((h, i) => {
    if (h.clientConfig?.caBundle === caBundle) return;
    // `test` guards against the list changing between our read and our write.
    ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: h.name });
    ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle });
  });
  return ops;
}

export async function issueCertificatesOnce(
  client: KubeClient,
  log: Logger,
  now = new Date(),
): Promise<CertsOnceResult> {
  const read = (namespace: string, name: string): Promise<KubeObject | null> =>
    client.get({ apiVersion: 'v1', kind: 'Secret', namespace, name });
  const result = await planCertificates('default', effectiveSpec(undefined), read, now);
  if (!result.ok) throw new Error(`${result.reason}: ${result.message}`);
  const { plan } = result;
  const reissued = new Set(plan.issued.map((i) => i.secret));
  for (const secret of plan.secrets) {
    if (!reissued.has(secret.metadata.name)) continue;
    await client.apply(secret, CERTS_FIELD_MANAGER, true);
  }
  for (const i of plan.issued) log.info('Issued certificate', { secret: i.secret, reason: i.reason });
  const patched: string[] = [];
  for (const ref of WEBHOOK_CONFIGS) {
    const key = { apiVersion: 'admissionregistration.k8s.io/v1', kind: ref.kind, name: ref.name };
    // Absent with config/controlplane alone: nothing to patch.
    const live = await client.get(key);
    if (!live) continue;
    const ops = caBundleOps(live, plan.caBundle);
    if (ops.length === 0) continue;
    await client.jsonPatch(key, ops, undefined, CERTS_FIELD_MANAGER);
    patched.push(`${ref.kind}/${ref.name}`);
    log.info('Set the webhook caBundle', { configuration: ref.name });
  }
  return { issued: plan.issued, patched };
}
