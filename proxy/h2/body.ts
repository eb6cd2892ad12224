/**
 * A request body of unknown length (an HTTP/2 request without content-length: every gRPC call)
 * that streams to the first attempt at once and is kept for a retry while it stays small. Envoy
 * does the same: it buffers a request for retries up to a limit and streams it meanwhile, so a
 * bidirectional gRPC stream is not held back until the client half-closes, and a unary call
 * answered `unavailable` can still be retried with its whole body.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';

/** The attempt a body streams to (the upstream pool's job): told of each chunk and of a failure. */
export interface BodySink {
  /** A chunk went out (the stream idle timeout counts both directions). */
  touch(): void;
  /** The client's body failed: the attempt is cancelled. */
  abort(err: Error): void;
}

export class ReplayableBody {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private overflowed = false;
  private ended = false;
  private reader: PassThrough | null = null;
  /** The attempt's upstream stream written directly (streamTo), instead of a reader. */
  private sink: Writable | null = null;
  private sinkOwner: BodySink | null = null;
  private readonly resumeSrc = (): void => void this.src.resume();

  constructor(
    private readonly src: Readable,
    private readonly max: number,
  ) {
    src.on('data', (c: Buffer) => this.onData(c));
    src.once('end', () => {
      this.ended = true;
      this.reader?.end();
      const w = this.sink;
      if (w !== null && !w.destroyed && !w.writableEnded) w.end();
    });
    src.once('error', (err) => {
      this.reader?.destroy(err);
      this.sinkOwner?.abort(new Error('request body failed'));
    });
    // held until the first attempt reads it (the upstream pool resumes it)
    src.pause();
  }

  /** Bytes seen so far (the access log's bytes_received). */
  get bytes(): number {
    return this.size;
  }

  /** The whole body is here and was kept: a retry can send it again. */
  get complete(): boolean {
    return this.ended && !this.overflowed;
  }

  /**
   * The body for one attempt: the whole buffer once complete, otherwise a stream of what was
   * kept followed by what is still to come (a new attempt's stream replaces the previous one).
   */
  forAttempt(): Buffer | Readable {
    if (this.complete) return this.whole();
    this.reader?.destroy();
    this.sink = this.sinkOwner = null;
    const r = new PassThrough();
    this.reader = r;
    for (const c of this.chunks) r.write(c);
    r.on('drain', () => this.src.resume());
    r.on('close', () => {
      if (this.reader === r) this.src.resume(); // a dropped attempt must not stall the client
    });
    if (this.ended) r.end();
    else this.src.resume();
    return r;
  }

  /**
   * The body for one attempt on an HTTP/2 upstream stream, written to `w` directly: the whole
   * buffer once complete, otherwise what was kept and then each chunk as it comes, with
   * back-pressure (the client is paused while `w` is full). No PassThrough and pipe per request
   * (with their listeners and state), which a unary gRPC call paid for a few hundred bytes.
   */
  streamTo(w: Writable, owner: BodySink): void {
    if (this.complete) return void w.end(this.whole());
    this.reader?.destroy();
    this.reader = null;
    this.sink = w;
    this.sinkOwner = owner;
    for (const c of this.chunks) w.write(c);
    if (this.ended) w.end();
    else this.src.resume();
  }

  private whole(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
  }

  private onData(c: Buffer): void {
    this.size += c.length;
    if (!this.overflowed) {
      if (this.size <= this.max) this.chunks.push(c);
      else {
        this.overflowed = true;
        this.chunks.length = 0;
      }
    }
    const r = this.reader;
    if (r !== null && !r.destroyed && !r.write(c)) this.src.pause();
    const w = this.sink;
    // a dropped attempt's stream (destroyed) takes nothing, and the client is not held for it
    if (w === null || w.destroyed || w.writableEnded) return;
    this.sinkOwner!.touch();
    if (!w.write(c)) {
      this.src.pause();
      w.once('drain', this.resumeSrc);
      w.once('close', this.resumeSrc);
    }
  }
}
