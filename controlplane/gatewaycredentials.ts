/**
 * Which of a Gateway's TLS credentials its gateways cannot serve, for the Gateway's ResolvedRefs
 * condition (False, InvalidCertificateRef). Without it, a Secret with a key that does not match
 * its certificate left the Gateway Ready while the gateway kept the previous certificate (or
 * refused the server), and only a counter on the gateway said so.
 *
 * A gateway pod reads `credentialName` Secrets in its own namespace (Istio's rule), so a Gateway
 * is judged in each namespace where a pod it selects runs, and only on credentials a gateway's
 * config already asked for (the lookup starts nothing and answers nothing else: a Gateway author
 * learns nothing about Secrets no gateway uses). A Secret whose watch has not listed yet is no
 * verdict: the credential source calls back once it has, and the next pass judges it.
 */
import type { Gateway, Server } from '../pkg/api/index.js';
import type { UpstreamCredential } from '../pkg/proxyconfig/types.js';

/** A credential a gateway already reads (SecretCredentials.peek); undefined: none reads it. */
export type CredentialLookup = (namespace: string, credentialName: string) => UpstreamCredential | undefined;

const NOT_READ_YET = / not read yet$/;

/** Problems named once each, at most this many in a condition message. */
const MAX_PROBLEMS = 10;

function serverLabel(server: Server, index: number): string {
  const name = server.name !== undefined && server.name !== '' ? server.name : `servers[${index}]`;
  return `${name} (port ${server.port?.number ?? '?'})`;
}

/** Why a credential cannot serve a server of this mode, or undefined when it can. */
function unusable(cred: UpstreamCredential, mode: 'SIMPLE' | 'MUTUAL'): string | undefined {
  if (cred.error !== undefined) return NOT_READ_YET.test(cred.error) ? undefined : cred.error;
  if (cred.certChain === undefined || cred.privateKey === undefined)
    return `credential ${cred.source} holds no certificate and key (tls.crt and tls.key)`;
  if (mode === 'MUTUAL' && cred.caCertificates === undefined)
    return `credential ${cred.source} holds no CA to verify clients (ca.crt, or a ${cred.source}-cacert Secret), which MUTUAL needs`;
  return undefined;
}

export function gatewayCredentialProblems(
  gw: Gateway,
  podNamespaces: ReadonlySet<string>,
  lookup: CredentialLookup,
): string[] {
  const problems = new Set<string>();
  for (const [i, server] of (gw.spec.servers ?? []).entries()) {
    const mode = server.tls?.mode;
    const name = server.tls?.credentialName;
    if ((mode !== 'SIMPLE' && mode !== 'MUTUAL') || name === undefined || name === '') continue;
    for (const ns of [...podNamespaces].sort()) {
      const cred = lookup(ns, name);
      const why = cred === undefined ? undefined : unusable(cred, mode);
      if (why !== undefined) problems.add(`server ${serverLabel(server, i)}: ${why}`);
      if (problems.size >= MAX_PROBLEMS) return [...problems];
    }
  }
  return [...problems];
}
