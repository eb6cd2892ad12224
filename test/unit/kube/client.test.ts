/**
 * KubeClient's transport (ADR 0022) against a stand-in API server on loopback with real TLS
 * (a test CA from pkg/certs): one kept-alive connection for sequential requests (client-node's
 * per-request dispatcher made a TLS handshake per call), the CA, servername and client
 * certificate from the access object, a rotated token re-read after a 401, Status messages in
 * ApiError, network errors with the socket's code, content types, and watch streams (events,
 * ERROR 410, abort).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { createCA, issueServing, type KeyPairPem } from '../../../pkg/certs/index.js';
import { ApiError, KubeClient, type WatchEvent } from '../../../pkg/kube/client.js';
import { rotatingToken, type KubeAccess } from '../../../pkg/kube/kubeconfig.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  peerCN?: string;
}

type Handler = (req: Seen, res: ServerResponse) => void;

describe('KubeClient transport', function () {
  this.timeout(20_000);
  let ca: KeyPairPem;
  let otherCa: KeyPairPem;
  let leaf: KeyPairPem;
  let clientCert: KeyPairPem;
  let server: Server;
  let url: string;
  let connections: number;
  let seen: Seen[];
  let handler: Handler;
  let dir: string;

  before(() => {
    const now = new Date();
    ca = createCA({ commonName: 'test-apiserver-ca', ttlMs: 3600_000, now });
    otherCa = createCA({ commonName: 'other-ca', ttlMs: 3600_000, now });
    leaf = issueServing(ca, {
      commonName: 'kubernetes',
      dnsNames: ['kubernetes.default.svc', '127.0.0.1'],
      ttlMs: 3600_000,
      now,
    });
    clientCert = issueServing(ca, { commonName: 'system:admin', dnsNames: ['admin'], ttlMs: 3600_000, now });
    dir = mkdtempSync(join(tmpdir(), 'weft-kubeclient-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  beforeEach(async () => {
    connections = 0;
    seen = [];
    handler = (_req, res) => json(res, 200, { kind: 'Pod' });
    server = createServer({
      cert: leaf.certPem,
      key: leaf.keyPem,
      requestCert: true,
      rejectUnauthorized: false,
    });
    server.on('secureConnection', () => connections++);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
        if (peer?.subject?.CN) s.peerCN = String(peer.subject.CN);
        seen.push(s);
        handler(s, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const access = (over: Partial<KubeAccess> = {}): KubeAccess => ({
    server: url,
    tls: { ca: Buffer.from(ca.certPem) },
    authHeaders: () => ({ Authorization: 'Bearer t' }),
    source: 'test',
    ...over,
  });

  it('20 sequential requests use one TLS connection (keep-alive pool per client)', async () => {
    const kube = new KubeClient(access());
    for (let i = 0; i < 20; i++)
      await kube.get({ apiVersion: 'v1', kind: 'Pod', namespace: 'ns', name: `p${i}` });
    expect(seen).to.have.length(20);
    expect(connections).to.equal(1);
    kube.close();
  });

  it('a client-node KubeConfig is read structurally: its CA, token and client certificate', async () => {
    const kc = new KubeConfig();
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `${url}/`, caData: b64(ca.certPem), skipTLSVerify: false }],
      users: [
        { name: 'u', token: 'cn-token', certData: b64(clientCert.certPem), keyData: b64(clientCert.keyPem) },
      ],
      contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: 'apps' }],
      currentContext: 'x',
    });
    const kube = new KubeClient(kc);
    expect(kube.server).to.equal(url);
    expect(kube.access.namespace).to.equal('apps');
    for (let i = 0; i < 3; i++) await kube.request('GET', '/api');
    expect(seen.map((s) => s.headers.authorization)).to.deep.equal(Array(3).fill('Bearer cn-token'));
    expect(seen[0]!.peerCN).to.equal('system:admin');
    expect(connections).to.equal(1);
    kube.close();
  });

  it('the server certificate is checked against the CA; tls-server-name and insecure-skip-tls-verify apply', async () => {
    const wrong = new KubeClient(access({ tls: { ca: Buffer.from(otherCa.certPem) } }));
    const err = await wrong.request('GET', '/api').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ApiError);
    expect((err as ApiError).status).to.equal(0);
    expect((err as ApiError).reason).to.equal('NetworkError');
    expect((err as ApiError).message).to.match(
      /GET \/api: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|.*CERT)/,
    );
    const byName = new KubeClient(
      access({
        server: url.replace('127.0.0.1', 'localhost'),
        tls: { ca: Buffer.from(ca.certPem), servername: 'kubernetes.default.svc' },
      }),
    );
    expect(await byName.request('GET', '/api')).to.deep.equal({ kind: 'Pod' });
    const insecure = new KubeClient(access({ tls: { insecure: true } }));
    expect(await insecure.request('GET', '/api')).to.deep.equal({ kind: 'Pod' });
    for (const k of [wrong, byName, insecure]) k.close();
  });

  it('a 401 re-reads a rotated token file and retries once; unchanged credentials are not retried', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'old');
    handler = (req, res) =>
      req.headers.authorization === 'Bearer new'
        ? json(res, 200, { ok: true })
        : json(res, 401, { kind: 'Status', reason: 'Unauthorized', message: 'Unauthorized' });
    const kube = new KubeClient(access({ authHeaders: rotatingToken(tokenFile) }));
    const first = await kube.request('GET', '/api').catch((e: unknown) => e);
    expect((first as ApiError).status).to.equal(401);
    expect(seen).to.have.length(1); // the same token again would not help
    writeFileSync(tokenFile, 'new');
    expect(await kube.request('GET', '/api')).to.deep.equal({ ok: true });
    expect(seen.map((s) => s.headers.authorization)).to.deep.equal([
      'Bearer old',
      'Bearer old',
      'Bearer new',
    ]);
    kube.close();
  });

  it('errors: the Status reason and message, raw text when not a Status, 404 as null, the socket code', async () => {
    handler = (req, res) => {
      if (req.url.includes('/missing'))
        json(res, 404, { kind: 'Status', reason: 'NotFound', message: 'pods "missing" not found' });
      else if (req.url.includes('/conflict'))
        json(res, 409, { kind: 'Status', reason: 'Conflict', message: 'the object has been modified' });
      else {
        res.writeHead(502, { 'Content-Type': 'text/html' });
        res.end('<html>bad gateway</html>');
      }
    };
    const kube = new KubeClient(access());
    expect(await kube.get({ apiVersion: 'v1', kind: 'Pod', namespace: 'ns', name: 'missing' })).to.equal(
      null,
    );
    const conflict = (await kube.request('GET', '/conflict').catch((e: unknown) => e)) as ApiError;
    expect([conflict.status, conflict.reason, conflict.retryable]).to.deep.equal([409, 'Conflict', true]);
    expect(conflict.message).to.equal('GET /conflict: 409 Conflict: the object has been modified');
    const gateway = (await kube.request('GET', '/x').catch((e: unknown) => e)) as ApiError;
    expect([gateway.status, gateway.reason]).to.deep.equal([502, 'Bad Gateway']);
    expect(gateway.message).to.match(/<html>bad gateway<\/html>$/);
    kube.close();
    const refused = new KubeClient(access({ server: 'https://127.0.0.1:1' }));
    const net = (await refused.request('GET', '/api').catch((e: unknown) => e)) as ApiError;
    expect([net.status, net.reason]).to.deep.equal([0, 'NetworkError']);
    expect(net.message).to.equal('GET /api: ECONNREFUSED');
    refused.close();
  });

  it('content types and bodies: apply-patch+yaml with fieldManager and force, merge and JSON patch, delete options', async () => {
    const kube = new KubeClient(access());
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c', namespace: 'ns' },
      data: { a: '1' },
    };
    await kube.apply(cm, 'weft');
    await kube.mergePatch(
      { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'ns', name: 'c' },
      { data: { b: '2' } },
    );
    await kube.jsonPatch({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'ns', name: 'c' }, [
      { op: 'remove', path: '/data/a' },
    ]);
    await kube.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'ns', name: 'c' });
    expect(seen.map((s) => [s.method, s.url, s.headers['content-type']])).to.deep.equal([
      [
        'PATCH',
        '/api/v1/namespaces/ns/configmaps/c?fieldManager=weft&force=true',
        'application/apply-patch+yaml',
      ],
      ['PATCH', '/api/v1/namespaces/ns/configmaps/c', 'application/merge-patch+json'],
      ['PATCH', '/api/v1/namespaces/ns/configmaps/c', 'application/json-patch+json'],
      ['DELETE', '/api/v1/namespaces/ns/configmaps/c', 'application/json'],
    ]);
    expect(JSON.parse(seen[0]!.body)).to.deep.equal(cm);
    expect(JSON.parse(seen[3]!.body)).to.deep.equal({
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Background',
    });
    expect(seen.every((s) => s.headers.accept === 'application/json')).to.equal(true);
    expect(connections).to.equal(1);
    kube.close();
  });

  it('watch: events line by line with apiVersion/kind filled in, ERROR 410 rejects, abort resolves', async () => {
    handler = (req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (req.url.includes('resourceVersion=old')) {
        res.end(
          `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } })}\n`,
        );
        return;
      }
      // split an event across writes: lines, not chunks, are events
      const ev = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', namespace: 'ns' } } });
      res.write(ev.slice(0, 10));
      setTimeout(() => res.write(`${ev.slice(10)}\n\n`), 20);
      if (req.url.includes('timeoutSeconds=1')) setTimeout(() => res.end(), 50);
    };
    const kube = new KubeClient(access());
    const events: WatchEvent[] = [];
    await kube.watch('v1', 'Pod', { namespace: 'ns', timeoutSeconds: 1 }, (e) => events.push(e));
    expect(events).to.deep.equal([
      { type: 'ADDED', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'ns' } } },
    ]);
    expect(seen[0]!.url).to.equal(
      '/api/v1/namespaces/ns/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds=1',
    );
    const gone = (await kube
      .watch('v1', 'Pod', { resourceVersion: 'old' }, () => undefined)
      .catch((e: unknown) => e)) as ApiError;
    expect([gone.status, gone.reason]).to.deep.equal([410, 'Expired']);
    const abort = new AbortController();
    const open = kube.watch('v1', 'Pod', { signal: abort.signal }, () => abort.abort());
    await open; // the first event aborts; the watch resolves instead of rejecting
    kube.close();
  });
});

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
