/**
 * `proxy init` in a real network namespace: the rules land in that namespace (and only there),
 * and a TCP connection from inside to a remote address arrives at the capture port with its
 * original destination readable through the native addon. Needs root (ip netns, iptables).
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const NS = `weft-init-${randomBytes(3).toString('hex')}`;
const VETH = `wi${randomBytes(3).toString('hex')}`;
const INIT_ARGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', ''];

function sh(cmd: string, args: string[], input?: string): { status: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, cwd: ROOT });
  return { status: r.status ?? -1, out: r.stdout ?? '', err: `${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.err}`);
  return r.out;
}

/** In the namespace, as `uid`, connect to host:port and return the first line the peer sends. */
function connectFromNs(host: string, port: number, uid = 0): { status: number; out: string; err: string } {
  const script = `const s=require('net').connect(${port},'${host}');let d='';s.on('data',c=>d+=c);s.on('end',()=>{process.stdout.write(d);process.exit(0)});s.on('error',e=>{process.stderr.write(e.message);process.exit(3)});setTimeout(()=>{process.stderr.write('no answer');process.exit(4)},5000)`;
  return sh('ip', [
    'netns',
    'exec',
    NS,
    'setpriv',
    `--reuid=${uid}`,
    `--regid=${uid}`,
    '--clear-groups',
    process.execPath,
    '-e',
    script,
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

describe('proxy init in a network namespace', function () {
  this.timeout(60_000);
  let hostRulesBefore = '';
  let listener: ChildProcess | null = null;

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
    for (const args of [
      ['link', 'set', 'lo', 'up'],
      ['addr', 'add', '10.254.71.2/24', 'dev', `${VETH}p`],
      ['link', 'set', `${VETH}p`, 'up'],
      ['route', 'add', 'default', 'via', '10.254.71.1'],
    ])
      must('ip', ['netns', 'exec', NS, 'ip', ...args]);
    listener = spawn(
      'ip',
      [
        'netns',
        'exec',
        NS,
        process.execPath,
        '--import',
        'tsx',
        'test/integration/proxy/fixtures/original-dst-listener.ts',
        '15001',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      listener!.stdout!.once('data', () => resolve());
      listener!.once('exit', (code) => reject(new Error(`listener exited ${code}`)));
    });
  });

  after(() => {
    listener?.kill('SIGTERM');
    sh('ip', ['link', 'del', VETH]);
    sh('ip', ['netns', 'del', NS]);
  });

  it('--dry-run prints the rules and changes nothing', () => {
    const r = sh('ip', [
      'netns',
      'exec',
      NS,
      process.execPath,
      '--import',
      'tsx',
      'proxy/main.ts',
      'init',
      ...INIT_ARGS,
      '-b',
      '*',
      '--dry-run',
    ]);
    expect(r.status, r.err).to.equal(0);
    expect(r.out).to.contain('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
    expect(must('ip', ['netns', 'exec', NS, 'iptables-save', '-t', 'nat'])).not.to.contain('ISTIO');
  });

  it('installs the rules in the namespace; the host rules do not change', () => {
    const r = sh('ip', [
      'netns',
      'exec',
      NS,
      process.execPath,
      '--import',
      'tsx',
      'proxy/main.ts',
      'init',
      ...INIT_ARGS,
      '-b',
      '*',
      '-d',
      '15090,15021',
    ]);
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
    const r = sh('ip', [
      'netns',
      'exec',
      NS,
      process.execPath,
      '--import',
      'tsx',
      'proxy/main.ts',
      'init',
      ...INIT_ARGS,
      '-b',
      '*',
      '-d',
      '15090,15021',
    ]);
    expect(r.status, r.err).to.equal(0);
    const saved = must('ip', ['netns', 'exec', NS, 'iptables-save', '-t', 'nat']);
    expect(saved.match(/-j ISTIO_OUTPUT/g)).to.have.length(1);
    expect(saved.match(/-j ISTIO_INBOUND/g)).to.have.length(1);
  });

  it('an app connection to 10.x:80 lands on :15001 with its original destination', () => {
    const r = connectFromNs('10.99.7.7', 80);
    expect(r.status, r.err).to.equal(0);
    expect(JSON.parse(r.out)).to.deep.equal({
      dst: { address: '10.99.7.7', port: 80, family: 4 },
      reason: '',
    });
  });

  it("the proxy's own uid is not captured", () => {
    const r = connectFromNs('10.99.7.7', 80, 1337);
    // nothing answers at 10.99.7.7 (the veth peer has no route onwards): the connect fails or
    // times out instead of landing on the listener
    expect(r.status).not.to.equal(0);
    expect(r.out).to.equal('');
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
      ...INIT_ARGS,
      '-b',
      '*',
    ]);
    expect(r.status).to.equal(1);
    expect(r.err).to.match(/iptables-save failed/);
  });
});
