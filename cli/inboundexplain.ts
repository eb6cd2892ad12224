/**
 * `weftctl explain --inbound PORT`: the proxy's own inbound explanation (proxy/inbound/explain.ts)
 * as a person reads it, one labelled line per decision.
 */
import type { InboundExplanation } from '../proxy/inbound/explain.js';
import type { RateLimitExplanation } from '../proxy/ratelimit/explain.js';

const line = (label: string, text: string): string => `${label.padEnd(14)}${text}\n`;

export function inboundText(e: InboundExplanation): string {
  let out = line('config', `version ${e.version}`);
  out += line(
    'inbound',
    `${e.port === null ? 'port unknown (the workload mode)' : `port ${e.port}`}, ${e.protocol}${e.service ? `, ${e.service}` : ''}`,
  );
  out += line('mtls', `${e.mode} (${e.policy})`);
  out += line('connection', e.connection);
  if (e.connectionSecurityPolicy !== undefined)
    out += line(
      'telemetry',
      `connection_security_policy=${e.connectionSecurityPolicy}${e.sourcePrincipal ? `, source_principal=${e.sourcePrincipal}` : ''}`,
    );
  if (e.authz !== undefined)
    out += line(
      'authz',
      `${e.authz.decision}${e.authz.policy !== undefined ? ` by ${e.authz.policy}${e.authz.rule !== undefined ? ` rule ${e.authz.rule}` : ''}` : ''}: ${e.authz.reason}`,
    );
  if (e.rateLimit !== undefined) out += rateLimitLines(e.rateLimit);
  out += line('outcome', e.outcome);
  return out;
}

/** The `ratelimit` lines of explain (inbound and gateway): the limit, where it counts, the key. */
export function rateLimitLines(rl: RateLimitExplanation): string {
  let out = line(
    'ratelimit',
    `${rl.limit}, override ${rl.override}: ${rl.requests} per ${rl.intervalMs} ms, burst ${rl.burst}, bucket ${rl.bucket}, scope ${rl.scope}`,
  );
  if (rl.scope === 'global')
    out += line('', `global: one budget in ${rl.backend}; failureMode ${rl.failureMode ?? 'allow'}`);
  if (rl.key !== undefined) out += line('', `key: ${rl.key}`);
  return out;
}
