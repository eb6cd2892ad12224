/**
 * How weftd writes a large config line (a whole config: ~1.5 MB at 1,000 services) to a
 * discovery stream without its memory growing with the fleet (issue #19).
 *
 * Two things, both needed:
 *
 * - In slices, each written after the previous one flushed (sliceWrite). Node's TLS socket keeps,
 *   for as long as the connection lives, an output buffer as large as the largest single write
 *   it encrypted: a write of 16 KiB or more sizes the next ciphertext buffer to the whole write
 *   (node src/crypto/crypto_bio.h, NodeBIO::set_allocate_tls_hint), writes queued behind a
 *   pending one are joined into one, and the buffer at the write head is never freed. One
 *   1.5 MB write per stream left ~1.75 MB per connection resident for good: 3.4 GB at 2,000
 *   proxies, however few were written at once (allocator settings do not help: the memory is
 *   live). Slices under 16 KiB, one at a time, keep it at 16 KiB chunks, freed once sent.
 *
 * - A global byte budget over the lines being written (WriteBudget): a line being sliced out is
 *   held whole on weftd's heap until its last slice flushed, so 2,000 proxies connecting at once
 *   would hold 2,000 of them. A stream waits its turn, in order (first come, first written);
 *   while it waits, newer pushes to it replace its waiting line (state of the world), and a
 *   stream that closes leaves the queue. A line larger than the whole budget is written when
 *   nothing else is in flight.
 */
/**
 * Where a stream's lines go: the HTTP response of a plain discovery stream, or the socket of an
 * upgraded one (its ACKs ride the same connection; pkg/discovery/protocol.ts).
 */
export interface LineSink {
  write(chunk: string, cb?: (err?: Error | null) => void): boolean;
  end(chunk?: string): unknown;
  destroy(): unknown;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  on(event: 'close' | 'drain', listener: () => void): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
  off(event: 'close' | 'drain', listener: () => void): unknown;
}

/** Lines at least this long (UTF-16 units) are written in slices, under the budget; shorter ones at once. */
export const SLICED_LINE_CHARS = 16_000;

/**
 * Node's TLS output buffer is sized to a write of this many bytes or more
 * (crypto_bio.h set_allocate_tls_hint's threshold): every slice, with its chunk framing, stays under it.
 */
const TLS_HINT_BYTES = 16 * 1024;
/** The framing HTTP/1.1 adds to a chunk (size line and CRLFs; none on an upgraded stream), with room to spare. */
const CHUNK_FRAMING_BYTES = 32;

/**
 * A line none of whose slices flushed for this long leaves the budget (its bytes released; it goes
 * on at its reader's pace, holding its own line as a backed-up stream does): a proxy that stops
 * reading, or a client that never reads, must not hold the other streams' turns.
 */
export const WRITE_STALL_MS = 5_000;

/** weftd's default: whole configs being written at once, in bytes (~20 of 1.5 MB). */
export const DEFAULT_WRITE_BUDGET_BYTES = 32 * 1024 * 1024;

export interface BudgetObserver {
  /** Called whenever the bytes in flight or the streams waiting change. */
  changed(inFlightBytes: number, waiting: number): void;
}

interface Waiter {
  /** The bytes the waiter's line needs now (its newest line: it may have been replaced while it waited). */
  size(): number;
  /** The turn came: `bytes` are now counted in flight, until released; `waitedMs`: 0 when it did not wait. */
  start(bytes: number, waitedMs: number): void;
  /** performance.now() when it asked; `queued`: it did not start at once. */
  since: number;
  queued: boolean;
}

/** A FIFO byte semaphore over lines written but not yet flushed. */
export class WriteBudget {
  private inFlight = 0;
  private pumping = false;
  /** Insertion order is the order of the turns; a closed stream's waiter is deleted. */
  private readonly queue = new Set<Waiter>();

  constructor(
    readonly limitBytes: number,
    private readonly observer?: BudgetObserver,
  ) {
    if (!(limitBytes > 0)) throw new Error(`a write budget must be positive, got ${limitBytes}`);
  }

  get inFlightBytes(): number {
    return this.inFlight;
  }

  get waiting(): number {
    return this.queue.size;
  }

  /**
   * Starts `start` at once when nothing waits and `size()` fits (or nothing is in flight), else
   * queues it behind the others. Returns a cancel function (the stream closed): it leaves the
   * queue and never starts. Every start must be matched by one release of its bytes.
   */
  acquire(
    size: () => number,
    start: (bytes: number, waitedMs: number) => void,
  ): { cancel: () => void; queued: boolean } {
    const w: Waiter = { size, start, since: performance.now(), queued: false };
    this.queue.add(w);
    this.pump();
    const queued = this.queue.has(w);
    w.queued = queued;
    this.report();
    return {
      queued,
      cancel: () => {
        if (this.queue.delete(w)) {
          this.report();
          this.pump(); // the head may have been the one holding the others back
        }
      },
    };
  }

  release(bytes: number): void {
    this.inFlight -= bytes;
    if (this.inFlight < 0) throw new Error(`write budget released below zero (${this.inFlight})`);
    this.pump();
    this.report();
  }

  /**
   * Starts waiters from the head while they fit; the head that does not fit holds the rest (no
   * overtaking). A start that releases at once (its stream closed) re-enters here: the running
   * loop carries on with what it freed.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (const w of this.queue) {
        const bytes = w.size();
        if (this.inFlight > 0 && this.inFlight + bytes > this.limitBytes) return;
        this.queue.delete(w);
        this.inFlight += bytes;
        w.start(bytes, w.queued ? performance.now() - w.since : 0);
      }
    } finally {
      this.pumping = false;
    }
  }

  private report(): void {
    this.observer?.changed(this.inFlight, this.queue.size);
  }
}

/**
 * Writes `line` to `res` (a response or an upgraded socket) in slices of under 16 KiB, each once the previous one flushed (its write
 * callback: handed to the kernel). `done(true)` after the last one flushed, `done(false)` when
 * the stream closed first; exactly once. A slice never splits a surrogate pair. `stall`: called
 * once when no slice flushed for `ms`.
 */
export function sliceWrite(
  res: LineSink,
  line: string,
  done: (flushed: boolean) => void,
  stall?: { ms: number; onStall: () => void },
): void {
  let offset = 0;
  let finished = false;
  let stallTimer: NodeJS.Timeout | undefined;
  let stalled = false;
  const watch = (): void => {
    if (stall === undefined || stalled) return;
    if (stallTimer === undefined) {
      const { ms, onStall } = stall;
      stallTimer = setTimeout(() => {
        stalled = true; // once
        onStall();
      }, ms);
      stallTimer.unref();
    } else stallTimer.refresh();
  };
  const finish = (flushed: boolean): void => {
    if (finished) return;
    finished = true;
    clearTimeout(stallTimer);
    res.off('close', onClose);
    done(flushed);
  };
  const onClose = (): void => finish(false);
  const next = (err?: Error | null): void => {
    if (finished) return;
    if (err || res.destroyed || res.writableEnded) return finish(false);
    if (offset >= line.length) return finish(true);
    const end = sliceEnd(line, offset);
    const piece = line.slice(offset, end);
    offset = end;
    watch();
    res.write(piece, next);
  };
  res.on('close', onClose);
  next();
}

/** Where the slice starting at `from` ends: under TLS_HINT_BYTES of UTF-8, on a code point boundary. */
export function sliceEnd(line: string, from: number): number {
  let chars = SLICED_LINE_CHARS;
  let end = Math.min(line.length, from + chars);
  // non-ASCII text takes up to 3 bytes per UTF-16 unit: shrink until the slice's bytes fit
  while (Buffer.byteLength(line.slice(from, end)) > TLS_HINT_BYTES - CHUNK_FRAMING_BYTES) {
    chars = Math.floor(chars / 2);
    end = Math.min(line.length, from + chars);
  }
  const last = line.charCodeAt(end - 1);
  if (end < line.length && end - 1 > from && last >= 0xd800 && last <= 0xdbff) end--; // keep a pair together
  return end;
}
