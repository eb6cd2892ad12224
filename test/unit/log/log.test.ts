/**
 * pkg/log's lines (winston's json()/printf formats; log collectors and tests parse them): keys
 * sorted at every depth, cycles cut, meta.message appended, levels filtered, child metadata
 * merged, level/silence shared with children.
 */
import { expect } from 'chai';
import { createLogger, type Logger } from '../../../pkg/log/index.js';

const TS = /"timestamp":"\d{4}-\d\d-\d\dT[\d:.]+Z"/;

function capture(fn: () => void): string[] {
  const lines: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = orig;
  }
  return lines.map((l) => l.replace(TS, '"timestamp":"T"'));
}

describe('pkg/log', () => {
  const json = (): Logger => createLogger('comp', { level: 'info', format: 'json', silent: false });
  const cases: { name: string; run: (l: Logger) => void; want: string[] }[] = [
    {
      name: 'sorted keys at every depth',
      run: (l) => l.info('hello', { b: 1, a: { z: 1, y: [1, 2] } }),
      want: [
        '{"a":{"y":[1,2],"z":1},"b":1,"component":"comp","level":"info","message":"hello","timestamp":"T"}\n',
      ],
    },
    {
      name: 'meta.message is appended; an Error in meta is {}',
      run: (l) => l.child({ key: 'ns/x' }).warn('w', { message: 'extra', err: new Error('boom') }),
      want: [
        '{"component":"comp","err":{},"key":"ns/x","level":"warn","message":"w extra","timestamp":"T"}\n',
      ],
    },
    {
      name: 'log(level) and null values',
      run: (l) => l.log('error', 'lvl', { n: null, u: undefined }),
      want: ['{"component":"comp","level":"error","message":"lvl","n":null,"timestamp":"T"}\n'],
    },
    { name: 'below the level: nothing', run: (l) => l.debug('hidden'), want: [] },
    {
      name: 'a cycle is cut',
      run: (l) => {
        const o: Record<string, unknown> = {};
        o.self = o;
        l.info('circ', { o });
      },
      want: [
        '{"component":"comp","level":"info","message":"circ","o":{"self":"[Circular]"},"timestamp":"T"}\n',
      ],
    },
    {
      name: 'child of a child; meta cannot override level/message',
      run: (l) => l.child({ key: 'a' }).child({ deeper: 1 }).info('deep', { level: 'x' }),
      want: ['{"component":"comp","deeper":1,"key":"a","level":"info","message":"deep","timestamp":"T"}\n'],
    },
    {
      name: 'the level set on the parent applies to children',
      run: (l) => {
        const c = l.child({ k: 1 });
        l.level = 'debug';
        c.debug('now shown');
        l.silent = true;
        c.error('silenced');
      },
      want: ['{"component":"comp","k":1,"level":"debug","message":"now shown","timestamp":"T"}\n'],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const l = json();
      expect(capture(() => c.run(l))).to.deep.equal(c.want);
    });

  it('text format: time, level, [component], message, extra', () => {
    const l = createLogger('comp', { format: 'text', silent: false });
    const [line] = capture(() => l.child({ a: 2 }).info('hello', { b: 1 }));
    expect(line).to.match(/^\d{4}-\d\d-\d\dT[\d:.]+Z info \[comp\] hello /);
    expect(line).to.include('"a":2').and.include('"b":1');
  });

  it('silent: nothing', () => {
    expect(capture(() => createLogger('c', { silent: true }).error('x'))).to.deep.equal([]);
  });
});
