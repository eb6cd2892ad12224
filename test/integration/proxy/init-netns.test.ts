/**
 * `proxy init` and `proxy sidecar` in a real network namespace, wired to the host by a veth pair
 * on a private /24 the test made (no route anywhere else, so nothing can leave the machine):
 *
 * - the rules land in that namespace and only there, and re-running init is idempotent;
 * - an app connection to 10.254.N.1:80 lands on :15001 with its original destination (native addon);
 * - the proxy's uid is not captured;
 * - a real `proxy sidecar` (uid 1337, config from a fake weftd on the host end of the veth)
 *   passes unknown TCP through to the original destination, routes HTTP by Host, and delivers
 *   inbound connections to the app from 127.0.0.6;
 * - under a STRICT PeerAuthentication, plaintext to the app's port is refused while the kubelet's
 *   probes, rewritten by the injector to the health port (excluded from capture), keep working.
 *
 * Needs root (ip netns, iptables, setpriv); skipped with the reason otherwise.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { chmodSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { PROXY_CONFIG_API_VERSION, type ProxyConfig } from '../../../pkg/proxyconfig/types.js';
import { fakeWeftd, type FakeWeftd } from './fake-weftd.js';
import { sleep, upstream, type Upstream } from './helpers.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const NS = `weft-init-${randomBytes(3).toString('hex')}`;
const VETH = `wi${randomBytes(3).toString('hex')}`;
const SUBNET = `10.254.${randomInt(0, 255)}`;
const HOST_IP = `${SUBNET}.1`;
const POD_IP = `${SUBNET}.2`;
const INIT_ARGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', ''];
/** What the injector hands the sidecar for an app with an httpGet readiness and a tcpSocket liveness probe. */
const PROBERS = JSON.stringify({
  '/app-health/app/readyz': { httpGet: { path: '/healthz', port: 8081 } },
  '/app-health/app/livez': { tcpSocket: { port: 8080 } },
});
const INJECTOR_ARGS = [...INIT_ARGS, '-b', '*', '-d', '15090,15021'];

function sh(cmd: string, args: string[], input?: string): { status: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, cwd: ROOT });
  return { status: r.status ?? -1, out: r.stdout ?? '', err: `${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.err}`);
  return r.out;
}

function inNs(uid: number, argv: string[]): string[] {
  return ['netns', 'exec', NS, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv];
}

/**
 * In the namespace, as `uid`, send `data` to host:port and return what the peer sends back.
 * Asynchronous: the peer may be a server in this very test process.
 */
function connectFromNs(
  host: string,
  port: number,
  uid = 0,
  data = '',
): Promise<{ status: number; out: string; err: string }> {
  const script = `const s=require('net').connect(${port},'${host}',()=>s.write(${JSON.stringify(data)}));let d='';s.on('data',c=>d+=c);s.on('end',()=>{process.stdout.write(d);process.exit(0)});s.on('error',e=>{process.stderr.write(e.message);process.exit(3)});setTimeout(()=>{process.stdout.write(d);process.stderr.write('timeout');process.exit(4)},5000)`;
  return new Promise((resolve) => {
    const child = spawn('ip', inNs(uid, [process.execPath, '-e', script]), { cwd: ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => resolve({ status: code ?? -1, out, err }));
  });
}

function initInNs(extra: string[]): { status: number; out: string; err: string } {
  return sh('ip', [
    'netns',
    'exec',
    NS,
    process.execPath,
    '--import',
    'tsx',
    'proxy/main.ts',
    'init',
    ...extra,
  ]);
}

function istioLines(saved: string): string[] {
  return saved.split('\n').filter((l) => l.includes('ISTIO_'));
}

function whyNot(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (ip netns, iptables)';
  for (const bin of ['ip', 'iptables-restore', 'iptables-save', 'setpriv'])
    if (sh('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed`;
  return null;
}

/** Starts a long-running process in the namespace and resolves once it prints `marker`. */
async function startInNs(
  uid: number,
  argv: string[],
  marker: string,
): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn('ip', inNs(uid, argv), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // up to 60 s: tsx starts cold as uid 1337 (HOME=/tmp) and the machine may be busy
  for (let i = 0; i < 1200 && !out.includes(marker); i++) {
    if (child.exitCode !== null) throw new Error(`${argv.join(' ')} exited ${child.exitCode}: ${out}`);
    await sleep(50);
  }
  if (!out.includes(marker)) {
    child.kill('SIGKILL');
    throw new Error(`${argv.join(' ')} did not print ${marker}: ${out}`);
  }
  return { child, out: () => out };
}

/** A plain TCP server on the host end of the veth: answers "host:<what it received>". */
async function hostTcpServer(): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((c) => c.once('data', (d: Buffer) => c.end(`host:${d.toString()}`)));
  await new Promise<void>((r) => server.listen(0, HOST_IP, r));
  return { port: (server.address() as net.AddressInfo).port, server };
}

describe('proxy init and sidecar in a network namespace', function () {
  this.timeout(90_000);
  let hostRulesBefore = '';
  const procs: ChildProcess[] = [];
  let hostTcp: { port: number; server: net.Server } | undefined;

  before(async function () {
    const reason = whyNot();
    if (reason !== null) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
    must('bash', ['hack/build-native.sh']);
    hostRulesBefore = must('iptables-save', ['-t', 'nat']);
    must('ip', ['netns', 'add', NS]);
    must('ip', ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', `${VETH}p`]);
    must('ip', ['link', 'set', `${VETH}p`, 'netns', NS]);
    must('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', VETH]);
    must('ip', ['link', 'set', VETH, 'up']);
    for (const args of [
      ['link', 'set', 'lo', 'up'],
      ['addr', 'add', `${POD_IP}/24`, 'dev', `${VETH}p`],
      ['link', 'set', `${VETH}p`, 'up'],
    ])
      must('ip', ['netns', 'exec', NS, 'ip', ...args]);
    hostTcp = await hostTcpServer();
  });

  after(() => {
    for (const p of procs) p.kill('SIGKILL');
    hostTcp?.server.close();
    sh('ip', ['link', 'del', VETH]);
    sh('ip', ['netns', 'del', NS]);
  });

  it('--dry-run prints the rules and changes nothing', () => {
    const r = initInNs([...INJECTOR_ARGS, '--dry-run']);
    expect(r.status, r.err).to.equal(0);
    expect(r.out).to.contain('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
    expect(must('ip', ['netns', 'exec', NS, 'iptables-save', '-t', 'nat'])).not.to.contain('ISTIO');
  });

  it('installs the rules in the namespace; the host rules do not change', () => {
    const r = initInNs(INJECTOR_ARGS);
    expect(r.status, r.err).to.equal(0);
    const saved = must('ip', ['netns', 'exec', NS, 'iptables-save', '-t', 'nat']);
    expect(saved).to.contain('-A OUTPUT -p tcp -j ISTIO_OUTPUT');
    expect(saved).to.contain('-A PREROUTING -p tcp -j ISTIO_INBOUND');
    expect(saved).to.contain('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001');
    expect(saved).to.match(/-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN/);
    // other software may change the host's rules meanwhile: compare only what init would add
    expect(istioLines(must('iptables-save', ['-t', 'nat']))).to.deep.equal(istioLines(hostRulesBefore));
  });

  it('running it again keeps one jump per hook', () => {
    const r = initInNs(INJECTOR_ARGS);
    expect(r.status, r.err).to.equal(0);
    const saved = must('ip', ['netns', 'exec', NS, 'iptables-save', '-t', 'nat']);
    expect(saved.match(/-j ISTIO_OUTPUT/g)).to.have.length(1);
    expect(saved.match(/-j ISTIO_INBOUND/g)).to.have.length(1);
  });

  it('fails loudly, naming what is missing, without iptables', () => {
    const r = sh('ip', [
      'netns',
      'exec',
      NS,
      'env',
      'PATH=/nonexistent',
      process.execPath,
      '--import',
      'tsx',
      'proxy/main.ts',
      'init',
      ...INJECTOR_ARGS,
    ]);
    expect(r.status).to.equal(1);
    expect(r.err).to.match(/iptables-save failed/);
  });

  describe('with a stand-in listener on :15001', () => {
    let listener: ChildProcess | undefined;
    before(async () => {
      const l = await startInNs(
        0,
        [
          process.execPath,
          '--import',
          'tsx',
          'test/integration/proxy/fixtures/original-dst-listener.ts',
          '15001',
        ],
        'listening',
      );
      listener = l.child;
      procs.push(l.child);
    });
    after(() => listener?.kill('SIGKILL'));

    it(`an app connection to ${HOST_IP}:80 lands on :15001 with its original destination`, async () => {
      const r = await connectFromNs(HOST_IP, 80);
      expect(r.status, r.err).to.equal(0);
      expect(JSON.parse(r.out)).to.deep.include({
        dst: { address: HOST_IP, port: 80, family: 4 },
        reason: '',
      });
    });

    it("the proxy's own uid is not captured", async () => {
      const r = await connectFromNs(HOST_IP, hostTcp!.port, 1337, 'direct');
      expect(r.status, r.err).to.equal(0);
      expect(r.out).to.equal('host:direct');
    });
  });

  describe('a real proxy sidecar (uid 1337)', () => {
    let weftd: FakeWeftd;
    let ups: Upstream;
    let sidecar: { child: ChildProcess; out: () => string };
    let fwd: net.Server | undefined;

    before(async () => {
      ups = await upstream('routed');
      // the upstream listens on 127.0.0.1 of the host: reach it through a tiny forwarder on the veth
      fwd = net.createServer((c) => c.pipe(net.connect(ups.port, '127.0.0.1')).pipe(c));
      await new Promise<void>((r) => fwd!.listen(0, HOST_IP, r));
      const fwdPort = (fwd.address() as net.AddressInfo).port;
      const cfg: ProxyConfig = {
        apiVersion: PROXY_CONFIG_API_VERSION,
        kind: 'ProxyConfig',
        version: 'ns1',
        listeners: [
          {
            name: 'outbound',
            protocol: 'HTTP',
            address: '0.0.0.0',
            port: 15001,
            virtualHosts: [
              {
                name: 'reviews',
                domains: ['reviews', 'reviews:9080'],
                routes: [{ action: { type: 'route', destinations: [{ cluster: 'reviews', weight: 100 }] } }],
              },
            ],
          },
        ],
        clusters: [{ name: 'reviews', endpoints: [{ address: HOST_IP, port: fwdPort }] }],
      };
      weftd = await fakeWeftd(cfg, HOST_IP);
      chmodSync(path.dirname(weftd.rootPath), 0o755); // readable by uid 1337
      const app = await startInNs(
        0,
        [
          process.execPath,
          '--import',
          'tsx',
          'test/integration/proxy/fixtures/original-dst-listener.ts',
          '8080',
        ],
        'listening',
      );
      procs.push(app.child);
      const httpApp = await startInNs(
        0,
        [
          process.execPath,
          '-e',
          "require('http').createServer((q, s) => s.end('ok')).listen(8081, '0.0.0.0', () => console.log('listening'))",
        ],
        'listening',
      );
      procs.push(httpApp.child);
      sidecar = await startInNs(
        1337,
        [
          'env',
          `WEFT_DISCOVERY_ADDRESS=${weftd.address}`,
          `WEFT_CA_ROOT_PATH=${weftd.rootPath}`,
          `WEFT_TOKEN_PATH=${weftd.tokenPath}`,
          'POD_NAME=app-1',
          'POD_NAMESPACE=default',
          `INSTANCE_IP=${POD_IP}`,
          'HOME=/tmp',
          `ISTIO_KUBE_APP_PROBERS=${PROBERS}`,
          process.execPath,
          '--import',
          'tsx',
          'proxy/main.ts',
          'sidecar',
          '--admin-port',
          '0',
        ],
        '"Applied proxy config"',
      );
      procs.push(sidecar.child);
    });
    after(async () => {
      sidecar?.child.kill('SIGKILL');
      fwd?.close();
      await weftd?.close();
      await ups?.close();
    });

    it('passes unknown TCP through to the original destination', async () => {
      const r = await connectFromNs(HOST_IP, hostTcp!.port, 0, 'not http');
      expect(r.status, `${r.err}\n${sidecar.out()}`).to.equal(0);
      expect(r.out).to.equal('host:not http');
    });

    it('routes captured HTTP by Host through the config', async () => {
      const r = await connectFromNs(
        HOST_IP,
        9080,
        0,
        'GET /x HTTP/1.1\r\nHost: reviews:9080\r\nConnection: close\r\n\r\n',
      );
      expect(r.status, `${r.err}\n${sidecar.out()}`).to.equal(0);
      expect(r.out)
        .to.match(/^HTTP\/1\.1 200/)
        .and.to.contain('routed');
      expect(ups.seen.at(-1)!.url).to.equal('/x');
    });

    it('health and metrics ports are reachable on the pod IP (never captured) and count what happened', async () => {
      const get = (port: number, p: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          http
            .get({ host: POD_IP, port, path: p, agent: false }, (res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            })
            .on('error', reject);
        });
      const ready = await get(15021, '/healthz/ready');
      expect(ready.status, ready.body).to.equal(200);
      const metrics = await get(15090, '/stats/prometheus');
      expect(metrics.body).to.match(/^weft_proxy_passthrough_connections_total [1-9]/m);
      expect(metrics.body).to.match(/^istio_requests_total\{.*response_code="200".*\} 1$/m);
    });

    it('delivers inbound connections to the app from 127.0.0.6', async () => {
      const answer = await new Promise<string>((resolve, reject) => {
        const s = net.connect(8080, POD_IP);
        let d = '';
        s.on('data', (c: Buffer) => (d += c.toString()));
        s.on('end', () => resolve(d));
        s.on('error', reject);
      });
      const got = JSON.parse(answer) as { from: string };
      expect(got.from).to.equal('127.0.0.6');
    });

    it('under STRICT, plaintext to the app port is refused while the rewritten probes keep working', async () => {
      const strict: ProxyConfig = {
        ...weftd.config!,
        version: 'ns-strict',
        inbound: { mtls: { mode: 'STRICT', policy: 'PeerAuthentication default/strict' } },
      };
      weftd.push(strict);
      for (let i = 0; i < 400 && !sidecar.out().includes('"version":"ns-strict"'); i++) await sleep(50);
      expect(sidecar.out()).to.contain('"version":"ns-strict"');
      const get = (port: number, p: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve) => {
          http
            .get({ host: POD_IP, port, path: p, agent: false }, (res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            })
            .on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body: e.code ?? e.message }));
        });
      // the kubelet's view: the pod IP, from outside the namespace
      const direct = await get(8081, '/healthz');
      expect(direct.status, `plaintext to the app: ${direct.body}`).to.equal(0);
      const readyz = await get(15021, '/app-health/app/readyz');
      expect(readyz.status, readyz.body).to.equal(200);
      const livez = await get(15021, '/app-health/app/livez');
      expect(livez.status, livez.body).to.equal(200);
      const metrics = await get(15090, '/stats/prometheus');
      expect(metrics.body).to.match(/^weft_proxy_inbound_refused_total\{reason="plaintext"\} [1-9]/m);
      expect(sidecar.out()).to.contain(
        `plaintext from ${HOST_IP} refused by PeerAuthentication default/strict on port 8081`,
      );
    });
  });
});
