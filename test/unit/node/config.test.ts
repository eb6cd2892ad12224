import { expect } from 'chai';
import { parse } from 'yaml';
import {
  BRIDGE,
  CLUSTER_DNS_IP,
  NODE_IP,
  PAUSE_IMAGE,
  POD_CIDR,
  renderClusterDnsObjects,
  renderCniConflist,
  renderContainerdConfig,
  renderCorefile,
  renderKubeletConfig,
  renderKubeProxyConfig,
  renderNoRegistryHosts,
  type NodePaths,
} from '../../../hack/node/config.js';
import { parseBuildOutput } from '../../../hack/node/images.js';

const paths: NodePaths = {
  containerdSocket: '/s/containerd/containerd.sock',
  containerdRoot: '/s/containerd/root',
  containerdState: '/s/containerd/state',
  cniConfDir: '/s/cni/net.d',
  cniIpamDir: '/s/cni/ipam',
  kubeletRoot: '/s/kubelet/root',
  podLogsDir: '/s/kubelet/pod-logs',
  podResolvConf: '/s/kubelet/resolv.conf',
  kubeconfig: '/s/kubelet.kubeconfig',
  caFile: '/s/pki/ca.crt',
};

describe('node config: CNI', () => {
  const c = JSON.parse(renderCniConflist('/s/cni/ipam')) as {
    plugins: {
      type: string;
      bridge?: string;
      ipMasq?: boolean;
      ipam?: { ranges: { subnet: string; gateway: string }[][]; dataDir: string };
    }[];
  };
  const bridge = c.plugins[0];
  it('uses the pre-created bridge with the node IP as gateway', () => {
    expect(bridge?.type).to.equal('bridge');
    expect(bridge?.bridge).to.equal(BRIDGE);
    expect(bridge?.ipam?.ranges[0]?.[0]).to.deep.equal({ subnet: POD_CIDR, gateway: NODE_IP });
  });
  it('never masquerades pod traffic', () => expect(bridge?.ipMasq).to.equal(false));
  it('keeps IPAM state in the state dir', () => expect(bridge?.ipam?.dataDir).to.equal('/s/cni/ipam'));
  it('chains portmap', () => expect(c.plugins.map((p) => p.type)).to.deep.equal(['bridge', 'portmap']));
});

describe('node config: containerd', () => {
  const t = renderContainerdConfig(paths, '/s/containerd/opt', '/s/containerd/certs.d');
  const cases: [string, RegExp][] = [
    ['state under the state dir', /^state = "\/s\/containerd\/state"$/m],
    ['root under the state dir', /^root = "\/s\/containerd\/root"$/m],
    ['our socket', /address = "\/s\/containerd\/containerd.sock"/],
    ['oom_score_adj clamped (no CAP_SYS_RESOURCE here)', /restrict_oom_score_adj = true/],
    ['the local pause image', new RegExp(`sandbox_image = "${PAUSE_IMAGE}"`)],
    ['cgroupfs, not systemd', /SystemdCgroup = false/],
    ['our CNI config dir', /conf_dir = "\/s\/cni\/net.d"/],
    ['Debian CNI plugins', /bin_dir = "\/usr\/lib\/cni"/],
    ['registry hosts from our dir', /config_path = "\/s\/containerd\/certs.d"/],
  ];
  for (const [what, re] of cases) it(what, () => expect(t).to.match(re));
});

describe('node config: no registry', () => {
  const h = renderNoRegistryHosts();
  it('sends every pull to the discard port on loopback', () => {
    expect(h).to.match(/^server = "http:\/\/127\.0\.0\.1:9"$/m);
    expect(h).to.include('[host."http://127.0.0.1:9"]');
  });
  it('names no other host', () => {
    const hosts = [...h.matchAll(/https?:\/\/([^"/]+)/g)].map((m) => m[1]);
    expect(new Set(hosts)).to.deep.equal(new Set(['127.0.0.1:9']));
  });
});

describe('node config: kubelet', () => {
  const k = parse(renderKubeletConfig(paths, { healthz: 12345 })) as Record<string, unknown>;
  const cases: [string, unknown][] = [
    ['failCgroupV1', false],
    ['cgroupDriver', 'cgroupfs'],
    ['containerRuntimeEndpoint', 'unix:///s/containerd/containerd.sock'],
    ['address', NODE_IP],
    ['readOnlyPort', 0],
    ['healthzBindAddress', '127.0.0.1'],
    ['healthzPort', 12345],
    ['clusterDNS', [CLUSTER_DNS_IP]],
    ['clusterDomain', 'cluster.local'],
    ['resolvConf', '/s/kubelet/resolv.conf'],
    ['podLogsDir', '/s/kubelet/pod-logs'],
    ['imageGCHighThresholdPercent', 100],
  ];
  for (const [key, value] of cases)
    it(`${key} = ${JSON.stringify(value)}`, () => expect(k[key]).to.deep.equal(value));
  it('refuses anonymous requests and authorizes through the API server', () => {
    expect(k.authentication).to.deep.include({ anonymous: { enabled: false }, webhook: { enabled: true } });
    expect(k.authorization).to.deep.equal({ mode: 'Webhook' });
  });
});

describe('node config: kube-proxy', () => {
  const p = parse(renderKubeProxyConfig('/s/kp.kubeconfig', { healthz: 1, metrics: 2 })) as Record<
    string,
    unknown
  >;
  it('runs the iptables proxier', () => expect(p.mode).to.equal('iptables'));
  it('needs no route_localnet (no localhost NodePorts)', () =>
    expect(p.iptables).to.deep.equal({ localhostNodePorts: false, masqueradeAll: false }));
  it('serves NodePorts on the node IP only', () =>
    expect(p.nodePortAddresses).to.deep.equal([`${NODE_IP}/32`]));
  it('leaves conntrack sysctls alone', () => expect(p.conntrack).to.deep.include({ maxPerCore: 0, min: 0 }));
  it('binds health and metrics to loopback', () => {
    expect(p.healthzBindAddress).to.equal('127.0.0.1:1');
    expect(p.metricsBindAddress).to.equal('127.0.0.1:2');
  });
});

describe('node config: CoreDNS', () => {
  const c = renderCorefile({
    kubeconfig: '/s/coredns.kubeconfig',
    healthPort: 1,
    readyPort: 2,
    metricsPort: 3,
  });
  it('has no upstream forwarder', () => {
    expect(c).not.to.match(/^\s*(forward|grpc|proxy)\b/m);
  });
  it('listens on the node IP only', () => expect(c).to.match(new RegExp(`^\\s*bind ${NODE_IP}$`, 'm')));
  it('serves cluster.local from the API', () =>
    expect(c).to.match(/kubernetes cluster.local in-addr.arpa ip6.arpa/));
  it('binds its HTTP endpoints to loopback', () => {
    expect(c).to.include('health 127.0.0.1:1');
    expect(c).to.include('ready 127.0.0.1:2');
    expect(c).to.include('prometheus 127.0.0.1:3');
  });
  it('kube-dns Service and its EndpointSlice agree on the cluster DNS IP and node IP', () => {
    const [svc, slice] = renderClusterDnsObjects() as [
      { spec: { clusterIP: string } },
      { endpoints: { addresses: string[] }[]; metadata: { labels: Record<string, string> } },
    ];
    expect(svc.spec.clusterIP).to.equal(CLUSTER_DNS_IP);
    expect(slice.endpoints[0]?.addresses).to.deep.equal([NODE_IP]);
    expect(slice.metadata.labels['kubernetes.io/service-name']).to.equal('kube-dns');
  });
});

describe('node images: parseBuildOutput', () => {
  const cases: [string, { name: string; archive: string }[]][] = [
    ['weft.local/pause:1\t/x/pause-1.tar\n', [{ name: 'weft.local/pause:1', archive: '/x/pause-1.tar' }]],
    [
      'a:1\t/a.tar\nb:2\t/b.tar',
      [
        { name: 'a:1', archive: '/a.tar' },
        { name: 'b:2', archive: '/b.tar' },
      ],
    ],
    ['[images] building something\n', []],
    ['', []],
    ['a\tb\tc\n', []],
    ['\t/x.tar\n', []],
    ['a:1\t\n', []],
  ];
  for (const [text, want] of cases) {
    it(JSON.stringify(text), () => expect(parseBuildOutput(text)).to.deep.equal(want));
  }
});
