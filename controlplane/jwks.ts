/**
 * weftd's JWKS resolver (istiod's jwks resolver, pilot/pkg/model/jwks_resolver.go): a
 * RequestAuthentication's `jwksUri` — or, with neither `jwks` nor `jwksUri`, the `jwks_uri` of
 * the issuer's `/.well-known/openid-configuration` — is fetched here and pushed to proxies inline,
 * so proxies need no egress to identity providers and every proxy holds the same keys.
 *
 * - first use: the fetch starts and, until it answers, the key set is empty with a reason (the
 *   proxy refuses that issuer's tokens); the answer triggers a push (`onChange`).
 * - refresh: every `refreshMs` (Istio: 20 min); a failed fetch is retried after `retryMs` and
 *   keeps the last good keys — with none, the proxy keeps refusing (fail closed, never open).
 * - bounded: at most `maxEntries` URIs (least recently used dropped), entries unused for
 *   `evictUnusedMs` dropped, each response at most `maxBytes` and `timeoutMs` (the rule's
 *   `timeout`, default 5 s); the body must be a JSON object with a `keys` list.
 * - http and https (system trust store), redirects followed.
 */
import { errorMessage } from '../pkg/errors/index.js';
import type { Logger } from '../pkg/log/index.js';
import { EMPTY_JWKS, type JwksSource } from '../pkg/translate/requestauthn.js';

export interface JwksResolverOptions {
  log: Logger;
  refreshMs?: number;
  retryMs?: number;
  maxEntries?: number;
  maxBytes?: number;
  evictUnusedMs?: number;
  /** Called when some entry's keys (or failure) changed: push new configs. */
  onChange?: () => void;
  now?: () => number;
}

interface Entry {
  uri?: string;
  issuer: string;
  timeoutMs: number;
  /** Last good JWKS text. */
  jwks?: string;
  error?: string;
  lastUsed: number;
  timer: NodeJS.Timeout | null;
  inFlight: boolean;
}

export const JWKS_DEFAULTS = {
  refreshMs: 20 * 60_000,
  retryMs: 60_000,
  maxEntries: 1000,
  maxBytes: 1024 * 1024,
  evictUnusedMs: 24 * 3600_000,
} as const;

export class JwksResolver implements JwksSource {
  private readonly entries = new Map<string, Entry>();
  private readonly o: Required<Omit<JwksResolverOptions, 'onChange'>> & {
    onChange: (() => void) | undefined;
  };
  private stopped = false;
  readonly stats = { fetchOk: 0, fetchFailed: 0 };

  constructor(opts: JwksResolverOptions) {
    this.o = { ...JWKS_DEFAULTS, now: Date.now, ...opts, onChange: opts.onChange };
  }

  set onChange(fn: (() => void) | undefined) {
    this.o.onChange = fn;
  }

  keys(ref: { uri?: string; issuer: string; timeoutMs: number }): { jwks: string; error?: string } {
    const key = ref.uri ?? `discovery:${ref.issuer}`;
    let e = this.entries.get(key);
    if (e === undefined) {
      if (this.entries.size >= this.o.maxEntries) this.evictOldest();
      e = { ...ref, lastUsed: this.o.now(), timer: null, inFlight: false, error: 'not fetched yet' };
      this.entries.set(key, e);
      if (!this.stopped) void this.fetch(key, e);
    }
    e.lastUsed = this.o.now();
    e.timeoutMs = ref.timeoutMs;
    if (e.jwks !== undefined) return { jwks: e.jwks };
    return { jwks: EMPTY_JWKS, error: `JWKS ${key}: ${e.error ?? 'unavailable'}` };
  }

  /** Entries for debugging and tests. */
  list(): { key: string; ok: boolean; error?: string }[] {
    return [...this.entries].map(([key, e]) => ({
      key,
      ok: e.jwks !== undefined,
      ...(e.error !== undefined ? { error: e.error } : {}),
    }));
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
  }

  private evictOldest(): void {
    let oldest: [string, Entry] | undefined;
    for (const kv of this.entries) if (!oldest || kv[1].lastUsed < oldest[1].lastUsed) oldest = kv;
    if (oldest) this.drop(oldest[0]);
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (e?.timer) clearTimeout(e.timer);
    this.entries.delete(key);
  }

  private async fetch(key: string, e: Entry): Promise<void> {
    if (e.inFlight || this.stopped) return;
    e.inFlight = true;
    const before = `${e.jwks ?? ''}\n${e.error ?? ''}`;
    try {
      const uri = e.uri ?? (await this.discover(e));
      e.jwks = await this.get(uri, e.timeoutMs, 'keys');
      delete e.error;
      this.stats.fetchOk++;
    } catch (err) {
      e.error = `fetch failed: ${errorMessage(err)}${e.jwks !== undefined ? ' (last good keys kept)' : ''}`;
      this.stats.fetchFailed++;
      this.o.log.warn('JWKS fetch failed', {
        jwks: key,
        error: errorMessage(err),
        keptLastGood: e.jwks !== undefined,
      });
    } finally {
      e.inFlight = false;
    }
    if (this.stopped || this.entries.get(key) !== e) return;
    const failed = e.error !== undefined && e.error !== 'not fetched yet';
    e.timer = setTimeout(
      () => this.tick(key, e),
      failed ? Math.min(this.o.retryMs, this.o.refreshMs) : this.o.refreshMs,
    );
    e.timer.unref();
    if (`${e.jwks ?? ''}\n${e.error ?? ''}` !== before) this.o.onChange?.();
  }

  private tick(key: string, e: Entry): void {
    e.timer = null;
    if (this.o.now() - e.lastUsed > this.o.evictUnusedMs) return this.drop(key);
    void this.fetch(key, e);
  }

  private async discover(e: Entry): Promise<string> {
    const doc = JSON.parse(
      await this.get(
        `${e.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
        e.timeoutMs,
        'jwks_uri',
      ),
    ) as {
      jwks_uri?: unknown;
    };
    if (typeof doc.jwks_uri !== 'string') throw new Error('OpenID discovery document has no jwks_uri');
    return doc.jwks_uri;
  }

  /** GET with a timeout and a size cap; the body must be a JSON object with `field`. */
  private async get(uri: string, timeoutMs: number, field: 'keys' | 'jwks_uri'): Promise<string> {
    const u = new URL(uri);
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new Error(`scheme ${u.protocol} is not http or https`);
    const res = await fetch(u, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`${uri} answered ${res.status}`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const c of res.body ?? []) {
      size += (c as Uint8Array).length;
      if (size > this.o.maxBytes) throw new Error(`${uri}: response larger than ${this.o.maxBytes} bytes`);
      chunks.push(c as Uint8Array);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new Error(`${uri}: response is not JSON`);
    }
    const v = (doc as Record<string, unknown> | null)?.[field];
    if (
      typeof doc !== 'object' ||
      doc === null ||
      (field === 'keys' ? !Array.isArray(v) : typeof v !== 'string')
    )
      throw new Error(`${uri}: response has no ${field === 'keys' ? '"keys" list' : 'jwks_uri'}`);
    return field === 'keys' ? JSON.stringify({ keys: v }) : text;
  }
}
