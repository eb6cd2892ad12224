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
  // Healthy means working, not just serving /healthz: the service-account controller has
  // created `default` in the default namespace, so Pods can be created as soon as `up` returns.
  health: async (ctx) => {
    const ca = readFileSync(ctx.pki.ca.cert, 'utf8');
    const r = await httpGet(`https://127.0.0.1:${ctx.port('kube-controller-manager', 'secure')}/healthz`, {
      ca,
    });
    if (r.status !== 200 || r.body.trim() !== 'ok') {
      return { ok: false, detail: `GET /healthz: ${r.status} ${r.body.trim()}` };
    }
    const admin = ctx.pki.ensureCert('admin-client', {
      commonName: 'weft-admin',
      organizations: ['system:masters'],
      usage: 'client',
    });
    const sa = await httpGet(`${ctx.apiserverUrl}/api/v1/namespaces/default/serviceaccounts/default`, {
      ca,
      cert: readFileSync(admin.cert, 'utf8'),
      key: readFileSync(admin.key, 'utf8'),
    });
    return { ok: sa.status === 200, detail: `default/default ServiceAccount: HTTP ${sa.status}` };
  },
  startTimeoutMs: 60_000,
};
