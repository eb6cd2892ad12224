/**
 * What every request on the sidecar's inbound side passes before the app sees a byte of it, for
 * plain requests and Upgrade requests alike (an upgrade that skipped these checks would be a way
 * around every policy): the request head read and its path normalized as the mesh says, then
 * RequestAuthentication (a token present must verify), then AuthorizationPolicy (CUSTOM → DENY →
 * ALLOW) with the peer's mTLS identity and the token's principal — Envoy's filter order — then
 * the local rate limits (a request refused by policy spends no token; a limited one is a 429).
 */
import type { IncomingMessage } from 'node:http';
import type { HeaderMap } from '../router/headers.js';
import { requestView } from '../router/exchange.js';
import { isRejection } from '../router/target.js';
import { Flags, type Flag } from '../router/flags.js';
import type { MetricsRegistry } from '../telemetry/metrics.js';
import type { AuthzDecision } from '../authz/engine.js';
import { authorizeRequest, countAuthz, inboundAttributes, type AuthzOutcome } from '../authz/gate.js';
import { jwtHook, type AuthnTarget, type RequestAuth } from '../authn/hook.js';
import type { InboundPolicy } from './http.js';
import type { RateLimitRequest, RateLimitVerdict } from '../ratelimit/limiter.js';
import { limitedReply } from '../ratelimit/headers.js';

/** A response the proxy gives instead of forwarding. */
export interface Refusal {
  status: number;
  flag: Flag;
  detail: string;
  /** Envoy's own body and headers (a JWT or an authorization refusal); absent: weft's local reply. */
  custom?: { body: string | Buffer; headers: Record<string, string> };
}

export interface Admission {
  /** The origin-form target to forward (normalized path and query). */
  target: string;
  auth: RequestAuth | null;
  authz: AuthzDecision | null;
  /** Envoy's response code details of a JWT refusal. */
  details?: string | undefined;
  /** Set: answer with this, the app sees nothing. */
  refusal?: Refusal | undefined;
  /** The rate limit that applied (allowed or limited); absent: none applies. */
  rateLimit?: RateLimitVerdict | undefined;
}

export interface AdmitInput {
  req: IncomingMessage;
  /** The headers as they will be forwarded: the token is stripped and outputs are set here. */
  headers: HeaderMap;
  /** The workload port the client dialled. */
  port: number;
  sni: string | null;
  /** The mTLS peer's SPIFFE ID; null on plaintext. */
  peer: string | null;
  policy: InboundPolicy;
  metrics: MetricsRegistry;
}

/**
 * The last step of admission: a request the policies let through takes a token from the first
 * rate limit that applies to it; without one it is refused with 429, flag RL, `retry-after` and
 * the IETF RateLimit fields.
 */
function rateLimited(input: AdmitInput, a: Admission): Admission {
  const rl = input.policy.rateLimit;
  if (rl === null || a.refusal !== undefined) return a;
  return withVerdict(a, rl.check(rateLimitRequest(input, a)));
}

function rateLimitRequest(input: AdmitInput, a: Admission): RateLimitRequest {
  return {
    port: input.port,
    target: a.target,
    method: input.req.method ?? 'GET',
    headers: input.headers,
    principal: input.peer,
    claims: a.auth?.claims ?? null,
    peerIp: input.req.socket.remoteAddress,
  };
}

function withVerdict(a: Admission, v: RateLimitVerdict | null): Admission {
  if (v === null) return a;
  if (v.allowed) return { ...a, rateLimit: v };
  const { detail, body, headers } = limitedReply(v);
  return {
    ...a,
    rateLimit: v,
    refusal: { status: 429, flag: Flags.RateLimited, detail, custom: { body, headers } },
  };
}

/**
 * With a `scope: global` limit configured, the token comes from weftd (ADR 0017): the verdict
 * is asynchronous. checkAsync applies the failure mode itself and does not reject; a throw
 * anyway (a bug) admits the request rather than leaving it hanging.
 */
function finishRateLimited(input: AdmitInput, a: Admission, finish: (a: Admission) => void): void {
  const rl = input.policy.rateLimit;
  if (rl === null || a.refusal !== undefined || !rl.hasGlobal) return finish(rateLimited(input, a));
  rl.checkAsync(rateLimitRequest(input, a)).then(
    (v) => finish(withVerdict(a, v)),
    () => finish(a),
  );
}

/** Decides, then calls `done` once (synchronously unless an ext-authz provider is asked). */
export function admit(input: AdmitInput, finish: (a: Admission) => void): void {
  const done = (a: Admission): void => finishRateLimited(input, a, finish);
  const { req, headers, policy } = input;
  const v = requestView(req, input.port, policy.pathNormalization);
  if (isRejection(v))
    return done({
      target: '',
      auth: null,
      authz: null,
      refusal: { status: v.status, flag: v.flag, detail: v.detail },
    });
  // an absolute-form target set req.headers.host to its authority: forward what was checked
  if (req.headers.host !== undefined) headers.host = req.headers.host;
  let refusal: Refusal | undefined;
  const authn: AuthnTarget = {
    auth: null,
    details: undefined,
    localReply: (status, flag, detail, custom) =>
      void (refusal = { status, flag, detail, ...(custom ? { custom } : {}) }),
  };
  if (policy.jwt !== null && !jwtHook(authn, policy.jwt, headers, v, input.metrics, null))
    return done({ target: v.target, auth: null, authz: null, details: authn.details, refusal });
  const az = policy.authz;
  if (az === null) return done({ target: v.target, auth: authn.auth, authz: null });
  const attrs = inboundAttributes(
    req,
    v,
    { port: input.port, headers, sni: input.sni, peer: input.peer },
    authn.auth,
  );
  const decided = (o: AuthzOutcome): void => {
    countAuthz(input.metrics, o);
    const d = o.denial;
    done({
      target: v.target,
      auth: authn.auth,
      authz: o.decision,
      ...(d === undefined
        ? {}
        : {
            refusal: {
              status: d.status,
              flag: d.flag === 'RBAC' ? Flags.RbacDenied : Flags.ExtAuthzDenied,
              detail: o.decision.reason,
              custom: { body: d.body, headers: d.headers },
            },
          }),
    });
  };
  const r = authorizeRequest(az, attrs, { method: v.method, target: v.target, headers: req.headers });
  if (r instanceof Promise) void r.then(decided);
  else decided(r);
}
