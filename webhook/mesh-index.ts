/**
 * The in-memory index of mesh objects (VirtualService, DestinationRule, ...) that cross-object
 * checks run against. It is fed by informers in production and by `upsert`/`remove` in tests;
 * until every source has synced, `ready` is false and the validator checks objects alone rather
 * than against a partial picture (a half-filled index would produce false "not found" findings).
 *
 * Analysing the whole mesh on every admission costs ~100-200 ms at 2,000 objects, so the index
 * also keeps objects by "reference token": the short name of every host they mention (`reviews`
 * for `reviews`, `reviews.shop` and `reviews.shop.svc.cluster.local`) and every gateway they name
 * or are. Cross-object rules relate objects through hosts and gateway names, so the objects
 * sharing a token with the candidate (plus every object with a wildcard host) are a superset of
 * what any finding about the candidate can involve.
 */

type Obj = Record<string, unknown>;

/** Matches objects whatever their hosts: `*`, `*.example.com`. */
const WILDCARD = '*';

function keyOf(obj: unknown): string | undefined {
  if (obj === null || typeof obj !== 'object') return undefined;
  const o = obj as Obj;
  const meta = (o.metadata ?? {}) as Obj;
  const kind = typeof o.kind === 'string' ? o.kind : '';
  const group = typeof o.apiVersion === 'string' ? o.apiVersion.split('/')[0] : '';
  if (typeof meta.name !== 'string') return undefined;
  return `${group}/${kind}/${typeof meta.namespace === 'string' ? meta.namespace : ''}/${meta.name}`;
}

function hostToken(host: string): string {
  if (host.startsWith('*')) return WILDCARD;
  const slash = host.lastIndexOf('/');
  const bare = slash >= 0 ? host.slice(slash + 1) : host; // `ns/host` in Sidecar egress hosts
  return bare.startsWith('*') ? WILDCARD : (bare.split('.')[0] ?? bare);
}

function gatewayToken(ref: string): string {
  return `gateway:${ref.slice(ref.lastIndexOf('/') + 1).split('.')[0]}`;
}

/** Every host and gateway an object mentions (iterative walk: no recursion on hostile input). */
export function referenceTokens(obj: unknown): Set<string> {
  const tokens = new Set<string>();
  const o = (obj ?? {}) as Obj;
  if (o.kind === 'Gateway' && typeof (o.metadata as Obj | undefined)?.name === 'string') {
    tokens.add(gatewayToken(String((o.metadata as Obj).name)));
  }
  const stack: unknown[] = [o.spec];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (const item of v as unknown[]) stack.push(item); // no spread: 150,000 arguments overflow the stack
      continue;
    }
    for (const [k, child] of Object.entries(v as Obj)) {
      const strings =
        typeof child === 'string'
          ? [child]
          : Array.isArray(child)
            ? child.filter((c) => typeof c === 'string')
            : [];
      if (k === 'host' || k === 'hosts') for (const s of strings) tokens.add(hostToken(s));
      else if (k === 'gateways') for (const s of strings) tokens.add(gatewayToken(s));
      if (typeof child === 'object') stack.push(child);
    }
  }
  return tokens;
}

export class MeshIndex {
  private readonly objects = new Map<string, unknown>();
  private readonly tokensOf = new Map<string, Set<string>>();
  private readonly byToken = new Map<string, Set<string>>();
  private pendingSources: number;

  /** `sources`: how many informers must report synced before the index is trusted. */
  constructor(sources = 0) {
    this.pendingSources = sources;
  }

  get ready(): boolean {
    return this.pendingSources <= 0;
  }

  get size(): number {
    return this.objects.size;
  }

  markSynced(): void {
    this.pendingSources--;
  }

  upsert(obj: unknown): void {
    const key = keyOf(obj);
    if (!key) return;
    this.unlink(key);
    const tokens = referenceTokens(obj);
    this.objects.set(key, obj);
    this.tokensOf.set(key, tokens);
    for (const t of tokens) {
      let set = this.byToken.get(t);
      if (!set) this.byToken.set(t, (set = new Set()));
      set.add(key);
    }
  }

  remove(obj: unknown): void {
    const key = keyOf(obj);
    if (key) this.unlink(key);
  }

  /**
   * The indexed objects that share a host or gateway with `obj` (or have a wildcard host),
   * except the stored version of `obj` itself, followed by `obj` (the version under review).
   */
  withCandidate(obj: unknown): unknown[] {
    const self = keyOf(obj);
    const keys = new Set<string>();
    for (const t of [...referenceTokens(obj), WILDCARD])
      for (const k of this.byToken.get(t) ?? []) keys.add(k);
    keys.delete(self ?? '');
    return [...[...keys].map((k) => this.objects.get(k)), asStored(obj)];
  }

  private unlink(key: string): void {
    for (const t of this.tokensOf.get(key) ?? []) {
      const set = this.byToken.get(t);
      set?.delete(key);
      if (set?.size === 0) this.byToken.delete(t);
    }
    this.tokensOf.delete(key);
    this.objects.delete(key);
  }

  /** Identity key used to match findings to the object under review. */
  static key(obj: unknown): string | undefined {
    return keyOf(obj);
  }
}

/**
 * The candidate as it will be stored: an object being created has no creationTimestamp yet and
 * the API server gives it "now", so it is the newest of its kind (Istio's oldest-wins order), never
 * the winner over objects already stored.
 */
function asStored(obj: unknown): unknown {
  const meta = (obj as { metadata?: { creationTimestamp?: unknown } } | null)?.metadata;
  if (meta === undefined || meta.creationTimestamp !== undefined) return obj;
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { ...(obj as object), metadata: { ...meta, creationTimestamp: now } };
}
