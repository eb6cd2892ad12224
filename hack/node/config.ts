/**
 * The local node's addresses and the config files of its daemons, as pure functions of a few
 * paths, so every file `up` writes can be checked by a unit test without a node.
 *
 * Addressing: the pod bridge's gateway address doubles as the node IP. The kernel here has no
 * `dummy` link type and the kubelet rejects a loopback node IP, and using the bridge keeps all
 * apiserver→kubelet and pod→node traffic on this machine.
 */
import { stringify } from 'yaml';

export const NODE_NAME = 'weft-node';
export const BRIDGE = 'weftcni0';
export const POD_CIDR = '10.244.0.0/24';
export const NODE_IP = '10.244.0.1';
/** The ClusterIP of the kube-dns Service (the kubelet's clusterDNS); backed by CoreDNS on NODE_IP. */
export const CLUSTER_DNS_IP = '10.0.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';
export const CNI_NETWORK = 'weft-pods';
/** Images the node itself needs; built locally by hack/images and never pulled. */
export const PAUSE_IMAGE = 'weft.local/pause:1';

export interface NodePaths {
  /** containerd's CRI socket (unix path). */
  containerdSocket: string;
  containerdRoot: string;
  containerdState: string;
  cniConfDir: string;
  cniIpamDir: string;
  kubeletRoot: string;
  podLogsDir: string;
  /** The resolv.conf pods with dnsPolicy Default get: one with no nameserver. */
  podResolvConf: string;
  kubeconfig: string;
  caFile: string;
}

export interface KubeletPorts {
  healthz: number;
}

/** CNI bridge + portmap. No ipMasq: pod traffic is never NATed out of the machine. */
export function renderCniConflist(ipamDir: string): string {
  return `${JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: CNI_NETWORK,
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: POD_CIDR, gateway: NODE_IP }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: ipamDir,
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  )}\n`;
}

/**
 * Deltas against `containerd config default` (1.6): state under our dir, the CRI plugin on our
 * CNI config, a local sandbox image, and restrict_oom_score_adj because this machine lacks
 * CAP_SYS_RESOURCE (runc would fail to lower the pause container's oom_score_adj).
 */
export function renderContainerdConfig(p: NodePaths, optDir: string, registryHostsDir: string): string {
  return `# Written by hack/node (weft local node); regenerated on every up.
version = 2
root = ${q(p.containerdRoot)}
state = ${q(p.containerdState)}
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = ${q(p.containerdSocket)}

[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = ${q(PAUSE_IMAGE)}
  enable_selinux = false
  max_concurrent_downloads = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${q(p.cniConfDir)}
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ${q(registryHostsDir)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(optDir)}
`;
}

/**
 * The registry hosts config that makes every pull fail on this machine: the `_default` host
 * namespace (any registry without a directory of its own: all of them) has its server replaced
 * by the discard port on loopback, so containerd never resolves or contacts a real registry
 * even when a pod names an image that was not imported. The pod shows ErrImagePull instead.
 */
export const NO_REGISTRY_SERVER = 'http://127.0.0.1:9';
export function renderNoRegistryHosts(): string {
  return `# weft local node: no registry. Every pull is sent to the discard port on loopback.
server = "${NO_REGISTRY_SERVER}"

[host."${NO_REGISTRY_SERVER}"]
  capabilities = ["pull", "resolve"]
`;
}

/** TOML basic string. */
function q(s: string): string {
  return JSON.stringify(s);
}

/**
 * KubeletConfiguration proven on this host (shared/reference/real-node-kubelet-1.36.md), with
 * cluster DNS, x509 + webhook authn/authz (kube-apiserver presents its kubelet client cert) and
 * image GC off so the hand-imported images stay.
 */
export function renderKubeletConfig(p: NodePaths, ports: KubeletPorts): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    containerRuntimeEndpoint: `unix://${p.containerdSocket}`,
    address: NODE_IP,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: ports.healthz,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: p.caFile },
    },
    authorization: { mode: 'Webhook' },
    clusterDNS: [CLUSTER_DNS_IP],
    clusterDomain: CLUSTER_DOMAIN,
    resolvConf: p.podResolvConf,
    podLogsDir: p.podLogsDir,
    podCIDR: POD_CIDR,
    failSwapOn: true,
    maxPods: 40,
    serializeImagePulls: true,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'imagefs.available': '1%',
      'nodefs.inodesFree': '1%',
    },
    syncFrequency: '10s',
    fileCheckFrequency: '5s',
  });
}

export interface KubeProxyPorts {
  healthz: number;
  metrics: number;
}

/**
 * iptables mode. NodePorts only on the node IP (not eth0) and no localhost NodePorts, which
 * would need route_localnet=1; conntrack sysctls are left alone (all zeros = do not touch).
 */
export function renderKubeProxyConfig(kubeconfig: string, ports: KubeProxyPorts): string {
  return stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig },
    hostnameOverride: NODE_NAME,
    bindAddress: NODE_IP,
    healthzBindAddress: `127.0.0.1:${ports.healthz}`,
    metricsBindAddress: `127.0.0.1:${ports.metrics}`,
    clusterCIDR: POD_CIDR,
    nodePortAddresses: [`${NODE_IP}/32`],
    iptables: { localhostNodePorts: false, masqueradeAll: false },
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
  });
}

export interface CorefileOptions {
  kubeconfig: string;
  healthPort: number;
  readyPort: number;
  metricsPort: number;
}

/**
 * Cluster DNS with no upstream at all: names outside cluster.local get REFUSED/NXDOMAIN here
 * instead of leaving the machine. (The binary is built without the forward plugin as well.)
 * It listens on the node IP only, never on eth0.
 */
export function renderCorefile(o: CorefileOptions): string {
  return `# Written by hack/node (weft local node). No forward plugin: nothing leaves this machine.
.:53 {
    bind ${NODE_IP}
    errors
    health 127.0.0.1:${o.healthPort}
    ready 127.0.0.1:${o.readyPort}
    prometheus 127.0.0.1:${o.metricsPort}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${o.kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
    loadbalance
}
`;
}

/** kube-dns Service (selector-less) and its EndpointSlice pointing at CoreDNS on the node IP. */
export function renderClusterDnsObjects(): object[] {
  const ports = [
    { name: 'dns', port: 53, protocol: 'UDP' },
    { name: 'dns-tcp', port: 53, protocol: 'TCP' },
  ];
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'kube-dns',
        namespace: 'kube-system',
        labels: {
          'k8s-app': 'kube-dns',
          'kubernetes.io/name': 'CoreDNS',
          'app.kubernetes.io/managed-by': 'weft-local-node',
        },
      },
      spec: { clusterIP: CLUSTER_DNS_IP, ports: ports.map((p) => ({ ...p, targetPort: 53 })) },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'kube-dns-node',
        namespace: 'kube-system',
        labels: {
          'kubernetes.io/service-name': 'kube-dns',
          'endpointslice.kubernetes.io/managed-by': 'weft-local-node',
        },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [NODE_IP], conditions: { ready: true }, nodeName: NODE_NAME }],
      ports,
    },
  ];
}
