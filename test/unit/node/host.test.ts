import { expect } from 'chai';
import { nftTableEmpty } from '../../../hack/node/host.js';

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
