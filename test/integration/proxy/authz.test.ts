/**
 * AuthorizationPolicy through a real proxy on loopback: Istio objects → translator → authz
 * block → ProxyServer (gateway-style HTTP listener) → real upstream, and a real ext-authz HTTP
 * server for CUSTOM. Each case checks what the client gets, what the upstream saw, the
 * response flag, the access log line and the denial metric.
 */
import { expect } from 'chai';
import http from 'node:http';
import type net from 'node:net';
import { PassThrough } from 'node:stream';
import type { AuthorizationPolicy, AuthorizationPolicySpec } from '../../../pkg/api/authorizationpolicy.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { configFromText } from '../../../proxy/config/load.js';
import { translateAuthz, type MeshExtAuthzProvider } from '../../../pkg/translate/authz.js';
import {
  raw,
  request,
  reviewsEntry,
  startProxy,
  upstream,
  vs,
  type Started,
  type Upstream,
} from './helpers.js';

const ap = (name: string, spec: AuthorizationPolicySpec): AuthorizationPolicy =>
  ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: 'default' },
    spec,
  }) as AuthorizationPolicy;

interface ExtAuthz {
  port: number;
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/**
 * A small ext-authz server: `x-ext-authz: allow` → 200 with `x-user: alice`; `hang` → never
 * answers; anything else → 403 with a body and `x-reason`.
 */
async function extAuthzServer(): Promise<ExtAuthz> {
  const sockets = new Set<net.Socket>();
  const seen: ExtAuthz['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const verdict = req.headers['x-ext-authz'];
    if (verdict === 'hang') return;
    if (verdict === 'allow') {
      res.writeHead(200, { 'x-user': 'alice', 'x-internal': 'secret' });
      return res.end();
    }
    res.writeHead(403, { 'x-reason': 'denied by ext', 'x-internal': 'secret' });
    res.end('ext-authz says no');
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('AuthorizationPolicy on a gateway proxy (real HTTP on loopback)', function () {
  this.timeout(30_000);
  let up: Upstream;
  let ext: ExtAuthz;
  let p: Started | null = null;
  let log: string[] = [];

  before(async () => {
    up = await upstream('v1');
    ext = await extAuthzServer();
  });
  afterEach(async () => {
    await p?.stop();
    p = null;
    up.seen.length = 0;
    ext.seen.length = 0;
    log = [];
  });
  after(async () => {
    await up.close();
    await ext.close();
  });

  const baseConfig = (): ProxyConfig =>
    configFromText(
      reviewsEntry([up]) + vs(`\n  - route: [{destination: {host: reviews, subset: v1}}]`),
      'test.yaml',
      {
        accessLog: true,
      },
    ).config;

  async function start(
    policies: AuthorizationPolicy[],
    providers: MeshExtAuthzProvider[] = [],
    normalization?: 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES',
  ): Promise<Started> {
    const { block, warnings } = translateAuthz({
      policies,
      pod: { namespace: 'default', labels: { app: 'gw' } },
      providers,
      services: [
        {
          host: 'ext-authz.auth.svc.cluster.local',
          namespace: 'auth',
          addresses: [],
          ports: [{ number: 8000, name: 'http', protocol: 'HTTP' }],
          endpoints: [{ address: '127.0.0.1', ports: { http: ext.port }, labels: {} }],
        },
      ],
    });
    expect(warnings).to.deep.equal([]);
    const cfg: ProxyConfig = {
      ...baseConfig(),
      ...(block ? { authz: block } : {}),
      ...(normalization ? { pathNormalization: { normalization } } : {}),
    };
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) =>
      log.push(
        ...d
          .toString()
          .split('\n')
          .filter((l) => l !== ''),
      ),
    );
    p = await startProxy(cfg, { accessLogSink: sink });
    return p;
  }

  const metrics = async (port: number): Promise<string> =>
    (await fetch(`http://127.0.0.1:${port}/stats/prometheus`)).text();

  it('no policy: traffic flows', async () => {
    const s = await start([]);
    expect((await request(s.port)).status).to.equal(200);
  });

  it('DENY rules: [{}] → 403 "RBAC: access denied" for everything, nothing reaches the upstream', async () => {
    const s = await start([ap('deny-all', { action: 'DENY', rules: [{}] })]);
    for (const path of ['/', '/a', '/b?x=1']) {
      const r = await request(s.port, { path });
      expect(r.status).to.equal(403);
      expect(r.body).to.equal('RBAC: access denied by DENY policy default/deny-all rule 0');
      expect(r.headers['x-weft-response-flags']).to.equal('RBAC');
    }
    expect(up.seen).to.have.length(0);
    const m = await metrics(s.metrics);
    expect(m).to.include('weft_proxy_authz_denied_total{policy="default/deny-all",action="DENY"} 3');
    await s.proxy.shutdown();
    const line = log
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.response_code === 403)!;
    expect(line.response_flags).to.equal('RBAC');
    expect(line.response_code_details).to.equal('rbac_access_denied_matched_policy[default/deny-all]');
    expect(line.authz).to.deep.include({
      decision: 'deny',
      policy: 'default/deny-all',
      rule: 0,
      action: 'DENY',
    });
  });

  it('ALLOW with no rules → 403 for everything (allow nothing), named as no ALLOW match', async () => {
    const s = await start([ap('allow-nothing', { action: 'ALLOW' })]);
    const r = await request(s.port);
    expect(r.status).to.equal(403);
    expect(r.body).to.equal('RBAC: access denied: no ALLOW policy matched');
    expect(up.seen).to.have.length(0);
    expect(await metrics(s.metrics)).to.include(
      'weft_proxy_authz_denied_total{policy="none",action="ALLOW"} 1',
    );
    await s.proxy.shutdown();
    const line = JSON.parse(log.find((l) => l.includes('"response_code":403'))!) as Record<string, unknown>;
    expect(line.response_code_details).to.equal('rbac_access_denied_matched_policy[none]');
    expect((line.authz as { reason: string }).reason).to.equal('no ALLOW policy matched');
  });

  it('DENY with no rules denies nothing (Istio)', async () => {
    const s = await start([ap('deny-none', { action: 'DENY' })]);
    expect((await request(s.port)).status).to.equal(200);
  });

  it('ALLOW paths: only those pass (prefix, exact, template), query ignored', async () => {
    const s = await start([
      ap('allow-some', {
        rules: [
          { to: [{ operation: { paths: ['/public/*', '/health', '/items/{*}/view'], methods: ['GET'] } }] },
        ],
      }),
    ]);
    const CASES: [string, string, number][] = [
      ['GET', '/public/a', 200],
      ['GET', '/public/a?x=/admin', 200],
      ['GET', '/health', 200],
      ['GET', '/health?full=1', 200],
      ['GET', '/items/42/view', 200],
      ['GET', '/items/42/edit', 403],
      ['GET', '/items/4/2/view', 403],
      ['GET', '/admin', 403],
      ['POST', '/public/a', 403],
      ['GET', '/healthz', 403],
      ['GET', '/public/../admin', 403],
      ['GET', '/public/%2e%2e/admin', 403],
    ];
    for (const [method, path, want] of CASES) {
      const r = await request(s.port, { method, path });
      expect(r.status, `${method} ${path}`).to.equal(want);
    }
    expect(up.seen.map((x) => x.url)).to.deep.equal([
      '/public/a',
      '/public/a?x=/admin',
      '/health',
      '/health?full=1',
      '/items/42/view',
    ]);
  });

  for (const mode of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const)
    it(`${mode}: a DENY on /admin is not bypassed by //admin, /./admin, %2F, %61 or dot segments`, async () => {
      const s = await start(
        [
          ap('no-admin', {
            action: 'DENY',
            rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }],
          }),
        ],
        [],
        mode,
      );
      for (const path of [
        '/admin',
        '//admin',
        '/./admin',
        '/%2Fadmin',
        '/%61dmin',
        '/x/../admin',
        '/x/%2e%2e/admin/y',
        '/admin/x',
      ]) {
        const r = await request(s.port, { path });
        expect([400, 403], `${mode} ${path} → ${r.status}`).to.include(r.status);
      }
      expect(up.seen).to.have.length(0);
      expect((await request(s.port, { path: '/other' })).status).to.equal(200);
    });

  it('a #fragment in the request target is refused before authorization (400, as Envoy)', async () => {
    const s = await start([
      ap('allow-public', { rules: [{ to: [{ operation: { paths: ['/public/*'] } }] }] }),
    ]);
    const out = await raw(s.port, 'GET /public/x#/../../admin HTTP/1.1\r\nHost: reviews:9080\r\n\r\n');
    expect(out).to.match(/^HTTP\/1\.1 400/);
    expect(up.seen).to.have.length(0);
  });

  it('hosts: case-insensitive and port-insensitive DENY', async () => {
    const s = await start([
      ap('no-reviews', { action: 'DENY', rules: [{ to: [{ operation: { hosts: ['reviews'] } }] }] }),
    ]);
    for (const host of ['reviews', 'REVIEWS', 'reviews:9080', 'Reviews:9080'])
      expect((await request(s.port, { host })).status, host).to.equal(403);
  });

  it('headers condition and remoteIpBlocks on the peer address', async () => {
    const s = await start([
      ap('allow-loopback-admin', {
        rules: [
          {
            from: [{ source: { remoteIpBlocks: ['127.0.0.0/8'] } }],
            when: [{ key: 'request.headers[x-role]', values: ['admin'] }],
          },
        ],
      }),
    ]);
    expect((await request(s.port, { headers: { 'x-role': 'admin' } })).status).to.equal(200);
    expect((await request(s.port, { headers: { 'x-role': 'user' } })).status).to.equal(403);
    // x-forwarded-for is not trusted without numTrustedProxies
    expect(
      (await request(s.port, { headers: { 'x-role': 'admin', 'x-forwarded-for': '203.0.113.1' } })).status,
    ).to.equal(200);
  });

  it('with numTrustedProxies: 1, remote.ip is the x-forwarded-for client (the peer stays source.ip)', async () => {
    const { block } = translateAuthz({
      policies: [
        ap('allow-client', {
          rules: [{ from: [{ source: { remoteIpBlocks: ['203.0.113.0/24'], ipBlocks: ['127.0.0.1'] } }] }],
        }),
      ],
      pod: { namespace: 'default', labels: {} },
      numTrustedProxies: 1,
    });
    p = await startProxy({ ...baseConfig(), authz: block! }, { accessLogSink: new PassThrough().resume() });
    expect((await request(p.port, { headers: { 'x-forwarded-for': '203.0.113.7' } })).status).to.equal(200);
    expect(
      (await request(p.port, { headers: { 'x-forwarded-for': '203.0.113.7, 198.51.100.1' } })).status,
    ).to.equal(403);
    expect((await request(p.port)).status).to.equal(403);
  });

  it('AUDIT and dry-run are reported in metrics and never enforced', async () => {
    const s = await start([
      ap('audit-all', { action: 'AUDIT', rules: [{}] }),
      {
        ...ap('would-deny', { action: 'DENY', rules: [{}] }),
        metadata: { name: 'would-deny', namespace: 'default', annotations: { 'istio.io/dry-run': 'true' } },
      } as AuthorizationPolicy,
    ]);
    expect((await request(s.port)).status).to.equal(200);
    const m = await metrics(s.metrics);
    expect(m).to.include('weft_proxy_authz_audit_total{policy="default/audit-all"} 1');
    expect(m).to.include('weft_proxy_authz_dry_run_total{policy="default/would-deny",decision="deny"} 1');
  });

  it('POST /explain on the admin port says which policy would allow or deny a request', async () => {
    const s = await start([
      ap('no-admin', {
        action: 'DENY',
        rules: [{ to: [{ operation: { paths: ['/x'] } }] }, { to: [{ operation: { paths: ['/admin/*'] } }] }],
      }),
      ap('allow-get', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }),
    ]);
    const explain = async (body: Record<string, unknown>) =>
      (await (
        await fetch(`http://127.0.0.1:${s.admin}/explain`, {
          method: 'POST',
          body: JSON.stringify({ authority: 'reviews:9080', ...body }),
        })
      ).json()) as {
        outcome: string;
        authz?: { decision: string; policy?: string; rule?: number; reason: string };
      };
    const denied = await explain({ path: '/admin/users' });
    expect(denied.outcome).to.equal('403 RBAC: denied by DENY policy default/no-admin rule 1');
    expect(denied.authz).to.deep.include({ decision: 'deny', policy: 'default/no-admin', rule: 1 });
    const encoded = await explain({ path: '/%2Fadmin/users' });
    expect(encoded.outcome).to.match(/^403 RBAC: denied by DENY policy default\/no-admin rule 1 \(path/);
    const post = await explain({ method: 'POST', path: '/public' });
    expect(post.outcome).to.equal('403 RBAC: no ALLOW policy matched');
    const ok = await explain({ path: '/public' });
    expect(ok.authz).to.deep.include({ decision: 'allow', policy: 'default/allow-get', rule: 0 });
    expect(ok.outcome).to.equal('forwarded to one destination by weight');
    expect(up.seen).to.have.length(0);
  });

  describe('CUSTOM with a real ext-authz server', () => {
    const provider = (over: Partial<MeshExtAuthzProvider> = {}): MeshExtAuthzProvider => ({
      name: 'ext',
      service: 'ext-authz.auth.svc.cluster.local',
      port: 8000,
      pathPrefix: '/check',
      includeRequestHeadersInCheck: ['x-ext-authz'],
      headersToUpstreamOnAllow: ['x-user'],
      headersToDownstreamOnDeny: ['x-reason'],
      includeAdditionalHeadersInCheck: { 'x-added': 'weft' },
      ...over,
    });
    const custom = (paths = ['/api/*']): AuthorizationPolicy =>
      ap('ext-check', {
        action: 'CUSTOM',
        provider: { name: 'ext' },
        rules: [{ to: [{ operation: { paths } }] }],
      });

    it('2xx allows and copies headersToUpstreamOnAllow (only those) to the upstream request', async () => {
      const s = await start([custom()], [provider()]);
      const r = await request(s.port, {
        path: '/api/x?q=1',
        headers: { 'x-ext-authz': 'allow', 'x-secret': 'no', authorization: 'Bearer t' },
      });
      expect(r.status).to.equal(200);
      expect(ext.seen).to.have.length(1);
      expect(ext.seen[0]!.url).to.equal('/check/api/x?q=1');
      expect(ext.seen[0]!.method).to.equal('GET');
      expect(ext.seen[0]!.headers).to.include({
        'x-ext-authz': 'allow',
        'x-added': 'weft',
        authorization: 'Bearer t',
        'content-length': '0',
        host: 'reviews:9080',
      });
      expect(ext.seen[0]!.headers['x-secret']).to.equal(undefined);
      expect(up.seen[0]!.headers['x-user']).to.equal('alice');
      expect(up.seen[0]!.headers['x-internal']).to.equal(undefined);
    });

    it('a denial answers with the provider status, body and headersToDownstreamOnDeny, flag UAEX', async () => {
      const s = await start([custom()], [provider()]);
      const r = await request(s.port, { path: '/api/x', headers: { 'x-ext-authz': 'deny' } });
      expect(r.status).to.equal(403);
      expect(r.body).to.equal('ext-authz says no');
      expect(r.headers['x-reason']).to.equal('denied by ext');
      expect(r.headers['x-internal']).to.equal(undefined);
      expect(r.headers['x-weft-response-flags']).to.equal('UAEX');
      expect(up.seen).to.have.length(0);
      expect(await metrics(s.metrics)).to.include(
        'weft_proxy_authz_denied_total{policy="default/ext-check",action="CUSTOM"} 1',
      );
    });

    it('requests the CUSTOM rules do not match skip the provider', async () => {
      const s = await start([custom()], [provider()]);
      expect((await request(s.port, { path: '/other' })).status).to.equal(200);
      expect(ext.seen).to.have.length(0);
    });

    it('CUSTOM runs before DENY: the provider is called, then the DENY policy still denies', async () => {
      const s = await start(
        [
          custom(),
          ap('deny-api', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/api/*'] } }] }] }),
        ],
        [provider()],
      );
      const r = await request(s.port, { path: '/api/x', headers: { 'x-ext-authz': 'allow' } });
      expect(r.status).to.equal(403);
      expect(r.body).to.equal('RBAC: access denied by DENY policy default/deny-api rule 0');
      expect(ext.seen).to.have.length(1);
    });

    it('headers the provider adds are seen by ALLOW rules after it (Envoy filter order)', async () => {
      const s = await start(
        [
          custom(),
          ap('allow-alice', { rules: [{ when: [{ key: 'request.headers[x-user]', values: ['alice'] }] }] }),
        ],
        [provider()],
      );
      expect(
        (await request(s.port, { path: '/api/x', headers: { 'x-ext-authz': 'allow' } })).status,
      ).to.equal(200);
      // not through the provider: x-user from the client alone is what the ALLOW sees
      expect((await request(s.port, { path: '/other' })).status).to.equal(403);
    });

    it('timeout without failOpen: statusOnError (default 403)', async () => {
      const s = await start([custom()], [provider({ timeoutMs: 200 })]);
      const r = await request(s.port, { path: '/api/x', headers: { 'x-ext-authz': 'hang' } });
      expect(r.status).to.equal(403);
      expect(r.headers['x-weft-response-flags']).to.equal('UAEX');
      expect(up.seen).to.have.length(0);
    });

    it('timeout with statusOnError 503', async () => {
      const s = await start([custom()], [provider({ timeoutMs: 200, statusOnError: 503 })]);
      expect((await request(s.port, { path: '/api/x', headers: { 'x-ext-authz': 'hang' } })).status).to.equal(
        503,
      );
    });

    it('timeout with failOpen: allowed', async () => {
      const s = await start([custom()], [provider({ timeoutMs: 200, failOpen: true })]);
      expect((await request(s.port, { path: '/api/x', headers: { 'x-ext-authz': 'hang' } })).status).to.equal(
        200,
      );
      expect(up.seen).to.have.length(1);
    });

    it('provider down: failOpen false denies, failOpen true allows', async () => {
      const down = await extAuthzServer();
      const port = down.port;
      await down.close();
      const services = (over: Partial<MeshExtAuthzProvider>) => ({ ...provider(over) });
      // point the provider at the closed port by overriding the block's endpoints
      for (const [failOpen, want] of [
        [false, 403],
        [true, 200],
      ] as const) {
        const { block } = translateAuthz({
          policies: [custom()],
          pod: { namespace: 'default', labels: {} },
          providers: [services({ failOpen })],
        });
        block!.providers!.ext!.endpoints = [{ address: '127.0.0.1', port }];
        const s = await startProxy(
          { ...baseConfig(), authz: block! },
          { accessLogSink: new PassThrough().resume() },
        );
        expect(
          (await request(s.port, { path: '/api/x', headers: { 'x-ext-authz': 'allow' } })).status,
        ).to.equal(want);
        await s.stop();
      }
    });
  });
});
