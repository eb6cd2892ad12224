/**
 * One validation verdict per mesh object version, shared by everything in weftd that must agree
 * on it: the registry leaves objects with errors out of every snapshot (so out of every proxy
 * config; security objects and Sidecars fail closed instead, through the stand-in of
 * pkg/translate/failclosed.ts), and the status writer reports the same errors in
 * `Accepted=False (Invalid)`. The
 * verdict comes from `validateObject`, the function the admission webhook runs, so an object
 * that got past the webhook (webhook down, failurePolicy Ignore, created before weft was
 * installed) is judged as the webhook would have judged it. Warnings (accepted but not
 * enforced) never leave an object out.
 *
 * Istio's istiod does the same for configs it reads from files (its memory store and file
 * conversion validate each config and drop the ones that fail); weft does it for the cluster's
 * objects too, since its status promises that an invalid object is not applied.
 *
 * Cost: an object is validated when a new version of it is first seen (an informer add or
 * update), never per push or per status pass. A version is the object's uid and generation
 * (its spec) plus its labels and annotations (some rules read them: `istio.io/dry-run`,
 * route semantics). Status writes, resyncs and managedFields churn reuse the verdict. One entry
 * per live object, holding at most `MAX_FINDINGS` findings of each severity; a delete evicts it.
 */
import type { KubeObject } from '../pkg/kube/types.js';
import type { Logger } from '../pkg/log/index.js';
import { validateObject, type ValidationResult } from '../pkg/validation/index.js';
import { failClosed } from '../pkg/translate/failclosed.js';
import type { WatchedKind } from './registry.js';

/** The mesh kinds weftd validates (every Istio and weft kind it translates from). */
export const VALIDATED_KINDS: readonly WatchedKind[] = [
  'VirtualService',
  'DestinationRule',
  'Gateway',
  'ServiceEntry',
  'WorkloadEntry',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
  'Sidecar',
  'RateLimit',
  'memquota',
];
const VALIDATED: ReadonlySet<string> = new Set(VALIDATED_KINDS);

/** Findings kept per severity (the rest are counted in one closing finding; the verdict is the same). */
const MAX_FINDINGS = 20;

interface Entry {
  uid: string;
  version: string;
  labels: Record<string, string> | undefined;
  annotations: Record<string, string> | undefined;
  result: ValidationResult;
}

/** What judging one object version found. */
export interface Judgement {
  result: ValidationResult;
  valid: boolean;
  /** The verdict on the version seen before (absent: none seen, e.g. a new object). */
  wasValid?: boolean;
  /** This version was validated now (not reused): the first time it is seen. */
  fresh: boolean;
}

const keyOf = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** The spec's version: generation moves on every spec edit (resourceVersion where there is none). */
const versionOf = (o: KubeObject): string =>
  o.metadata.generation !== undefined ? `g${o.metadata.generation}` : `rv${o.metadata.resourceVersion ?? ''}`;

function sameStrings(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  if (a === b) return true;
  const ak = Object.keys(a ?? {});
  if (ak.length !== Object.keys(b ?? {}).length) return false;
  return ak.every((k) => a![k] === b?.[k]);
}

export const isValid = (r: ValidationResult): boolean => r.errors.length === 0;

/** The first error as one line (`path: message`), what logs and `weftctl explain` show. */
export function firstError(r: ValidationResult): string {
  const first = r.errors[0];
  if (first === undefined) return '';
  return first.path ? `${first.path}: ${first.message}` : first.message;
}

/** An object weftd leaves out, as `/debug/config` lists it for `weftctl explain`. */
export interface NotApplied {
  kind: string;
  namespace: string;
  name: string;
  /** The first error (`path: message`) and how many there are. */
  error: string;
  errors: number;
  /** A security object that fails closed: what weft enforces instead (failclosed.ts). */
  instead?: string;
}

export class ObjectValidity {
  /** By kind/namespace/name: a recreated object replaces its predecessor's entry. */
  private readonly entries = new Map<string, Entry>();
  /** Versions validated (not reused), for tests and benches. */
  validations = 0;

  constructor(private readonly opts: { log: Logger; globalRateLimits?: boolean }) {}

  /** Whether weftd validates objects of this kind (Services, Pods... are not mesh objects). */
  static judges(kind: string): boolean {
    return VALIDATED.has(kind);
  }

  /** The verdict on this version of `obj`, validated once per version. */
  validation(obj: KubeObject): ValidationResult {
    return this.judge(obj).result;
  }

  /** Whether weftd applies `obj`: no validation errors, or a kind it does not validate. */
  applies(obj: KubeObject): boolean {
    return !ObjectValidity.judges(obj.kind) || isValid(this.judge(obj).result);
  }

  /**
   * Judges this version of `obj`: reuses the verdict when the version was seen before, or
   * validates it, logging at warn (once per version) when it has errors, at info when an
   * object that had errors has none any more.
   */
  judge(obj: KubeObject): Judgement {
    const key = keyOf(obj);
    const before = this.entries.get(key);
    const uid = obj.metadata.uid ?? '';
    const version = versionOf(obj);
    const { labels, annotations } = obj.metadata;
    if (
      before?.uid === uid &&
      before.version === version &&
      sameStrings(before.labels, labels) &&
      sameStrings(before.annotations, annotations)
    ) {
      const valid = isValid(before.result);
      return { result: before.result, valid, wasValid: valid, fresh: false };
    }
    const result = validateObject(obj, {
      maxFindings: MAX_FINDINGS,
      ...(this.opts.globalRateLimits ? { globalRateLimits: true } : {}),
    });
    this.validations++;
    this.entries.set(key, { uid, version, labels, annotations, result });
    const valid = isValid(result);
    const wasValid = before === undefined ? undefined : isValid(before.result);
    this.report(obj, result, wasValid);
    return { result, valid, ...(wasValid !== undefined ? { wasValid } : {}), fresh: true };
  }

  /** The object was deleted: its verdict goes with it. */
  forget(obj: KubeObject): boolean | undefined {
    const key = keyOf(obj);
    const before = this.entries.get(key);
    this.entries.delete(key);
    return before === undefined ? undefined : isValid(before.result);
  }

  /** Objects with a verdict (bounded by the live mesh objects). */
  get size(): number {
    return this.entries.size;
  }

  private report(obj: KubeObject, result: ValidationResult, wasValid: boolean | undefined): void {
    const valid = isValid(result);
    if (valid && wasValid !== false) return;
    const log = this.opts.log.child({
      kind: obj.kind,
      namespace: obj.metadata.namespace ?? '',
      name: obj.metadata.name,
    });
    const generation = obj.metadata.generation;
    if (valid) {
      log.info('Object passes validation again; it is applied', { generation });
      return;
    }
    const rule = result.errors[0]?.rule;
    const closed = failClosed(obj, result.errors) !== null;
    const what = closed
      ? 'weft enforces a fail-closed stand-in in its place (its status says what)'
      : 'left out of every proxy config (its status says why)';
    log.warn(`Object fails validation; ${what}`, {
      generation,
      error: firstError(result),
      ...(rule ? { rule } : {}),
      errors: result.errors.length,
    });
  }
}
