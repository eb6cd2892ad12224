import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request, reviewsEntry, sleep, upstream, vs, type Upstream } from './helpers.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  ports: Record<string, number>;
}

function spawnProxy(args: string[]): { child: ChildProcess; stderr: () => string; exited: Promise<number> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'proxy/main.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? -1)));
  return { child, stderr: () => err, exited };
}

async function runProxy(file: string): Promise<Proc> {
  const s = spawnProxy([
    'run',
    '--config',
    file,
    '--listen',
    '127.0.0.1:0',
    '--admin-port',
    '0',
    '--metrics-port',
    '0',
    '--health-port',
    '0',
    '--drain-seconds',
    '3',
  ]);
  // a generous bound: tsx start-up on a loaded 2-core machine takes seconds
  for (let i = 0; i < 600; i++) {
    const line = s
      .stderr()
      .split('\n')
      .find((l) => l.includes('"Proxy ready"'));
    if (line)
      return {
        child: s.child,
        stderr: s.stderr,
        ports: (JSON.parse(line) as { ports: Record<string, number> }).ports,
      };
    await sleep(50);
  }
  s.child.kill('SIGKILL');
  throw new Error(`proxy did not start: ${s.stderr()}`);
}

/** Replace the file atomically, as editors and ConfigMap updates do. */
function replaceFile(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

describe('weft-proxy CLI (separate process): hot reload, invalid config, SIGTERM drain', function () {
  this.timeout(60_000); // child processes on a loaded 2-core machine
  let v1: Upstream;
  let v2: Upstream;
  let dir: string;
  before(async () => {
    v1 = await upstream('v1');
    v2 = await upstream('v2');
    dir = mkdtempSync(path.join(tmpdir(), 'weft-proxy-cli-'));
  });
  after(async () => {
    await v1.close();
    await v2.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('usage errors exit 2 with a message, no stack trace', async () => {
    const s = spawnProxy(['run', '--listen', 'nope']);
    expect(await s.exited).to.equal(2);
    expect(s.stderr())
      .to.match(/--listen needs HOST:PORT/)
      .and.not.match(/at .*\.ts:\d+/);
  });

  it('an invalid config at start exits 1 with every problem listed', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(
      file,
      reviewsEntry([v1]) +
        vs(`
  - route: [{destination: {host: reviews, subset: v1}, weight: -1}]
    timeout: soon`),
    );
    const s = spawnProxy([
      'run',
      '--config',
      file,
      '--admin-port',
      '0',
      '--metrics-port',
      '0',
      '--health-port',
      '0',
    ]);
    expect(await s.exited).to.equal(1);
    expect(s.stderr())
      .to.match(/WEFT_PROXY_CONFIG_INVALID/)
      .and.match(/spec\.http\[0\]\.timeout: invalid duration \\"soon\\"/);
  });

  it('watches the file: a valid edit is applied, an invalid one rejected (last good stays), SIGTERM drains', async () => {
    const file = path.join(dir, 'mesh.yaml');
    writeFileSync(
      file,
      reviewsEntry([v1, v2]) +
        vs(`
  - route: [{destination: {host: reviews, subset: v1}}]`),
    );
    const p = await runProxy(file);
    try {
      expect((await request(p.ports.outbound!)).body).to.equal('v1');
      replaceFile(
        file,
        reviewsEntry([v1, v2]) +
          vs(`
  - route: [{destination: {host: reviews, subset: v2}}]`),
      );
      let body = '';
      for (let i = 0; i < 300 && body !== 'v2'; i++) {
        await sleep(50);
        body = (await request(p.ports.outbound!)).body;
      }
      expect(body).to.equal('v2');
      replaceFile(file, 'kind: [unclosed');
      for (let i = 0; i < 300 && !p.stderr().includes('Rejected proxy config'); i++) await sleep(50);
      const rejected = p
        .stderr()
        .split('\n')
        .find((l) => l.includes('Rejected proxy config'))!;
      expect(rejected).to.include('WEFT_YAML_SYNTAX');
      expect((await request(p.ports.outbound!)).body).to.equal('v2');
      const dump = JSON.parse((await request(p.ports.admin!, { path: '/config_dump' })).body) as {
        lastReload: { ok: boolean; error: string };
      };
      expect(dump.lastReload.ok).to.equal(false);

      // SIGTERM with a request in flight: it completes, then the process exits 0
      v2.handler = (_q, res) => setTimeout(() => res.writeHead(200, { 'x-upstream': 'v2' }).end('late'), 500);
      const inflight = request(p.ports.outbound!, { agent: false });
      await sleep(100);
      const exited = new Promise<number>((r) => p.child.once('exit', (c) => r(c ?? -1)));
      p.child.kill('SIGTERM');
      expect((await inflight).body).to.equal('late');
      expect(await exited).to.equal(0);
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
      v2.handler = (_q, res) => res.writeHead(200, { 'x-upstream': 'v2' }).end('v2');
    }
  });
});
