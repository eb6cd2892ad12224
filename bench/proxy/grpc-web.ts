/**
 * gRPC-Web `-text` costs (proxy/h2/grpc-web.ts) as ratios to Node's own base64 in the same run:
 * decoding a 4 MiB request body (unpadded, all `AA==`, and in 64 KiB chunks as a socket
 * delivers it) against `Buffer.from(body.toString('latin1'), 'base64')`; encoding a 16 MiB
 * response stream cut as a 1-byte chunk then 16 KiB chunks against one `toString('base64')`.
 * The best of 7 runs each (a shared machine).
 *
 *   npx tsx bench/proxy/grpc-web.ts
 */
import { decodeGrpcWebText, GrpcWebTextDecoder, TextFrameEncoder } from '../../proxy/h2/grpc-web.js';

function best(fn: () => unknown): number {
  let min = Infinity;
  for (let r = 0; r < 7; r++) {
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

function report(name: string, ms: number, baseline: number): void {
  const ratio = (ms / baseline).toFixed(2);
  process.stdout.write(
    `${name.padEnd(48)} ${ms.toFixed(1).padStart(8)} ms  ${ratio.padStart(6)}× baseline\n`,
  );
}

const n = 4 * 1024 * 1024;
const plain = Buffer.from('AAAA'.repeat(n / 4), 'latin1');
const padded = Buffer.from('AA=='.repeat(n / 4), 'latin1');
const decodeBase = best(() => Buffer.from(plain.toString('latin1'), 'base64'));
report('decode baseline: Buffer.from(latin1, base64)', decodeBase, decodeBase);
report(
  'decode 4 MiB AAAA',
  best(() => decodeGrpcWebText(plain)),
  decodeBase,
);
report(
  'decode 4 MiB AA== (a million padded groups)',
  best(() => decodeGrpcWebText(padded)),
  decodeBase,
);
report(
  'decode 4 MiB AAAA in 64 KiB chunks',
  best(() => {
    const d = new GrpcWebTextDecoder();
    for (let i = 0; i < plain.length; i += 65536) d.push(plain.subarray(i, i + 65536));
    return d.end();
  }),
  decodeBase,
);

const frames: Buffer[] = [];
for (let i = 0; i < 16; i++) {
  const f = Buffer.alloc(1 << 20, i);
  f.writeUInt32BE(f.length - 5, 1);
  frames.push(f);
}
const stream = Buffer.concat(frames);
const chunks = [stream.subarray(0, 1)];
for (let at = 1; at < stream.length; at += 16384) chunks.push(stream.subarray(at, at + 16384));
const encodeBase = best(() => stream.toString('base64'));
report('encode baseline: 16 MiB toString(base64)', encodeBase, encodeBase);
report(
  'encode 16 MiB, 1 B then 16 KiB chunks',
  best(() => {
    const enc = new TextFrameEncoder();
    let out = 0;
    for (const c of chunks) out += enc.push(c).length;
    return out;
  }),
  encodeBase,
);
