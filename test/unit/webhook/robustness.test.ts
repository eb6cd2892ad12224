import { expect } from 'chai';
import { writeFileSync, renameSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeServingCert } from '../../support/certs.js';
import { reviewOf, startTestServer, type TestServer } from './helpers.js';

const vs = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'r', namespace: 'default' },
  spec: { hosts: ['r'], http: [{ route: [{ destination: { host: 'r' } }] }] },
};

/** The serial number of the certificate the server presents on a new connection. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, ca, servername: undefined as unknown as string }, () => {
      const serial = sock.getPeerX509Certificate()?.serialNumber ?? '';
      sock.end();
      resolve(serial);
    });
    sock.on('error', reject);
  });
}

describe('webhook server robustness', () => {
  let srv: TestServer;
  before(async () => (srv = await startTestServer()));
  after(async () => srv.close());

  it('keeps answering others while a client trickles its body', async () => {
    const sock = connect({ host: '127.0.0.1', port: srv.port, ca: srv.ca });
    await new Promise((r) => sock.once('secureConnect', r));
    sock.write(
      'POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"apiVersion":',
    );
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 20 }, () => srv.post('/validate', reviewOf(vs))));
    expect(results.every((r) => r.json.response.allowed === true)).to.equal(true);
    // Generous bound (the machine may be shared); the point is that they finish at all while the
    // trickling request is still open.
    expect(Date.now() - started).to.be.below(10_000);
    expect(sock.destroyed).to.equal(false);
    sock.destroy();
  });

  it('answers many concurrent requests, each with its own uid', async () => {
    const bodies = Array.from({ length: 200 }, () => reviewOf(vs) as { request: { uid: string } });
    const results = await Promise.all(bodies.map((b) => srv.post('/validate', b)));
    expect(results.map((r) => r.json.response.uid)).to.deep.equal(bodies.map((b) => b.request.uid));
  });

  it('reloads a rotated certificate without a restart, and ignores a broken one', async () => {
    const before = await servedSerial(srv.port, srv.ca);
    expect(before).to.equal(new X509Certificate(srv.cert.certPem).serialNumber);
    // Rotate to a certificate from a new CA, written as the kubelet does (new files, then rename).
    const next = makeServingCert(['127.0.0.1']);
    writeFileSync(join(srv.dir, 'tls.key.new'), next.keyPem);
    writeFileSync(join(srv.dir, 'tls.crt.new'), next.certPem);
    renameSync(join(srv.dir, 'tls.key.new'), join(srv.dir, 'tls.key'));
    renameSync(join(srv.dir, 'tls.crt.new'), join(srv.dir, 'tls.crt'));
    const want = new X509Certificate(next.certPem).serialNumber;
    let served = before;
    for (let i = 0; i < 50 && served !== want; i++) {
      await sleep(50);
      served = await servedSerial(srv.port, next.caPem).catch(() => served);
    }
    expect(served).to.equal(want);
    // A cert whose key does not match is refused; the good pair stays in service.
    writeFileSync(join(srv.dir, 'tls.crt'), makeServingCert(['127.0.0.1']).certPem);
    await sleep(300);
    expect(await servedSerial(srv.port, next.caPem)).to.equal(want);
    expect(srv.tls.reloads).to.equal(1);
  });
});

describe('webhook handler budget', () => {
  let srv: TestServer;
  before(async () => (srv = await startTestServer({ handlerTimeoutMs: 300 })));
  after(async () => srv.close());

  it('a verdict that never comes is a 504 for that request, and others still get answers', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'hang' },
      spec: { containers: [{ name: 'a', image: 'a' }] },
    };
    const started = Date.now();
    const [stuck, other] = await Promise.all([
      srv.post('/inject', reviewOf(pod)),
      srv.post('/validate', reviewOf(vs)),
    ]);
    expect(stuck.status).to.equal(504);
    expect(stuck.json.message).to.match(/no verdict within 300 ms/);
    expect(Date.now() - started).to.be.within(250, 8000);
    expect(other.json.response.allowed).to.equal(true);
  });
});

/** A ~1.3 MB VirtualService (6,000 routes): valid, but ~0.4 s (quiet machine) to seconds of validation work. */
function hugeVirtualService(routes = 6000): Record<string, unknown> {
  const http = Array.from({ length: routes }, (_, i) => ({
    match: [{ uri: { regex: `/api/v${i}/[a-z]+(/.*)?` }, headers: { 'x-user': { exact: `u${i}` } } }],
    route: [
      { destination: { host: 'reviews' }, weight: 50 },
      { destination: { host: 'ratings' }, weight: 50 },
    ],
  }));
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'huge', namespace: 'default' },
    spec: { hosts: ['reviews'], http },
  };
}

describe('webhook with a huge object in flight', function () {
  this.timeout(30_000);
  let srv: TestServer;
  before(async () => (srv = await startTestServer({ handlerTimeoutMs: 20_000 })));
  after(async () => srv.close());

  it('validates it on a worker while small requests keep getting prompt answers', async () => {
    let hugeDone = 0;
    const hugeStart = Date.now();
    const huge = srv.post('/validate', reviewOf(hugeVirtualService())).then((r) => {
      hugeDone = Date.now();
      return r;
    });
    await sleep(100); // the huge body is parsed and handed to the worker
    const smallLatencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = Date.now();
      const r = await srv.post('/validate', reviewOf(vs));
      expect(r.json.response.allowed).to.equal(true);
      smallLatencies.push(Date.now() - t);
    }
    const smallDone = Date.now();
    const r = await huge;
    expect(r.status).to.equal(200);
    expect(r.json.response.allowed).to.equal(true);
    // The small ones finished first, each quickly: the main thread was never blocked by the huge one.
    expect(smallDone).to.be.below(hugeDone);
    // Each small answer took a fraction of the huge object's validation time (inline, each would
    // have waited for all of it).
    expect(Math.max(...smallLatencies)).to.be.below((hugeDone - hugeStart) / 2);
  });
});

describe('webhook validation pool budget', function () {
  this.timeout(30_000);
  let srv: TestServer;
  before(async () => (srv = await startTestServer({ poolJobTimeoutMs: 50, handlerTimeoutMs: 20_000 })));
  after(async () => srv.close());

  it('an object that overruns the budget fails alone (504) and the pool recovers', async () => {
    const r = await srv.post('/validate', reviewOf(hugeVirtualService()));
    expect(r.status).to.equal(504);
    expect(r.json.message).to.match(/WEFT_ADMISSION_TIMEOUT: validation took longer than 50 ms/);
    // A fresh worker serves the next large object (small objects never needed it).
    // Large on the wire (over the pool threshold) but cheap to validate: one route, a long header value.
    const padded = hugeVirtualService(1);
    (padded.spec as { http: { match: { headers: Record<string, unknown> }[] }[] }).http[0]!.match[0]!.headers[
      'x-pad'
    ] = { exact: 'p'.repeat(100_000) };
    // A few tries: on a loaded machine even a cheap job can miss a 50 ms budget; the point is that
    // the replaced worker serves again.
    let next = await srv.post('/validate', reviewOf(padded));
    for (let i = 0; i < 10 && next.status === 504; i++) next = await srv.post('/validate', reviewOf(padded));
    expect(next.json.response.allowed).to.equal(true);
  });
});
