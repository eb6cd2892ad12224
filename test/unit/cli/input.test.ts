/**
 * How weftctl turns bytes into documents: multi-document YAML, JSON, `kind: List`, empty
 * documents, line numbers, and the guards that refuse hostile input before the YAML parser.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocuments, readInputs, type Inputs } from '../../../cli/input.js';

function parse(text: string): Inputs {
  const out: Inputs = { documents: [], problems: [] };
  parseDocuments('f.yaml', text, out);
  return out;
}

describe('weftctl input parsing', () => {
  it('splits a YAML stream, skipping empty documents, with the 1-based index and the line of its `---`', () => {
    const out = parse('# header\n---\na: 1\n---\n---\nb: 2\nc: 3\n---\n');
    expect(out.problems).to.deep.equal([]);
    expect(out.documents.map((d) => [d.index, d.line, d.value])).to.deep.equal([
      [1, 2, { a: 1 }],
      [3, 5, { b: 2, c: 3 }],
    ]);
  });

  it('reads JSON, including tab indentation YAML would refuse', () => {
    const out = parse('{\n\t"kind": "DestinationRule",\n\t"spec": {\n\t\t"host": "r"\n\t}\n}');
    expect(out.documents.map((d) => d.value)).to.deep.equal([
      { kind: 'DestinationRule', spec: { host: 'r' } },
    ]);
  });

  it('expands kind: List into its items', () => {
    const out = parse('apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n');
    expect(out.documents.map((d) => d.value)).to.deep.equal([{ kind: 'A' }, { kind: 'B' }]);
  });

  it('keeps non-object documents for the validator to reject by name', () => {
    expect(parse('- a\n- b\n').documents.map((d) => d.value)).to.deep.equal([['a', 'b']]);
    expect(parse('just a string\n').documents.map((d) => d.value)).to.deep.equal(['just a string']);
  });

  it('reports a syntax error with line and column, and still reads the other documents', () => {
    const out = parse('a: 1\n---\nb: [1, 2\n---\nc: 3\n');
    expect(out.problems).to.have.length(1);
    expect(out.problems[0]?.code).to.equal('WEFT_YAML_SYNTAX');
    expect(out.problems[0]?.message).to.match(/^line \d+, column \d+: /);
    expect(out.documents.map((d) => d.value)).to.deep.include({ a: 1 });
    expect(out.documents.map((d) => d.value)).to.deep.include({ c: 3 });
  });

  it('refuses duplicate keys (kubectl does too)', () => {
    expect(parse('a: 1\na: 2\n').problems[0]?.message).to.match(/unique/i);
  });

  it('refuses flow nesting deeper than 256 before parsing', () => {
    const out = parse(`a: ${'['.repeat(300)}${']'.repeat(300)}\n`);
    expect(out.problems.map((p) => p.code)).to.deep.equal(['WEFT_INPUT_UNREADABLE']);
    expect(out.problems[0]?.message).to.contain('more than 256 deep');
  });

  it('does not count brackets inside quoted strings or comments', () => {
    const brackets = '['.repeat(300);
    const out = parse(`a: "${brackets}"\nb: '${brackets}'\n# ${brackets}\nc: it's fine\n`);
    expect(out.problems).to.deep.equal([]);
    expect(out.documents).to.have.length(1);
  });

  it('refuses YAML alias bombs', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    const names = 'abcdefgh';
    for (let i = 1; i < names.length; i++)
      lines.push(
        `${names[i]}: &${names[i]} [${Array(9)
          .fill(`*${names[i - 1]}`)
          .join(', ')}]`,
      );
    const out = parse(lines.join('\n'));
    expect(out.problems[0]?.message).to.contain('Excessive alias count');
  });

  it('walks a directory once even through a symlink loop, and skips dangling links', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-input-'));
    try {
      mkdirSync(join(dir, 'a', 'b'), { recursive: true });
      writeFileSync(join(dir, 'a', 'b', 'x.yaml'), 'kind: X\n');
      symlinkSync(join(dir, 'a'), join(dir, 'a', 'b', 'loop'));
      symlinkSync(join(dir, 'missing.yaml'), join(dir, 'a', 'dangling.yaml'));
      const out = readInputs([dir]);
      expect(out.problems).to.deep.equal([]);
      expect(out.documents.map((d) => d.value)).to.deep.equal([{ kind: 'X' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names an empty file and a missing path; skips empty files inside directories', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-input-'));
    try {
      writeFileSync(join(dir, 'empty.yml'), '# nothing yet\n---\n');
      const out = readInputs([join(dir, 'empty.yml'), join(dir, 'nope.yaml')]);
      expect(out.problems.map((p) => [p.code, p.message])).to.deep.equal([
        ['WEFT_NOT_AN_OBJECT', 'holds no objects (empty, or only comments)'],
        ['WEFT_INPUT_UNREADABLE', 'cannot read: no such file or directory'],
      ]);
      // Met while walking a directory, the same empty file is just skipped.
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'sub', 'empty.yaml'), '');
      writeFileSync(join(dir, 'sub', 'x.yaml'), 'kind: X\n');
      expect(readInputs([join(dir, 'sub')]).problems).to.deep.equal([]);
      expect(readInputs([join(dir, 'empty-dir-does-not-exist')]).problems[0]?.code).to.equal(
        'WEFT_INPUT_UNREADABLE',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
