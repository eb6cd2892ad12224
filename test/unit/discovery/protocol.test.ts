/** The weftd <-> proxy wire contract: framing, decoding across arbitrary chunk boundaries, bad input. */
import { expect } from 'chai';
import {
  MAX_ACK_ERROR_CHARS,
  MAX_ACK_BYTES,
  MessageDecoder,
  ProxyMessageDecoder,
  discoveryQuery,
  encodeProxyMessage,
  newNonce,
  parseAck,
  parseOnDemand,
  onDemandHostName,
  encodeMessage,
  parseDiscoveryQuery,
  type DiscoveryMessage,
} from '../../../pkg/discovery/protocol.js';
import { isWeftError } from '../../../pkg/errors/index.js';
import type { ProxyConfig } from '../../../pkg/proxyconfig/types.js';

const config = {
  apiVersion: 'weft.dev/proxy/v1alpha1',
  kind: 'ProxyConfig',
  version: 'v1',
  listeners: [],
  // non-ASCII on purpose: a header match value a user wrote in their own language
  clusters: [{ name: 'outbound|80||café.ns.svc.cluster.local — ☕', endpoints: [] }],
} as unknown as ProxyConfig;

const messages: DiscoveryMessage[] = [
  { type: 'config', version: 'a1', config },
  { type: 'ping' },
  { type: 'error', code: 'WEFT_POD_UNKNOWN', message: 'not yet — wait' },
  { type: 'config', version: 'a2', config },
];
const wire = Buffer.from(messages.map(encodeMessage).join(''), 'utf8');

/** Splits `buf` into pieces of `size` bytes (the last may be shorter). */
function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

describe('discovery protocol', () => {
  describe('MessageDecoder', () => {
    for (const size of [1, 2, 3, 5, 7, 16, 64, wire.length]) {
      it(`decodes the same messages from ${size}-byte chunks (multi-byte characters split anywhere)`, () => {
        const d = new MessageDecoder();
        const got = chunks(wire, size).flatMap((c) => d.push(c));
        expect(got).to.deep.equal(messages);
      });
    }

    it('skips blank lines and keeps a partial line for the next chunk', () => {
      const d = new MessageDecoder();
      expect(d.push('\n\n{"type":"pi')).to.deep.equal([]);
      expect(d.push('ng"}\n\n')).to.deep.equal([{ type: 'ping' }]);
    });

    const bad: [string, string][] = [
      ['a line that is not JSON', 'hello\n'],
      ['JSON that is not a message', '{"type":"other"}\n'],
      ['a config without a version', '{"type":"config","config":{}}\n'],
      ['an error without a code', '{"type":"error","message":"x"}\n'],
      ['null', 'null\n'],
    ];
    for (const [title, input] of bad) {
      it(`refuses ${title} with WEFT_DISCOVERY_STREAM_INVALID`, () => {
        expect(() => new MessageDecoder().push(input))
          .to.throw()
          .that.satisfies((e: unknown) => isWeftError(e, 'WEFT_DISCOVERY_STREAM_INVALID'));
      });
    }

    it('refuses a line that grows past the limit before its newline arrives', () => {
      const d = new MessageDecoder(100);
      d.push('{"type":"config",');
      expect(() => d.push(`"version":"${'x'.repeat(200)}`)).to.throw(/exceeds 100 bytes/);
    });

    it('refuses a whole line past the limit that arrives in one chunk', () => {
      expect(() => new MessageDecoder(100).push(`{"type":"ping","x":"${'x'.repeat(200)}"}\n`)).to.throw(
        /exceeds 100 bytes/,
      );
    });
  });

  describe('a proxy’s answers on an upgraded stream (ProxyMessageDecoder)', () => {
    const ack = {
      type: 'ack',
      kind: 'sidecar',
      namespace: 'ns',
      pod: 'p',
      version: 'v1',
      nonce: 'a'.repeat(32),
    } as const;
    it('round-trips an ACK and a NACK, split anywhere, several per chunk', () => {
      const text = encodeProxyMessage(ack) + encodeProxyMessage({ ...ack, error: 'bad', resync: true });
      for (const size of [1, 7, text.length]) {
        const d = new ProxyMessageDecoder();
        const out = [];
        for (let i = 0; i < text.length; i += size) out.push(...d.push(Buffer.from(text.slice(i, i + size))));
        expect(out, `${size}-byte chunks`).to.deep.equal([ack, { ...ack, error: 'bad', resync: true }]);
      }
    });
    const bad: [string, string][] = [
      ['not JSON', '{\n'],
      ['another type', `${JSON.stringify({ ...ack, type: 'config' })}\n`],
      ['no type', `${JSON.stringify({ ...ack, type: undefined })}\n`],
      ['a bad nonce', `${JSON.stringify({ ...ack, nonce: 'x' })}\n`],
      ['a line past MAX_ACK_BYTES', `${JSON.stringify({ ...ack, error: 'x'.repeat(MAX_ACK_BYTES) })}\n`],
      ['a partial line past MAX_ACK_BYTES', `{"type":"ack","error":"${'x'.repeat(MAX_ACK_BYTES)}`],
    ];
    for (const [title, input] of bad)
      it(`refuses ${title} with WEFT_DISCOVERY_ACK_INVALID`, () => {
        expect(() => new ProxyMessageDecoder().push(input))
          .to.throw()
          .that.satisfies((e: unknown) => isWeftError(e, 'WEFT_DISCOVERY_ACK_INVALID'));
      });
  });

  describe('discovery query', () => {
    it('round-trips what a proxy sends', () => {
      const q = discoveryQuery({ kind: 'gateway', namespace: 'istio-ingress', pod: 'gw-1' });
      expect(parseDiscoveryQuery(new URL(q, 'https://weftd').searchParams)).to.deep.equal({
        kind: 'gateway',
        namespace: 'istio-ingress',
        pod: 'gw-1',
        acks: false,
      });
      const withAcks = discoveryQuery({ kind: 'sidecar', namespace: 'a', pod: 'b', acks: true });
      expect(withAcks).to.contain('acks=1');
      expect(parseDiscoveryQuery(new URL(withAcks, 'https://weftd').searchParams).acks).to.equal(true);
      const short = discoveryQuery({ kind: 'sidecar', namespace: 'a', pod: 'b', serviceDomains: true });
      expect(short).to.contain('serviceDomains=1');
      expect(parseDiscoveryQuery(new URL(short, 'https://weftd').searchParams).serviceDomains).to.equal(true);
      const asks = discoveryQuery({ kind: 'sidecar', namespace: 'a', pod: 'b', onDemand: true });
      expect(asks).to.contain('onDemand=1');
      expect(parseDiscoveryQuery(new URL(asks, 'https://weftd').searchParams).onDemand).to.equal(true);
    });

    const bad: [string, string, RegExp][] = [
      ['no kind', 'namespace=a&pod=b', /kind must be sidecar or gateway/],
      ['an unknown kind', 'kind=router&namespace=a&pod=b', /kind must be sidecar or gateway, got "router"/],
      ['no namespace', 'kind=sidecar&pod=b', /namespace is required/],
      ['no pod', 'kind=sidecar&namespace=a', /pod is required/],
    ];
    for (const [title, query, message] of bad) {
      it(`refuses ${title}`, () => {
        expect(() => parseDiscoveryQuery(new URLSearchParams(query))).to.throw(message);
      });
    }
  });

  describe('ACK/NACK bodies (parseAck)', () => {
    const ack = { kind: 'sidecar', namespace: 'ns', pod: 'p', version: 'v1', nonce: 'ab'.repeat(16) };
    it('an ACK has no error; a NACK keeps its error, cut to MAX_ACK_ERROR_CHARS', () => {
      expect(parseAck(ack)).to.deep.equal(ack);
      expect(parseAck({ ...ack, error: 'boom' })).to.deep.equal({ ...ack, error: 'boom' });
      const long = parseAck({ ...ack, error: 'e'.repeat(MAX_ACK_ERROR_CHARS * 2) }).error!;
      expect(long).to.have.length(MAX_ACK_ERROR_CHARS);
      expect(long.endsWith('…')).to.equal(true);
      expect(parseAck({ ...ack, error: '' }).error).to.equal('(no message)');
      expect(parseAck({ ...ack, extra: 1 })).to.deep.equal(ack); // unknown fields are dropped
    });
    const bad: [string, unknown, RegExp][] = [
      ['null', null, /JSON object/],
      ['an array', [ack], /JSON object/],
      ['an unknown kind', { ...ack, kind: 'waypoint' }, /kind must be sidecar or gateway/],
      ['no namespace', { ...ack, namespace: undefined }, /namespace must be/],
      ['an empty pod', { ...ack, pod: '' }, /pod must be/],
      ['a version past 253 characters', { ...ack, version: 'v'.repeat(254) }, /version must be/],
      ['a nonce in capitals', { ...ack, nonce: 'AB'.repeat(16) }, /nonce must be 32 lowercase hex/],
      ['a short nonce', { ...ack, nonce: 'ab' }, /nonce must be 32 lowercase hex/],
      ['an error object', { ...ack, error: { message: 'x' } }, /error must be a string/],
    ];
    for (const [title, body, message] of bad)
      it(`refuses ${title} with WEFT_DISCOVERY_ACK_INVALID`, () => {
        let err: unknown;
        try {
          parseAck(body);
        } catch (e) {
          err = e;
        }
        expect(isWeftError(err, 'WEFT_DISCOVERY_ACK_INVALID'), String(err)).to.equal(true);
        expect((err as Error).message).to.match(message);
      });
    describe('on-demand requests (parseOnDemand, ADR 0023)', () => {
      const od = { kind: 'sidecar', namespace: 'ns', pod: 'p', hosts: ['reviews.prod'] };
      it('keeps host names once each, and redeclare only when true', () => {
        expect(parseOnDemand({ ...od, hosts: ['a.b', 'a.b', '10.96.0.1'] }).hosts).to.deep.equal([
          'a.b',
          '10.96.0.1',
        ]);
        expect(parseOnDemand({ ...od, redeclare: true }).redeclare).to.equal(true);
        expect(parseOnDemand({ ...od, redeclare: 'yes' })).to.not.have.property('redeclare');
      });
      const badOd: [string, unknown, RegExp][] = [
        ['null', null, /JSON object/],
        ['no hosts', { ...od, hosts: [] }, /1-16 host names/],
        ['17 hosts', { ...od, hosts: Array.from({ length: 17 }, (_, i) => `h${i}.x`) }, /1-16 host names/],
        ['a host with a port', { ...od, hosts: ['reviews:80'] }, /not a lower-case host name/],
        ['a host in capitals', { ...od, hosts: ['Reviews'] }, /not a lower-case host name/],
        ['a host with a space', { ...od, hosts: ['a b'] }, /not a lower-case host name/],
        ['a number', { ...od, hosts: [7] }, /not a lower-case host name/],
        ['a host past 253 characters', { ...od, hosts: ['a'.repeat(254)] }, /not a lower-case host name/],
        ['an unknown kind', { ...od, kind: 'waypoint' }, /kind must be sidecar or gateway/],
      ];
      for (const [title, body, message] of badOd)
        it(`refuses ${title} with WEFT_DISCOVERY_ONDEMAND_INVALID`, () => {
          let err: unknown;
          try {
            parseOnDemand(body);
          } catch (e) {
            err = e;
          }
          expect(isWeftError(err, 'WEFT_DISCOVERY_ONDEMAND_INVALID'), String(err)).to.equal(true);
          expect((err as Error).message).to.match(message);
        });
      const names: [string, string | null][] = [
        ['Reviews.Prod:9080', 'reviews.prod'],
        ['api.example.com.', 'api.example.com'],
        ['10.96.0.1:80', '10.96.0.1'],
        ['[::1]:80', null],
        ['', null],
        ['a/b', null],
      ];
      for (const [authority, want] of names)
        it(`the Host ${JSON.stringify(authority)} asks for ${JSON.stringify(want)}`, () =>
          expect(onDemandHostName(authority)).to.equal(want));
    });

    it('nonces are 128 random bits in hex, never repeated', () => {
      const seen = new Set(Array.from({ length: 1000 }, () => newNonce()));
      expect(seen.size).to.equal(1000);
      for (const n of seen) expect(n).to.match(/^[0-9a-f]{32}$/);
    });
    it('a config message may carry a nonce (and an older weftd’s has none)', () => {
      const line = encodeMessage({ type: 'config', version: 'v', nonce: 'ab'.repeat(16), config });
      expect(new MessageDecoder().push(line)[0]).to.deep.include({ nonce: 'ab'.repeat(16) });
      expect(() =>
        new MessageDecoder().push('{"type":"config","version":"v","nonce":7,"config":{}}\n'),
      ).to.throw(/not a discovery message/);
    });
  });
});
