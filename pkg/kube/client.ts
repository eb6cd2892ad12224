/**
 * A small REST client for the Kubernetes API: get, list, server-side apply, merge patch,
 * delete and streaming watch, over one keep-alive connection pool per client (ADR 0022).
 * Where the server is and how to authenticate come from weft's own loader (./kubeconfig.ts);
 * a `@kubernetes/client-node` KubeConfig is accepted too (the integration tests build one) and read
 * structurally, so this module never loads that package (~60 MB RSS) into a daemon. Plain
 * node:https rather than fetch: the operator needs exact control over content types
 * (apply-patch+yaml, status subresource), status codes (404, 409, 410) and streaming, and
 * node:https keeps undici (~20 MB) out of the process.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import { accessFromClientNode } from './client-node-access.js';
import { loadAccess, type KubeAccess } from './kubeconfig.js';
import { collectionPath, objectPath, resourceFor } from './resources.js';
import { keyOf, type KubeObject, type ObjectKey } from './types.js';

/** An error answer from the API server (or the network), with what a retry loop needs to know. */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
  }

  /** 409, 429, 5xx and network failures (status 0) are worth retrying; 4xx otherwise are not. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 409 || this.status === 429 || this.status >= 500;
  }
}

export function isApiError(err: unknown, status?: number): err is ApiError {
  return err instanceof ApiError && (status === undefined || err.status === status);
}

export interface ListResult<T extends KubeObject = KubeObject> {
  items: T[];
  resourceVersion: string;
}

export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: T;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  /** e.g. `metadata.name=weft-root-ca`: lets RBAC with resourceNames allow the list and watch. */
  fieldSelector?: string;
}

export interface WatchOptions extends ListOptions {
  resourceVersion?: string;
  /** Server-side timeout; the server closes the stream after it and the caller re-watches. */
  timeoutSeconds?: number;
  signal?: AbortSignal;
}

type Query = Record<string, string | number | boolean | undefined>;

interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

const REQUEST_TIMEOUT_MS = 30_000;
/** Error bodies are read this far for their Status message; a proxy's HTML page is cut here. */
const ERROR_BODY_LIMIT = 64 * 1024;

export class KubeClient {
  readonly access: KubeAccess;
  readonly server: string;
  /** One pool per client: sequential requests reuse a TLS connection instead of a handshake each. */
  private readonly agent: HttpAgent;

  /** From weft's loader (./kubeconfig.ts), or a client-node KubeConfig read structurally. */
  constructor(access: KubeAccess | KubeConfig) {
    this.access = isClientNodeConfig(access) ? accessFromClientNode(access) : access;
    this.server = this.access.server.replace(/\/$/, '');
    const tls = this.access.tls;
    this.agent = this.server.startsWith('http:')
      ? new HttpAgent({ keepAlive: true })
      : new HttpsAgent({
          keepAlive: true,
          ...(tls.ca ? { ca: tls.ca } : {}),
          ...(tls.cert ? { cert: tls.cert } : {}),
          ...(tls.key ? { key: tls.key } : {}),
          ...(tls.servername ? { servername: tls.servername } : {}),
          ...(tls.insecure ? { rejectUnauthorized: false } : {}),
        });
  }

  /** --kubeconfig FILE, else $KUBECONFIG, else the in-cluster service account, else ~/.kube/config. */
  static fromDefault(): KubeClient {
    return new KubeClient(loadAccess());
  }

  static fromFile(path: string): KubeClient {
    return new KubeClient(loadAccess({ kubeconfig: path }));
  }

  /** Closes the pooled connections (idle ones at once; busy ones when their request ends). */
  close(): void {
    this.agent.destroy();
  }

  async get<T extends KubeObject = KubeObject>(key: ObjectKey, subresource?: string): Promise<T | null> {
    try {
      return (await this.request('GET', objectPath(key, subresource))) as T;
    } catch (err) {
      if (isApiError(err, 404)) return null;
      throw err;
    }
  }

  async list<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    opts: ListOptions = {},
  ): Promise<ListResult<T>> {
    const type = resourceFor(apiVersion, kind);
    const body = (await this.request('GET', collectionPath(type, opts.namespace), {
      query: { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector },
    })) as { items?: T[]; metadata?: { resourceVersion?: string } };
    // List items come without apiVersion/kind; fill them in so callers can key them.
    const items = (body.items ?? []).map((item) => ({ ...item, apiVersion, kind }));
    return { items, resourceVersion: body.metadata?.resourceVersion ?? '' };
  }

  /** Server-side apply: the server merges `obj` into the live object, owned by `fieldManager`. */
  async apply<T extends KubeObject = KubeObject>(
    obj: KubeObject,
    fieldManager: string,
    force = true,
  ): Promise<T> {
    return (await this.request('PATCH', objectPath(keyOf(obj)), {
      query: { fieldManager, force },
      body: obj,
      contentType: 'application/apply-patch+yaml',
    })) as T;
  }

  /** Server-side apply of the status subresource (spec is ignored by the server there). */
  async applyStatus<T extends KubeObject = KubeObject>(obj: KubeObject, fieldManager: string): Promise<T> {
    return (await this.request('PATCH', objectPath(keyOf(obj), 'status'), {
      query: { fieldManager, force: true },
      body: obj,
      contentType: 'application/apply-patch+yaml',
    })) as T;
  }

  async mergePatch<T extends KubeObject = KubeObject>(
    key: ObjectKey,
    patch: unknown,
    subresource?: string,
  ): Promise<T> {
    return (await this.request('PATCH', objectPath(key, subresource), {
      body: patch,
      contentType: 'application/merge-patch+json',
    })) as T;
  }

  async jsonPatch<T extends KubeObject = KubeObject>(
    key: ObjectKey,
    ops: unknown[],
    subresource?: string,
    fieldManager?: string,
  ): Promise<T> {
    return (await this.request('PATCH', objectPath(key, subresource), {
      query: { fieldManager },
      body: ops,
      contentType: 'application/json-patch+json',
    })) as T;
  }

  async create<T extends KubeObject = KubeObject>(obj: KubeObject): Promise<T> {
    const type = resourceFor(obj.apiVersion, obj.kind);
    return (await this.request('POST', collectionPath(type, obj.metadata.namespace), { body: obj })) as T;
  }

  /** PUT with the object's resourceVersion: fails with 409 if someone else wrote in between. */
  async replace<T extends KubeObject = KubeObject>(obj: KubeObject): Promise<T> {
    return (await this.request('PUT', objectPath(keyOf(obj)), { body: obj })) as T;
  }

  /** Deletes; returns false when the object was already gone. */
  async delete(
    key: ObjectKey,
    propagationPolicy: 'Background' | 'Foreground' | 'Orphan' = 'Background',
  ): Promise<boolean> {
    try {
      await this.request('DELETE', objectPath(key), {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy },
      });
      return true;
    } catch (err) {
      if (isApiError(err, 404)) return false;
      throw err;
    }
  }

  /**
   * One watch stream. Resolves when the server closes it (timeout) or `signal` aborts;
   * rejects with ApiError 410 when the resourceVersion is too old (the caller must relist),
   * and with other ApiErrors on failure.
   */
  async watch<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    opts: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
  ): Promise<void> {
    const type = resourceFor(apiVersion, kind);
    const query: Query = {
      watch: true,
      allowWatchBookmarks: true,
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      timeoutSeconds: opts.timeoutSeconds ?? 300,
    };
    let response: IncomingMessage;
    try {
      response = await this.send(
        'GET',
        collectionPath(type, opts.namespace),
        { query, ...signalOpt(opts.signal) },
        0,
      );
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw err;
    }
    const lines = createInterface({ input: response, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        const event = JSON.parse(line) as {
          type: string;
          object: KubeObject & { code?: number; reason?: string; message?: string };
        };
        if (event.type === 'ERROR') {
          const status = event.object.code ?? 500;
          throw new ApiError(
            status,
            event.object.reason ?? 'WatchError',
            event.object.message ?? 'watch error',
          );
        }
        onEvent({
          type: event.type as WatchEvent['type'],
          object: { ...event.object, apiVersion, kind } as T,
        });
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      if (err instanceof ApiError) throw err;
      throw new ApiError(0, 'WatchStreamBroken', `watch of ${kind} broke: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      lines.close();
      response.destroy();
    }
  }

  /** Any request; JSON in and out. Non-2xx answers become ApiError with the server's message. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<unknown> {
    const response = await this.send(method, path, opts, REQUEST_TIMEOUT_MS);
    let text: string;
    try {
      text = await readBody(response, Infinity);
    } catch (err) {
      throw new ApiError(0, 'NetworkError', `${method} ${path}: ${networkMessage(err, opts.signal)}`, {
        cause: err,
      });
    }
    return text === '' ? {} : (JSON.parse(text) as unknown);
  }

  /**
   * Sends one request and resolves with a 2xx response whose body is still to be read. A 401
   * re-reads rotating credentials and retries once; a pooled connection that the server had
   * closed while idle (ECONNRESET before any answer) is retried once on a fresh one.
   */
  private async send(
    method: string,
    path: string,
    opts: RequestOptions,
    timeoutMs: number,
  ): Promise<IncomingMessage> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const signals = [opts.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const signal = signals.length > 0 ? AbortSignal.any(signals) : undefined;
    let previousAuth: string | undefined;
    let unauthorized: ApiError | undefined;
    for (let attempt = 0; ; attempt++) {
      const auth = await this.access.authHeaders(attempt > 0);
      if (unauthorized && previousAuth === JSON.stringify(auth)) throw unauthorized;
      previousAuth = JSON.stringify(auth);
      const headers: Record<string, string> = { ...auth, Accept: 'application/json' };
      if (body !== undefined) {
        headers['Content-Type'] = opts.contentType ?? 'application/json';
        headers['Content-Length'] = String(Buffer.byteLength(body));
      }
      let response: IncomingMessage;
      try {
        response = await this.exchange(method, url, headers, body, signal);
      } catch (err) {
        if (attempt === 0 && staleConnection(err) && method !== 'POST') continue;
        throw new ApiError(0, 'NetworkError', `${method} ${path}: ${networkMessage(err, signal)}`, {
          cause: err,
        });
      }
      const status = response.statusCode ?? 0;
      if (status >= 200 && status < 300) return response;
      const error = await toApiError(method, path, response);
      // a rotated token: read it again and retry once, unless the credentials did not change
      if (status === 401 && attempt === 0) {
        unauthorized = error;
        continue;
      }
      throw error;
    }
  }

  private exchange(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<IncomingMessage> {
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, agent: this.agent, ...(signal ? { signal } : {}) }, resolve);
      req.on('error', (err: Error & { reusedSocket?: boolean }) => {
        // Node's advice for keep-alive: a reused socket reset before any answer was closed idle.
        if (req.reusedSocket) (err as { reusedSocket?: boolean }).reusedSocket = true;
        reject(err);
      });
      req.end(body);
    });
  }
}

function isClientNodeConfig(x: KubeAccess | KubeConfig): x is KubeConfig {
  return typeof (x as KubeConfig).getCurrentCluster === 'function';
}

function staleConnection(err: unknown): boolean {
  const e = err as { code?: string; reusedSocket?: boolean };
  return e.reusedSocket === true && (e.code === 'ECONNRESET' || e.code === 'EPIPE');
}

/** The body as text; past `limit` bytes the rest is dropped (error answers only). */
function readBody(response: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      if (size >= limit) return;
      chunks.push(chunk);
      size += chunk.length;
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
    response.on('close', () => {
      if (!response.complete)
        reject(Object.assign(new Error('the connection closed mid-answer'), { code: 'ECONNRESET' }));
    });
  });
}

function signalOpt(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

/** The socket's code (ECONNREFUSED, CERT_HAS_EXPIRED, ...) or why the signal aborted. */
function networkMessage(err: unknown, signal: AbortSignal | undefined): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.code === 'ABORT_ERR' && signal?.aborted) {
    const reason = signal.reason as { name?: string; message?: string } | undefined;
    return reason?.name === 'TimeoutError' ? `timed out after ${REQUEST_TIMEOUT_MS / 1000} s` : 'aborted';
  }
  return e.code ?? e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

async function toApiError(method: string, path: string, response: IncomingMessage): Promise<ApiError> {
  const status = response.statusCode ?? 0;
  const text = await readBody(response, ERROR_BODY_LIMIT).catch(() => '');
  let reason = response.statusMessage || 'Error';
  let message = text.slice(0, 500);
  try {
    const body = JSON.parse(text) as { reason?: string; message?: string };
    reason = body.reason ?? reason;
    message = body.message ?? message;
  } catch {
    // not a Status object; keep the raw text
  }
  return new ApiError(status, reason, `${method} ${path}: ${status} ${reason}: ${message}`);
}
