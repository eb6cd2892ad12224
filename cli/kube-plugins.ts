/**
 * weftctl's `exec` and `auth-provider` kubeconfig users (cloud logins, OIDC helpers): the daemons
 * refuse them (pkg/kube/kubeconfig.ts), but a person at a terminal has whatever their kubectl
 * has. `@kubernetes/client-node` runs the plugin and caches its credential; it is imported only
 * here, on the first request of such a user, so no other weftctl command pays its ~60 MB.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { PluginAuth } from '../pkg/kube/kubeconfig.js';

export const clientNodePlugins: PluginAuth = (user, userName) => {
  let config: Promise<KubeConfig> | undefined;
  return async () => {
    config ??= pluginConfig(user, userName);
    const opts: { headers?: Record<string, string> } = {};
    await (await config).applyToHTTPSOptions(opts);
    return { ...opts.headers };
  };
};

/** A KubeConfig holding only the user; the cluster is a placeholder (weft's client does TLS). */
async function pluginConfig(user: Record<string, unknown>, name: string): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'weftctl', server: 'https://127.0.0.1', skipTLSVerify: false }],
    users: [
      {
        name,
        ...(user.exec !== undefined ? { exec: user.exec } : {}),
        ...(user['auth-provider'] !== undefined ? { authProvider: user['auth-provider'] } : {}),
      },
    ],
    contexts: [{ name: 'weftctl', cluster: 'weftctl', user: name }],
    currentContext: 'weftctl',
  });
  return kc;
}
