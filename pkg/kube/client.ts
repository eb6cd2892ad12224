/**
 * A small REST client for the Kubernetes API: get, list, server-side apply, merge patch,
 * delete and streaming watch. Authentication and TLS come from `@kubernetes/client-node`'s
 * KubeConfig (so every kubeconfig form it supports works here); the calls themselves are plain
 * fetches, because the operator needs exact control over content types (apply-patch+yaml,
 * status subresource), status codes (404, 409, 410) and streaming that the generated per-kind
 * client does not give in one place.
 */
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
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

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly server: string;

  constructor(kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new ApiError(0, 'NoCluster', 'kubeconfig has no current cluster');
    this.kubeConfig = kubeConfig;
    this.server = cluster.server.replace(/\/$/, '');
  }

  /** From $KUBECONFIG / ~/.kube/config, or the in-cluster service account. */
  static fromDefault(): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return new KubeClient(kc);
  }

  static fromFile(path: string): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return new KubeClient(kc);
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
    const response = await this.fetch(
      'GET',
      collectionPath(type, opts.namespace),
      { query, ...signalOpt(opts.signal) },
      0,
    );
    if (!response.body) return;
    const lines = createInterface({
      input: Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
    });
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
    }
  }

  /** Any request; JSON in and out. Non-2xx answers become ApiError with the server's message. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<unknown> {
    const response = await this.fetch(method, path, opts, REQUEST_TIMEOUT_MS);
    const text = await response.text();
    return text === '' ? {} : (JSON.parse(text) as unknown);
  }

  private async fetch(
    method: string,
    path: string,
    opts: RequestOptions,
    timeoutMs: number,
  ): Promise<Response> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), method as HttpMethod);
    await this.kubeConfig.applySecurityAuthentication(ctx);
    const headers: Record<string, string> = { ...ctx.getHeaders(), Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = opts.contentType ?? 'application/json';
    const signals = [opts.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
        ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
        // The undici dispatcher carries the kubeconfig's CA and client certificate.
        dispatcher: ctx.getDispatcher(),
      } as unknown as RequestInit);
    } catch (err) {
      throw new ApiError(0, 'NetworkError', `${method} ${path}: ${networkMessage(err)}`, { cause: err });
    }
    if (response.status >= 200 && response.status < 300) return response;
    throw await toApiError(method, path, response);
  }
}

function signalOpt(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

function networkMessage(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

async function toApiError(method: string, path: string, response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  let reason = response.statusText || 'Error';
  let message = text.slice(0, 500);
  try {
    const status = JSON.parse(text) as { reason?: string; message?: string };
    reason = status.reason ?? reason;
    message = status.message ?? message;
  } catch {
    // not a Status object; keep the raw text
  }
  return new ApiError(response.status, reason, `${method} ${path}: ${response.status} ${reason}: ${message}`);
}
