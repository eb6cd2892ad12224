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
  /** Findings past `maxFindings`: counted, not kept (so 100,000 broken routes cost no memory). */
  omittedErrors = 0;
  omittedWarnings = 0;

  /** `maxFindings`: errors kept, and as many warnings; the verdict never depends on it. */
  constructor(private readonly maxFindings = Infinity) {}

  error(path: readonly PathSegment[], message: string, rule: string): void {
    if (this.errors.length >= this.maxFindings) this.omittedErrors++;
    else this.errors.push({ path: formatPath(path), message, rule });
  }

  /** A message given as a function is only built when it is kept (pairwise checks can find millions). */
  warn(path: readonly PathSegment[], message: string | (() => string), rule: string): void {
    if (this.warnings.length >= this.maxFindings) this.omittedWarnings++;
    else
      this.warnings.push({
        path: formatPath(path),
        message: typeof message === 'string' ? message : message(),
        rule,
      });
  }

  /** The findings, each list closed by a count of what was left out, if anything was. */
  result(): { errors: Finding[]; warnings: Finding[] } {
    const more = (n: number, what: string): Finding[] =>
      n === 0
        ? []
        : [{ path: '(document)', message: `${n} more ${what} not listed`, rule: 'report.truncated' }];
    return {
      errors: [...this.errors, ...more(this.omittedErrors, 'errors')],
      warnings: [...this.warnings, ...more(this.omittedWarnings, 'warnings')],
    };
  }
}
