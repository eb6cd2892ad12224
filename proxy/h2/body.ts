/**
 * A request body of unknown length (an HTTP/2 request without content-length: every gRPC call)
 * that streams to the first attempt at once and is kept for a retry while it stays small. Envoy
 * does the same: it buffers a request for retries up to a limit and streams it meanwhile, so a
 * bidirectional gRPC stream is not held back until the client half-closes, and a unary call
 * answered `unavailable` can still be retried with its whole body.
 */
import { PassThrough, type Readable } from 'node:stream';

export class ReplayableBody {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private overflowed = false;
  private ended = false;
  private reader: PassThrough | null = null;

  constructor(
    private readonly src: Readable,
    private readonly max: number,
  ) {
    src.on('data', (c: Buffer) => this.onData(c));
    src.once('end', () => {
      this.ended = true;
      this.reader?.end();
    });
    src.once('error', (err) => this.reader?.destroy(err));
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
    if (this.complete) return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.reader?.destroy();
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
  }
}
