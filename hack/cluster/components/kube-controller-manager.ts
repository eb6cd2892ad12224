/**
 * kube-controller-manager with its default controllers: garbage collector, namespace
 * lifecycle, service accounts + their tokens, Deployment→ReplicaSet→Pod, EndpointSlices, CSR
 * signing, and the rest of `*`. Each controller runs under its own service account
 * (--use-service-account-credentials), as in a kubeadm cluster, so RBAC is exercised for real.
 */
import { readFileSync } from 'node:fs';
import { httpGet } from '../net.js';
import type { Component, ClusterContext } from '../types.js';
import { SERVICE_CLUSTER_IP_RANGE } from './kube-apiserver.js';

function serving(ctx: ClusterContext): { cert: string; key: string } {
  return ctx.pki.ensureCert('kube-controller-manager-serving', {
    commonName: 'kube-controller-manager',
    hosts: ['127.0.0.1', 'localhost'],
    usage: 'server',
  });
}

const kubeconfig = (ctx: ClusterContext): string =>
  ctx.pki.ensureKubeconfig('kube-controller-manager', 'system:kube-controller-manager');

export const kubeControllerManager: Component = {
  name: 'kube-controller-manager',
  profiles: ['demo', 'test'],
  binaries: ['kube-controller-manager'],
  ports: { secure: 10257 },
  prepare: (ctx) => {
    serving(ctx);
    kubeconfig(ctx);
  },
  command: (ctx) => {
    const tls = serving(ctx);
    const kc = kubeconfig(ctx);
    return {
      bin: 'kube-controller-manager',
      args: [
        `--kubeconfig=${kc}`,
        `--authentication-kubeconfig=${kc}`,
        `--authorization-kubeconfig=${kc}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${ctx.port('kube-controller-manager', 'secure')}`,
        `--cert-dir=${ctx.dir('kube-controller-manager', 'certs')}`,
        `--tls-cert-file=${tls.cert}`,
        `--tls-private-key-file=${tls.key}`,
        `--root-ca-file=${ctx.pki.ca.cert}`,
        `--service-account-private-key-file=${ctx.pki.serviceAccount.key}`,
        '--use-service-account-credentials=true',
        `--cluster-signing-cert-file=${ctx.pki.ca.cert}`,
        `--cluster-signing-key-file=${ctx.pki.ca.key}`,
        `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
        '--controllers=*',
        '--profiling=false',
      ],
    };
  },
  health: async (ctx) => {
    const r = await httpGet(`https://127.0.0.1:${ctx.port('kube-controller-manager', 'secure')}/healthz`, {
      ca: readFileSync(ctx.pki.ca.cert, 'utf8'),
    });
    return {
      ok: r.status === 200 && r.body.trim() === 'ok',
      detail: `GET /healthz: ${r.status} ${r.body.trim()}`,
    };
  },
  startTimeoutMs: 60_000,
};
