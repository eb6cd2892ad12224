/**
 * The proxy's ACK/NACK sender (contract: pkg/discovery/protocol.ts, `POST /v1/discovery/ack`).
 *
 * One keep-alive agent with a single socket: a fleet answering a push must not cost weftd a TLS
 * handshake per ACK, so answers reuse the open connection, and when weftd closed it (idle
 * keep-alive timeout) the agent's TLS session cache resumes the session instead of a full
 * handshake. Answers go out one at a time, in order; only the newest pending one is kept (weftd
 * counts an answer to an older push as stale anyway). A failed send is retried a bounded number
 * of times with backoff (network errors, 429, 5xx); a 4xx other than 429 is final (retrying the
 * same body cannot help) and is logged.
 */
import https from 'node:https';
import {
  ACK_PATH,
  truncateError,
  type AckRequest,
  type AckResponse,
  type AckResult,
} from '../../pkg/discovery/protocol.js';
import { backoffDelay, sleep, type BackoffPolicy } from '../../pkg/kube/backoff.js';
import { errorMessage } from '../../pkg/errors/index.js';
import type { Logger } from '../../pkg/log/index.js';

export interface AckSenderOptions {
  host: string;
  port: number;
  /** TLS server name (undefined for an IP address). */
  servername: string | undefined;
  /** The mesh root and the token, read at each send (both rotate). */
  ca: () => string;
  token: () => string;
  log: Logger;
  /** Sends of one answer, the first included (default 4). */
  attempts?: number;
  backoff?: BackoffPolicy;
  random?: () => number;
  /** Per-attempt timeout (default 10 s). */
  timeoutMs?: number;
  /**
   * How answers reach weftd (default keep-alive). The others are the bench's baselines only:
   * `resume` opens a connection per answer resuming the TLS session, `new` a full handshake per
   * answer (a naive client).
   */
  connection?: 'keep-alive' | 'resume' | 'new';
}

export const ACK_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 5_000, jitter: 0.5 };

/** What one attempt ended with: a result, a final refusal, or something worth retrying. */
type Attempt = { ok: true; result: AckResult } | { ok: false; retry: boolean; why: string };

export class AckSender {
  /** Answers weftd took (any result) / gave up on after the retries or a final refusal. */
  sent = 0;
  failed = 0;
  readonly results: Record<AckResult, number> = { ack: 0, nack: 0, stale: 0 };
  private readonly agent: https.Agent;
  private pending: AckRequest | undefined;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly o: AckSenderOptions) {
    const mode = o.connection ?? 'keep-alive';
    this.agent = new https.Agent({
      keepAlive: mode === 'keep-alive',
      maxSockets: 1,
      maxFreeSockets: 1,
      maxCachedSessions: mode === 'new' ? 0 : 4,
    });
  }

  /** Queues an answer (replacing one not yet sent); resolves when the queue is empty. */
  send(ack: AckRequest): Promise<void> {
    this.pending = ack.error === undefined ? ack : { ...ack, error: truncateError(ack.error) };
    this.running ??= this.drain();
    return this.running;
  }

  stop(): void {
    this.abort.abort();
    this.pending = undefined;
    this.agent.destroy();
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending !== undefined && !this.abort.signal.aborted) {
        const ack = this.pending;
        this.pending = undefined;
        await this.deliver(ack);
      }
    } finally {
      // cleared here, synchronously with the loop's last check: a `.finally()` on the promise
      // ran a microtask later, and an answer queued in between started no drain (lost until
      // the next push)
      this.running = undefined;
    }
  }

  private async deliver(ack: AckRequest): Promise<void> {
    const attempts = this.o.attempts ?? 4;
    let why = '';
    for (let i = 1; i <= attempts && !this.abort.signal.aborted; i++) {
      // a newer answer makes this one worthless: stop retrying it
      if (i > 1 && this.pending !== undefined) return;
      const r = await this.post(ack).catch((err: unknown): Attempt => ({
        ok: false,
        retry: true,
        why: errorMessage(err),
      }));
      if (r.ok) {
        this.sent++;
        this.results[r.result]++;
        return;
      }
      why = r.why;
      if (!r.retry) break;
      if (i < attempts)
        await sleep(backoffDelay(i, this.o.backoff ?? ACK_BACKOFF, this.o.random), this.abort.signal);
    }
    if (this.abort.signal.aborted) return;
    this.failed++;
    this.o.log.warn('Could not deliver an ACK/NACK to weftd', {
      version: ack.version,
      nack: ack.error !== undefined,
      error: why,
    });
  }

  private post(ack: AckRequest): Promise<Attempt> {
    const body = JSON.stringify(ack);
    return new Promise<Attempt>((resolve) => {
      const req = https.request({
        host: this.o.host,
        port: this.o.port,
        servername: this.o.servername,
        ca: this.o.ca(),
        path: ACK_PATH,
        method: 'POST',
        agent: this.agent,
        timeout: this.o.timeoutMs ?? 10_000,
        signal: this.abort.signal,
        headers: {
          authorization: `Bearer ${this.o.token()}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      });
      req.on('timeout', () => req.destroy(new Error('no answer from weftd in time')));
      req.on('error', (err) => resolve({ ok: false, retry: true, why: errorMessage(err) }));
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text.length < 4096 ? (text += c) : undefined));
        res.on('error', (err) => resolve({ ok: false, retry: true, why: errorMessage(err) }));
        res.on('end', () => resolve(attemptOf(res.statusCode ?? 0, text)));
      });
      req.end(body);
    });
  }
}

/** An answer's HTTP status and body → what to do next. */
export function attemptOf(status: number, body: string): Attempt {
  if (status === 200) {
    try {
      const r = (JSON.parse(body) as Partial<AckResponse>).result;
      if (r === 'ack' || r === 'nack' || r === 'stale') return { ok: true, result: r };
    } catch {
      // fall through: a 200 that is not an answer is weftd misbehaving; worth another try
    }
    return { ok: false, retry: true, why: `weftd answered 200 without a result: ${body.slice(0, 200)}` };
  }
  const retry = status === 429 || status >= 500;
  return { ok: false, retry, why: `weftd answered HTTP ${status}: ${body.trim().slice(0, 500)}` };
}
