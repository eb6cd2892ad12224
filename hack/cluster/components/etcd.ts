/** etcd 3.6, single member, plain HTTP on 127.0.0.1 only (nothing off-host can reach it). */
import { httpGet } from '../net.js';
import type { Component, ClusterContext } from '../types.js';

const clientUrl = (ctx: ClusterContext): string => `http://127.0.0.1:${ctx.port('etcd', 'client')}`;
const peerUrl = (ctx: ClusterContext): string => `http://127.0.0.1:${ctx.port('etcd', 'peer')}`;

export const etcd: Component = {
  name: 'etcd',
  profiles: ['demo', 'test'],
  binaries: ['etcd'],
  ports: { client: 2379, peer: 2380 },
  command: (ctx) => ({
    bin: 'etcd',
    args: [
      '--name=weft',
      `--data-dir=${ctx.dir('etcd', 'data')}`,
      `--listen-client-urls=${clientUrl(ctx)}`,
      `--advertise-client-urls=${clientUrl(ctx)}`,
      `--listen-peer-urls=${peerUrl(ctx)}`,
      `--initial-advertise-peer-urls=${peerUrl(ctx)}`,
      `--initial-cluster=weft=${peerUrl(ctx)}`,
      '--log-level=warn',
      // Test clusters are thrown away at the end of the run; skipping fsync makes every write
      // (and so every test) faster on this disk. The demo cluster keeps etcd's durability.
      ...(ctx.profile === 'test' ? ['--unsafe-no-fsync'] : []),
    ],
  }),
  health: async (ctx) => {
    const r = await httpGet(`${clientUrl(ctx)}/health`);
    const ok = r.status === 200 && /"health":\s*"true"/.test(r.body);
    return { ok, detail: `GET /health: ${r.status} ${r.body.trim()}` };
  },
  startTimeoutMs: 30_000,
};

export function etcdClientUrl(ctx: ClusterContext): string {
  return clientUrl(ctx);
}
