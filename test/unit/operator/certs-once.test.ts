/**
 * `weft operator certs` (operator/certs-once.ts) against an in-memory API: what the standalone
 * overlays' Job does on a first run, on a rerun, and to the webhook configurations.
 */
import { expect } from 'chai';
import { caBundleOps, issueCertificatesOnce } from '../../../operator/certs-once.js';
import { certInfo, signedBy } from '../../../pkg/certs/index.js';
import type { KubeClient } from '../../../pkg/kube/client.js';
import type { KubeObject, ObjectKey } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';

const log = createLogger('test', { silent: true });
const now = new Date('2026-12-06T06:00:00Z');

interface JsonOp {
  op: string;
  path: string;
  value?: unknown;
}

/** Just enough of KubeClient: get, server-side apply (replace) and JSON patch (add/test). */
class FakeApi {
  readonly objects = new Map<string, KubeObject>();
  writes: string[] = [];
  private id(k: { kind: string; namespace?: string | undefined; name: string }): string {
    return `${k.kind}/${k.namespace ?? ''}/${k.name}`;
  }
  get(key: ObjectKey): Promise<KubeObject | null> {
    return Promise.resolve(structuredClone(this.objects.get(this.id(key)) ?? null));
  }
  apply(obj: KubeObject): Promise<KubeObject> {
    const id = this.id({ kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name });
    this.objects.set(id, structuredClone(obj));
    this.writes.push(id);
    return Promise.resolve(obj);
  }
  jsonPatch(key: ObjectKey, ops: JsonOp[]): Promise<KubeObject> {
    const id = this.id(key);
    const obj = this.objects.get(id) as unknown as Record<string, unknown>;
    for (const op of ops) {
      const parts = op.path.split('/').slice(1);
      const last = parts.pop()!;
      let at = obj as Record<string, unknown>;
      for (const p of parts) at = (at[p] ?? (at[p] = {})) as Record<string, unknown>;
      if (op.op === 'test' && at[last] !== op.value) throw new Error(`test failed at ${op.path}`);
      if (op.op === 'add') at[last] = op.value;
    }
    this.writes.push(id);
    return Promise.resolve(obj as unknown as KubeObject);
  }
  client(): KubeClient {
    return this as unknown as KubeClient;
  }
}

function webhookConfig(kind: string, name: string, hooks: string[]): KubeObject {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind,
    metadata: { name },
    webhooks: hooks.map((h) => ({ name: h, clientConfig: { service: { name: 'weft-webhook' } } })),
  } as unknown as KubeObject;
}

function secretPem(api: FakeApi, name: string, key: string): string {
  const s = api.objects.get(`Secret/weft-system/${name}`) as unknown as { data: Record<string, string> };
  return Buffer.from(s.data[key]!, 'base64').toString('utf8');
}

describe('operator certs (standalone overlays)', () => {
  it('first run: issues the root CA and both serving certificates, signed by it', async () => {
    const api = new FakeApi();
    const r = await issueCertificatesOnce(api.client(), log, now);
    expect(r.issued.map((i) => i.secret).sort()).to.deep.equal([
      'weft-root-ca',
      'weft-webhook-tls',
      'weftd-tls',
    ]);
    const root = secretPem(api, 'weft-root-ca', 'tls.crt');
    for (const s of ['weftd-tls', 'weft-webhook-tls']) {
      expect(signedBy(secretPem(api, s, 'tls.crt'), root), s).to.equal(true);
      expect(secretPem(api, s, 'ca.crt'), s).to.equal(root);
    }
    expect(certInfo(secretPem(api, 'weftd-tls', 'tls.crt')).dnsNames).to.include('weftd.weft-system.svc');
    expect(r.patched, 'no webhook configuration exists (config/controlplane)').to.deep.equal([]);
  });

  it('a rerun with valid certificates writes nothing', async () => {
    const api = new FakeApi();
    await issueCertificatesOnce(api.client(), log, now);
    api.writes = [];
    const r = await issueCertificatesOnce(api.client(), log, new Date(now.getTime() + 3600_000));
    expect(r.issued).to.deep.equal([]);
    expect(api.writes).to.deep.equal([]);
  });

  it('a missing serving Secret is reissued alone, from the existing root', async () => {
    const api = new FakeApi();
    await issueCertificatesOnce(api.client(), log, now);
    const root = secretPem(api, 'weft-root-ca', 'tls.crt');
    api.objects.delete('Secret/weft-system/weftd-tls');
    const r = await issueCertificatesOnce(api.client(), log, now);
    expect(r.issued).to.deep.equal([{ secret: 'weftd-tls', reason: 'Missing' }]);
    expect(secretPem(api, 'weft-root-ca', 'tls.crt')).to.equal(root);
    expect(signedBy(secretPem(api, 'weftd-tls', 'tls.crt'), root)).to.equal(true);
  });

  it('writes the root into the caBundle of every webhook of both configurations, once', async () => {
    const api = new FakeApi();
    for (const c of [
      webhookConfig('ValidatingWebhookConfiguration', 'weft-validator', ['validation.mesh.weft.dev']),
      webhookConfig('MutatingWebhookConfiguration', 'weft-sidecar-injector', ['a.weft.dev', 'b.weft.dev']),
    ])
      await api.apply(c);
    const r = await issueCertificatesOnce(api.client(), log, now);
    expect(r.patched).to.deep.equal([
      'ValidatingWebhookConfiguration/weft-validator',
      'MutatingWebhookConfiguration/weft-sidecar-injector',
    ]);
    const root = secretPem(api, 'weft-root-ca', 'tls.crt');
    const m = api.objects.get('MutatingWebhookConfiguration//weft-sidecar-injector') as unknown as {
      webhooks: { clientConfig: { caBundle?: string } }[];
    };
    for (const h of m.webhooks)
      expect(Buffer.from(h.clientConfig.caBundle!, 'base64').toString()).to.equal(root);
    const again = await issueCertificatesOnce(api.client(), log, now);
    expect(again.patched).to.deep.equal([]);
  });

  it('caBundleOps guards each write with the webhook name and skips webhooks already right', () => {
    const cfg = webhookConfig('MutatingWebhookConfiguration', 'x', ['a', 'b']);
    (
      cfg as unknown as { webhooks: { clientConfig: { caBundle?: string } }[] }
    ).webhooks[0]!.clientConfig.caBundle = 'Q0E=';
    expect(caBundleOps(cfg, 'Q0E=')).to.deep.equal([
      { op: 'test', path: '/webhooks/1/name', value: 'b' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: 'Q0E=' },
    ]);
    expect(caBundleOps({ ...cfg, webhooks: [] } as unknown as KubeObject, 'Q0E=')).to.deep.equal([]);
  });
});
