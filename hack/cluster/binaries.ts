/**
 * Finds (or builds) the Kubernetes and etcd binaries through hack/build-binaries.sh, which
 * caches them under ~/.cache/weft keyed by version. A cold build takes ~15 min on two cores;
 * its progress lines go straight to our stderr so the wait never looks like a hang. The build
 * runs under a lock file so two test runs starting at once on a cold machine build only once.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { WeftError } from '../../pkg/errors/index.js';
import { withLock } from './lock.js';
import { repoRoot } from './paths.js';

function cacheRoot(): string {
  return process.env.WEFT_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'weft');
}

/** Runs the build script for `names`; resolves with the bin dir it prints on its last line. */
export function ensureBinaries(names: string[]): Promise<string> {
  mkdirSync(cacheRoot(), { recursive: true });
  // Not flock(1): the script's background progress ticker would inherit the lock and hold it
  // for up to a minute after the script has finished.
  return withLock(join(cacheRoot(), 'build.lock'), () => runBuildScript(names));
}

function runBuildScript(names: string[]): Promise<string> {
  const script = join(repoRoot, 'hack', 'build-binaries.sh');
  // stdout goes to a file, not a pipe: the script's progress ticker (a background `sleep 60`)
  // inherits it and would hold a pipe open for up to a minute after the script exits.
  const outFile = join(mkdtempSync(join(tmpdir(), 'weft-bin-')), 'stdout');
  const fd = openSync(outFile, 'w');
  return new Promise<string>((resolve, reject) => {
    // stderr (progress) is relayed rather than inherited: an inherited stderr would let the
    // orphaned ticker hold the caller's stdout pipe (`npm start | tee`) open for a minute.
    const child = spawn('bash', [script, ...names], { stdio: ['ignore', fd, 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    child.on('error', (err) =>
      reject(new WeftError('WEFT_BINARY_MISSING', `cannot run ${script}: ${err.message}`, { cause: err })),
    );
    child.on('exit', (code) => {
      child.stderr?.destroy();
      const binDir = readFileSync(outFile, 'utf8').trim().split('\n').pop() ?? '';
      const missing = names.filter((n) => !existsSync(join(binDir, n)));
      if (code !== 0 || binDir === '' || missing.length > 0) {
        const why = code !== 0 ? `exited with ${code}` : `did not produce ${missing.join(', ')}`;
        reject(
          new WeftError(
            'WEFT_BINARY_MISSING',
            `hack/build-binaries.sh ${names.join(' ')} ${why} (see its output above; it needs Go >= 1.26 and the module proxy)`,
          ),
        );
        return;
      }
      resolve(binDir);
    });
  }).finally(() => {
    closeSync(fd);
    rmSync(dirname(outFile), { recursive: true, force: true });
  });
}
