/**
 * Rules for weft's own `Mesh` kind (rule ids `mesh.*`): what the schema cannot say.
 */
import type { MeshSpec } from '../api/mesh.js';
import type { RuleContext } from './rules.js';
import { checkDuration, isDNS1123Label, parseGoDuration } from './primitives.js';

const TRUST_DOMAIN = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;

export function validateMesh(spec: MeshSpec, ctx: RuleContext): void {
  const r = ctx.report;
  if (spec.trustDomain !== undefined && !TRUST_DOMAIN.test(spec.trustDomain)) {
    r.error(
      ['spec', 'trustDomain'],
      `invalid trust domain ${JSON.stringify(spec.trustDomain)}: lower case letters, digits, '-', '.', '_' (SPIFFE)`,
      'mesh.trustDomain',
    );
  }
  const certs = spec.certificates ?? {};
  const ttls = {
    workloadCertTTL: certs.workloadCertTTL,
    servingCertTTL: certs.servingCertTTL,
    rootCertTTL: certs.selfSigned?.rootCertTTL,
  };
  for (const [field, value] of Object.entries(ttls)) {
    if (value === undefined) continue;
    const path =
      field === 'rootCertTTL'
        ? ['spec', 'certificates', 'selfSigned', field]
        : ['spec', 'certificates', field];
    const err = checkDuration(value);
    if (err) r.error(path, err, 'mesh.certificates.ttl');
    else if ((parseGoDuration(value) ?? 0) < 60e9)
      r.error(path, 'certificate lifetime must be at least 1m', 'mesh.certificates.ttl');
  }
  const root = parseGoDuration(ttls.rootCertTTL ?? '') ?? Infinity;
  const workload = parseGoDuration(ttls.workloadCertTTL ?? '') ?? 0;
  if (workload > root)
    r.error(
      ['spec', 'certificates', 'workloadCertTTL'],
      'workload certificates cannot outlive the root certificate (workloadCertTTL > rootCertTTL)',
      'mesh.certificates.ttlOrder',
    );
  const names = new Set<string>();
  (spec.gateways ?? []).forEach((g, i) => {
    const at = ['spec', 'gateways', i];
    if (!isDNS1123Label(g.name) || g.name !== g.name.toLowerCase())
      r.error(
        [...at, 'name'],
        `gateway name ${JSON.stringify(g.name)} must be a lower case DNS label`,
        'mesh.gateway.name',
      );
    if (
      g.namespace !== undefined &&
      (!isDNS1123Label(g.namespace) || g.namespace !== g.namespace.toLowerCase())
    ) {
      r.error(
        [...at, 'namespace'],
        `namespace ${JSON.stringify(g.namespace)} must be a lower case DNS label`,
        'mesh.gateway.namespace',
      );
    }
    const key = `${g.namespace ?? 'weft-system'}/${g.name}`;
    if (names.has(key)) r.error([...at, 'name'], `gateway ${key} is listed twice`, 'mesh.gateway.duplicate');
    names.add(key);
    const ports = new Set<number>();
    (g.ports ?? []).forEach((p, j) => {
      if (ports.has(p.port))
        r.error([...at, 'ports', j, 'port'], `port ${p.port} is listed twice`, 'mesh.gateway.portDuplicate');
      ports.add(p.port);
      if (p.nodePort !== undefined && g.serviceType === 'ClusterIP')
        r.error(
          [...at, 'ports', j, 'nodePort'],
          'nodePort needs serviceType NodePort or LoadBalancer',
          'mesh.gateway.nodePort',
        );
    });
  });
}
