import { expect } from 'chai';
import { reviewOf, startTestServer, type TestServer } from './helpers.js';

const vs = (spec: unknown, name = 'reviews', namespace = 'default') => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace },
  spec,
});
const validSpec = { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] };
const zeroWeights = {
  hosts: ['reviews'],
  http: [
    {
      route: [
        { destination: { host: 'reviews', subset: 'v1' }, weight: 0 },
        { destination: { host: 'reviews', subset: 'v2' }, weight: 0 },
      ],
    },
  ],
};
const dr = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: 'default' },
  spec: {
    host: 'reviews',
    subsets: [{ name: 'v1' }, { name: 'v1' }],
    trafficPolicy: { connectionPool: { http: { http1MaxPendingRequests: -5 } } },
  },
};

describe('webhook POST /validate', () => {
  let srv: TestServer;
  before(async () => (srv = await startTestServer()));
  after(async () => srv.close());

  it('allows a valid VirtualService', async () => {
    const body = reviewOf(vs(validSpec)) as { request: { uid: string } };
    const r = await srv.post('/validate', body);
    expect(r.status).to.equal(200);
    expect(r.json).to.deep.equal({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: body.request.uid, allowed: true },
    });
  });

  it('denies with 403, the object, and every field path in one message', async () => {
    const r = await srv.post('/validate', reviewOf(dr));
    expect(r.json.response.allowed).to.equal(false);
    expect(r.json.response.status).to.deep.include({ code: 403, reason: 'Forbidden' });
    expect(r.json.response.status.message).to.equal(
      'DestinationRule default/reviews: spec.subsets[1].name: duplicate subset names: v1; ' +
        'spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests: http1MaxPendingRequests must be non-negative',
    );
  });

  it('gives a dry-run request the same verdict', async () => {
    const wet = await srv.post('/validate', reviewOf(vs(zeroWeights)));
    const dry = await srv.post('/validate', reviewOf(vs(zeroWeights), { dryRun: true }));
    expect(dry.json.response.status).to.deep.equal(wet.json.response.status);
    expect(dry.json.response.status.message).to.match(
      /^VirtualService default\/reviews: spec\.http\[0\]\.route: total destination weight = 0/,
    );
  });

  it('turns non-fatal findings into warnings without the Warning: prefix', async () => {
    const r = await srv.post('/validate', reviewOf(vs({ ...validSpec, bogus: true })));
    expect(r.json.response.allowed).to.equal(true);
    expect(r.json.response.warnings).to.deep.equal([
      'spec.bogus: unknown field, the API server will drop it',
    ]);
  });

  it('allows an unknown kind with a warning', async () => {
    const r = await srv.post(
      '/validate',
      reviewOf({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' } }),
    );
    expect(r.json.response.allowed).to.equal(true);
    expect(r.json.response.warnings[0]).to.match(/weft does not validate ConfigMap/);
  });

  it('allows DELETE without looking at the object', async () => {
    const r = await srv.post(
      '/validate',
      reviewOf(null, {
        operation: 'DELETE',
        oldObject: vs(zeroWeights),
        kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' },
      }),
    );
    expect(r.json.response.allowed).to.equal(true);
  });

  it('lets a metadata-only update of an already-invalid object through, with warnings', async () => {
    const old = vs(zeroWeights);
    const updated = { ...old, metadata: { ...old.metadata, finalizers: ['x'] } };
    const r = await srv.post('/validate', reviewOf(updated, { operation: 'UPDATE', oldObject: old }));
    expect(r.json.response.allowed).to.equal(true);
    expect(r.json.response.warnings[0]).to.match(
      /^existing spec is invalid: spec\.http\[0\]\.route: total destination weight = 0/,
    );
  });

  it('denies an update that changes the spec to something invalid', async () => {
    const r = await srv.post(
      '/validate',
      reviewOf(vs(zeroWeights), { operation: 'UPDATE', oldObject: vs(validSpec) }),
    );
    expect(r.json.response.allowed).to.equal(false);
  });

  const malformed: [string, unknown, boolean, RegExp][] = [
    ['not JSON', '{"apiVersion": ', true, /WEFT_ADMISSION_MALFORMED: body is not valid JSON/],
    ['a JSON array', '[]', true, /body: must be a JSON AdmissionReview object/],
    [
      'wrong kind',
      { apiVersion: 'admission.k8s.io/v1', kind: 'Pod' },
      false,
      /kind: must be AdmissionReview/,
    ],
    [
      'v1beta1',
      { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} },
      false,
      /apiVersion: must be admission.k8s.io\/v1/,
    ],
    [
      'no request',
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' },
      false,
      /request: required/,
    ],
    [
      'no uid',
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { operation: 'CREATE' } },
      false,
      /request.uid: required/,
    ],
    [
      'bad operation',
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u', operation: 'PATCH' },
      },
      false,
      /request.operation/,
    ],
    [
      'no kind',
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: 'u', operation: 'CREATE' },
      },
      false,
      /request.kind: required/,
    ],
    [
      'dryRun not boolean',
      reviewOf(vs(validSpec), { dryRun: 'yes' }),
      false,
      /request.dryRun: must be a boolean/,
    ],
    [
      'no object on CREATE',
      reviewOf(undefined, { kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' } }),
      false,
      /request.object: required for CREATE/,
    ],
  ];
  for (const [title, body, raw, message] of malformed) {
    it(`answers 400 to ${title}`, async () => {
      const r = await srv.post('/validate', body, raw);
      expect(r.status).to.equal(400);
      expect(r.json.message).to.match(message);
      expect(r.json.code).to.equal('WEFT_ADMISSION_MALFORMED');
    });
  }

  it('answers 413 to a body over the limit and keeps serving', async () => {
    const huge = vs({
      ...validSpec,
      http: [{ route: [{ destination: { host: 'x'.repeat(4 * 1024 * 1024) } }] }],
    });
    const r = await srv.post('/validate', reviewOf(huge));
    expect(r.status).to.equal(413);
    expect(r.json.message).to.match(/WEFT_INPUT_TOO_LARGE: body is \d+ bytes; the limit is 3145728 bytes/);
    expect((await srv.post('/validate', reviewOf(vs(validSpec)))).json.response.allowed).to.equal(true);
  });

  it('counts requests and denials in /metrics', async () => {
    await srv.post('/validate', reviewOf(vs(zeroWeights)));
    const m = await srv.get('/metrics');
    expect(m.text).to.match(
      /weft_webhook_requests_total\{webhook="validate",kind="VirtualService",operation="CREATE",result="denied"\} \d+/,
    );
    expect(m.text).to.match(/weft_webhook_denials_total\{kind="VirtualService"\} \d+/);
    expect(m.text).to.match(/weft_webhook_request_duration_seconds_count\{webhook="validate"\} \d+/);
  });

  it('serves /healthz, /readyz and a coded 404', async () => {
    expect((await srv.get('/healthz')).status).to.equal(200);
    expect(JSON.parse((await srv.get('/readyz')).text)).to.deep.equal({ ready: true });
    const nf = await srv.get('/nope');
    expect(nf.status).to.equal(404);
    expect(nf.text).to.match(/no such endpoint/);
  });
});
