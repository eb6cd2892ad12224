/**
 * kstatus as Flux, kpt and cli-utils compute it: the real library (sigs.k8s.io/cli-utils
 * v0.37.2), through the Go helper hack/kstatus built by hack/build-kstatus.sh (cached in
 * ~/.cache/weft). Integration suites use it to read weft's status conditions the way those
 * tools do; the TypeScript port in test/unit/operator/kstatus.test.ts is checked against it.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../hack/cluster/paths.js';

export interface KstatusResult {
  status?: 'InProgress' | 'Failed' | 'Current' | 'Terminating' | 'NotFound' | 'Unknown';
  message?: string;
  error?: string;
}

let binary: string | undefined;

/** The helper's path, building it on first use (one `go build`, about a minute cold). */
export function kstatusBinary(): string {
  binary ??= execFileSync('bash', [join(repoRoot, 'hack', 'build-kstatus.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  })
    .trim()
    .split('\n')
    .pop()!;
  return binary;
}

/** The library's verdict on each object, in order. */
export function kstatus(objects: unknown[]): KstatusResult[] {
  const out = execFileSync(kstatusBinary(), [], {
    input: objects.map((o) => JSON.stringify(o)).join('\n') + '\n',
    encoding: 'utf8',
    timeout: 30_000,
  });
  return out
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as KstatusResult);
}
