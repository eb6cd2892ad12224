/**
 * The thin HTTPS layer around the admission handlers: parse and check the AdmissionReview, call
 * the pure handler, write the response, count and log it. Anything malformed is a 400 with a
 * coded message; a body over the byte limit a 413, one nested deeper than the API server allows
 * a 400 (checked on the raw bytes, before the parser); a handler that overruns its budget a 504,
 * so no request hangs and no bad input reaches a handler.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  MAX_BODY_BYTES,
  MAX_BODY_DEPTH,
  describeRequest,
  nestsDeeperThan,
  parseAdmissionReview,
  review,
  type AdmissionRequest,
  type AdmissionResponse,
} from '../pkg/admission/index.js';
import { serverTimeoutOptions, type ServerTimeouts } from '../pkg/http/timeouts.js';
import { ErrorCodes, errorMessage, isWeftError, type ErrorCode } from '../pkg/errors/index.js';
import type { Logger } from '../pkg/log/index.js';
import { handleInject, type InjectDeps } from './inject.js';
import type { WebhookMetrics } from './metrics.js';
import type { CertReloader } from '../pkg/tls/index.js';
import { handleValidate, type ValidateDeps } from './validate.js';

export interface WebhookAppOptions {
  validate: ValidateDeps;
  inject: InjectDeps;
  metrics: WebhookMetrics;
  log: Logger;
  /** What /readyz reports; ready means the certificate is loaded and caches have synced. */
  readiness: () => { ready: boolean; [detail: string]: unknown };
  /** Default 3 MiB, the API server's own request limit: anything larger never came from it. */
  bodyLimitBytes?: number;
  /**
   * Request bodies being read and handled at once, in bytes (by Content-Length; a body without
   * one counts as the body limit). Default 16 MiB: what the main thread holds in parsed
   * AdmissionReviews stays bounded however many clients send at once; more get a 503.
   */
  inFlightLimitBytes?: number;
  /**
   * A verdict's budget, for both webhooks (tests). Default: 4 s for validation, 8 s for
   * injection, each under its webhook's timeoutSeconds (5 s, 10 s) so the API server gets our
   * answer, not its own timeout.
   */
  handlerTimeoutMs?: number;
}

export const VALIDATE_BUDGET_MS = 4000;
export const IN_FLIGHT_LIMIT_BYTES = 16 * 1024 * 1024;
export const INJECT_BUDGET_MS = 8000;

type Webhook = 'validate' | 'inject';

interface Outcome {
  response: AdmissionResponse;
  verdict: string;
  reason: string;
  result?: string;
  placement?: string;
  costUnits?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (isWeftError(err, 'WEFT_ADMISSION_MALFORMED')) return 400;
  if (isWeftError(err, 'WEFT_INPUT_TOO_LARGE')) return 413;
  if (isWeftError(err, 'WEFT_ADMISSION_OVERLOADED')) return 503;
  if (isWeftError(err, 'WEFT_ADMISSION_TIMEOUT')) return 504;
  return 500;
}

function sendError(res: Response, status: number, code: ErrorCode, message: string): void {
  res.status(status).json({ code, message: `${code}: ${message}` });
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new HttpError(504, 'WEFT_ADMISSION_TIMEOUT', `no verdict within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function requestLogger(log: Logger, webhook: Webhook, ar: AdmissionRequest): Logger {
  return log.child({
    webhook,
    uid: ar.uid,
    kind: ar.kind.kind,
    operation: ar.operation,
    object: describeRequest(ar),
    ...(ar.dryRun ? { dryRun: true } : {}),
  });
}

/** Raw body sizes, recorded by the JSON parser (chunked requests carry no Content-Length). */
const bodySizes = new WeakMap<object, number>();

/**
 * Runs on the raw body before JSON.parse: records its size, and refuses a body nested deeper
 * than any the API server can send, before the parser or anything after it walks it.
 */
function checkRawBody(req: object, buf: Buffer): void {
  bodySizes.set(req, buf.length);
  if (nestsDeeperThan(buf, MAX_BODY_DEPTH))
    throw Object.assign(
      new Error(
        `body nests objects or arrays deeper than ${MAX_BODY_DEPTH} levels; the API server never sends more than ${MAX_BODY_DEPTH - 2} in an object`,
      ),
      { status: 400, type: 'entity.too.deep' },
    );
}

function admit(
  opts: WebhookAppOptions,
  webhook: Webhook,
  run: (ar: AdmissionRequest, bodyBytes: number, budgetMs: number) => Promise<Outcome>,
) {
  const { metrics, log } = opts;
  const budget = opts.handlerTimeoutMs ?? (webhook === 'validate' ? VALIDATE_BUDGET_MS : INJECT_BUDGET_MS);
  return async (req: Request, res: Response): Promise<void> => {
    const stop = metrics.duration.startTimer({ webhook });
    let ar: AdmissionRequest;
    try {
      ar = parseAdmissionReview(req.body);
    } catch (err) {
      metrics.requests.inc({ webhook, kind: '', operation: '', result: 'error' });
      log.warn('Rejected malformed AdmissionReview', { webhook, error: errorMessage(err) });
      sendError(res, 400, 'WEFT_ADMISSION_MALFORMED', isWeftError(err) ? err.message : errorMessage(err));
      return;
    }
    const rlog = requestLogger(log, webhook, ar);
    try {
      const out = await withTimeout(run(ar, bodySizes.get(req) ?? 0, budget), budget);
      res.json(review(out.response));
      metrics.requests.inc({ webhook, kind: ar.kind.kind, operation: ar.operation, result: out.verdict });
      if (out.verdict === 'denied' && webhook === 'validate') metrics.denials.inc({ kind: ar.kind.kind });
      if (webhook === 'inject')
        metrics.injections.inc({ result: out.result ?? 'skipped', reason: out.reason });
      if (out.placement) metrics.validations.inc({ placement: out.placement });
      rlog.info('Admission reviewed', {
        verdict: out.verdict,
        reason: out.reason,
        ...(out.placement ? { placement: out.placement, costUnits: out.costUnits } : {}),
        durationMs: Math.round(stop() * 1e4) / 10,
      });
    } catch (err) {
      stop();
      metrics.requests.inc({ webhook, kind: ar.kind.kind, operation: ar.operation, result: 'error' });
      const status = statusOf(err);
      const code: ErrorCode = isWeftError(err)
        ? err.code
        : err instanceof HttpError
          ? err.code
          : 'WEFT_ADMISSION_MALFORMED';
      rlog.warn('Admission failed', { status, error: errorMessage(err) });
      sendError(res, status, code, isWeftError(err) ? err.message : errorMessage(err));
    }
  };
}

/**
 * Admits a request's body only while the bodies in flight stay under the limit: the reservation
 * is taken before the body is read and given back when the response is done, however it ends.
 * Refused requests are answered before their body is read, and the connection is closed.
 */
function inFlightBudget(limit: number, bodyLimit: number) {
  let inFlight = 0;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method !== 'POST') return next();
    const declared = Number(req.headers['content-length']);
    const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, bodyLimit) : bodyLimit;
    if (inFlight + bytes > limit) {
      res.setHeader('connection', 'close');
      sendError(
        res,
        503,
        'WEFT_ADMISSION_OVERLOADED',
        `${Math.ceil(inFlight / 1024)} KiB of admission requests are already being handled (the limit is ${Math.round(limit / 1024)} KiB); retry shortly`,
      );
      return;
    }
    inFlight += bytes;
    res.once('close', () => (inFlight -= bytes));
    next();
  };
}

/** Body-parser failures (bad JSON, too large) become coded JSON errors, never an HTML stack page. */
function errorHandler(log: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    const e = err as { type?: string; status?: number; message?: string; length?: number; limit?: number };
    if (e.type === 'entity.too.large') {
      sendError(res, 413, 'WEFT_INPUT_TOO_LARGE', `body is ${e.length} bytes; the limit is ${e.limit} bytes`);
    } else if (e.type === 'entity.too.deep') {
      sendError(res, 400, 'WEFT_ADMISSION_MALFORMED', e.message ?? 'body nested too deep');
    } else if (e.status !== undefined && e.status >= 400 && e.status < 500) {
      sendError(res, 400, 'WEFT_ADMISSION_MALFORMED', `body is not valid JSON: ${e.message ?? ''}`);
    } else {
      log.error('Unexpected error', { error: errorMessage(err) });
      sendError(res, 500, 'WEFT_ADMISSION_MALFORMED', ErrorCodes.WEFT_ADMISSION_MALFORMED);
    }
  };
}

export function createWebhookApp(opts: WebhookAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const bodyLimit = opts.bodyLimitBytes ?? MAX_BODY_BYTES;
  app.use(inFlightBudget(opts.inFlightLimitBytes ?? IN_FLIGHT_LIMIT_BYTES, bodyLimit));
  app.use(express.json({ limit: bodyLimit, verify: (req, _res, buf) => checkRawBody(req, buf) }));
  app.post(
    '/validate',
    admit(opts, 'validate', (ar, bodyBytes, waitMs) =>
      handleValidate(ar, opts.validate, { bodyBytes, waitMs }),
    ),
  );
  app.post(
    '/inject',
    admit(opts, 'inject', (ar) => handleInject(ar, opts.inject)),
  );
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    const r = opts.readiness();
    res.status(r.ready ? 200 : 503).json(r);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });
  app.use((_req: Request, res: Response) =>
    sendError(
      res,
      404,
      'WEFT_ADMISSION_MALFORMED',
      'no such endpoint (POST /validate, POST /inject, GET /healthz, /readyz, /metrics)',
    ),
  );
  app.use(errorHandler(opts.log));
  return app;
}

export interface ListenOptions {
  host: string;
  port: number;
  tls: CertReloader;
  /** Defaults: headers 10 s, whole request 15 s, idle keep-alive 30 s (pkg/http/timeouts.ts). */
  timeouts?: Partial<ServerTimeouts>;
}

/** Starts HTTPS with the current key pair and swaps in new pairs as the files change. */
export async function listenHttps(
  app: express.Express,
  opts: ListenOptions,
): Promise<{ server: Server; port: number }> {
  const pair = opts.tls.pair ?? opts.tls.load();
  // Slow or stuck clients are cut off (408) instead of holding sockets forever; others are unaffected.
  const server = createServer(
    { ...pair, minVersion: 'TLSv1.2', ...serverTimeoutOptions(opts.timeouts) },
    app,
  );
  opts.tls.watch((next) => server.setSecureContext({ ...next, minVersion: 'TLSv1.2' }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
