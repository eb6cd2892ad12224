/**
 * weft-proxy as an npm bin (package.json "bin", bin/weft-proxy.js over the shared bin/launch.js):
 * `npx weft-proxy run --config FILE` serves, `--help`/`--version` answer, and the launcher passes
 * SIGHUP (reload) and SIGTERM (drain) on to the proxy and exits as the proxy did.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request, reviewsEntry, sleep, upstream, vs, type Upstream } from './helpers.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const BIN = path.join(ROOT, 'bin', 'weft-proxy.js');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

interface Started {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Each in its own process group, so the test can end whatever it started (npx → launcher → proxy). */
function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Started {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  return { child, out: () => out, err: () => err, exited };
}

const RUN_FLAGS = ['--admin-port', '0', '--metrics-port', '0', '--health-port', '0', '--drain-seconds', '2'];

async function ready(s: Started): Promise<Record<string, number>> {
  // a generous bound: npx and tsx start-up on a loaded 2-core machine take seconds
  for (let i = 0; i < 1200; i++) {
    const line = s
      .err()
      .split('\n')
      .find((l) => l.includes('"Proxy ready"'));
    if (line) return (JSON.parse(line) as { ports: Record<string, number> }).ports;
    if (s.child.exitCode !== null || s.child.signalCode !== null) break;
    await sleep(50);
  }
  s.child.kill('SIGKILL');
  throw new Error(`proxy did not start: ${s.err()}`);
}

function killGroup(s: Started): void {
  try {
    process.kill(-s.child.pid!, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

const applied = (s: Started): number => (s.err().match(/"Applied proxy config"/g) ?? []).length;

describe('weft-proxy npm bin (npx weft-proxy, bin/weft-proxy.js)', function () {
  this.timeout(120_000);
  let v1: Upstream;
  let dir: string;
  let file: string;
  before(async () => {
    v1 = await upstream('v1');
    dir = mkdtempSync(path.join(tmpdir(), 'weft-proxy-bin-'));
    file = path.join(dir, 'mesh.yaml');
    writeFileSync(file, reviewsEntry([v1]) + vs(`  - route: [{destination: {host: reviews, subset: v1}}]`));
  });
  after(async () => {
    await v1.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('package.json names bin/weft-proxy.js as the weft-proxy bin', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(pkg.bin['weft-proxy']).to.equal('bin/weft-proxy.js');
  });

  it('--help and help print the usage on stdout and exit 0; --version and version print the version', async () => {
    for (const flag of ['--help', '-h', 'help']) {
      const s = start(process.execPath, [BIN, flag]);
      expect((await s.exited).code, flag).to.equal(0);
      expect(s.out(), flag)
        .to.match(/^usage: weft-proxy /)
        .and.include('run --config FILE');
    }
    for (const flag of ['--version', 'version']) {
      const s = start(process.execPath, [BIN, flag]);
      expect((await s.exited).code, flag).to.equal(0);
      expect(s.out(), flag).to.equal(`weft-proxy ${VERSION}\n`);
    }
  });

  it('a usage error exits 2 through the launcher with the message', async () => {
    const s = start(process.execPath, [BIN, 'serve']);
    expect((await s.exited).code).to.equal(2);
    expect(s.err()).to.include('unknown command "serve"').and.include('usage: weft-proxy');
  });

  it('npx weft-proxy run --config FILE --listen 127.0.0.1:PORT serves the config', async () => {
    // npx links the project into its cache once and keeps the bins it saw then: a fresh cache
    // (offline, nothing to download) stands for a user's first run
    const cache = path.join(dir, 'npm-cache');
    const s = start(
      'npx',
      ['--offline', 'weft-proxy', 'run', '--config', file, '--listen', '127.0.0.1:0', ...RUN_FLAGS],
      { ...process.env, npm_config_cache: cache },
    );
    try {
      const ports = await ready(s);
      const reply = await request(ports.outbound!);
      expect(reply.status).to.equal(200);
      expect(reply.body).to.equal('v1');
    } finally {
      killGroup(s);
      await s.exited;
    }
  });

  it('the launcher passes SIGHUP (reload) and SIGTERM (drain) on, and exits as the proxy did', async () => {
    const s = start(process.execPath, [
      BIN,
      'run',
      '--config',
      file,
      '--listen',
      '127.0.0.1:0',
      ...RUN_FLAGS,
    ]);
    try {
      const ports = await ready(s);
      expect(applied(s)).to.equal(1);
      s.child.kill('SIGHUP');
      for (let i = 0; i < 400 && applied(s) < 2; i++) await sleep(50);
      expect(applied(s), 'SIGHUP reached the proxy: a forced reload').to.equal(2);
      expect(s.child.exitCode, 'SIGHUP must not end the launcher').to.equal(null);
      expect((await request(ports.outbound!)).body).to.equal('v1');
      s.child.kill('SIGTERM');
      const end = await s.exited;
      expect(end).to.deep.equal({ code: 0, signal: null });
      expect(s.err()).to.include('Received signal; draining').and.include('SIGTERM');
    } finally {
      killGroup(s);
    }
  });
});
