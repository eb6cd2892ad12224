/**
 * A small RESP2 client over node:net for weftd's global rate-limit store (ADR 0017). Only what
 * the limiter needs: send a command, get its reply. Commands on one connection are pipelined
 * (replies arrive in order, matched FIFO). Everything is bounded:
 *
 * - every command has a deadline (`timeoutMs`); a command past it fails, and the connection is
 *   dropped, because a late reply would otherwise be matched to the next command;
 * - at most `maxPending` commands wait for replies (past it a command fails at once);
 * - a reply is parsed with size caps (bulk strings, arrays, unparsed input): a peer sending
 *   garbage or an endless reply fails the pending commands and drops the connection, never a
 *   crash or unbounded buffering;
 * - reconnects are lazy with exponential backoff: while the backoff runs, commands fail at once
 *   (the caller applies its failure mode) instead of queueing behind a dead server.
 *
 * With `auth`, every new connection sends `AUTH [username] password` first, pipelined ahead of
 * the command that opened it; the credentials are read per connection (a rotated Secret is used
 * on the next reconnect). A refused AUTH fails the commands behind it with Redis's own reason
 * (WRONGPASS, or AUTH without a password configured) and drops the connection into backoff. The
 * password never appears in an error or a log line.
 */
import { fs } from '../builtins/index.js';
import net from 'node:net';
import { backoffDelay, type BackoffPolicy } from '../kube/backoff.js';

export type RespValue = string | number | null | RespValue[] | RedisReplyError;

/** A `-ERR ...` reply: the server answered, but with an error. */
export class RedisReplyError extends Error {}

export interface RedisOptions {
  host: string;
  port: number;
  /** Per-command deadline, connect included (default 1 s). */
  timeoutMs?: number;
  /** Commands in flight on the connection (default 10,000). */
  maxPending?: number;
  backoff?: BackoffPolicy;
  /** Credentials for AUTH on every new connection; a throw (an unreadable file) fails the command. */
  auth?: () => RedisAuth;
}

/** Redis 6 ACL user (absent: `default`, as `requirepass` sets) and password. */
export interface RedisAuth {
  username?: string;
  password: string;
}

export const REDIS_BACKOFF: BackoffPolicy = { baseMs: 50, maxMs: 2_000, jitter: 0.3 };
/** Replies larger than this are not ours (the limiter's replies are a few bytes). */
export const MAX_REPLY_BYTES = 64 * 1024;
const MAX_ARRAY = 1024;

interface Pending {
  resolve: (v: RespValue) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const INCOMPLETE = Symbol('incomplete');
type Parsed = { value: RespValue; end: number } | typeof INCOMPLETE;

/** Parses one reply at `at`; throws on anything that is not RESP2 within the caps. */
export function parseReply(buf: Buffer, at: number, depth = 0): Parsed {
  if (at >= buf.length) return INCOMPLETE;
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) {
    if (buf.length - at > MAX_REPLY_BYTES) throw new Error('reply line over the size cap');
    return INCOMPLETE;
  }
  const type = String.fromCharCode(buf[at]!);
  const line = buf.toString('latin1', at + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RedisReplyError(line), end: next };
    case ':': {
      if (!/^-?\d{1,18}$/.test(line))
        throw new Error(`bad integer reply ${JSON.stringify(line.slice(0, 40))}`);
      return { value: Number(line), end: next };
    }
    case '$': {
      const n = Number(line);
      if (n === -1) return { value: null, end: next };
      if (!Number.isInteger(n) || n < 0 || n > MAX_REPLY_BYTES)
        throw new Error(`bad bulk length ${line.slice(0, 40)}`);
      if (buf.length < next + n + 2) return INCOMPLETE;
      if (buf[next + n] !== 13 || buf[next + n + 1] !== 10)
        throw new Error('bulk string not CRLF-terminated');
      return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n === -1) return { value: null, end: next };
      if (!Number.isInteger(n) || n < 0 || n > MAX_ARRAY || depth > 4)
        throw new Error(`bad array length ${line.slice(0, 40)}`);
      const out: RespValue[] = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, pos, depth + 1);
        if (r === INCOMPLETE) return INCOMPLETE;
        out.push(r.value);
        pos = r.end;
      }
      return { value: out, end: pos };
    }
    default:
      throw new Error(`not a RESP reply (first byte 0x${buf[at]!.toString(16)})`);
  }
}

export function encodeCommand(args: readonly (string | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(String(a), 'utf8');
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export class RedisClient {
  private socket: net.Socket | null = null;
  private connected = false;
  private readonly pending: Pending[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private failures = 0;
  private retryAt = 0;
  private closed = false;
  /** Why the last connection went away: said while backing off (a refused AUTH stays visible). */
  private lastError = 'not connected yet';
  /** Connections opened / dropped (tests and /debug). */
  connects = 0;
  drops = 0;

  constructor(private readonly o: RedisOptions) {}

  get timeoutMs(): number {
    return this.o.timeoutMs ?? 1_000;
  }

  command(args: readonly (string | number)[]): Promise<RespValue> {
    if (this.closed) return Promise.reject(new Error('redis client closed'));
    if (this.pending.length >= (this.o.maxPending ?? 10_000))
      return Promise.reject(new Error('too many redis commands in flight'));
    let sock: net.Socket | null;
    try {
      sock = this.ensureSocket();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (sock === null)
      return Promise.reject(
        new Error(
          `redis ${this.o.host}:${this.o.port} unreachable (${this.lastError}); retrying in ${Math.max(0, this.retryAt - Date.now())}ms`,
        ),
      );
    return new Promise<RespValue>((resolve, reject) => {
      const p: Pending = {
        resolve,
        reject,
        timer: setTimeout(
          () => this.drop(new Error(`redis did not answer within ${this.timeoutMs}ms`)),
          this.timeoutMs,
        ),
      };
      this.pending.push(p);
      sock.write(encodeCommand(args));
    });
  }

  close(): void {
    this.closed = true;
    this.drop(new Error('redis client closed'));
  }

  private ensureSocket(): net.Socket | null {
    if (this.socket !== null) return this.socket;
    if (Date.now() < this.retryAt) return null;
    const auth = this.credentials();
    const s = net.connect({ host: this.o.host, port: this.o.port });
    s.setNoDelay(true);
    this.connects++;
    this.socket = s;
    this.connected = false;
    s.on('connect', () => {
      this.connected = true;
      // with AUTH, a connection is good once Redis accepted it (a wrong password keeps backing off)
      if (auth === null) this.failures = 0;
    });
    s.on('data', (chunk: Buffer) => this.onData(s, chunk));
    s.on('error', (err) => this.drop(err, s));
    s.on('close', () => this.drop(new Error('redis closed the connection'), s));
    if (auth !== null) this.authenticate(s, auth);
    return s;
  }

  /** The credentials for a new connection; an unreadable source backs off like a dead server. */
  private credentials(): RedisAuth | null {
    if (this.o.auth === undefined) return null;
    try {
      return this.o.auth();
    } catch (err) {
      this.failures++;
      this.retryAt = Date.now() + backoffDelay(this.failures, this.o.backoff ?? REDIS_BACKOFF);
      this.lastError = `redis credentials unavailable: ${(err as Error).message}`;
      throw new Error(this.lastError, { cause: err });
    }
  }

  /** AUTH as the connection's first command: a refusal fails every command pipelined behind it. */
  private authenticate(s: net.Socket, auth: RedisAuth): void {
    const fail = (err: Error): void => this.drop(err, s);
    this.pending.push({
      resolve: (v) => {
        if (v instanceof RedisReplyError) fail(new Error(`redis refused AUTH: ${v.message}`));
        else this.failures = 0;
      },
      reject: () => {}, // the commands behind it carry the error
      timer: setTimeout(
        () => fail(new Error(`redis did not answer AUTH within ${this.timeoutMs}ms`)),
        this.timeoutMs,
      ),
    });
    const args =
      auth.username !== undefined ? ['AUTH', auth.username, auth.password] : ['AUTH', auth.password];
    s.write(encodeCommand(args));
  }

  private onData(s: net.Socket, chunk: Buffer): void {
    if (s !== this.socket) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let at = 0;
    try {
      for (;;) {
        const r = parseReply(this.buf, at);
        if (r === INCOMPLETE) break;
        at = r.end;
        const p = this.pending.shift();
        if (p === undefined) throw new Error('redis sent a reply nobody asked for');
        clearTimeout(p.timer);
        p.resolve(r.value);
      }
    } catch (err) {
      this.drop(new Error(`redis protocol error: ${(err as Error).message}`));
      return;
    }
    this.buf = at === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at);
    if (this.buf.length > MAX_REPLY_BYTES + 64) this.drop(new Error('redis reply over the size cap'));
  }

  /** Fails every pending command and forgets the connection; the next command reconnects after backoff. */
  private drop(err: Error, which?: net.Socket): void {
    if (which !== undefined && which !== this.socket) return;
    const s = this.socket;
    if (s !== null) this.lastError = err.message;
    if (s !== null) {
      this.socket = null;
      this.drops++;
      s.destroy();
      if (!this.connected || this.pending.length > 0) {
        this.failures++;
        this.retryAt = Date.now() + backoffDelay(this.failures, this.o.backoff ?? REDIS_BACKOFF);
      }
    }
    this.connected = false;
    this.buf = Buffer.alloc(0);
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}

/** Longer is not a password someone typed or a Secret generator made; refused rather than sent. */
export const MAX_PASSWORD_BYTES = 4096;

/**
 * Credentials from a mounted Secret's file, read at every call (a rotated Secret applies on the
 * next connection). One trailing newline is not part of the password (`echo pw > file`). The
 * errors name the file, never its content.
 */
export function authFromFile(passwordFile: string, username?: string): () => RedisAuth {
  return () => {
    let text: string;
    try {
      text = fs.readFileSync(passwordFile, 'utf8');
    } catch (err) {
      throw new Error(
        `cannot read the redis password file ${passwordFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        { cause: err },
      );
    }
    const password = text.replace(/\r?\n$/, '');
    if (password === '') throw new Error(`the redis password file ${passwordFile} is empty`);
    if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES)
      throw new Error(`the redis password file ${passwordFile} is over ${MAX_PASSWORD_BYTES} bytes`);
    return { password, ...(username !== undefined ? { username } : {}) };
  };
}
