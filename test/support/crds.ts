/** Installs the project's CRDs (`crds/*.yaml`) into the test cluster with real kubectl. */
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { readFileSync } from 'node:fs';
import { WeftError } from '../../pkg/errors/index.js';
import { crdsDir } from '../../hack/cluster/paths.js';
import { testCluster } from './cluster.js';

export function crdFiles(dir = crdsDir): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** Names (`plural.group`) of the CustomResourceDefinitions in `files`. */
export function crdNames(files: string[]): string[] {
  const names: string[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const obj = doc.toJS() as { kind?: unknown; metadata?: { name?: unknown } } | null;
      if (obj?.kind === 'CustomResourceDefinition' && typeof obj.metadata?.name === 'string')
        names.push(obj.metadata.name);
    }
  }
  return names;
}

let installed: Promise<string[]> | undefined;

/**
 * Server-side applies every CRD in `crds/` and waits until each is Established (served).
 * Returns the CRD names; [] when `crds/` is empty. Runs once per process; later calls share
 * the result.
 */
export function installCRDs(): Promise<string[]> {
  installed ??= doInstall().catch((err: unknown) => {
    installed = undefined;
    throw err;
  });
  return installed;
}

async function doInstall(): Promise<string[]> {
  const files = crdFiles();
  if (files.length === 0) return [];
  const { kubectl } = testCluster();
  const fileArgs = files.flatMap((f) => ['-f', f]);
  const apply = await kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=weft-tests',
    ...fileArgs,
  ]);
  if (apply.code !== 0) {
    throw new WeftError('WEFT_INVALID_OBJECT', `kubectl apply of crds/ failed: ${apply.stderr.trim()}`);
  }
  const names = crdNames(files);
  const wait = await kubectl(
    ['wait', '--for=condition=Established', '--timeout=60s', ...names.map((n) => `crd/${n}`)],
    {
      timeoutMs: 70_000,
    },
  );
  if (wait.code !== 0) {
    throw new WeftError(
      'WEFT_CLUSTER_TIMEOUT',
      `CRDs not Established: ${wait.stderr.trim() || wait.stdout.trim()}`,
    );
  }
  await waitServable(names);
  return names;
}

/**
 * Established is not yet servable: for a moment after it, a list of the new resource can answer
 * 429 "storage is (re)initializing" while its watch cache fills. Tests list right away, so wait
 * until one list of every resource succeeds.
 */
async function waitServable(names: string[]): Promise<void> {
  const { kubectl } = testCluster();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const get = await kubectl(['get', names.join(','), '--all-namespaces', '-o', 'name'], {
      timeoutMs: 30_000,
    });
    if (get.code === 0) return;
    if (Date.now() > deadline)
      throw new WeftError('WEFT_CLUSTER_TIMEOUT', `CRDs Established but not servable: ${get.stderr.trim()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
