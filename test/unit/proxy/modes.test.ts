import { expect } from 'chai';
import { hostPort, sniff } from '../../../proxy/sidecar/capture.js';
import { parseProbers } from '../../../proxy/sidecar/probes.js';
import { AgentUsageError, agentSettings } from '../../../proxy/sidecar/agent.js';
import { parseWaitArgs } from '../../../proxy/wait.js';
import { DISCOVERY_BACKOFF, describeEnd, parseAddress } from '../../../proxy/discovery/client.js';
import { backoffDelay } from '../../../pkg/kube/backoff.js';
import { rewriteProbes, APP_PROBERS_ENV } from '../../../pkg/inject/probes.js';

describe('sidecar capture: sniffing the first bytes', () => {
  const TABLE: [string, string, boolean, ReturnType<typeof sniff>][] = [
    [
      'a full request head',
      'GET /x HTTP/1.1\r\nHost: reviews:9080\r\nAccept: */*\r\n\r\n',
      false,
      { kind: 'http', host: 'reviews:9080' },
    ],
    [
      'host header in any case, bare LF',
      'POST / HTTP/1.0\nhOsT:  ratings \n\n',
      false,
      { kind: 'http', host: 'ratings' },
    ],
    ['no Host header', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', false, { kind: 'http', host: null }],
    ['a partial method', 'GE', false, { kind: 'more' }],
    ['a partial request line', 'GET /very/long', false, { kind: 'more' }],
    ['headers still coming', 'GET / HTTP/1.1\r\nHost: a\r\n', false, { kind: 'more' }],
    ['headers cut by end of stream', 'GET / HTTP/1.1\r\nHost: a\r\n', true, { kind: 'http', host: 'a' }],
    ['a TLS ClientHello', '\x16\x03\x01\x02\x00\x01', false, { kind: 'tcp' }],
    ['a MySQL-ish binary greeting', '\x4a\x00\x00\x00\x0a8.0', false, { kind: 'tcp' }],
    ['a method-like word that is not HTTP', 'HELLO world\r\n', false, { kind: 'tcp' }],
    ['HTTP/2 preface (h2c with prior knowledge)', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', false, { kind: 'h2' }],
    [
      'the preface and a SETTINGS frame',
      'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00',
      false,
      { kind: 'h2' },
    ],
    ['half a preface', 'PRI * HTTP/2', false, { kind: 'more' }],
    ['half a preface, stream over', 'PRI * HTTP/2', true, { kind: 'tcp' }],
    ['PRI as an HTTP/1.1 method', 'PRI * HTTP/1.1\r\n\r\n', false, { kind: 'http', host: null }],
    ['nothing at all, stream over', '', true, { kind: 'tcp' }],
    ['Redis inline command', 'PING\r\n', false, { kind: 'tcp' }],
  ];
  for (const [name, input, final, want] of TABLE)
    it(name, () => expect(sniff(Buffer.from(input, 'latin1'), final)).to.deep.equal(want));

  const PORTS: [string, number][] = [
    ['reviews:9080', 9080],
    ['reviews', 80],
    ['[::1]:8443', 8443],
    ['10.0.0.1', 80],
  ];
  for (const [host, port] of PORTS)
    it(`the port of Host ${host} is ${port}`, () => expect(hostPort(host)).to.equal(port));
});

describe('sidecar app probers (ISTIO_KUBE_APP_PROBERS)', () => {
  it('parses what the injector writes', () => {
    const containers = [
      {
        name: 'app',
        ports: [{ name: 'http', containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/ready', port: 'http' as unknown as number }, timeoutSeconds: 3 },
        livenessProbe: { tcpSocket: { port: 9000 as unknown as number } },
        startupProbe: { grpc: { port: 9090, service: 'svc' } },
      },
    ];
    const env = JSON.stringify(rewriteProbes(containers));
    const p = parseProbers(env);
    expect(APP_PROBERS_ENV).to.equal('ISTIO_KUBE_APP_PROBERS');
    expect([...p.keys()].sort()).to.deep.equal([
      '/app-health/app/livez',
      '/app-health/app/readyz',
      '/app-health/app/startupz',
    ]);
    expect(p.get('/app-health/app/readyz')).to.deep.equal({
      httpGet: { path: '/ready', port: 8080 },
      timeoutSeconds: 3,
    });
    expect(p.get('/app-health/app/livez')!.tcpSocket!.port).to.equal(9000);
    expect(p.get('/app-health/app/startupz')!.grpc).to.deep.equal({ port: 9090, service: 'svc' });
  });
  it('an absent or empty value means no probers', () => {
    expect(parseProbers(undefined).size).to.equal(0);
    expect(parseProbers('  ').size).to.equal(0);
  });
  const BAD: [string, string, RegExp][] = [
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /JSON object/],
    ['a path outside /app-health/', '{"/healthz":{"tcpSocket":{"port":1}}}', /not under \/app-health\//],
    ['no handler', '{"/app-health/a/livez":{}}', /needs httpGet, tcpSocket or grpc/],
    ['a named port', '{"/app-health/a/livez":{"httpGet":{"port":"http"}}}', /numeric port/],
  ];
  for (const [name, json, re] of BAD)
    it(`refuses ${name}`, () => expect(() => parseProbers(json)).to.throw(re));
});

describe('proxy sidecar/gateway settings: flags over env over defaults', () => {
  const ENV = {
    WEFT_DISCOVERY_ADDRESS: 'weftd.weft-system.svc:15012',
    POD_NAME: 'p-1',
    POD_NAMESPACE: 'ns',
    INSTANCE_IP: '10.1.2.3',
    WEFT_TOKEN_PATH: '/t/token',
  };
  it('takes the pod env the injector sets, with Istio port defaults', () => {
    const s = agentSettings('sidecar', [], ENV);
    expect(s).to.deep.include({
      kind: 'sidecar',
      discoveryAddress: 'weftd.weft-system.svc:15012',
      caRootPath: '/etc/weft/ca/root-cert.pem',
      tokenPath: '/t/token',
      namespace: 'ns',
      pod: 'p-1',
      appHost: '10.1.2.3',
      bind: '0.0.0.0',
      outboundPort: 15001,
      inboundPort: 15006,
      adminPort: 15000,
      metricsPort: 15090,
      healthPort: 15021,
      drainMs: 5000,
    });
  });
  it('flags win over env (both --flag=value and --flag value)', () => {
    const s = agentSettings(
      'gateway',
      ['--discovery-address=weftd.other:15012', '--ca-root', '/ca.pem', '--token', '/tok', '--pod', 'gw'],
      ENV,
    );
    expect(s).to.deep.include({
      kind: 'gateway',
      discoveryAddress: 'weftd.other:15012',
      caRootPath: '/ca.pem',
      tokenPath: '/tok',
      pod: 'gw',
    });
  });
  it('without INSTANCE_IP the app is on 127.0.0.1', () => {
    expect(agentSettings('sidecar', [], { ...ENV, INSTANCE_IP: '' }).appHost).to.equal('127.0.0.1');
  });
  const BAD: [string, string[], Record<string, string>, RegExp][] = [
    [
      'no discovery address',
      [],
      { POD_NAME: 'p', POD_NAMESPACE: 'n' },
      /--discovery-address or WEFT_DISCOVERY_ADDRESS is required/,
    ],
    ['no namespace', [], { WEFT_DISCOVERY_ADDRESS: 'a:1', POD_NAME: 'p' }, /POD_NAMESPACE is required/],
    ['an address without a port', ['--discovery-address', 'weftd'], ENV, /host:port/],
    ['an unknown flag', ['--nope', '1'], ENV, /unknown flag/],
    ['a bad port', ['--health-port', 'x'], ENV, /needs a port/],
    ['a positional argument', ['extra'], ENV, /unexpected argument/],
    ['bad probers', [], { ...ENV, ISTIO_KUBE_APP_PROBERS: '{' }, /not JSON/],
  ];
  for (const [name, argv, env, re] of BAD)
    it(`refuses ${name}`, () =>
      expect(() => agentSettings('sidecar', argv, env)).to.throw(AgentUsageError, re));
});

describe('proxy wait flags', () => {
  it('defaults like pilot-agent wait', () => {
    expect(parseWaitArgs([])).to.deep.equal({
      url: 'http://127.0.0.1:15021/healthz/ready',
      timeoutMs: 60_000,
      periodMs: 200,
    });
  });
  it('accepts seconds with or without a unit', () => {
    expect(parseWaitArgs(['--timeout', '5']).timeoutMs).to.equal(5000);
    expect(parseWaitArgs(['--timeout=90s']).timeoutMs).to.equal(90_000);
  });
  it('refuses nonsense', () => {
    expect(() => parseWaitArgs(['--timeout', '0'])).to.throw(/seconds > 0/);
    expect(() => parseWaitArgs(['--bogus', '1'])).to.throw(/unknown flag/);
    expect(() => parseWaitArgs(['--timeout'])).to.throw(/needs a value/);
  });
});

describe('discovery client pieces', () => {
  const ADDR: [string, { host: string; port: number } | RegExp][] = [
    ['weftd.weft-system.svc:15012', { host: 'weftd.weft-system.svc', port: 15012 }],
    ['10.0.0.1:15012', { host: '10.0.0.1', port: 15012 }],
    ['[fd00::1]:15012', { host: 'fd00::1', port: 15012 }],
    ['weftd', /host:port/],
    ['weftd:0', /host:port/],
    ['weftd:99999', /host:port/],
  ];
  for (const [addr, want] of ADDR)
    it(`address ${addr}`, () => {
      if (want instanceof RegExp) expect(() => parseAddress(addr)).to.throw(want);
      else expect(parseAddress(addr)).to.deep.equal(want);
    });

  it('reconnect delays double from 0.5 s to a 30 s cap, half of each random', () => {
    const lo = (n: number): number => backoffDelay(n, DISCOVERY_BACKOFF, () => 0);
    const hi = (n: number): number => backoffDelay(n, DISCOVERY_BACKOFF, () => 0.999999);
    expect([1, 2, 3, 4].map(lo)).to.deep.equal([250, 500, 1000, 2000]);
    expect([1, 2, 3, 4].map(hi)).to.deep.equal([500, 1000, 2000, 4000]);
    expect(hi(30)).to.equal(30_000);
    expect(lo(30)).to.equal(15_000);
  });

  const ENDS: [Parameters<typeof describeEnd>[0], RegExp][] = [
    [
      { kind: 'http-error', status: 401, body: '{"code":"WEFT_UNAUTHENTICATED"}' },
      /HTTP 401: .*WEFT_UNAUTHENTICATED/,
    ],
    [{ kind: 'silent', ms: 45_000 }, /45000 ms .* dead stream/],
    [{ kind: 'closed', gotConfig: true }, /closed the stream/],
    [{ kind: 'error', message: 'self-signed certificate', gotConfig: false }, /self-signed certificate/],
  ];
  for (const [end, re] of ENDS) it(`describes ${end.kind}`, () => expect(describeEnd(end)).to.match(re));
});
