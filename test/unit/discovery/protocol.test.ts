/** The weftd <-> proxy wire contract: framing, decoding across arbitrary chunk boundaries, bad input. */
import { expect } from 'chai';
import {
  MessageDecoder,
  discoveryQuery,
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
  });

  describe('discovery query', () => {
    it('round-trips what a proxy sends', () => {
      const q = discoveryQuery({ kind: 'gateway', namespace: 'istio-ingress', pod: 'gw-1' });
      expect(parseDiscoveryQuery(new URL(q, 'https://weftd').searchParams)).to.deep.equal({
        kind: 'gateway',
        namespace: 'istio-ingress',
        pod: 'gw-1',
      });
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
});
