/**
 * The node's promise that pod traffic never leaves the pod bridge for another interface (eth0
 * above all). Tested without sending anything off the machine: a network namespace of our own
 * plays the uplink (a veth with TEST-NET-2, 198.51.100.0/24, routed into it), a listener
 * there answers the host, and a pod's connection to the same address must be dropped by the
 * FORWARD guard — the listener sees nothing and the guard's counter moves.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  apply,
  clientPod,
  freshNamespace,
  kubectlRun,
  waitForServiceAccount,
  waitPodReady,
} from './support/kube.js';

const HOST_IF = 'wefte2e0';
const PEER_IF = 'wefte2e1';
const UPLINK_IP = '198.51.100.1';

function ip(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function must(args: string[]): void {
  const r = ip(args);
  if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.out.trim()}`);
}

/** Packets the guard's "from the bridge to elsewhere" rule has dropped so far. */
function guardDrops(): number {
  return chainDrops('WEFT-NODE-GUARD', /weftcni0\s+\*/);
}

/** Packets the hostNetwork egress guard (pod cgroup, not loopback or bridge) has dropped. */
function egressDrops(): number {
  return chainDrops('WEFT-NODE-EGRESS', /cgroup kubepods/);
}

function chainDrops(chain: string, line: RegExp): number {
  const r = spawnSync('iptables', ['-t', 'mangle', '-L', chain, '-v', '-x', '-n'], { encoding: 'utf8' });
  const hit = (r.stdout ?? '').split('\n').find((l) => /DROP/.test(l) && line.test(l));
  return Number(hit?.trim().split(/\s+/)[0] ?? Number.NaN);
}

function readNs(pid: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/**
 * The uplink namespace is held by a process of ours (`unshare -n`), not named under
 * /run/netns: `ip netns add` would bind-mount /run/netns over the pods' netns files.
 * Killing the holder destroys the namespace and with it the veth pair and the route.
 */
async function startUplink(): Promise<ChildProcess> {
  ip(['link', 'del', HOST_IF]); // leftover of an interrupted run
  const holder = spawn(
    'unshare',
    ['--net', 'busybox', 'nc', '-ll', '-p', '8080', '-e', '/bin/echo', 'reached-uplink'],
    {
      stdio: 'ignore',
    },
  );
  const pid = String(holder.pid);
  // Configure nothing until the holder really is in a new namespace: before that,
  // "its" namespace is the host's.
  const hostNs = readlinkSync('/proc/self/ns/net');
  for (let i = 0; i < 50 && readNs(pid) === hostNs; i++) await sleep(100);
  const ns = readNs(pid);
  if (ns === undefined || ns === hostNs) {
    holder.kill('SIGKILL');
    throw new Error('the uplink namespace holder did not start');
  }
  const inNs = (args: string[]): void => {
    const r = spawnSync('nsenter', ['-t', pid, '-n', 'ip', ...args], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')} in the uplink netns: ${r.stderr}`);
  };
  must(['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', PEER_IF, 'netns', pid]);
  spawnSync('sysctl', ['-qw', `net.ipv6.conf.${HOST_IF}.disable_ipv6=1`]);
  must(['link', 'set', HOST_IF, 'up']);
  inNs(['addr', 'add', `${UPLINK_IP}/24`, 'dev', PEER_IF]);
  inNs(['link', 'set', PEER_IF, 'up']);
  inNs(['link', 'set', 'lo', 'up']);
  // Replies from the uplink go back over the veth, whatever the asker's address.
  inNs(['route', 'add', 'default', 'dev', PEER_IF]);
  must(['route', 'add', `${UPLINK_IP}/32`, 'dev', HOST_IF]);
  return holder;
}

describe('e2e: FORWARD guard keeps pod traffic on the bridge', function () {
  this.timeout(120_000);
  let ns = '';
  let cleanup = (): void => undefined;
  let listener: ChildProcess | undefined;

  before(async () => {
    listener = await startUplink();
    ({ ns, cleanup } = freshNamespace('e2e-guard'));
    await waitForServiceAccount(ns);
    const hostPod = clientPod('host-client') as { spec: Record<string, unknown> };
    hostPod.spec.hostNetwork = true;
    hostPod.spec.dnsPolicy = 'ClusterFirstWithHostNet';
    apply(ns, [clientPod('client'), hostPod]);
    await waitPodReady(ns, 'client');
    await waitPodReady(ns, 'host-client');
  });

  after(() => {
    cleanup();
    listener?.kill('SIGKILL');
    ip(['link', 'del', HOST_IF]);
  });

  it('the test uplink is routed into our own namespace, not eth0', () => {
    const route = ip(['route', 'get', UPLINK_IP]).out;
    expect(route).to.include(`dev ${HOST_IF}`);
  });

  it('the host reaches the uplink listener (so only the guard can stop a pod)', async () => {
    let out = '';
    for (let i = 0; i < 20 && !out.includes('reached-uplink'); i++) {
      out =
        spawnSync('busybox', ['nc', '-w', '2', UPLINK_IP, '8080'], {
          input: 'x\n',
          encoding: 'utf8',
          timeout: 5000,
        }).stdout ?? '';
      if (!out.includes('reached-uplink')) await sleep(250);
    }
    expect(out).to.include('reached-uplink');
  });

  it('a pod connecting to the same address gets nothing, and the guard counts the drop', () => {
    // Refuse to send unless the address is still routed into our namespace.
    expect(ip(['route', 'get', UPLINK_IP]).out).to.include(`dev ${HOST_IF}`);
    const before = guardDrops();
    const r = kubectlRun(
      ['exec', '-n', ns, 'client', '--', 'sh', '-c', `echo x | nc -w 2 ${UPLINK_IP} 8080; echo rc=$?`],
      undefined,
      30_000,
    );
    expect(r.stdout).not.to.include('reached-uplink');
    expect(guardDrops()).to.be.greaterThan(before);
  });

  it('a hostNetwork pod gets nothing from the uplink either, and the egress guard counts it', () => {
    expect(ip(['route', 'get', UPLINK_IP]).out).to.include(`dev ${HOST_IF}`);
    const before = egressDrops();
    const r = kubectlRun(
      ['exec', '-n', ns, 'host-client', '--', 'sh', '-c', `echo x | nc -w 2 ${UPLINK_IP} 8080; echo rc=$?`],
      undefined,
      30_000,
    );
    expect(r.stdout).not.to.include('reached-uplink');
    expect(egressDrops()).to.be.greaterThan(before);
  });

  it('a hostNetwork pod still reaches Services (DNS and ClusterIP) and loopback', () => {
    const body = kubectlRun([
      'exec',
      '-n',
      ns,
      'host-client',
      '--',
      'wget',
      '-qO-',
      'http://smoke.weft-local.svc.cluster.local/version',
    ]);
    expect(body.stdout.trim(), body.stderr).to.equal('v1');
  });
});
