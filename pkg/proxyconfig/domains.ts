/**
 * A virtual host's authorities (issue #19). A service port answers to its host, its addresses
 * and, for a Kubernetes-style host `<name>.<ns>.svc.<suffix>`, `<name>`, `<name>.<ns>` and
 * `<name>.<ns>.svc`; each as `name:port`, and without the port on the service's default HTTP
 * port. Spelled out, that is up to 10 strings per host and ~35% of an on-demand sidecar's
 * config; `serviceDomains` says the same in a few bytes and this module spells it out again,
 * the one place that does: the proxy's compiler, weftctl, and weftd for proxies that did not
 * ask for the short form (`serviceDomains=1` on the discovery query) all call it.
 *
 * The host and port are the virtual host's name, `<host>:<port>`, as the translator names a
 * service port's host.
 */
import type { Listener, ProxyConfig, ServiceDomains, VirtualHost } from './types.js';

/** `<host>:<port>` of a virtual host's name; null when the name is not of that form. */
export function hostPortOf(name: string): { host: string; port: number } | null {
  const colon = name.lastIndexOf(':');
  if (colon <= 0) return null;
  const port = Number(name.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535 || !/^\d+$/.test(name.slice(colon + 1)))
    return null;
  return { host: name.slice(0, colon), port };
}

/**
 * The namespace of a Kubernetes-style host whose short name is `short`: the label after it
 * (`reviews.shop.svc.cluster.local`, `reviews` → `shop`); null when the host is not
 * `<short>.<label>.<more>`.
 */
export function shortNamespaceOf(host: string, short: string): string | null {
  if (short === '' || !host.startsWith(`${short}.`)) return null;
  const rest = host.slice(short.length + 1);
  const dot = rest.indexOf('.');
  return dot <= 0 || dot === rest.length - 1 ? null : rest.slice(0, dot);
}

/**
 * The authorities `sd` stands for on service port `host:port`, in the translator's order.
 * `namespace`: of the short forms; by default the label after the short name (the proxy's way).
 */
export function expandServiceDomains(
  host: string,
  port: number,
  sd: ServiceDomains,
  namespace = sd.short === undefined ? null : shortNamespaceOf(host, sd.short),
): string[] {
  const names = new Set<string>([host, ...(sd.addresses ?? [])]);
  if (sd.short !== undefined) {
    const ns = namespace;
    if (ns !== null) {
      names.add(sd.short);
      names.add(`${sd.short}.${ns}`);
      names.add(`${sd.short}.${ns}.svc`);
    }
  }
  const out: string[] = [];
  for (const n of names) {
    out.push(`${n}:${port}`);
    if (sd.bare === true) out.push(n);
  }
  return out;
}

/** Every authority a virtual host answers to: its `domains`, then what its `serviceDomains` stand for. */
export function domainsOf(vh: VirtualHost): string[] {
  const explicit = vh.domains ?? [];
  if (vh.serviceDomains === undefined) return explicit;
  const hp = hostPortOf(vh.name);
  if (hp === null) return explicit; // validation refuses it; nothing to expand
  return [...explicit, ...expandServiceDomains(hp.host, hp.port, vh.serviceDomains)];
}

function spellOut(vh: VirtualHost): VirtualHost {
  if (vh.serviceDomains === undefined) return vh;
  const { name, serviceDomains: _short, ...rest } = vh;
  return { name, domains: domainsOf(vh), ...rest };
}

const spelledOut = new WeakMap<Listener[], Listener[]>();

/**
 * The config with every `serviceDomains` spelled out as `domains`, for a proxy that did not ask
 * for the short form (an older build). The version stays: it is the same config. Cached by the
 * listeners array, which proxies of one translation share.
 */
export function withExplicitDomains(config: ProxyConfig): ProxyConfig {
  let listeners = spelledOut.get(config.listeners);
  if (listeners === undefined) {
    const short = (l: Listener): boolean =>
      l.protocol === 'HTTP' && l.virtualHosts.some((vh) => vh.serviceDomains !== undefined);
    listeners = !config.listeners.some(short)
      ? config.listeners
      : config.listeners.map((l) =>
          l.protocol !== 'HTTP' || !short(l) ? l : { ...l, virtualHosts: l.virtualHosts.map(spellOut) },
        );
    spelledOut.set(config.listeners, listeners);
  }
  return listeners === config.listeners ? config : { ...config, listeners };
}
