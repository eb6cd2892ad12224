/** Where the local cluster keeps things, relative to the repository root. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Git-ignored: everything the demo cluster writes lives under `.local/`. */
export const localDir = join(repoRoot, '.local');
export const demoStateDir = join(localDir, 'cluster');
export const demoKubeconfig = join(localDir, 'kubeconfig');
export const localBinDir = join(localDir, 'bin');
export const crdsDir = join(repoRoot, 'crds');
