/** The gRPC health-check request the sidecar sends for a kubelet gRPC probe: wire bytes by hand. */
import { expect } from 'chai';
import { grpcHealthRequest } from '../../../proxy/sidecar/probes.js';

describe('sidecar gRPC probe request', () => {
  const cases: [string, string, string][] = [
    ['no service (the server overall)', '', '0000000000'],
    ['a short name', 'ab', '0000000004' + '0a02' + '6162'],
    // 200 bytes: the field length is the two-byte varint c8 01, the frame length 203 = 0xcb
    ['a name of 200 bytes', 'x'.repeat(200), '00000000cb' + '0ac801' + '78'.repeat(200)],
    // 70,000 bytes: a three-byte varint (f0 a2 04) and a frame length over 65,535 (70,004 = 0x011174)
    ['a name of 70,000 bytes', 'y'.repeat(70_000), '0000011174' + '0af0a204' + '79'.repeat(70_000)],
  ];
  for (const [title, service, hex] of cases)
    it(`encodes ${title}`, () => {
      expect(grpcHealthRequest(service).toString('hex')).to.equal(hex);
    });
});
