import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { runKubeInject } from '../../../cli/commands/kube-inject.js';

const GOLDEN = join(import.meta.dirname, '../../golden/inject/kube-inject');

function run(argv: string[], stdin?: string) {
  let stdout = '';
  let stderr = '';
  const code = runKubeInject(argv, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    ...(stdin === undefined ? {} : { readInput: () => stdin }),
  });
  return { code, stdout, stderr };
}

describe('weftctl kube-inject', () => {
  it('prints exactly what the injector produces (the golden output), noting skipped objects on stderr', () => {
    const r = run(['-f', join(GOLDEN, 'input.yaml')]);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal(readFileSync(join(GOLDEN, 'expected.yaml'), 'utf8'));
    expect(r.stderr).to.equal(
      'DaemonSet bookinfo/node-agent: not injected (hostNetwork)\nJob bookinfo/migrate: not injected (pod disabled)\n',
    );
  });

  it('reads stdin and honours --native-sidecar=false and --proxy-image', () => {
    const pod =
      'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: app}\nspec: {containers: [{name: a, image: a}]}\n';
    const r = run(['-f', '-', '--native-sidecar=false', '--proxy-image', 'reg/proxy:dev'], pod);
    expect(r.code).to.equal(0);
    const out = parse(r.stdout) as {
      spec: { containers: { name: string; image: string }[]; initContainers: { name: string }[] };
    };
    // Classic mode with the Mesh default holdApplicationUntilProxyStarts: the proxy goes first.
    expect(out.spec.containers.map((c) => `${c.name}=${c.image}`)).to.deep.equal([
      'weft-proxy=reg/proxy:dev',
      'a=a',
    ]);
    expect(out.spec.initContainers.map((c) => c.name)).to.deep.equal(['weft-init']);
  });

  it('is idempotent: injecting its own output changes nothing', () => {
    const once = run(['-f', join(GOLDEN, 'input.yaml')]).stdout;
    const twice = run(['-f', '-'], once);
    expect(twice.stdout).to.equal(once);
  });

  const failures: [string, string[], string | undefined, number, RegExp][] = [
    ['no -f', [], undefined, 2, /-f FILE\|DIR\|- is required/],
    [
      'a missing file',
      ['-f', '/nonexistent/deploy.yaml'],
      undefined,
      2,
      /\/nonexistent\/deploy.yaml: WEFT_INPUT_UNREADABLE/,
    ],
    ['bad YAML', ['-f', '-'], 'kind: Pod\n  bad: [', 2, /WEFT_YAML_SYNTAX/],
    ['an unknown flag', ['--frobnicate'], undefined, 2, /unknown argument "--frobnicate"/],
    [
      'a bad --native-sidecar',
      ['-f', '-', '--native-sidecar=maybe'],
      '',
      2,
      /--native-sidecar must be true or false/,
    ],
    [
      'an invalid annotation',
      ['-f', '-'],
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: app}\nspec: {template: {metadata: {annotations: {sidecar.istio.io/proxyCPU: lots}}, spec: {containers: [{name: a, image: a}]}}}\n',
      1,
      /WEFT_INJECTION_ANNOTATION_INVALID: Deployment app\/d: spec\.template\.metadata\.annotations\[sidecar\.istio\.io\/proxyCPU\]: "lots" is not a Kubernetes quantity/,
    ],
    [
      'a workload without a pod spec',
      ['-f', '-'],
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n',
      1,
      /WEFT_INJECTION_INPUT_INVALID: Deployment d: spec\.template\.spec\.containers: required/,
    ],
  ];
  for (const [title, argv, stdin, code, message] of failures) {
    it(`exits ${code} with a clear message on ${title}`, () => {
      const r = run(argv, stdin);
      expect(r.code).to.equal(code);
      expect(r.stderr).to.match(message);
      expect(r.stderr).to.not.match(/\n\s+at /);
    });
  }
});
