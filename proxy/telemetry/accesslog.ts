/**
 * JSON access log, off the hot path: a request appends one object to a batch; the batch is
 * serialised and written once per event-loop turn (setImmediate). If the sink applies
 * back-pressure the batch keeps growing up to a cap, after which lines are counted as dropped
 * rather than blocking or buffering without bound.
 */
import type { Writable } from 'node:stream';

const MAX_PENDING = 10_000;

export class AccessLog {
  private batch: unknown[] = [];
  private scheduled = false;
  private blocked = false;
  dropped = 0;

  constructor(private readonly sink: Writable = process.stdout) {}

  write(entry: unknown): void {
    if (this.batch.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.batch.push(entry);
    if (!this.scheduled && !this.blocked) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.batch.length === 0) return;
    let text = '';
    for (const e of this.batch) text += JSON.stringify(e) + '\n';
    this.batch = [];
    if (!this.sink.write(text)) {
      this.blocked = true;
      this.sink.once('drain', () => {
        this.blocked = false;
        this.flush();
      });
    }
  }
}
