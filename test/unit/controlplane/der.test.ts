/**
 * pkg/certs/der: the encoder's output for X.690 examples, and the strict reader's refusals
 * (BER forms, truncation, trailing bytes) on hostile input.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  DerError,
  children,
  derToPem,
  oid,
  oidText,
  pemToDer,
  readDer,
  seq,
  setOf,
  smallInt,
  time,
  uint,
} from '../../../pkg/certs/der.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('DER (pkg/certs/der)', () => {
  const encodings: [string, Buffer, string][] = [
    ['INTEGER 0', uint(0), '020100'],
    ['INTEGER 127', uint(127), '02017f'],
    ['INTEGER 128 (a 0x00 keeps it positive)', uint(128), '02020080'],
    ['INTEGER from bytes with leading zeros', uint(Buffer.from('000001', 'hex')), '020101'],
    ['OID 1.2.840.113549.1.1.11', oid('1.2.840.113549.1.1.11'), '06092a864886f70d01010b'],
    ['OID 2.5.29.17', oid('2.5.29.17'), '0603551d11'],
    ['UTCTime before 2050', time(new Date('2026-11-23T12:00:00Z')), '170d3236313132333132303030305a'],
    [
      'GeneralizedTime from 2050',
      time(new Date('2050-01-01T00:00:00Z')),
      '180f32303530303130313030303030305a',
    ],
    ['SET OF sorted', setOf(uint(2), uint(1)), '3106020101020102'],
    ['long form length', seq(Buffer.alloc(200)), `3081c8${'00'.repeat(200)}`],
  ];
  for (const [name, got, want] of encodings) it(`encodes ${name}`, () => expect(hex(got)).to.equal(want));

  it('OIDs round-trip (seeded)', () => {
    fc.assert(
      fc.property(fc.nat(2), fc.nat(39), fc.array(fc.nat(2 ** 31), { maxLength: 8 }), (a, b, rest) => {
        const dotted = [a, b, ...rest].join('.');
        expect(oidText(readDer(oid(dotted)))).to.equal(dotted);
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  const refused: [string, string, RegExp][] = [
    ['indefinite length', '3080020100' + '0000', /indefinite/],
    ['non-minimal long length', '30810102' + '01', /non-minimal/],
    ['length past the end', '3005020100', /runs past/],
    ['trailing bytes', '020100ff', /after the DER value/],
    ['high tag number', '1f2100', /high tag/],
    ['truncated header', '30', /truncated/],
    ['5-byte length', '3085000000000100', /too large/],
  ];
  for (const [name, bytes, pattern] of refused)
    it(`refuses ${name}`, () => expect(() => readDer(Buffer.from(bytes, 'hex'))).to.throw(DerError, pattern));

  it('children must fill their parent exactly', () => {
    expect(() => children(readDer(Buffer.from('3003020201', 'hex')))).to.throw(DerError, /runs past/);
    expect(children(readDer(seq(uint(1), uint(2)))).map(smallInt)).to.deep.equal([1, 2]);
  });

  it('the reader throws only DerError on random bytes (seeded)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const walk = (n: ReturnType<typeof readDer>, d: number): void => {
            if (n.constructed && d < 20) for (const c of children(n, d)) walk(c, d + 1);
          };
          walk(readDer(Buffer.from(bytes)), 0);
        } catch (err) {
          if (!(err instanceof DerError)) throw err;
        }
      }),
      { seed: 11, numRuns: 1000 },
    );
  });

  it('PEM: one block of the label, round-trips', () => {
    const der = seq(uint(5));
    expect(hex(pemToDer(derToPem(der, 'X'), 'X'))).to.equal(hex(der));
    expect(() => pemToDer(derToPem(der, 'X') + derToPem(der, 'X'), 'X')).to.throw(/found 2/);
    expect(() => pemToDer(derToPem(der, 'Y'), 'X')).to.throw(/found 0/);
  });
});
