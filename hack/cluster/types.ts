/**
 * The extension point of the local cluster. A cluster is an ordered list of components
 * (etcd, kube-apiserver, kube-controller-manager, and later the node's kube-scheduler,
 * containerd, kubelet, kube-proxy, CoreDNS); `up` starts them in order, `down` stops them in
 * reverse, `status` asks each for its health. To add one, write a `Component` in its own file
 * and list it in `hack/cluster/components/index.ts`.
 */
import type { Logger } from '../../pkg/log/index.js';
import type { CertSpec } from './pki.js';

/** `demo`: the long-lived cluster of `npm start`; `test`: a throwaway cluster per test run. */
export type Profile = 'demo' | 'test';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface ClusterPki {
  dir: string;
  /** The cluster CA: signs serving certs, client certs (--client-ca-file) and CSRs (kcm). */
  ca: CertFiles;
  /** Service-account token signing key pair (kube-apiserver signs, kcm signs legacy tokens). */
  serviceAccount: { key: string; pub: string };
  /** Issues `name`.crt/.key from the cluster CA once; later calls return the same files. */
  ensureCert(name: string, spec: CertSpec): CertFiles;
  /**
   * Issues a client certificate for `commonName` (groups = `organizations`) and writes a
   * kubeconfig for it pointing at this cluster's kube-apiserver; returns the kubeconfig path.
   */
  ensureKubeconfig(name: string, commonName: string, organizations?: string[]): string;
}

export interface ClusterContext {
  profile: Profile;
  stateDir: string;
  binDir: string;
  log: Logger;
  pki: ClusterPki;
  /** The admin (system:masters) kubeconfig inside the state dir. */
  adminKubeconfig: string;
  /** `https://127.0.0.1:<port>` of kube-apiserver. */
  apiserverUrl: string;
  /** The loopback port allocated to `component`'s port `name` (stable across `up`s). */
  port(component: string, name: string): number;
  /** A path inside the component's own directory under the state dir (created on demand). */
  dir(component: string, ...parts: string[]): string;
  /** The components this cluster runs, in start order. */
  components: Component[];
  /** Absolute path of a built binary. */
  bin(name: string): string;
}

export interface HealthResult {
  ok: boolean;
  detail: string;
}

export interface ProcessCommand {
  /** Binary name in the bin dir (e.g. `etcd`) or an absolute path (e.g. `/usr/bin/containerd`). */
  bin: string;
  args: string[];
  env?: Record<string, string>;
}

export interface Component {
  name: string;
  /** Which clusters run it. Node components that need root and network namespaces: ['demo']. */
  profiles: Profile[];
  /** Binaries hack/build-binaries.sh must provide before `up`. */
  binaries: string[];
  /**
   * Loopback ports the component listens on, by name, with the port the demo cluster prefers
   * (0 = any). Test clusters always get random free ports so runs never collide.
   */
  ports?: Record<string, number>;
  /** Extra SANs for kube-apiserver's serving certificate (e.g. a node bridge address). */
  apiserverSANs?: (ctx: ClusterContext) => string[];
  /** Extra kube-apiserver flags this component needs (e.g. kubelet address types). */
  apiserverFlags?: (ctx: ClusterContext) => string[];
  /** Writes config files, certificates, kubeconfigs; runs before every start. Idempotent. */
  prepare?: (ctx: ClusterContext) => Promise<void> | void;
  /** The long-running process. */
  command: (ctx: ClusterContext) => ProcessCommand;
  /** One health probe; `up` polls it until ok. */
  health: (ctx: ClusterContext) => Promise<HealthResult>;
  /** How long `up` waits for health after starting (default 60 s). */
  startTimeoutMs?: number;
  /** Runs after the process is stopped (unmounts, iptables cleanup, ...). */
  afterStop?: (ctx: ClusterContext) => Promise<void> | void;
}
