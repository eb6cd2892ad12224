import { expect } from 'chai';
import { nftTableEmpty, waitForNodeFree, type NodeWait } from '../../../hack/node/host.js';

const EMPTY_FILTER = `table ip filter {
	chain OUTPUT {
		type filter hook output priority filter; policy accept;
	}

	chain FORWARD {
		type filter hook forward priority filter; policy accept;
	}
}
`;

describe('node host: nftTableEmpty', () => {
  const cases: [string, string, boolean][] = [
    ['base chains with accept policies only', EMPTY_FILTER, true],
    ['an empty table', 'table ip nat {\n}\n', true],
    ['nothing at all', '', true],
    [
      'a rule in a base chain',
      EMPTY_FILTER.replace('policy accept;\n\t}', 'policy accept;\n\t\tcounter drop\n\t}'),
      false,
    ],
    [
      'a drop policy',
      EMPTY_FILTER.replace('output priority filter; policy accept;', 'output priority filter; policy drop;'),
      false,
    ],
    ["an empty user chain (someone else's)", 'table ip filter {\n\tchain SOMEONE {\n\t}\n}\n', false],
    ['a set', 'table ip filter {\n\tset blocked {\n\t\ttype ipv4_addr\n\t}\n}\n', false],
    [
      'a jump',
      'table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tjump X\n\t}\n}\n',
      false,
    ],
  ];
  for (const [what, listing, empty] of cases) {
    it(`${what} → ${empty ? 'empty' : 'in use'}`, () => expect(nftTableEmpty(listing)).to.equal(empty));
  }
});

describe('node host: waitForNodeFree (two test runs on one machine take turns)', () => {
  /** A fake clock: the other node goes down at `freeAt` ms (never if undefined). */
  function fake(freeAt: number | undefined, timeoutMs: number): NodeWait & { said: string[]; clock: number } {
    const w = {
      clock: 0,
      said: [] as string[],
      busyWith: () => (freeAt === undefined || w.clock < freeAt ? '/other/.local/cluster' : undefined),
      sleep: async (ms: number) => {
        w.clock += ms;
      },
      now: () => w.clock,
      say: (line: string) => w.said.push(line),
      timeoutMs,
      pollMs: 5000,
    };
    return w;
  }

  it('returns at once when no other node runs, saying nothing', async () => {
    const w = fake(0, 60_000);
    expect(await waitForNodeFree(w)).to.equal(true);
    expect(w.clock).to.equal(0);
    expect(w.said).to.deep.equal([]);
  });

  it('waits while the other node runs and goes on when it is down', async () => {
    const w = fake(125_000, 1_500_000);
    expect(await waitForNodeFree(w)).to.equal(true);
    expect(w.clock).to.equal(125_000);
    // said when it began and once a minute after, naming the owner
    expect(w.said).to.have.length(3);
    expect(w.said[0]).to.include('/other/.local/cluster');
  });

  it('gives up at the bound instead of waiting forever', async () => {
    const w = fake(undefined, 30_000);
    expect(await waitForNodeFree(w)).to.equal(false);
    expect(w.clock).to.equal(30_000);
  });
});
