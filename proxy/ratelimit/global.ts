/**
 * The sidecar's side of global rate limits (ADR 0017): asks weftd's `POST /v1/ratelimit/check`
 * for a token, over one keep-alive agent (no handshake per request), with a short deadline
 * (default 50 ms: the check sits on the request path). Any failure — weftd unreachable, Redis
 * down (503), a timeout, an answer that is not one — is a backend error: the caller applies the
 * limit's failure mode, the error is counted (`weft_proxy_ratelimit_backend_errors_total`) and
 * logged at most once per LOG_EVERY_MS.
 */
import http from 'node:http';
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
/** Sockets to weftd per sidecar: concurrent checks beyond this queue in the agent (bounded by the timeout). */
const MAX_SOCKETS = 8;

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
  private readonly agent: http.Agent;

  constructor(private readonly o: GlobalClientOptions) {
    const opts = { keepAlive: true, maxSockets: MAX_SOCKETS, maxFreeSockets: MAX_SOCKETS };
    this.agent = o.plaintext ? new http.Agent(opts) : new https.Agent(opts);
  }

  check(req: GlobalCheckRequest): Promise<GlobalCheckResponse> {
    const body = JSON.stringify(req);
    const timeout = this.o.timeoutMs ?? DEFAULT_GLOBAL_TIMEOUT_MS;
    return new Promise<GlobalCheckResponse>((resolve, reject) => {
      const options: https.RequestOptions = {
        host: this.o.host,
        port: this.o.port,
        path: RATELIMIT_CHECK_PATH,
        method: 'POST',
        agent: this.agent,
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
      // a deadline on the whole exchange (socket wait, send, answer), not just idle time
      const timer = setTimeout(
        () => req.destroy(new Error(`no answer from weftd within ${timeout}ms`)),
        timeout,
      );
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
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
            return reject(new Error(`weftd answered HTTP ${res.statusCode}: ${text.trim().slice(0, 300)}`));
          const a = answerOf(text);
          if (a === null)
            return reject(new Error(`weftd's answer is not a check result: ${text.slice(0, 200)}`));
          resolve(a);
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
