/**
 * The sidecar's side of global rate limits (ADR 0017): asks weftd's `POST /v1/ratelimit/check`
 * for a token, over one keep-alive agent (no handshake per request), with a short deadline
 * (default 50 ms: the check sits on the request path). The deadline answers the caller; the
 * exchange may finish in the background (at most MAX_IN_FLIGHT of them, each cut after 5 s), so
 * connections still get established on a slow node. Any failure — weftd unreachable, Redis
 * down (503), a timeout, an answer that is not one — is a backend error: the caller applies the
 * limit's failure mode, the error is counted (`weft_proxy_ratelimit_backend_errors_total`) and
 * logged at most once per LOG_EVERY_MS.
 */
import type { Agent as HttpAgent } from 'node:http';
import { http } from '../../pkg/builtins/index.js';
import https from 'node:https';
import {
  RATELIMIT_CHECK_PATH,
  type GlobalCheckRequest,
  type GlobalCheckResponse,
} from '../../pkg/ratelimit/global.js';
import { errorMessage } from '../../pkg/errors/index.js';
import type { Logger } from '../../pkg/log/index.js';

export const BACKEND_ERRORS_METRIC = 'weft_proxy_ratelimit_backend_errors_total';
export const DEFAULT_GLOBAL_TIMEOUT_MS = 50;
/** A sustained outage logs one line per this period, with the count since the last line. */
export const LOG_EVERY_MS = 10_000;
/** Sockets to weftd per sidecar: concurrent checks beyond this queue in the agent. */
const MAX_SOCKETS = 8;
/**
 * Checks still running after their caller gave up (past the deadline) or waiting for a socket:
 * past this a check fails at once, so a hanging weftd cannot make the agent's queue grow.
 */
export const MAX_IN_FLIGHT = 256;
/**
 * How long an exchange may run in the background after its caller's deadline. The deadline
 * answers the request; the exchange is not cut, because cutting it would also cut the TLS
 * handshake of a new connection, and on a slow node no connection would ever be established.
 */
const BACKGROUND_TIMEOUT_MS = 5_000;

export interface GlobalBackend {
  check(req: GlobalCheckRequest): Promise<GlobalCheckResponse>;
}

export interface GlobalClientOptions {
  host: string;
  port: number;
  /** https (the discovery port) unless `plaintext` (tests of the handler alone). */
  plaintext?: boolean;
  servername?: string | undefined;
  ca?: () => string;
  token: () => string;
  timeoutMs?: number;
}

export class GlobalClient implements GlobalBackend {
  private readonly agent: HttpAgent;

  constructor(private readonly o: GlobalClientOptions) {
    const opts = { keepAlive: true, maxSockets: MAX_SOCKETS, maxFreeSockets: MAX_SOCKETS };
    this.agent = o.plaintext ? new http.Agent(opts) : new https.Agent(opts);
  }

  private inFlight = 0;

  check(req: GlobalCheckRequest): Promise<GlobalCheckResponse> {
    if (this.inFlight >= MAX_IN_FLIGHT)
      return Promise.reject(new Error(`${MAX_IN_FLIGHT} checks to weftd already in flight`));
    const timeout = this.o.timeoutMs ?? DEFAULT_GLOBAL_TIMEOUT_MS;
    return new Promise<GlobalCheckResponse>((resolve, reject) => {
      // the caller's deadline: answers the request; the exchange itself may finish later
      const timer = setTimeout(() => reject(new Error(`no answer from weftd within ${timeout}ms`)), timeout);
      this.inFlight++;
      this.exchange(req).then(
        (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  private exchange(check: GlobalCheckRequest): Promise<GlobalCheckResponse> {
    const body = JSON.stringify(check);
    return new Promise<GlobalCheckResponse>((resolve, reject) => {
      let done = false;
      const settle = (err: Error | null, a?: GlobalCheckResponse): void => {
        if (done) return;
        done = true;
        this.inFlight--;
        if (err !== null) reject(err);
        else resolve(a!);
      };
      const options: https.RequestOptions = {
        host: this.o.host,
        port: this.o.port,
        path: RATELIMIT_CHECK_PATH,
        method: 'POST',
        agent: this.agent,
        timeout: BACKGROUND_TIMEOUT_MS,
        headers: {
          authorization: `Bearer ${this.o.token()}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
        ...(this.o.plaintext
          ? {}
          : { servername: this.o.servername, ...(this.o.ca ? { ca: this.o.ca() } : {}) }),
      };
      const req = (this.o.plaintext ? http : https).request(options);
      const timer = setTimeout(
        () => req.destroy(new Error(`weftd did not answer within ${BACKGROUND_TIMEOUT_MS}ms`)),
        BACKGROUND_TIMEOUT_MS,
      );
      const fail = (err: Error): void => {
        clearTimeout(timer);
        settle(err);
      };
      req.on('timeout', () => req.destroy(new Error('the connection to weftd went idle')));
      req.on('error', fail);
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 4096) text += c;
        });
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          if (res.statusCode !== 200)
            return settle(new Error(`weftd answered HTTP ${res.statusCode}: ${text.trim().slice(0, 300)}`));
          const a = answerOf(text);
          if (a === null)
            return settle(new Error(`weftd's answer is not a check result: ${text.slice(0, 200)}`));
          settle(null, a);
        });
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function answerOf(text: string): GlobalCheckResponse | null {
  try {
    const v = JSON.parse(text) as Partial<GlobalCheckResponse>;
    const n = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;
    if (typeof v.allowed === 'boolean' && n(v.remaining) && n(v.retryAfterMs) && n(v.resetMs))
      return { allowed: v.allowed, remaining: v.remaining, retryAfterMs: v.retryAfterMs, resetMs: v.resetMs };
  } catch {
    // not JSON: null below
  }
  return null;
}

/** Logs backend errors at most once per LOG_EVERY_MS, with how many happened in between. */
export class ThrottledLog {
  private last = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly log: Logger | null,
    private readonly now: () => number = Date.now,
  ) {}

  error(limit: string, failureMode: 'allow' | 'deny', err: unknown): void {
    const t = this.now();
    if (t - this.last < LOG_EVERY_MS) {
      this.suppressed++;
      return;
    }
    this.last = t;
    this.log?.warn('Global rate-limit check failed; applying the failure mode', {
      limit,
      failureMode,
      error: errorMessage(err),
      suppressed: this.suppressed,
    });
    this.suppressed = 0;
  }
}
