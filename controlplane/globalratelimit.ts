/**
 * weftd's global rate-limit service: `POST /v1/ratelimit/check` on the discovery port (ADR 0017).
 * Authenticated like an ACK (a workload's projected token, reviewed and cached), the body read
 * only after that and only up to MAX_CHECK_BYTES. Buckets are namespaced by the token's
 * namespace: a sidecar can spend only budgets of its own namespace (a RateLimit limits pods of
 * its own namespace), never drain another namespace's limit. Redis failing or slow answers 503
 * `WEFT_RATELIMIT_BACKEND` within the Redis client's deadline; the sidecar applies the limit's
 * failure mode.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WeftError, errorMessage } from '../pkg/errors/index.js';
import { GlobalBucketStore, MAX_CHECK_BYTES, parseCheck } from '../pkg/ratelimit/global.js';
import type { Logger } from '../pkg/log/index.js';
import type { Identity } from './auth.js';

export class GlobalRateLimitService {
  /** Checks answered / failed on Redis (weftd's /debug and tests). */
  readonly counts = { allowed: 0, limited: 0, backendErrors: 0 };
  private lastLog = 0;

  constructor(
    private readonly store: GlobalBucketStore,
    private readonly log: Logger,
  ) {}

  /** Handles one check; `identify` authenticates the bearer token (the discovery service's). */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    identify: (req: IncomingMessage) => Promise<Identity>,
  ): Promise<void> {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_CHECK_BYTES)
      throw new WeftError(
        'WEFT_INPUT_TOO_LARGE',
        `a rate-limit check body is at most ${MAX_CHECK_BYTES} bytes`,
      );
    const identity = await identify(req);
    const check = parseCheck(await readJson(req, MAX_CHECK_BYTES));
    let answer;
    try {
      answer = await this.store.take(identity.namespace, check);
    } catch (err) {
      this.counts.backendErrors++;
      // one line per 10 s at most: a Redis outage must not turn every request into a log line
      const now = Date.now();
      if (now - this.lastLog > 10_000) {
        this.lastLog = now;
        this.log.warn('Global rate-limit store failed', { error: errorMessage(err) });
      }
      throw new WeftError('WEFT_RATELIMIT_BACKEND', errorMessage(err));
    }
    if (answer.allowed) this.counts.allowed++;
    else this.counts.limited++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  }
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new WeftError('WEFT_INPUT_TOO_LARGE', `request body is over ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw new WeftError('WEFT_RATELIMIT_REQUEST_INVALID', `the body is not JSON: ${errorMessage(err)}`, {
      details: { status: 400 },
    });
  }
}
