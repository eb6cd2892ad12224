/**
 * The in-memory index of mesh objects (VirtualService, DestinationRule, ...) that cross-object
 * checks run against. It is fed by informers in production and by `replace`/`upsert` in tests;
 * until every source has synced, `ready` is false and the validator checks objects alone rather
 * than against a partial picture (a half-filled index would produce false "not found" findings).
 */

type Obj = Record<string, unknown>;

function keyOf(obj: unknown): string | undefined {
  if (obj === null || typeof obj !== 'object') return undefined;
  const o = obj as Obj;
  const meta = (o.metadata ?? {}) as Obj;
  const kind = typeof o.kind === 'string' ? o.kind : '';
  const group = typeof o.apiVersion === 'string' ? o.apiVersion.split('/')[0] : '';
  if (typeof meta.name !== 'string') return undefined;
  return `${group}/${kind}/${typeof meta.namespace === 'string' ? meta.namespace : ''}/${meta.name}`;
}

export class MeshIndex {
  private readonly objects = new Map<string, unknown>();
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
    if (key) this.objects.set(key, obj);
  }

  remove(obj: unknown): void {
    const key = keyOf(obj);
    if (key) this.objects.delete(key);
  }

  /** Every indexed object except the one with `obj`'s identity, followed by `obj` (the version under review). */
  withCandidate(obj: unknown): unknown[] {
    const key = keyOf(obj);
    const out: unknown[] = [];
    for (const [k, v] of this.objects) if (k !== key) out.push(v);
    out.push(obj);
    return out;
  }

  /** Identity key used to match findings to the object under review. */
  static key(obj: unknown): string | undefined {
    return keyOf(obj);
  }
}
