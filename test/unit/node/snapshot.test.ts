import { expect } from 'chai';
import { diff, nodeish, type HostSnapshot } from '../../e2e/support/host.js';

const STATE = '/repo/.local/cluster';

const empty = (): HostSnapshot => ({
  processes: [],
  mounts: [],
  links: [],
  iptables: [],
  sysctls: [],
  cgroups: [],
  paths: [],
});

describe('e2e host snapshot: what counts as the node', () => {
  const cases: [keyof HostSnapshot, string, boolean][] = [
    ['links', 'weftcni0', true],
    ['links', 'veth1a2b3c4d', true],
    ['links', 'veth-proxy-test', false],
    ['links', 'wefte2e0', false],
    ['links', 'eth0', false],
    ['mounts', `${STATE}/kubelet/root`, true],
    ['mounts', '/run/netns/cni-0f2c5a3e-1111-2222-3333-444455556666', true],
    ['mounts', '/run/containerd/io.containerd.runtime.v2.task/k8s.io/x/rootfs', true],
    ['mounts', '/run/netns/proxy-test', false],
    ['mounts', '/tmp/weft-test-cluster-abc', false],
    ['iptables', 'v4 mangle chain WEFT-NODE-GUARD', true],
    ['iptables', 'v4 filter -A INPUT -j KUBE-FIREWALL', true],
    ['iptables', 'v4 nat chain CNI-HOSTPORT-DNAT', true],
    ['iptables', 'v4 nat -A OUTPUT -j WEFT-PROXY-OUTBOUND', false],
    ['processes', '/usr/bin/containerd (pid 1)', true],
    ['sysctls', 'net.ipv4.ip_forward=1', true],
    ['cgroups', '/sys/fs/cgroup/memory/kubepods', true],
    ['paths', '/run/containerd', true],
  ];
  for (const [kind, entry, want] of cases) {
    it(`${kind}: ${entry} → ${want ? 'node' : 'other'}`, () =>
      expect(nodeish(kind, entry, STATE)).to.equal(want));
  }
});

describe('e2e host snapshot: diff', () => {
  it('is empty for identical snapshots', () => {
    const a = { ...empty(), links: ['lo', 'eth0'], sysctls: ['net.ipv4.ip_forward=0'] };
    expect(diff(a, structuredClone(a), STATE)).to.deep.equal({ node: [], other: [] });
  });
  it('reports a leftover bridge, chain and changed sysctl as the node, others apart', () => {
    const before = { ...empty(), links: ['lo', 'eth0'], sysctls: ['net.ipv4.ip_forward=0'] };
    const after = {
      ...empty(),
      links: ['lo', 'eth0', 'weftcni0', 'someones-veth'],
      iptables: ['v4 mangle chain WEFT-NODE-GUARD'],
      sysctls: ['net.ipv4.ip_forward=1'],
    };
    const d = diff(before, after, STATE);
    expect(d.node).to.have.members([
      '+ links: weftcni0',
      '+ iptables: v4 mangle chain WEFT-NODE-GUARD',
      '+ sysctls: net.ipv4.ip_forward=1',
      '- sysctls: net.ipv4.ip_forward=0',
    ]);
    expect(d.other).to.deep.equal(['+ links: someones-veth']);
  });
  it('does not blame the node for a node process that ended (only for one that appeared)', () => {
    const before = { ...empty(), processes: ['/usr/bin/containerd (pid 7)'] };
    expect(diff(before, empty(), STATE).node).to.deep.equal([]);
    expect(diff(empty(), before, STATE).node).to.deep.equal(['+ processes: /usr/bin/containerd (pid 7)']);
  });
});
