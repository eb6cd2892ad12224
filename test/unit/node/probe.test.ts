import { expect } from 'chai';
import { nodeReady } from '../../../hack/node/probe.js';

describe('node probe: nodeReady', () => {
  const cond = (status: string, reason = 'KubeletReady') => ({
    status: {
      conditions: [
        { type: 'MemoryPressure', status: 'False' },
        { type: 'Ready', status, reason },
      ],
    },
  });
  const cases: [string, unknown, boolean, string][] = [
    ['Ready=True', cond('True'), true, 'Ready=True KubeletReady'],
    ['Ready=False', cond('False', 'KubeletNotReady'), false, 'Ready=False KubeletNotReady'],
    [
      'Ready=Unknown (kubelet stopped posting)',
      cond('Unknown', 'NodeStatusUnknown'),
      false,
      'Ready=Unknown NodeStatusUnknown',
    ],
    ['no conditions yet', { status: {} }, false, 'node has no Ready condition yet'],
    ['no status', {}, false, 'node has no Ready condition yet'],
    [
      'only other conditions',
      { status: { conditions: [{ type: 'DiskPressure', status: 'True' }] } },
      false,
      'node has no Ready condition yet',
    ],
  ];
  for (const [what, node, ok, detail] of cases) {
    it(what, () => {
      const r = nodeReady(node);
      expect(r.ok).to.equal(ok);
      expect(r.detail).to.equal(detail);
    });
  }
});
