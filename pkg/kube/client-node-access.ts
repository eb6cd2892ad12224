/**
 * A `@kubernetes/client-node` KubeConfig read as a KubeAccess, without loading the package:
 * its getCurrentCluster()/getCurrentUser() return plain objects (paths already made absolute by
 * loadFromFile). Tests build their clients this way, and weftctl for `exec` / `auth-provider`
 * users, whose headers come from the KubeConfig's own authenticators.
 */
import type { Cluster, KubeConfig, User } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { WeftError } from '../errors/index.js';
import { rotatingToken, type KubeAccess, type TlsAccess } from './kubeconfig.js';

export function accessFromClientNode(kc: KubeConfig): KubeAccess {
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new WeftError('WEFT_KUBECONFIG_MISSING', 'the KubeConfig has no current context with a cluster');
  const user = kc.getCurrentUser();
  const namespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
  return {
    server: cluster.server.replace(/\/+$/, ''),
    tls: { ...clusterTls(cluster), ...userTls(user) },
    authHeaders: userAuth(kc, user),
    ...(namespace ? { namespace } : {}),
    source: `context ${kc.getCurrentContext()}`,
  };
}

function clusterTls(cluster: Cluster): TlsAccess {
  const tls: TlsAccess = {};
  const ca = dataOrFile(cluster.caData, cluster.caFile);
  if (ca) tls.ca = ca;
  if (cluster.tlsServerName) tls.servername = cluster.tlsServerName;
  if (cluster.skipTLSVerify) tls.insecure = true;
  return tls;
}

function userTls(user: User | null): TlsAccess {
  const cert = dataOrFile(user?.certData, user?.certFile);
  const key = dataOrFile(user?.keyData, user?.keyFile);
  return cert && key ? { cert, key } : {};
}

function userAuth(kc: KubeConfig, user: User | null): KubeAccess['authHeaders'] {
  if (!user) return () => ({});
  if (user.authProvider?.name === 'tokenFile') {
    const file = (user.authProvider.config as { tokenFile?: string } | undefined)?.tokenFile;
    if (file) return rotatingToken(file);
  }
  if (user.exec || user.authProvider) return pluginHeaders(kc);
  if (user.token) {
    const header = { Authorization: `Bearer ${user.token}` };
    return () => header;
  }
  if (user.username) {
    const basic = Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64');
    return () => ({ Authorization: `Basic ${basic}` });
  }
  return () => ({});
}

/** exec / auth-provider: the KubeConfig runs the plugin (and caches its credential until expiry). */
function pluginHeaders(kc: KubeConfig): KubeAccess['authHeaders'] {
  return async () => {
    const opts: { headers?: Record<string, string> } = {};
    await kc.applyToHTTPSOptions(opts);
    return { ...opts.headers };
  };
}

function dataOrFile(data: string | undefined, file: string | undefined): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64');
  return file ? readFileSync(file) : undefined;
}
