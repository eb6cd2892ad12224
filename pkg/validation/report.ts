/**
 * Collects findings while the rules walk an object. Rules never throw for bad user input; they
 * report and carry on, so the user sees every problem at once (Istio accumulates too).
 */
import type { Finding } from './types.js';

/** Path segments from the object root: field names and array indexes. */
export type PathSegment = string | number;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** `['spec','http',1,'route',0]` → `spec.http[1].route[0]`; odd map keys are quoted: `headers["x.y"]`. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (out === '' && /^\([a-z]+\)$/.test(seg))
      out = seg; // pseudo-path for the whole document: `(document)`
    else if (IDENT.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export class Report {
  readonly errors: Finding[] = [];
  readonly warnings: Finding[] = [];

  error(path: readonly PathSegment[], message: string, rule: string): void {
    this.errors.push({ path: formatPath(path), message, rule });
  }

  warn(path: readonly PathSegment[], message: string, rule: string): void {
    this.warnings.push({ path: formatPath(path), message, rule });
  }
}
