/**
 * The downstream server factory both request-parsing listeners use (proxy/http1-limits.ts): every
 * limit is applied by the one function, so the outbound/gateway listener and the sidecar's inbound
 * side cannot drift apart again (the inbound side once accepted Node's 2,000 header fields).
 */
import { expect } from 'chai';
import {
  createDownstreamServer,
  downstreamErrorStatus,
  downstreamServerOptions,
  MAX_HEADERS_COUNT,
} from '../../../proxy/http1-limits.js';
import { headerListBytes } from '../../../proxy/h2/downstream.js';

describe('proxy/http1-limits: downstream servers', () => {
  it("Envoy's max_headers_count (100), and node's options from downstreamServerOptions", () => {
    const s = createDownstreamServer({ maxHeaderBytes: 8192, headersTimeoutMs: 300 }, {}, () => undefined);
    expect(MAX_HEADERS_COUNT).to.equal(100);
    expect(s.maxHeadersCount).to.equal(MAX_HEADERS_COUNT);
    const want = downstreamServerOptions({ maxHeaderBytes: 8192, headersTimeoutMs: 300 });
    expect(s.headersTimeout).to.equal(want.headersTimeout);
    expect(s.requestTimeout).to.equal(want.requestTimeout);
    expect(s.keepAliveTimeout).to.equal(want.keepAliveTimeout);
    expect((s as unknown as { maxHeaderSize?: number }).maxHeaderSize ?? want.maxHeaderSize).to.equal(8192);
  });

  it('listener-specific options are added, and cannot loosen the limits', () => {
    const s = createDownstreamServer(
      {},
      { requireHostHeader: false, headersTimeout: 600_000, requestTimeout: 0 },
      () => undefined,
    );
    expect(s.maxHeadersCount).to.equal(MAX_HEADERS_COUNT);
    expect(s.headersTimeout).to.equal(10_000);
    expect(s.requestTimeout).to.equal(300_000);
  });

  const table: [string, 400 | 408 | 431][] = [
    ['HPE_HEADER_OVERFLOW', 431], // > 60 KiB head, or > 100 fields
    ['ERR_HTTP_HEADERS_TIMEOUT', 408],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408],
    ['HPE_UNEXPECTED_CONTENT_LENGTH', 400], // Content-Length with Transfer-Encoding, or twice
    ['HPE_INVALID_CONTENT_LENGTH', 400],
    ['HPE_INVALID_TRANSFER_ENCODING', 400],
    ['HPE_INVALID_HEADER_TOKEN', 400], // obs-fold, NUL, space before the colon
    ['HPE_INVALID_METHOD', 400],
    ['', 400],
  ];
  for (const [code, status] of table)
    it(`${code || '(no code)'} → ${status}`, () => expect(downstreamErrorStatus(code)).to.equal(status));
});

describe('proxy/h2/downstream: headerListBytes (SETTINGS_MAX_HEADER_LIST_SIZE accounting)', () => {
  // RFC 7541 §4.1: name octets + value octets + 32, per field, pseudo-header fields included
  const cases: [string, string[], number][] = [
    ['no fields', [], 0],
    ['one pseudo-header', [':method', 'GET'], 7 + 3 + 32],
    ['an empty value still costs 32', ['x-e', ''], 3 + 32],
    [
      '4 fields of 50 KB: over 60 KiB',
      ['a', 'b'.repeat(50_000)].concat(...Array(3).fill(['a', 'b'.repeat(50_000)])),
      4 * 50_033,
    ],
  ];
  for (const [name, raw, bytes] of cases) it(name, () => expect(headerListBytes(raw)).to.equal(bytes));
});
