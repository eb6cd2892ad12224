/**
 * The thin HTTPS layer around the admission handlers: parse and check the AdmissionReview, call
 * the pure handler, write the response, count and log it. Anything malformed is a 400 with a
 * coded message; a body over the limit a 413; a handler that overruns its budget a 504, so no
 * request hangs and no bad input reaches a handler.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  describeRequest,
  parseAdmissionReview,
  review,
  type AdmissionRequest,
  type AdmissionResponse,
} from '../pkg/admission/index.js';
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
  /** Default 8 s, under the webhooks' timeoutSeconds so the API server gets our answer, not its timeout. */
  handlerTimeoutMs?: number;
}

type Webhook = 'validate' | 'inject';

interface Outcome {
  response: AdmissionResponse;
  verdict: string;
  reason: string;
  result?: string;
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

function admit(
  opts: WebhookAppOptions,
  webhook: Webhook,
  run: (ar: AdmissionRequest, bodyBytes: number) => Promise<Outcome>,
) {
  const { metrics, log } = opts;
  const budget = opts.handlerTimeoutMs ?? 8000;
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
      const out = await withTimeout(run(ar, bodySizes.get(req) ?? 0), budget);
      res.json(review(out.response));
      metrics.requests.inc({ webhook, kind: ar.kind.kind, operation: ar.operation, result: out.verdict });
      if (out.verdict === 'denied' && webhook === 'validate') metrics.denials.inc({ kind: ar.kind.kind });
      if (webhook === 'inject')
        metrics.injections.inc({ result: out.result ?? 'skipped', reason: out.reason });
      rlog.info('Admission reviewed', {
        verdict: out.verdict,
        reason: out.reason,
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

/** Body-parser failures (bad JSON, too large) become coded JSON errors, never an HTML stack page. */
function errorHandler(log: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    const e = err as { type?: string; status?: number; message?: string; length?: number; limit?: number };
    if (e.type === 'entity.too.large') {
      sendError(res, 413, 'WEFT_INPUT_TOO_LARGE', `body is ${e.length} bytes; the limit is ${e.limit} bytes`);
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
  app.use(
    express.json({
      limit: opts.bodyLimitBytes ?? 3 * 1024 * 1024,
      verify: (req, _res, buf) => void bodySizes.set(req, buf.length),
    }),
  );
  app.post(
    '/validate',
    admit(opts, 'validate', (ar, bytes) => handleValidate(ar, opts.validate, bytes)),
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
}

/** Starts HTTPS with the current key pair and swaps in new pairs as the files change. */
export async function listenHttps(
  app: express.Express,
  opts: ListenOptions,
): Promise<{ server: Server; port: number }> {
  const pair = opts.tls.pair ?? opts.tls.load();
  const server = createServer({ ...pair, minVersion: 'TLSv1.2' }, app);
  // Slow or stuck clients are cut off instead of holding sockets forever; others are unaffected.
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.keepAliveTimeout = 30_000;
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
