/**
 * Path normalization tables. Sources: Envoy's test/common/http/path_utility_test.cc (normalize_path
 * and merge_slashes cases) and Istio's tests/integration/security/normalization_test.go (the
 * expected upstream path for each meshConfig.pathNormalization mode, including the %01-%ff sweep).
 */
import { expect } from 'chai';
import {
  canonicalPath,
  mergeSlashes,
  normalizePath,
  unescapeSlashes,
  type PathNormalization,
} from '../../../proxy/router/path.js';

/** Expected output per mode; null = 400. Istio's integration table, mode by mode. */
const ISTIO: [string, Record<PathNormalization, string | null>][] = [
  ['/', { NONE: '/', BASE: '/', MERGE_SLASHES: '/', DECODE_AND_MERGE_SLASHES: '/' }],
  ['/app/', { NONE: '/app/', BASE: '/app/', MERGE_SLASHES: '/app/', DECODE_AND_MERGE_SLASHES: '/app/' }],
  [
    '/app/../admin',
    { NONE: '/app/../admin', BASE: '/admin', MERGE_SLASHES: '/admin', DECODE_AND_MERGE_SLASHES: '/admin' },
  ],
  ['/app', { NONE: '/app', BASE: '/app', MERGE_SLASHES: '/app', DECODE_AND_MERGE_SLASHES: '/app' }],
  ['/app//', { NONE: '/app//', BASE: '/app//', MERGE_SLASHES: '/app/', DECODE_AND_MERGE_SLASHES: '/app/' }],
  [
    '/app/%2f',
    { NONE: '/app/%2f', BASE: '/app/%2f', MERGE_SLASHES: '/app/%2f', DECODE_AND_MERGE_SLASHES: '/app/' },
  ],
  [
    '/app%2f/',
    { NONE: '/app%2f/', BASE: '/app%2f/', MERGE_SLASHES: '/app%2f/', DECODE_AND_MERGE_SLASHES: '/app/' },
  ],
  [
    '/xyz%30..//abc',
    {
      NONE: '/xyz%30..//abc',
      BASE: '/xyz0..//abc',
      MERGE_SLASHES: '/xyz0../abc',
      DECODE_AND_MERGE_SLASHES: '/xyz0../abc',
    },
  ],
  [
    '/app/%2E./admin',
    { NONE: '/app/%2E./admin', BASE: '/admin', MERGE_SLASHES: '/admin', DECODE_AND_MERGE_SLASHES: '/admin' },
  ],
  [
    '/app\\admin',
    {
      NONE: '/app\\admin',
      BASE: '/app/admin',
      MERGE_SLASHES: '/app/admin',
      DECODE_AND_MERGE_SLASHES: '/app/admin',
    },
  ],
  [
    '/app/\\/\\/\\admin',
    {
      NONE: '/app/\\/\\/\\admin',
      BASE: '/app//////admin',
      MERGE_SLASHES: '/app/admin',
      DECODE_AND_MERGE_SLASHES: '/app/admin',
    },
  ],
  [
    '/%2Fapp%5cadmin%5Cabc',
    {
      NONE: '/%2Fapp%5cadmin%5Cabc',
      BASE: '/%2Fapp%5cadmin%5Cabc',
      MERGE_SLASHES: '/%2Fapp%5cadmin%5Cabc',
      DECODE_AND_MERGE_SLASHES: '/app/admin/abc',
    },
  ],
  [
    '/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc',
    {
      NONE: '/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc',
      BASE: '/%5Capp%2f%5c%2F..%2fadmin%5c/abc',
      MERGE_SLASHES: '/%5Capp%2f%5c%2F..%2fadmin%5c/abc',
      DECODE_AND_MERGE_SLASHES: '/app/admin/abc',
    },
  ],
  [
    '/app//../admin',
    {
      NONE: '/app//../admin',
      BASE: '/app/admin',
      MERGE_SLASHES: '/app/admin',
      DECODE_AND_MERGE_SLASHES: '/app/admin',
    },
  ],
  [
    '/app//../../admin',
    {
      NONE: '/app//../../admin',
      BASE: '/admin',
      MERGE_SLASHES: '/admin',
      DECODE_AND_MERGE_SLASHES: '/admin',
    },
  ],
];

/** Istio: DECODE_AND_MERGE_SLASHES only. */
const ISTIO_DECODE: [string, string | null][] = [
  ['/%c0%2e%c0%2e/admin', '/%c0.%c0./admin'],
  ['/%c0%2fadmin', '/%c0/admin'],
  // "NotNormalized": encodings that are not RFC 3986 escapes of a dot or slash stay as they are
  ['/0x2e0x2e/admin', '/0x2e0x2e/admin'],
  ['/0x2e0x2e0x2fadmin', '/0x2e0x2e0x2fadmin'],
  ['/0x2e0x2e0x5cadmin', '/0x2e0x2e0x5cadmin'],
  ['/0x2f0x2fadmin', '/0x2f0x2fadmin'],
  ['/0x5c0x5cadmin', '/0x5c0x5cadmin'],
  ['/%25c0%25ae%25c1%259cadmin', '/%25c0%25ae%25c1%259cadmin'],
  ['/%25c0%25ae%25c0%25ae/admin', '/%25c0%25ae%25c0%25ae/admin'],
  ['/%25c0%25afadmin', '/%25c0%25afadmin'],
  ['/%25c1%259cadmin', '/%25c1%259cadmin'],
  ['/%252e%252e/admin', '/%252e%252e/admin'],
  ['/%252e%252e%252fadmin', '/%252e%252e%252fadmin'],
  ['/%c1%9cadmin', '/%c1%9cadmin'],
  ['/%c0%ae%c0%ae/admin', '/%c0%ae%c0%ae/admin'],
  ['/%c0%afadmin', '/%c0%afadmin'],
  ['/.../admin', '/.../admin'],
  ['/..../admin', '/..../admin'],
  ['/..;/admin', '/..;/admin'],
  ['/;/admin', '/;/admin'],
  ['/admin;a=b', '/admin;a=b'],
  ['/admin;a=b/xyz', '/admin;a=b/xyz'],
  ['/admin,a=b/xyz', '/admin,a=b/xyz'],
  ['/Admin', '/Admin'],
  ['/ADMIN', '/ADMIN'],
  // "Invalid"
  ['/admin%00', null],
];

/** Envoy's normalize_path (PathUtil::canonicalPath) table. */
const ENVOY_CANONICAL: [string, string | null][] = [
  ['/xyz', '/xyz'],
  ['/x/y/z', '/x/y/z'],
  ['/a/b/../c', '/a/c'],
  ['/a/b/./c', '/a/b/c'],
  ['a/b/../c', '/a/c'],
  ['/a/b/../../../../c', '/c'],
  ['/a/..\\c', '/c'],
  ['/%c0%af', '/%c0%af'],
  ['/%5c%25', '/%5c%25'],
  ['/a/b/%2E%2E/c', '/a/c'],
  ['/a/b/%2E./c', '/a/c'],
  ['/a/b/%2E/c', '/a/b/c'],
  ['..', '/'],
  ['/../a/b', '/a/b'],
  ['/./a/b', '/a/b'],
  ['/A/B/C', '/A/B/C'],
  ['/a/b/%2e%2e/c', '/a/c'],
  ['/a/%2F%2f/c', '/a/%2F%2f/c'],
  ['/xyz/.%00../abc', null],
  ['/xyz/%00.%00./abc', null],
  ['/xyz/AAAAA%%0000/abc', null],
  // the brief's bypass shapes, and the rest of the canonicalizer's rules
  ['/x/../admin', '/admin'],
  ['/./admin', '/admin'],
  ['/%2e%2e/admin', '/admin'],
  ['/x/%2e%2e/admin', '/admin'],
  ['//admin', '//admin'],
  ['/a/.', '/a/'],
  ['/a/..', '/'],
  ['/a/b/..', '/a/'],
  ['/a/.b', '/a/.b'],
  ['/a/..b', '/a/..b'],
  ['/a/b.', '/a/b.'],
  ['/a/%41%7e%2D%5f', '/a/A~-_'],
  ['/a/%7E', '/a/~'],
  ['/a/%20b', '/a/%20b'],
  ['/a/%zz', '/a/%zz'],
  ['/a/%', '/a/%'],
  ['/a/%4', '/a/%4'],
  ['/a/"<>^`{|}', '/a/%22%3C%3E%5E%60%7B%7C%7D'],
  ['/a b', '/a%20b'],
  ['/\u00e9', '/%E9'],
  ['/a/\u0000', null],
  ['/\u0100', null],
  ['', '/'],
  // nested escapes never decode into a new escape (a second decoding could make a dot or NUL)
  ['/%%30%30', '/%2500'],
  ['/%%32%65%%32%65/admin', '/%252e%252e/admin'],
  ['/%2%65', '/%252e'],
];

/** Envoy's merge_slashes table (on the path alone; query handling is the caller's). */
const ENVOY_MERGE: [string, string][] = [
  ['', ''],
  ['a//b/c', 'a/b/c'],
  ['/a//b/c/', '/a/b/c/'],
  ['a//b/c/', 'a/b/c/'],
  ['/a', '/a'],
  ['//a/b/c', '/a/b/c'],
  ['/a//b/c', '/a/b/c'],
  ['/a/b/c//', '/a/b/c/'],
  ['/a///b/c', '/a/b/c'],
  ['/a////b/c', '/a/b/c'],
  ['//a/', '/a/'],
  // weft: slashes only merge to one (Envoy leaves "//")
  ['//', '/'],
  ['///', '/'],
];

function supportedPercentEncode(i: number): boolean {
  return (
    [0x2d, 0x2e, 0x2f, 0x5c, 0x5f, 0x7e].includes(i) ||
    (i >= 0x30 && i <= 0x39) ||
    (i >= 0x41 && i <= 0x5a) ||
    (i >= 0x61 && i <= 0x7a)
  );
}

describe('proxy path normalization (Istio pathNormalization, Envoy normalize_path)', () => {
  describe("Istio's table, every mode", () => {
    for (const [input, want] of ISTIO)
      for (const mode of Object.keys(want) as PathNormalization[])
        it(`${mode} ${JSON.stringify(input)} → ${JSON.stringify(want[mode])}`, () => {
          expect(normalizePath(input, mode)).to.equal(want[mode]);
        });
  });

  describe("Istio's DECODE_AND_MERGE_SLASHES cases", () => {
    for (const [input, want] of ISTIO_DECODE)
      it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => {
        expect(normalizePath(input, 'DECODE_AND_MERGE_SLASHES')).to.equal(want);
      });
  });

  it("Istio's %01-%ff sweep (DECODE_AND_MERGE_SLASHES): unreserved and slashes decoded, the rest kept", () => {
    for (let i = 1; i <= 0xff; i++) {
      const hex = i.toString(16).padStart(2, '0');
      const input = `/admin%${hex}`;
      let want = input;
      if (supportedPercentEncode(i)) want = `/admin${i === 0x5c ? '/' : String.fromCharCode(i)}`;
      expect(normalizePath(input, 'DECODE_AND_MERGE_SLASHES'), input).to.equal(want);
    }
  });

  describe("Envoy's normalize_path table (BASE)", () => {
    for (const [input, want] of ENVOY_CANONICAL)
      it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => {
        expect(canonicalPath(input)).to.equal(want);
        expect(normalizePath(input, 'BASE')).to.equal(want);
      });
  });

  describe("Envoy's merge_slashes table", () => {
    for (const [input, want] of ENVOY_MERGE)
      it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => {
        expect(mergeSlashes(input)).to.equal(want);
      });
  });

  it('escaped slashes decode in one left-to-right pass, any hex case, nothing else', () => {
    expect(unescapeSlashes('/a%2fb%2Fc%5cd%5Ce')).to.equal('/a/b/c\\d\\e');
    expect(unescapeSlashes('/a%252Fb')).to.equal('/a%252Fb');
    expect(unescapeSlashes('/plain')).to.equal('/plain');
  });

  it('an already canonical path is returned as the same string (no allocation on the hot path)', () => {
    const p = '/api/v1.2/reviews/index.html';
    expect(canonicalPath(p)).to.equal(p);
  });
});
