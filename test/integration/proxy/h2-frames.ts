/**
 * HTTP/2 frames written by hand (RFC 9113 §4.1: 24-bit length, type, flags, 31-bit stream id)
 * and a reader of what the server sends back, for the flood tests: the frames an attacker sends
 * are exactly the ones a library would never produce.
 */
import net from 'node:net';
import { H2_PREFACE } from '../../../proxy/h2/downstream.js';

export const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, CONTINUATION: 9 };
export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 };
export const ERR = {
  NO_ERROR: 0,
  PROTOCOL: 1,
  INTERNAL: 2,
  FRAME_SIZE: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  ENHANCE_YOUR_CALM: 11,
};

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK string literal without Huffman (lengths < 127 only, or the 7-bit prefix integer). */
function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(b.length, 7, 0), b]);
}

function hpackInt(n: number, prefix: number, first: number): Buffer {
  const max = (1 << prefix) - 1;
  if (n < max) return Buffer.from([first | n]);
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A literal header field without indexing, new name (RFC 7541 §6.2.2). */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
}

/**
 * A literal field (without indexing, new name) whose value is `n` times 'a', Huffman-coded
 * (RFC 7541 Appendix B: 'a' is the 5 bits 00011, padded with the EOS prefix's 1s): 5/8 of the
 * octets, which is how a client gets a header list past nghttp2's CONTINUATION count.
 */
export function literalHuffmanA(name: string, n: number): Buffer {
  const bits = n * 5;
  const value = Buffer.alloc(Math.ceil(bits / 8), 0xff);
  for (let i = 0; i < n; i++)
    for (let b = 0; b < 5; b++) {
      const bit = i * 5 + b;
      if (b < 3) value[bit >> 3]! &= ~(0x80 >> (bit & 7)); // 000, then 11 stays set
    }
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackInt(value.length, 7, 0x80), value]);
}

/** A GET request block: `:method GET`, `:scheme http` (static table), `:path`, `:authority`. */
export function requestBlock(authority: string, extra: Buffer[] = [], path = '/'): Buffer {
  return Buffer.concat([
    Buffer.from([0x82, 0x86]),
    literal(':path', path),
    literal(':authority', authority),
    ...extra,
  ]);
}

export interface ServerFrames {
  socket: net.Socket;
  frames: { type: number; flags: number; stream: number; payload: Buffer }[];
  closed: Promise<void>;
  goaway(): number | null;
  rsts(): Map<number, number>;
}

/** Connects, sends the preface and an empty SETTINGS, and records every frame the server sends. */
export function rawH2(port: number): Promise<ServerFrames> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const out: ServerFrames = {
      socket,
      frames: [],
      closed: new Promise((r) => socket.once('close', () => r())),
      goaway: () => {
        const g = out.frames.find((f) => f.type === T.GOAWAY);
        return g === undefined ? null : g.payload.readUInt32BE(4);
      },
      rsts: () =>
        new Map(
          out.frames.filter((f) => f.type === T.RST_STREAM).map((f) => [f.stream, f.payload.readUInt32BE(0)]),
        ),
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        out.frames.push({
          type: buf[3]!,
          flags: buf[4]!,
          stream: buf.readUInt32BE(5) & 0x7fffffff,
          payload: buf.subarray(9, 9 + len),
        });
        buf = buf.subarray(9 + len);
      }
    });
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      socket.write(Buffer.concat([H2_PREFACE, frame(T.SETTINGS, 0, 0)]));
      resolve(out);
    });
    socket.once('error', reject);
  });
}

/** Writes `chunks` as fast as the socket takes them; stops quietly once the server closed. */
export async function blast(socket: net.Socket, chunks: Iterable<Buffer>): Promise<number> {
  let sent = 0;
  for (const c of chunks) {
    if (socket.destroyed || !socket.writable) break;
    sent++;
    if (!socket.write(c))
      await new Promise<void>((r) => {
        socket.once('drain', r);
        socket.once('close', r);
      });
  }
  return sent;
}
