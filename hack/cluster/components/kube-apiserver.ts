/**
 * kube-apiserver on 127.0.0.1 with TLS from the cluster CA, x509 client-cert authentication,
 * service-account tokens (TokenRequest/TokenReview), Node+RBAC authorization and the default
 * admission chain (which includes ServiceAccount and both admission-webhook plugins).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { httpGet } from '../net.js';
import type { Component, ClusterContext } from '../types.js';
import { etcdClientUrl } from './etcd.js';

/** The first address of the service range: the `kubernetes` Service's ClusterIP. */
export const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

const SERVING_HOSTS = [
  '127.0.0.1',
  '10.0.0.1',
  'localhost',
  'kubernetes',
  'kubernetes.default',
  'kubernetes.default.svc',
  'kubernetes.default.svc.cluster.local',
];

function serving(ctx: ClusterContext): { cert: string; key: string } {
  // The SAN set is hashed into the file name so a new SAN (a node added later) gets a new cert.
  const extra = ctx.components.flatMap((c) => c.apiserverSANs?.(ctx) ?? []);
  const hosts = [...new Set([...SERVING_HOSTS, ...extra])];
  const tag = createHash('sha256').update(hosts.join(',')).digest('hex').slice(0, 8);
  return ctx.pki.ensureCert(`apiserver-${tag}`, { commonName: 'kube-apiserver', hosts, usage: 'server' });
}

function kubeletClient(ctx: ClusterContext): { cert: string; key: string } {
  return ctx.pki.ensureCert('apiserver-kubelet-client', {
    commonName: 'kube-apiserver-kubelet-client',
    organizations: ['system:masters'],
    usage: 'client',
  });
}

export const kubeApiserver: Component = {
  name: 'kube-apiserver',
  profiles: ['demo', 'test'],
  // kubectl rides along: `up` links it into .local/bin, tests and node components run it.
  binaries: ['kube-apiserver', 'kubectl'],
  ports: { secure: 6443 },
  prepare: (ctx) => {
    serving(ctx);
    kubeletClient(ctx);
  },
  command: (ctx) => {
    const tls = serving(ctx);
    const kubelet = kubeletClient(ctx);
    return {
      bin: 'kube-apiserver',
      args: [
        `--etcd-servers=${etcdClientUrl(ctx)}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${ctx.port('kube-apiserver', 'secure')}`,
        `--cert-dir=${ctx.dir('kube-apiserver', 'certs')}`,
        `--tls-cert-file=${tls.cert}`,
        `--tls-private-key-file=${tls.key}`,
        `--client-ca-file=${ctx.pki.ca.cert}`,
        `--kubelet-client-certificate=${kubelet.cert}`,
        `--kubelet-client-key=${kubelet.key}`,
        // A node's hostname does not resolve here; its InternalIP does.
        '--kubelet-preferred-address-types=InternalIP,Hostname',
        `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
        '--allow-privileged=true',
        '--authorization-mode=Node,RBAC',
        // Added to the default set (which already has ServiceAccount and both webhook plugins);
        // listed so the requirement is visible here.
        '--enable-admission-plugins=NodeRestriction,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
        `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
        `--service-account-key-file=${ctx.pki.serviceAccount.pub}`,
        `--service-account-signing-key-file=${ctx.pki.serviceAccount.key}`,
        '--profiling=false',
        ...ctx.components.flatMap((c) => c.apiserverFlags?.(ctx) ?? []),
      ],
    };
  },
  health: async (ctx) => {
    const admin = ctx.pki.ensureCert('admin-client', {
      commonName: 'weft-admin',
      organizations: ['system:masters'],
      usage: 'client',
    });
    const r = await httpGet(`${ctx.apiserverUrl}/readyz`, {
      ca: readFileSync(ctx.pki.ca.cert, 'utf8'),
      cert: readFileSync(admin.cert, 'utf8'),
      key: readFileSync(admin.key, 'utf8'),
    });
    return {
      ok: r.status === 200,
      detail: `GET /readyz: ${r.status} ${r.body.trim().split('\n').slice(-3).join(' ')}`,
    };
  },
  startTimeoutMs: 90_000,
};
