/**
 * Registers a locally running admission webhook server with the test cluster (URL-based
 * clientConfig + caBundle, as envtest does: the API server cannot reach Services here) and
 * waits until the API server actually calls it.
 *
 * "Takes effect" is observed, not guessed: the configuration carries one extra sentinel
 * webhook, first in line, that only matches a dry-run ConfigMap labelled for this probe and is
 * served by a throwaway HTTPS server that denies it. The API server loads a configuration as
 * one object, so once the sentinel's denial comes back, the caller's webhooks are live too.
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  type V1LabelSelector,
  type V1MutatingWebhook,
  type V1RuleWithOperations,
  type V1ValidatingWebhook,
} from '@kubernetes/client-node';
import { WeftError } from '../../pkg/errors/index.js';
import { makeServingCert } from './certs.js';
import { apiErrorCode, apiErrorMessage, testCluster } from './cluster.js';
import { onCleanup } from './scope.js';

export interface WebhookSpec {
  type: 'validating' | 'mutating';
  /** `https://127.0.0.1:<port>/<path>` of the server under test. */
  url: string;
  /** base64 PEM of the CA that signed the server's certificate (makeServingCert().caBundle). */
  caBundle: string;
  rules: V1RuleWithOperations[];
  /** Configuration object name; default `weft-test-<random>`. */
  name?: string;
  /** Webhook name (a DNS name with 3+ labels); default `<name>.weft.dev`. */
  webhookName?: string;
  /** Restrict to these namespaces (the usual choice: the test's fresh namespace). */
  namespaces?: string[];
  namespaceSelector?: V1LabelSelector;
  objectSelector?: V1LabelSelector;
  failurePolicy?: 'Fail' | 'Ignore';
  sideEffects?: 'None' | 'NoneOnDryRun';
  timeoutSeconds?: number;
  reinvocationPolicy?: 'Never' | 'IfNeeded';
  /** How long to wait for the API server to start calling it (default 30 s). */
  readyTimeoutMs?: number;
}

export interface RegisteredWebhook {
  name: string;
  webhookName: string;
  /** Deletes the configuration now (otherwise it is deleted when the test or file ends). */
  unregister(): Promise<void>;
}

const PROBE_LABEL = 'weft.dev/webhook-probe';
const PROBE_NAMESPACE = 'default';

function namespaceSelectorOf(spec: WebhookSpec): V1LabelSelector | undefined {
  if (spec.namespaceSelector !== undefined) return spec.namespaceSelector;
  if (spec.namespaces === undefined) return undefined;
  return {
    matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: spec.namespaces }],
  };
}

function mainWebhook(spec: WebhookSpec, webhookName: string): V1ValidatingWebhook & V1MutatingWebhook {
  const nsSel = namespaceSelectorOf(spec);
  return {
    name: webhookName,
    clientConfig: { url: spec.url, caBundle: spec.caBundle },
    rules: spec.rules,
    admissionReviewVersions: ['v1'],
    sideEffects: spec.sideEffects ?? 'None',
    failurePolicy: spec.failurePolicy ?? 'Fail',
    timeoutSeconds: spec.timeoutSeconds ?? 10,
    matchPolicy: 'Equivalent',
    ...(nsSel === undefined ? {} : { namespaceSelector: nsSel }),
    ...(spec.objectSelector === undefined ? {} : { objectSelector: spec.objectSelector }),
    ...(spec.type === 'mutating' ? { reinvocationPolicy: spec.reinvocationPolicy ?? 'Never' } : {}),
  };
}

function sentinelWebhook(name: string, url: string, caBundle: string): V1ValidatingWebhook {
  return {
    name: `probe.${name}.weft.dev`,
    clientConfig: { url, caBundle },
    rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }],
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    // Ignore: once the sentinel server is closed, a stray probe object must not be blocked.
    failurePolicy: 'Ignore',
    timeoutSeconds: 5,
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': PROBE_NAMESPACE } },
    objectSelector: { matchLabels: { [PROBE_LABEL]: name } },
  };
}

/** An HTTPS server that denies every AdmissionReview it gets. */
async function startSentinel(): Promise<{ url: string; caBundle: string; close: () => void }> {
  const tls = makeServingCert(['127.0.0.1']);
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      let uid = '';
      try {
        uid = String((JSON.parse(body) as { request?: { uid?: unknown } }).request?.uid ?? '');
      } catch {
        // A malformed review still gets a (denying) answer.
      }
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: { uid, allowed: false, status: { code: 403, message: 'weft webhook probe' } },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `https://127.0.0.1:${port}/probe`, caBundle: tls.caBundle, close: () => server.close() };
}

async function upsert(
  api: AdmissionregistrationV1Api,
  type: WebhookSpec['type'],
  name: string,
  webhooks: V1ValidatingWebhook[],
): Promise<void> {
  const metadata = { name, labels: { 'weft.dev/test': 'true' } };
  try {
    if (type === 'validating') {
      await api.createValidatingWebhookConfiguration({ body: { metadata, webhooks } });
    } else {
      await api.createMutatingWebhookConfiguration({ body: { metadata, webhooks } });
    }
  } catch (err) {
    if (apiErrorCode(err) !== 409) throw err;
    // Re-registering under the same name replaces the configuration.
    if (type === 'validating') {
      const cur = await api.readValidatingWebhookConfiguration({ name });
      await api.replaceValidatingWebhookConfiguration({
        name,
        body: { metadata: { ...metadata, resourceVersion: cur.metadata?.resourceVersion ?? '' }, webhooks },
      });
    } else {
      const cur = await api.readMutatingWebhookConfiguration({ name });
      await api.replaceMutatingWebhookConfiguration({
        name,
        body: { metadata: { ...metadata, resourceVersion: cur.metadata?.resourceVersion ?? '' }, webhooks },
      });
    }
  }
}

/** Dry-run creates a probe ConfigMap until a webhook of this configuration answers for it. */
async function waitEffective(
  core: CoreV1Api,
  name: string,
  webhookNames: string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'the probe ConfigMap was admitted without calling the webhooks';
  while (Date.now() < deadline) {
    try {
      await core.createNamespacedConfigMap({
        namespace: PROBE_NAMESPACE,
        dryRun: 'All',
        body: { metadata: { generateName: 'weft-webhook-probe-', labels: { [PROBE_LABEL]: name } } },
      });
    } catch (err) {
      const msg = apiErrorMessage(err);
      if (webhookNames.some((w) => msg.includes(`"${w}"`))) return;
      last = msg;
    }
    await sleep(100);
  }
  throw new WeftError(
    'WEFT_CLUSTER_TIMEOUT',
    `webhook configuration ${name} not in effect after ${timeoutMs / 1000} s: ${last}`,
  );
}

async function deleteConfig(
  api: AdmissionregistrationV1Api,
  type: WebhookSpec['type'],
  name: string,
): Promise<void> {
  try {
    if (type === 'validating') await api.deleteValidatingWebhookConfiguration({ name });
    else await api.deleteMutatingWebhookConfiguration({ name });
  } catch (err) {
    if (apiErrorCode(err) !== 404) throw err;
  }
}

export async function registerWebhook(spec: WebhookSpec): Promise<RegisteredWebhook> {
  if (!/^https:\/\//.test(spec.url)) {
    throw new WeftError('WEFT_CLUSTER_USAGE', `registerWebhook: url must be https:// (got ${spec.url})`);
  }
  const { kubeConfig } = testCluster();
  const api = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const name = spec.name ?? `weft-test-${randomBytes(4).toString('hex')}`;
  const webhookName = spec.webhookName ?? `${name}.weft.dev`;
  const sentinel = await startSentinel();
  let removed = false;
  const unregister = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    await deleteConfig(api, spec.type, name);
  };
  try {
    const probe = sentinelWebhook(name, sentinel.url, sentinel.caBundle);
    // Sentinel first: mutating webhooks run in order, so it answers before the caller's.
    await upsert(api, spec.type, name, [probe, mainWebhook(spec, webhookName)]);
    onCleanup(unregister);
    await waitEffective(core, name, [probe.name, webhookName], spec.readyTimeoutMs ?? 30_000);
  } finally {
    sentinel.close();
  }
  return { name, webhookName, unregister };
}
