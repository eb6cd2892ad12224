/**
 * How weftctl reaches weftd: pod references, --weftd-address, kubeconfig discovery and its
 * errors, the API server's service-proxy answers mapped to coded errors, and proxy-status /
 * proxy-config against a stand-in for weftd's monitoring port on loopback (the real weftd is in
 * test/integration/cli/).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../cli/main.js';
import {
  connectWeftd,
  kubeconfigFiles,
  loadKubeConfig,
  parseWeftdAddress,
  podRef,
  proxyError,
  type ProxyConnection,
} from '../../../cli/weftd.js';
import { configFromText } from '../../../proxy/config/load.js';
import { ApiError } from '../../../pkg/kube/client.js';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
  return { code, out, err };
}

const KUBECONFIG = (ns?: string): string => `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:1'}
users:
- name: u
  user: {token: t}
contexts:
- name: one
  context: {cluster: c, user: u${ns ? `, namespace: ${ns}` : ''}}
- name: two
  context: {cluster: c, user: u, namespace: other}
current-context: one
`;

describe('weftctl: reaching weftd', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'weftctl-kc-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('POD[.NS]: the namespace after the last dot, else -n, else the default', () => {
    const cases: [string, string | undefined, { pod: string; namespace: string }][] = [
      ['reviews-v1-abc', undefined, { pod: 'reviews-v1-abc', namespace: 'default' }],
      ['reviews-v1-abc.bookinfo', undefined, { pod: 'reviews-v1-abc', namespace: 'bookinfo' }],
      ['reviews-v1-abc', 'bookinfo', { pod: 'reviews-v1-abc', namespace: 'bookinfo' }],
      ['reviews-v1-abc.bookinfo', 'bookinfo', { pod: 'reviews-v1-abc', namespace: 'bookinfo' }],
      ['my.dotted.pod', 'ns', { pod: 'my.dotted.pod', namespace: 'ns' }],
    ];
    for (const [text, ns, want] of cases)
      expect(podRef(text, ns, 'default'), `${text} -n ${ns}`).to.deep.equal(want);
    for (const bad of ['', '.ns', 'pod.'])
      expect(() => podRef(bad, undefined, 'default'), bad).to.throw(/is not a pod/);
  });

  it('--weftd-address takes http URLs only', () => {
    expect(parseWeftdAddress('http://127.0.0.1:15014/')).to.equal('http://127.0.0.1:15014');
    expect(parseWeftdAddress('http://weftd.weft-system:15014')).to.equal('http://weftd.weft-system:15014');
    expect(() => parseWeftdAddress('127.0.0.1:15014')).to.throw(/must be/);
    expect(() => parseWeftdAddress('https://a:15014')).to.throw(/must be http:\/\//);
  });

  it('kubeconfig files in kubectl order: --kubeconfig, $KUBECONFIG (a list), ~/.kube/config', () => {
    const flags = { meshNamespace: 'weft-system' };
    expect(kubeconfigFiles({ ...flags, kubeconfig: '/k' }, { KUBECONFIG: '/e' })).to.deep.equal(['/k']);
    expect(kubeconfigFiles(flags, { KUBECONFIG: '/a::/b', HOME: '/h' })).to.deep.equal(['/a', '/b']);
    expect(kubeconfigFiles(flags, { HOME: '/h' })).to.deep.equal(['/h/.kube/config']);
  });

  it('kubeconfig errors say what to do; --context switches, and its namespace is the default', () => {
    const flags = { meshNamespace: 'weft-system' };
    expect(() => loadKubeConfig(flags, { HOME: dir })).to.throw(/WEFT_KUBECONFIG_MISSING|no kubeconfig/);
    expect(() => loadKubeConfig(flags, { HOME: dir })).to.throw(/--weftd-address/);
    const file = join(dir, 'kc.yaml');
    writeFileSync(file, KUBECONFIG('bookinfo'));
    expect(loadKubeConfig({ ...flags, kubeconfig: file }).context).to.equal('one');
    expect(loadKubeConfig({ ...flags, kubeconfig: file, context: 'two' }).context).to.equal('two');
    expect(() => loadKubeConfig({ ...flags, kubeconfig: file, context: 'three' })).to.throw(
      /"three" is not in .* \(it has: one, two\)/,
    );
    // KUBECONFIG=a:b: the first file's names and current context win, later files add
    const second = join(dir, 'second.yaml');
    writeFileSync(
      second,
      KUBECONFIG('ignored')
        .replace('current-context: one', 'current-context: two')
        .replace('- name: two', '- name: three'),
    );
    const merged = loadKubeConfig(flags, { KUBECONFIG: `${file}:${second}` });
    expect(merged.context).to.equal('one');
    expect([...merged.config.contexts].map(([name, c]) => [name, c.body.namespace])).to.deep.equal([
      ['one', 'bookinfo'],
      ['two', 'other'],
      ['three', 'other'],
    ]);
    expect(
      loadKubeConfig({ ...flags, context: 'three' }, { KUBECONFIG: `${file}:${second}` }).context,
    ).to.equal('three');
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'clusters: [');
    expect(() => loadKubeConfig({ ...flags, kubeconfig: broken })).to.throw(/cannot read kubeconfig/);
  });

  it('exec users: weftctl runs the plugin (client-node, loaded lazily) and sends its token through the service proxy', async () => {
    const seen: { url?: string; auth?: string }[] = [];
    const api = createServer((req, res) => {
      seen.push({ url: req.url ?? '', auth: req.headers.authorization ?? '' });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ generation: 1, connections: [] }));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    try {
      const credential = JSON.stringify({
        apiVersion: 'client.authentication.k8s.io/v1',
        kind: 'ExecCredential',
        status: { token: 'from-exec' },
      });
      const file = join(dir, 'exec.yaml');
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            { name: 'c', cluster: { server: `http://127.0.0.1:${(api.address() as AddressInfo).port}` } },
          ],
          users: [
            {
              name: 'u',
              user: {
                exec: {
                  apiVersion: 'client.authentication.k8s.io/v1',
                  command: 'sh',
                  args: ['-c', `echo '${credential}'`],
                  interactiveMode: 'Never',
                },
              },
            },
          ],
          contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'x',
        }),
      );
      const target = connectWeftd({ meshNamespace: 'weft-system', kubeconfig: file });
      expect(await target.get('/debug/connections')).to.deep.equal({ generation: 1, connections: [] });
      expect(seen).to.deep.equal([
        {
          url: '/api/v1/namespaces/weft-system/services/http:weftd:15014/proxy/debug/connections',
          auth: 'Bearer from-exec',
        },
      ]);
    } finally {
      api.close();
    }
  }).timeout(30_000); // the first exec loads client-node (~4 s on a busy machine)

  it("the service proxy's answers become coded errors that say what to do", () => {
    const cases: [ApiError | Error, string, RegExp][] = [
      [
        new ApiError(0, 'NetworkError', 'GET /x: ECONNREFUSED'),
        'WEFT_WEFTD_UNREACHABLE',
        /cannot reach the API server/,
      ],
      [
        new ApiError(401, 'Unauthorized', 'GET /x: 401 Unauthorized: Unauthorized'),
        'WEFT_RBAC_DENIED',
        /credentials/,
      ],
      [
        new ApiError(
          403,
          'Forbidden',
          'GET /x: 403 Forbidden: services "weftd" is forbidden: User "bob" cannot get resource "services/proxy"',
        ),
        'WEFT_RBAC_DENIED',
        /needs RBAC verb "get" on resource "services\/proxy" in namespace weft-system .*User "bob"/,
      ],
      [
        new ApiError(404, 'NotFound', 'GET /x: 404 NotFound: services "weftd" not found'),
        'WEFT_MESH_NOT_INSTALLED',
        /is the mesh installed\? \(kubectl get mesh\)/,
      ],
      [
        new ApiError(
          503,
          'ServiceUnavailable',
          'GET /x: 503 ServiceUnavailable: no endpoints available for service "weftd"',
        ),
        'WEFT_WEFTD_UNREACHABLE',
        /weftd is not ready .*no endpoints available/,
      ],
      [
        new ApiError(404, 'Not Found', 'GET /x: 404 Not Found: weftd does not know pod a/b'),
        'WEFT_WEFTD_ANSWER',
        /answered 404 .*weftd does not know pod a\/b/,
      ],
      [new Error('boom'), 'WEFT_WEFTD_UNREACHABLE', /boom/],
    ];
    for (const [err, code, message] of cases) {
      const e = proxyError(err, 'weft-system', '/debug/connections');
      expect([e.code, e.message], err.message).to.satisfy(
        ([c, m]: [string, string]) => c === code && message.test(m),
      );
    }
  });

  describe('against a stand-in for weftd on loopback', () => {
    let server: Server;
    let address: string;
    let connections: ProxyConnection[] = [];
    let status = 200;
    const config = configFromText(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: default}
spec:
  hosts: [a.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.5, labels: {app: a, version: v1}}]
`,
    ).config;
    const asked: string[] = [];

    before(async () => {
      server = createServer((req, res) => {
        asked.push(req.url ?? '');
        const url = new URL(req.url ?? '/', 'http://x');
        if (status !== 200)
          return res.writeHead(status).end(JSON.stringify({ ready: false, reason: 'still listing Pod' }));
        if (url.pathname === '/debug/connections')
          return res.end(JSON.stringify({ generation: 7, connections }));
        if (url.pathname === '/debug/config') {
          if (url.searchParams.get('pod') !== 'app-1')
            return res
              .writeHead(404)
              .end(JSON.stringify({ code: 'WEFT_POD_UNKNOWN', message: 'weftd does not know pod' }));
          return res.end(JSON.stringify({ kind: 'sidecar', version: config.version, config }));
        }
        return res.writeHead(200).end('not json');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));
    beforeEach(() => {
      status = 200;
      asked.length = 0;
    });

    const base = {
      id: 1,
      kind: 'sidecar' as const,
      serviceAccount: 'sa',
      remote: 'x',
      connectedAt: new Date().toISOString(),
      pushes: 2,
      state: 'configured',
    };

    it('proxy-status: the table, a pod filter, -n, -o json', async () => {
      const push = (version: string, nonce: string) => ({ version, nonce, at: '2026-01-01T00:00:00.000Z' });
      connections = [
        {
          ...base,
          namespace: 'ns1',
          pod: 'app-1',
          version: 'v9',
          currentVersion: 'v9',
          acks: true,
          sent: push('v9', 'n9'),
          acked: push('v9', 'n9'),
          nacked: null,
        },
        {
          ...base,
          id: 2,
          namespace: 'ns2',
          pod: 'app-2',
          version: 'v8',
          currentVersion: 'v9',
          acks: true,
          sent: push('v8', 'n8'),
          acked: push('v8', 'n8'),
          nacked: null,
        },
      ];
      const all = await run(['proxy-status', '--weftd-address', address]);
      expect(all.code).to.equal(0);
      const cols = (l: string): string => {
        const c = l.split(/ {2,}/);
        return [...c.slice(0, 5), c.at(-1)].join('|');
      };
      expect(all.out.split('\n').map(cols)).to.deep.equal([
        'NAME|KIND|VERSION|ACKED|PUSHES|STATE',
        'app-1.ns1|sidecar|v9|v9|2|SYNCED',
        'app-2.ns2|sidecar|v8|v8|2|STALE',
        '|',
      ]);
      const one = await run(['proxy-status', 'app-2.ns2', '--weftd-address', address]);
      expect(one.out.trim().split('\n')).to.have.length(2);
      const ns = await run(['proxy-status', '-n', 'ns1', '-o', 'json', '--weftd-address', address]);
      const body = JSON.parse(ns.out) as { generation: number; proxies: { name: string; state: string }[] };
      expect(body.generation).to.equal(7);
      expect(body.proxies.map((p) => [p.name, p.state])).to.deep.equal([['app-1.ns1', 'SYNCED']]);
      const none = await run(['proxy-status', '-n', 'nowhere', '--weftd-address', address]);
      expect([none.code, none.out, none.err]).to.deep.equal([
        0,
        '',
        'no proxies connected to weftd in namespace nowhere\n',
      ]);
    });

    it('proxy-config: asks weftd for that pod (and kind), prints the part', async () => {
      const r = await run([
        'proxy-config',
        'endpoints',
        'app-1',
        '-n',
        'ns1',
        '--kind',
        'sidecar',
        '--weftd-address',
        address,
      ]);
      expect(r.code, r.err).to.equal(0);
      expect(asked).to.deep.equal(['/debug/config?namespace=ns1&pod=app-1&kind=sidecar']);
      expect(r.out).to.match(
        /^10\.0\.0\.5:80 +outbound\|80\|\|a\.default\.svc\.cluster\.local +1 +version=v1$/m,
      ); // app is trimmed: no proxy reads it
      // without -n or .NS, the kubeconfig context's namespace (here bookinfo), as kubectl does
      const file = join(dir, 'ctx.yaml');
      writeFileSync(file, KUBECONFIG('bookinfo'));
      asked.length = 0;
      await run(['proxy-config', 'endpoints', 'app-1', '--kubeconfig', file, '--weftd-address', address]);
      await run([
        'proxy-config',
        'endpoints',
        'app-1',
        '--kubeconfig',
        file,
        '--context',
        'two',
        '--weftd-address',
        address,
      ]);
      await run([
        'proxy-config',
        'endpoints',
        'app-1',
        '--weftd-address',
        address,
        '--kubeconfig',
        join(dir, 'none'),
      ]);
      expect(asked).to.deep.equal([
        '/debug/config?namespace=bookinfo&pod=app-1',
        '/debug/config?namespace=other&pod=app-1',
        '/debug/config?namespace=default&pod=app-1',
      ]);
      const y = await run([
        'proxy-config',
        'clusters',
        'app-1.ns1',
        '-o',
        'yaml',
        '--weftd-address',
        address,
      ]);
      expect(y.out).to.contain('name: outbound|80||a.default.svc.cluster.local').and.contain('endpoints: 1');
    });

    it('weftd errors: unknown pod, not ready, not weftd, unreachable', async () => {
      const unknown = await run(['proxy-config', 'routes', 'nope.ns1', '--weftd-address', address]);
      expect([unknown.code, unknown.err.trim()]).to.deep.equal([
        2,
        'WEFT_WEFTD_ANSWER: weftd answered 404 to GET /debug/config?namespace=ns1&pod=nope: WEFT_POD_UNKNOWN: weftd does not know pod',
      ]);
      status = 503;
      const notReady = await run(['proxy-status', '--weftd-address', address]);
      expect(notReady.err).to.match(/^WEFT_WEFTD_UNREACHABLE: weftd is not ready/);
      status = 200;
      const notWeftd = await run(['proxy-status', '--weftd-address', `${address}/elsewhere`]);
      expect(notWeftd.err).to.match(/^WEFT_WEFTD_ANSWER: .* did not answer with JSON/);
      const closed = await new Promise<number>((resolve) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const port = (s.address() as AddressInfo).port;
          s.close(() => resolve(port));
        });
      });
      const down = await run(['proxy-status', '--weftd-address', `http://127.0.0.1:${closed}`]);
      expect(down.err).to.match(/^WEFT_WEFTD_UNREACHABLE: cannot reach weftd at .*ECONNREFUSED/);
    });

    it('argument errors never reach weftd', async () => {
      const cases: [string[], RegExp][] = [
        [['proxy-config', '--weftd-address', 'http://a:1'], /a part is required/],
        [
          ['proxy-config', 'secrets', 'p', '--weftd-address', 'http://a:1'],
          /unknown part "secrets": listeners, routes, clusters, endpoints/,
        ],
        [['proxy-config', 'routes', '--weftd-address', 'http://a:1'], /POD\[\.NAMESPACE\] is required/],
        [['proxy-config', 'routes', 'a', 'b', '--weftd-address', 'http://a:1'], /too many arguments: b/],
        [['proxy-config', 'routes', 'p', '--config', 'f'], /a POD or --config FILE, not both/],
        [['proxy-config', 'routes', 'p', '--kind', 'x'], /--kind must be sidecar or gateway/],
        [['proxy-status', 'a', 'b'], /at most one pod/],
        [['proxy-status', '--bogus'], /unknown argument "--bogus"/],
        [['proxy-status', '--weftd-address'], /--weftd-address needs a value/],
      ];
      for (const [args, want] of cases) {
        const r = await run(args);
        expect([r.code, r.err], args.join(' ')).to.satisfy(
          ([c, e]: [number, string]) => c === 2 && want.test(e),
        );
      }
      expect(asked).to.deep.equal([]);
    });
  });
});
