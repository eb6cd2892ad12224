/**
 * A tiny authoritative DNS responder on 127.0.0.1 (node:dgram), for tests of the proxy's DNS
 * clusters: it answers A and AAAA questions from `records` with the TTL given there, NXDOMAIN
 * for names it does not know, SERVFAIL (or silence) when told to fail. It never forwards a
 * question anywhere: no test reaches a real DNS server.
 */
import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

export interface DnsRecord {
  a?: string[];
  aaaa?: string[];
  ttl: number;
}

export interface TestDnsServer {
  /** `127.0.0.1:<port>`, for ProxyConfig.dns.servers / Resolver.setServers. */
  address: string;
  port: number;
  /** Names (lower case, no final dot) → records; change freely between questions. */
  records: Map<string, DnsRecord>;
  /** `servfail`: answer SERVFAIL; `drop`: never answer (the resolver times out); null: answer. */
  fail: 'servfail' | 'drop' | null;
  /** Questions received per name (`name/A`, `name/AAAA`). */
  queries: Map<string, number>;
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;

/** Reads the question of a query: name, type, and where the question ends. */
function parseQuestion(msg: Buffer): { name: string; type: number; end: number } | null {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return null;
  let off = 12;
  const labels: string[] = [];
  for (;;) {
    if (off >= msg.length) return null;
    const len = msg[off]!;
    off++;
    if (len === 0) break;
    if (len > 63 || off + len > msg.length) return null;
    labels.push(msg.subarray(off, off + len).toString('latin1'));
    off += len;
  }
  if (off + 4 > msg.length) return null;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(off), end: off + 4 };
}

function rdata(type: number, address: string): Buffer {
  if (type === TYPE_A) return Buffer.from(address.split('.').map(Number));
  const [head = '', tail = ''] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** The response to `msg` from `records` (exported for a unit test of the responder itself). */
export function answer(msg: Buffer, records: Map<string, DnsRecord>, servfail = false): Buffer | null {
  const q = parseQuestion(msg);
  if (q === null) return null;
  const rec = records.get(q.name);
  const addrs =
    rec === undefined
      ? []
      : q.type === TYPE_A
        ? (rec.a ?? []).filter((a) => isIPv4(a))
        : q.type === TYPE_AAAA
          ? (rec.aaaa ?? []).filter((a) => isIPv6(a))
          : [];
  const rcode = servfail ? 2 : rec === undefined ? 3 : 0;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
  header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2); // QR AA RD? RA rcode
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(rcode === 0 ? addrs.length : 0, 6);
  const parts = [header, msg.subarray(12, q.end)];
  if (rcode === 0)
    for (const a of addrs) {
      const data = rdata(q.type, a);
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the question's name
      rr.writeUInt16BE(q.type, 2);
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(rec!.ttl, 6);
      rr.writeUInt16BE(data.length, 10);
      parts.push(rr, data);
    }
  return Buffer.concat(parts);
}

export async function startDnsServer(records: Record<string, DnsRecord> = {}): Promise<TestDnsServer> {
  const sock = dgram.createSocket('udp4');
  const s: TestDnsServer = {
    address: '',
    port: 0,
    records: new Map(Object.entries(records)),
    fail: null,
    queries: new Map(),
    close: () => new Promise((r) => sock.close(() => r())),
  };
  sock.on('message', (msg, rinfo) => {
    const q = parseQuestion(msg);
    if (q !== null) {
      const key = `${q.name}/${q.type === TYPE_A ? 'A' : q.type === TYPE_AAAA ? 'AAAA' : q.type}`;
      s.queries.set(key, (s.queries.get(key) ?? 0) + 1);
    }
    if (s.fail === 'drop') return;
    const out = answer(msg, s.records, s.fail === 'servfail');
    if (out !== null) sock.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  s.port = sock.address().port;
  s.address = `127.0.0.1:${s.port}`;
  return s;
}
