/** Kubeconfig files for the local cluster's users, with the certificates embedded. */
import { readFileSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';

export interface KubeconfigSpec {
  server: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  user: string;
  clusterName?: string;
}

const b64 = (file: string): string => readFileSync(file).toString('base64');

/** Embeds the certificates so the file keeps working when copied out of the state dir. */
export function renderKubeconfig(spec: KubeconfigSpec): string {
  const cluster = spec.clusterName ?? 'weft-local';
  const context = `${spec.user}@${cluster}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: cluster, cluster: { server: spec.server, 'certificate-authority-data': b64(spec.caFile) } },
    ],
    users: [
      {
        name: spec.user,
        user: { 'client-certificate-data': b64(spec.certFile), 'client-key-data': b64(spec.keyFile) },
      },
    ],
    contexts: [{ name: context, context: { cluster, user: spec.user, namespace: 'default' } }],
    'current-context': context,
    preferences: {},
  });
}

export function writeKubeconfig(path: string, spec: KubeconfigSpec): void {
  writeFileSync(path, renderKubeconfig(spec), { mode: 0o600 });
}
