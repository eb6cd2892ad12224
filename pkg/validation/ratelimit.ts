/**
 * RateLimit (mesh.weft.dev) semantic rules, rule ids `ratelimit.*` (memquota: memquota.ts). Budgets go through the same `resolveBudget` the translator
 * uses, so a budget the webhook admits is one the proxy enforces. `scope: global` is refused
 * unless the mesh runs the global backend (ADR 0017): admitting it without one would be a limit
 * that silently does nothing.
 */
import type { RateLimitBudgetSpec, RateLimitSource, RateLimitSpec } from '../api/ratelimit.js';
import { resolveBudget } from '../translate/ratelimit.js';
import { RATE_LIMIT_BOUNDS } from '../proxyconfig/ratelimit.js';
import type { PathSegment, Report } from './report.js';
import type { RuleContext } from './rules.js';
import { checkSelector } from './destinationrule.js';
import { checkPort, isDNS1123Label } from './primitives.js';

type Path = readonly PathSegment[];

const METHOD = /^[A-Z]+$/;

function checkBudget(b: RateLimitBudgetSpec, path: Path, r: Report): void {
  const res = resolveBudget(b);
  if (typeof res === 'string') r.error(path, res, 'ratelimit.limit.invalid');
}

const SOURCE_FIELDS = [
  'serviceAccounts',
  'namespaces',
  'principals',
  'workloadLabels',
  'header',
  'claim',
] as const;

function checkSource(s: RateLimitSource, path: Path, r: Report): void {
  if (!SOURCE_FIELDS.some((f) => s[f] !== undefined))
    r.error(
      path,
      `source must name at least one of ${SOURCE_FIELDS.join(', ')} (an empty source would match every caller: set the default limit instead)`,
      'ratelimit.override.source.empty',
    );
  (s.serviceAccounts ?? []).forEach((sa, i) => {
    const parts = sa.split('/');
    if (parts.length > 2 || parts.some((p) => !isDNS1123Label(p)))
      r.error(
        [...path, 'serviceAccounts', i],
        `${JSON.stringify(sa)} is not "<sa>" or "<namespace>/<sa>"`,
        'ratelimit.override.serviceAccount',
      );
  });
  if (s.workloadLabels !== undefined) checkSelector(s.workloadLabels, [...path, 'workloadLabels'], r);
  if (s.header !== undefined && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(s.header.name))
    r.error(
      [...path, 'header', 'name'],
      `${JSON.stringify(s.header.name)} is not an HTTP header name`,
      'ratelimit.override.header',
    );
}

/** A canonical form of a source, for "same caller set" comparisons. */
const canonical = (s: RateLimitSource): string =>
  JSON.stringify(
    SOURCE_FIELDS.map((f) => {
      const v = s[f];
      if (Array.isArray(v)) return [...v].sort();
      if (v !== undefined && typeof v === 'object') return JSON.stringify(v, Object.keys(v).sort());
      return v ?? null;
    }),
  );

/** Callers named by list fields that an earlier override also names: the earlier applies to them. */
function overlap(a: RateLimitSource, b: RateLimitSource): string | undefined {
  for (const f of ['serviceAccounts', 'namespaces', 'principals'] as const) {
    const shared = (a[f] ?? []).filter((x) => (b[f] ?? []).includes(x));
    if (
      shared.length > 0 &&
      SOURCE_FIELDS.every((g) => g === f || (a[g] === undefined && b[g] === undefined))
    )
      return `${f} ${shared.join(', ')}`;
  }
  return undefined;
}

function checkOverrides(spec: RateLimitSpec, r: Report): void {
  const list = spec.overrides ?? [];
  if (list.length > RATE_LIMIT_BOUNDS.maxOverrides)
    r.error(
      ['spec', 'overrides'],
      `at most ${RATE_LIMIT_BOUNDS.maxOverrides} overrides`,
      'ratelimit.overrides.tooMany',
    );
  const names = new Map<string, number>();
  list.forEach((o, i) => {
    const path = ['spec', 'overrides', i];
    checkSource(o.source, [...path, 'source'], r);
    checkBudget(o.limit, [...path, 'limit'], r);
    if (o.name !== undefined) {
      if (names.has(o.name))
        r.error(
          [...path, 'name'],
          `duplicate override name ${JSON.stringify(o.name)}`,
          'ratelimit.override.name.duplicate',
        );
      names.set(o.name, i);
    }
    for (let j = 0; j < i; j++) {
      const earlier = list[j]!.source;
      if (canonical(earlier) === canonical(o.source)) {
        r.warn(
          path,
          `same source as overrides[${j}]: this override never applies (the first match wins)`,
          'ratelimit.override.shadowed',
        );
        break;
      }
      const shared = overlap(earlier, o.source);
      if (shared !== undefined) {
        r.warn(
          path,
          `overlaps overrides[${j}] (both name ${shared}); for those callers overrides[${j}] applies (the first match wins)`,
          'ratelimit.override.overlap',
        );
        break;
      }
    }
  });
}

export function validateRateLimit(spec: RateLimitSpec, ctx: RuleContext): void {
  const r = ctx.report;
  if (spec.scope === 'global' && ctx.globalRateLimits !== true)
    r.error(
      ['spec', 'scope'],
      'scope global (one budget across every pod of the destination) needs the global rate-limit backend, which this mesh does not run: start weftd with --ratelimit-redis HOST:PORT and the webhook with --global-ratelimits (docs/rate-limits.md). Without it, admitting the limit would be a limit that does nothing; scope local is a token bucket in each destination sidecar (the budget is per pod)',
      'ratelimit.scope.global',
    );
  if (spec.failureMode !== undefined && spec.scope !== 'global')
    r.warn(
      ['spec', 'failureMode'],
      'failureMode applies to scope global only (a local limit has no backend to fail)',
      'ratelimit.failureMode.unused',
    );
  if (spec.selector === undefined && spec.targetHost === undefined)
    r.error(
      ['spec'],
      'one of selector or targetHost is required: a RateLimit names the destination it limits',
      'ratelimit.target.required',
    );
  // a selector without labels is meaningful here: every pod of the namespace (ranked last)
  const labels = spec.selector?.matchLabels ?? {};
  if (Object.keys(labels).length > 0) checkSelector(labels, ['spec', 'selector', 'matchLabels'], r);
  if (spec.targetHost !== undefined) {
    const parts = spec.targetHost.split('.');
    if (parts.some((p) => !isDNS1123Label(p)) || spec.targetHost.includes('*'))
      r.error(
        ['spec', 'targetHost'],
        `${JSON.stringify(spec.targetHost)} is not a Service name or host (no wildcards)`,
        'ratelimit.targetHost',
      );
    else if (parts.length > 1 && parts[1] !== ctx.namespace)
      r.error(
        ['spec', 'targetHost'],
        `a RateLimit limits Services of its own namespace (${ctx.namespace}), not ${parts[1]}`,
        'ratelimit.targetHost.namespace',
      );
  }
  (spec.ports ?? []).forEach((p, i) => {
    const m = checkPort(p);
    if (m !== undefined) r.error(['spec', 'ports', i], m, 'ratelimit.port');
  });
  (spec.paths ?? []).forEach((p, i) => {
    if (!p.startsWith('/'))
      r.error(['spec', 'paths', i], `path prefix ${JSON.stringify(p)} must start with /`, 'ratelimit.path');
  });
  (spec.methods ?? []).forEach((m, i) => {
    if (!METHOD.test(m))
      r.error(
        ['spec', 'methods', i],
        `${JSON.stringify(m)} is not an upper-case HTTP method`,
        'ratelimit.method',
      );
  });
  checkBudget(spec.limit, ['spec', 'limit'], r);
  checkOverrides(spec, r);
  const key = spec.sourceKey;
  if (key !== undefined && (key.by === 'header' || key.by === 'claim') && (key.name ?? '') === '')
    r.error(
      ['spec', 'sourceKey', 'name'],
      `sourceKey by ${key.by} needs the ${key.by}'s name`,
      'ratelimit.sourceKey.name',
    );
  if (key?.by === 'header')
    r.warn(
      ['spec', 'sourceKey'],
      'a header is chosen by the caller: per-header buckets do not stop a caller that sends a new value per request (memory stays bounded; see docs/rate-limits.md)',
      'ratelimit.sourceKey.forgeable',
    );
  const perSource = [spec.limit, ...(spec.overrides ?? []).map((o) => o.limit)].some(
    (b) => b.per === 'source',
  );
  if (key !== undefined && !perSource)
    r.warn(
      ['spec', 'sourceKey'],
      'no budget has per: source, so the sourceKey is not used',
      'ratelimit.sourceKey.unused',
    );
}
