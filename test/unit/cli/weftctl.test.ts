/**
 * weftctl validate / analyze as a user runs them: the real launcher (bin/weftctl.js) in a child
 * process, real files, real stdin. Exit codes, output lines, and bad input that must end in a
 * clear message (never a stack trace or a hang).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';

const ROOT = join(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin', 'weftctl.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function weftctl(args: string[], input?: string, cwd = ROOT): Run {
  const start = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input: input ?? '',
    encoding: 'utf8',
    timeout: 90_000,
    cwd,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - start };
}

/** No stack traces, ever: a line like `    at foo (file.ts:1:2)`. */
function expectNoStack(r: Run): void {
  expect(`${r.stdout}\n${r.stderr}`).to.not.match(/^\s+at .+:\d+:\d+\)?$/m);
}

const VALID_VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`;

const VALID_DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
`;

const INVALID_VS = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: ratings
  namespace: bookinfo
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
      weight: 115
    - destination: {}
      weight: -15
`;

describe('weftctl (spawned)', function () {
  this.timeout(180_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'weftctl-test-'));
    writeFileSync(join(dir, 'vs.yaml'), VALID_VS);
    writeFileSync(join(dir, 'dr.yaml'), VALID_DR);
    writeFileSync(join(dir, 'bad.yaml'), INVALID_VS);
    writeFileSync(join(dir, 'both.yaml'), `${VALID_VS}---\n${VALID_DR}---\n`);
    writeFileSync(join(dir, 'syntax.yaml'), 'apiVersion: v1\nkind: [unclosed\n');
    writeFileSync(join(dir, 'scalar.yaml'), '- just\n- a list\n');
    writeFileSync(
      join(dir, 'deploy.yaml'),
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n',
    );
    writeFileSync(join(dir, 'big.yaml'), `# ${'x'.repeat(10 * 1024 * 1024)}\n`);
    writeFileSync(join(dir, 'deep.yaml'), `a: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`);
    writeFileSync(
      join(dir, 'laughs.yaml'),
      [
        'a: &a [x, x, x, x, x, x, x, x, x]',
        ...'bcdefgh'
          .split('')
          .map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(', ')}]`),
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'regex.yaml'),
      VALID_VS.replace('  - route:', `  - match: [{uri: {regex: "(${'a*'.repeat(100)})+$"}}]\n    route:`),
    );
    mkdirSync(join(dir, 'repo', 'nested'), { recursive: true });
    writeFileSync(join(dir, 'repo', 'vs.yaml'), VALID_VS);
    writeFileSync(join(dir, 'repo', 'nested', 'bad.yml'), INVALID_VS);
    writeFileSync(join(dir, 'repo', 'README.md'), '# not a manifest\n');
    writeFileSync(join(dir, 'repo', 'kustomization.yaml'), 'resources: [vs.yaml]\n');
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('validate', () => {
    it('exit 0 and no findings for valid objects (multi-document file)', () => {
      const r = weftctl(['validate', '-f', join(dir, 'both.yaml')]);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.equal('');
      expect(r.stderr).to.contain('2 objects checked: 2 valid, 0 invalid');
    });

    it('exit 1 and one `file: Kind namespace/name: path: message` line per error', () => {
      const file = join(dir, 'bad.yaml');
      const r = weftctl(['validate', '-f', file]);
      expect(r.code).to.equal(1);
      expect(r.stdout.trim().split('\n')).to.deep.equal([
        `${file}: VirtualService bookinfo/ratings: spec.http[0].route[1].destination.host: required`,
      ]);
    });

    it('semantic errors once the schema passes', () => {
      const file = join(dir, 'neg.yaml');
      writeFileSync(file, INVALID_VS.replace('destination: {}', 'destination: {host: ratings}'));
      const r = weftctl(['validate', '-f', file]);
      expect(r.code).to.equal(1);
      expect(r.stdout).to.equal(
        `${file}: VirtualService bookinfo/ratings: spec.http[0].route[1].weight: weight -15 < 0\n`,
      );
    });

    it('reads directories recursively (.yaml/.yml/.json, not kustomization.yaml) and repeated -f', () => {
      const r = weftctl(['validate', '-f', join(dir, 'repo'), '-f', join(dir, 'dr.yaml')]);
      expect(r.code).to.equal(1);
      expect(r.stdout).to.contain(
        `${join(dir, 'repo', 'nested', 'bad.yml')}: VirtualService bookinfo/ratings:`,
      );
      expect(r.stderr).to.contain('3 objects checked: 2 valid, 1 invalid');
    });

    it('reads standard input with -f -', () => {
      const ok = weftctl(['validate', '-f', '-'], VALID_DR);
      expect(ok.code).to.equal(0);
      const bad = weftctl(['validate', '-f', '-'], INVALID_VS);
      expect(bad.code).to.equal(1);
      expect(bad.stdout).to.match(/^<stdin>: VirtualService bookinfo\/ratings: /);
    });

    it('reads tab-indented JSON (YAML forbids tab indentation; Istio test data uses it)', () => {
      const file = join(dir, 'dr.json');
      const dr = {
        apiVersion: 'networking.istio.io/v1alpha3',
        kind: 'DestinationRule',
        metadata: { name: 'r' },
        spec: { host: 'r', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
      };
      writeFileSync(file, JSON.stringify(dr, null, '\t'));
      const r = weftctl(['validate', '-f', file]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      writeFileSync(file, JSON.stringify({ ...dr, spec: { host: '' } }, null, '\t'));
      expect(weftctl(['validate', '-f', file]).stdout).to.contain(
        'dr.json: DestinationRule r: spec.host: empty domain name not allowed',
      );
    });

    it('prints warnings without failing', () => {
      const r = weftctl(
        ['validate', '-f', '-'],
        VALID_VS.replace(
          '  - route:',
          '  - retries: {attempts: 3, perTryTimeout: 2s}\n    timeout: 5s\n    route:',
        ),
      );
      expect(r.code).to.equal(0);
      expect(r.stdout).to.contain(
        '<stdin>: VirtualService bookinfo/reviews: spec.http[0].retries: warning: retries cannot complete within the route timeout',
      );
    });

    it('--output json for machines', () => {
      const r = weftctl([
        'validate',
        '-f',
        join(dir, 'bad.yaml'),
        '-f',
        join(dir, 'syntax.yaml'),
        '--output',
        'json',
      ]);
      expect(r.code).to.equal(2);
      const out = JSON.parse(r.stdout) as {
        exitCode: number;
        inputErrors: { code: string }[];
        objects: { valid: boolean; object: { name: string }; errors: { path: string; rule: string }[] }[];
      };
      expect(out.exitCode).to.equal(2);
      expect(out.inputErrors.map((e) => e.code)).to.deep.equal(['WEFT_YAML_SYNTAX']);
      expect(out.objects).to.have.length(1);
      expect(out.objects[0]?.valid).to.equal(false);
      expect(out.objects[0]?.errors[0]).to.include({
        path: 'spec.http[0].route[1].destination.host',
        rule: 'schema.required',
      });
    });

    it('exit 2 on a YAML syntax error, with line and column', () => {
      const r = weftctl(['validate', '-f', join(dir, 'syntax.yaml')]);
      expect(r.code).to.equal(2);
      expect(r.stdout).to.match(/syntax\.yaml: WEFT_YAML_SYNTAX: line \d+, column \d+: /);
      expectNoStack(r);
    });

    it('exit 2 on a missing file', () => {
      const r = weftctl(['validate', '-f', join(dir, 'nope.yaml')]);
      expect(r.code).to.equal(2);
      expect(r.stdout).to.contain('nope.yaml: WEFT_INPUT_UNREADABLE: cannot read: no such file or directory');
    });

    it('exit 2 on a 10 MB file, without reading it all into the validator', () => {
      const r = weftctl(['validate', '-f', join(dir, 'big.yaml')]);
      expect(r.code).to.equal(2);
      expect(r.stdout).to.match(
        /big\.yaml: WEFT_INPUT_TOO_LARGE: file is 1048576\d bytes; the limit is 4194304 bytes/,
      );
    });

    it('exit 2 on 10 MB on stdin', () => {
      const r = weftctl(['validate', '-f', '-'], `# ${'x'.repeat(10 * 1024 * 1024)}\n`);
      expect(r.code).to.equal(2);
      expect(r.stdout).to.contain('<stdin>: WEFT_INPUT_TOO_LARGE');
    });

    it('a deeply nested document gets a clear error, fast', () => {
      const r = weftctl(['validate', '-f', join(dir, 'deep.yaml')]);
      expect(r.code).to.equal(2);
      expect(r.stdout).to.contain(
        'deep.yaml: WEFT_INPUT_UNREADABLE: document nests [ ] / { } more than 256 deep',
      );
      expectNoStack(r);
    });

    it('a YAML alias bomb is refused', () => {
      const r = weftctl(['validate', '-f', join(dir, 'laughs.yaml')]);
      expect(r.code).to.equal(2);
      expect(r.stdout).to.contain('Excessive alias count');
      expectNoStack(r);
    });

    it('a document that is not an object is invalid (exit 1), with a clear message', () => {
      const r = weftctl(['validate', '-f', join(dir, 'scalar.yaml')]);
      expect(r.code).to.equal(1);
      expect(r.stdout).to.contain(
        'scalar.yaml: <no kind> <no name>: (document): not a Kubernetes object: expected a mapping with apiVersion and kind, got a list',
      );
    });

    it('an unknown kind is invalid, unless --ignore-unknown-kinds', () => {
      const r = weftctl(['validate', '-f', join(dir, 'deploy.yaml')]);
      expect(r.code).to.equal(1);
      expect(r.stdout).to.contain('deploy.yaml: Deployment web: kind: unknown kind Deployment (apps/v1)');
      const skipped = weftctl([
        'validate',
        '--ignore-unknown-kinds',
        '-f',
        join(dir, 'deploy.yaml'),
        '-f',
        join(dir, 'vs.yaml'),
      ]);
      expect(skipped.code).to.equal(0);
      expect(skipped.stderr).to.contain('1 object checked');
    });

    it('a catastrophic-backtracking regex gets a clear error and exit 1, without being run', () => {
      const r = weftctl(['validate', '-f', join(dir, 'regex.yaml')]);
      expect(r.code, r.stdout).to.equal(1);
      expect(r.stdout).to.match(
        /regex\.yaml: VirtualService bookinfo\/reviews: spec\.http\[0\]\.match\[0\]\.uri\.regex: .* repeats a group that itself repeats without bound/,
      );
      expect(r.ms).to.be.lessThan(60_000); // a backtracking engine would run for hours; this is process start-up on a busy machine
      expectNoStack(r);
    });

    it('usage errors exit 2: no -f, unknown flag, bad --output', () => {
      for (const args of [
        ['validate'],
        ['validate', '-f', 'x', '--bogus'],
        ['validate', '-f', 'x', '-o', 'xml'],
      ]) {
        const r = weftctl(args);
        expect(r.code, args.join(' ')).to.equal(2);
        expect(r.stderr).to.match(/required|unknown argument|--output must be/);
        expectNoStack(r);
      }
    });

    it('--help exits 0 and documents the exit codes', () => {
      const r = weftctl(['validate', '--help']);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.contain('Exit status: 0 all valid, 1 an object is invalid, 2 unreadable input');
    });
  });

  describe('analyze', () => {
    it('warns (exit 0) about a subset no DestinationRule defines', () => {
      const r = weftctl(['analyze', '-f', join(dir, 'vs.yaml')]);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.contain(
        `${join(dir, 'vs.yaml')}: VirtualService bookinfo/reviews: spec.http[0].route[0].destination.subset: warning: subset "v1" of host reviews.bookinfo.svc.cluster.local is not defined`,
      );
    });

    it('is quiet when the DestinationRule is in the set', () => {
      const r = weftctl(['analyze', '-f', join(dir, 'vs.yaml'), '-f', join(dir, 'dr.yaml')]);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.equal('');
    });

    it('fails (exit 1) when two VirtualServices claim a host for the mesh', () => {
      const other = VALID_VS.replace('name: reviews', 'name: reviews-canary');
      const r = weftctl(
        ['analyze', '-f', '-', '-f', join(dir, 'dr.yaml'), '-o', 'json'],
        `${VALID_VS}---\n${other}`,
      );
      expect(r.code).to.equal(1);
      const out = JSON.parse(r.stdout) as {
        findings: { rule: string; severity: string; object: { name: string }; related: { name: string }[] }[];
      };
      const conflict = out.findings.find((f) => f.rule === 'analyze.vs.hostConflict');
      expect(conflict).to.include({ severity: 'error' });
      expect(conflict?.object.name).to.equal('reviews-canary');
      expect(conflict?.related.map((r) => r.name)).to.deep.equal(['reviews']);
    });

    it('reports per-object errors too, and input errors with exit 2', () => {
      expect(weftctl(['analyze', '-f', join(dir, 'bad.yaml')]).code).to.equal(1);
      expect(weftctl(['analyze', '-f', join(dir, 'syntax.yaml'), '-f', join(dir, 'vs.yaml')]).code).to.equal(
        2,
      );
    });
  });

  describe('main', () => {
    it('unknown command exits 2 with usage', () => {
      const r = weftctl(['frobnicate']);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.contain('unknown command "frobnicate"');
      expect(r.stderr).to.contain('validate');
    });

    it('runs from any working directory (tsx and Node resolved from the install)', () => {
      const r = weftctl(['validate', '-f', 'vs.yaml'], undefined, dir);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('1 object checked: 1 valid');
    });

    it('--help lists every registered command', () => {
      const r = weftctl(['--help']);
      expect(r.code).to.equal(0);
      for (const name of ['validate', 'analyze', 'render'])
        expect(r.stdout).to.match(new RegExp(`^  ${name} `, 'm'));
    });
  });
});
