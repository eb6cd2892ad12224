/**
 * The CA and the root-cert publisher against an in-memory stand-in for the API (list answers
 * from a table, watches stay open until stopped, apply can be made to fail): the paths a real
 * API server rarely takes on demand — retries with backoff, namespaces being terminated,
 * malformed request bodies.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCertificateAuthority } from '../../../controlplane/ca.js';
import { startRootCertPublisher } from '../../../controlplane/rootcert.js';
import { createCA } from '../../../pkg/certs/index.js';
import { isWeftError } from '../../../pkg/errors/index.js';
import { ApiError, type KubeClient, type ListOptions, type WatchOptions } from '../../../pkg/kube/client.js';
import type { KubeObject } from '../../../pkg/kube/types.js';
import { createLogger } from '../../../pkg/log/index.js';
import { waitFor } from '../../support/wait.js';

const log = createLogger('test', { silent: true });
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

class FakeKube {
  readonly objects: KubeObject[] = [];
  readonly applied: KubeObject[] = [];
  /** Errors the next applies throw, in order. */
  applyErrors: Error[] = [];
  /** Namespaces whose applies are always refused as "being terminated". */
  readonly terminating = new Set<string>();
  readonly attempts = new Map<string, number>();

  list(
    apiVersion: string,
    kind: string,
    opts: ListOptions = {},
  ): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const name = opts.fieldSelector?.replace(/^metadata\.name=/, '');
    const items = this.objects.filter(
      (o) =>
        o.kind === kind &&
        (opts.namespace === undefined || o.metadata.namespace === opts.namespace) &&
        (name === undefined || o.metadata.name === name),
    );
    return Promise.resolve({ items, resourceVersion: '1' });
  }

  /** A watch that delivers nothing and ends when the informer stops. */
  watch(_a: string, _k: string, opts: WatchOptions): Promise<void> {
    return new Promise((resolve) => opts.signal?.addEventListener('abort', () => resolve(), { once: true }));
  }

  apply(obj: KubeObject): Promise<KubeObject> {
    const ns = obj.metadata.namespace ?? '';
    this.attempts.set(ns, (this.attempts.get(ns) ?? 0) + 1);
    if (this.terminating.has(ns))
      return Promise.reject(
        new ApiError(
          403,
          'Forbidden',
          `unable to create new content in namespace ${ns} because it is being terminated`,
        ),
      );
    const err = this.applyErrors.shift();
    if (err) return Promise.reject(err);
    this.applied.push(obj);
    return Promise.resolve(obj);
  }
}

const ns = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name },
  status: { phase: 'Active' },
  ...extra,
});

describe('CA and root-cert publisher on a stand-in API', () => {
  const root = createCA({ commonName: 'r', ttlMs: 24 * 3600_000, now: new Date() });
  const secret: KubeObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'weft-root-ca', namespace: 'weft-system' },
    data: { 'tls.crt': b64(root.certPem), 'tls.key': b64(root.keyPem) },
  };

  function setup(
    objects: KubeObject[],
    now?: () => Date,
  ): {
    kube: FakeKube;
    stop: () => void;
    ca: ReturnType<typeof createCertificateAuthority>;
  } {
    const kube = new FakeKube();
    kube.objects.push(secret, ...objects);
    const ca = createCertificateAuthority({
      kube: kube as unknown as KubeClient,
      caSecret: { namespace: 'weft-system', name: 'weft-root-ca' },
      trustDomain: 'cluster.local',
      workloadTtlMs: 3600_000,
      log,
      ...(now ? { now } : {}),
    });
    return { kube, ca, stop: () => ca.stop() };
  }

  it('stops signing once the CA it holds has expired (no leaf born expired)', async () => {
    let clock = new Date();
    const { ca, stop } = setup([], () => clock);
    try {
      await waitFor('the CA to load', () => ca.ready(), 30_000, 10);
      clock = new Date(Date.now() + 2 * 24 * 3600_000); // past the root's 24 h
      const err = await ca
        .handle({ csr: 'x' }, { namespace: 'a', serviceAccount: 'b' })
        .catch((e: unknown) => e);
      expect(isWeftError(err, 'WEFT_CA_NOT_READY') && /expired/.test(err.message), String(err)).to.equal(
        true,
      );
    } finally {
      stop();
    }
  });

  it('refuses a body without a string csr, and an identity that is not a Kubernetes name', async () => {
    const { ca, stop } = setup([]);
    try {
      await waitFor('the CA to load', () => ca.ready(), 30_000, 10);
      for (const body of [{}, { csr: 42 }, null]) {
        const err = await ca
          .handle(body as never, { namespace: 'a', serviceAccount: 'b' })
          .catch((e: unknown) => e);
        expect(isWeftError(err, 'WEFT_CSR_INVALID'), String(err)).to.equal(true);
      }
      const err = await ca
        .handle({ csr: 'x' }, { namespace: 'A_B', serviceAccount: 'b' })
        .catch((e: unknown) => e);
      expect(isWeftError(err, 'WEFT_CSR_INVALID') && /namespace/.test(err.message), String(err)).to.equal(
        true,
      );
    } finally {
      stop();
    }
  });

  it('a failed apply is retried with backoff until it succeeds', async () => {
    const { kube, ca, stop } = setup([ns('shop')]);
    kube.applyErrors = [new ApiError(500, 'InternalError', 'boom'), new ApiError(0, 'NetworkError', 'reset')];
    const pub = startRootCertPublisher({
      kube: kube as unknown as KubeClient,
      ca,
      log,
      backoff: { baseMs: 1, maxMs: 5, jitter: 0 },
    });
    try {
      await waitFor('the ConfigMap to be applied', () => kube.applied.length > 0, 30_000, 10);
      expect(kube.applyErrors).to.deep.equal([]);
      expect(kube.applied.map((o) => o.metadata.namespace)).to.deep.equal(['shop']);
    } finally {
      pub.stop();
      stop();
    }
  });

  it('skips terminating namespaces and does not retry "being terminated" refusals', async () => {
    const { kube, ca, stop } = setup([
      ns('gone', { status: { phase: 'Terminating' } }),
      ns('going'),
      ns('stays'),
    ]);
    kube.terminating.add('going');
    const pub = startRootCertPublisher({
      kube: kube as unknown as KubeClient,
      ca,
      log,
      backoff: { baseMs: 1, maxMs: 5, jitter: 0 },
      concurrency: 1,
    });
    try {
      await pub.synced;
      await waitFor('stays to be written', () => kube.applied.length === 1, 30_000, 10);
      const tries = kube.attempts.get('going') ?? 0;
      await sleep(50); // a backoff retry (1-5 ms) would have happened many times by now
      expect(kube.attempts.get('going') ?? 0, 'attempts on a terminating namespace').to.equal(tries);
      expect(tries).to.be.within(1, 2); // one per trigger (the first sync, the CA's first root)
      expect(kube.attempts.has('gone'), 'a Terminating namespace is not even tried').to.equal(false);
      expect(kube.applied.map((o) => o.metadata.namespace)).to.deep.equal(['stays']);
    } finally {
      pub.stop();
      stop();
    }
  });

  it('publishes nothing while the CA has no root', async () => {
    const kube = new FakeKube();
    kube.objects.push(ns('shop'));
    const ca = createCertificateAuthority({
      kube: kube as unknown as KubeClient,
      caSecret: { namespace: 'weft-system', name: 'weft-root-ca' },
      trustDomain: 'cluster.local',
      workloadTtlMs: 3600_000,
      log,
    });
    const pub = startRootCertPublisher({ kube: kube as unknown as KubeClient, ca, log });
    try {
      await pub.synced;
      expect(ca.ready()).to.equal(false);
      expect(kube.applied).to.deep.equal([]);
      expect(ca.status()).to.deep.equal({ ready: false, problem: null });
    } finally {
      pub.stop();
      ca.stop();
    }
  });

  it('refuses a non-positive workload TTL at construction', () => {
    for (const workloadTtlMs of [0, -1, Number.NaN])
      expect(() =>
        createCertificateAuthority({
          kube: new FakeKube() as unknown as KubeClient,
          caSecret: { namespace: 'a', name: 'b' },
          trustDomain: 'cluster.local',
          workloadTtlMs,
          log,
        }),
      ).to.throw(/TTL must be positive/);
  });
});
