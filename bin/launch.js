// Shared by the npm bins (bin/weftctl.js, bin/weft-proxy.js): runs one of weft's entry points
// on the project's pinned Node (the npm `node` package), not whatever Node the machine has.
//
// Which code runs: the compiled dist/ when it is at least as new as every TypeScript source
// (`npm run build`), else the sources through tsx, so a stale dist/ never answers for newer code.
// tsx is resolved from this file, not from the working directory, so the bins run from anywhere.
//
// How it runs: dist/ on the pinned Node already (npm puts node_modules/.bin, with the pinned
// `node`, first on PATH for npx and npm scripts) is imported in this process when the caller
// allows it — one Node start-up instead of two. Otherwise the entry point runs in a child
// process; its exit status passes through, a signal that ends it ends this process the same way,
// and SIGTERM/SIGHUP sent to this process are passed on. SIGINT is not passed on: Ctrl-C reaches
// the child already (same process group), and a second SIGINT would cut its drain short.
import { spawn } from 'node:child_process';
import process from 'node:process';
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The folders tsconfig.build.json compiles into dist/. */
const SOURCE_DIRS = ['pkg', 'operator', 'webhook', 'proxy', 'controlplane', 'cli'];

/**
 * @param {object} o
 * @param {string} o.name the program's name, for messages
 * @param {string} o.entry the entry point relative to the repository, without extension (cli/main)
 * @param {string[]} [o.nodeArgs] Node flags for the child (V8 reads some only at start-up)
 * @param {Record<string, string>} [o.inProcessEnv] when set, dist/ on the pinned Node is
 *   imported in this process with these variables set (the entry point must run its main on them)
 * @param {string[]} [o.argv] the program's arguments (default: this process's)
 */
export async function launch(o) {
  const argv = o.argv ?? process.argv.slice(2);
  const pinnedNode = join(root, 'node_modules', 'node', 'bin', 'node');
  const node = existsSync(pinnedNode) ? pinnedNode : process.execPath;
  const source = join(root, `${o.entry}.ts`);
  const compiled = join(root, 'dist', `${o.entry}.js`);
  const tsx = existsSync(source) ? resolveTsx() : undefined;
  const useDist = existsSync(compiled) && (tsx === undefined || distIsFresh(compiled));
  if (!useDist && tsx === undefined) {
    process.stderr.write(`${o.name}: not built; run \`npm ci\` (and \`npm run build\` for dist/)\n`);
    return 2;
  }
  if (useDist && o.inProcessEnv && sameFile(node, process.execPath)) {
    Object.assign(process.env, o.inProcessEnv);
    await import(pathToFileURL(compiled).href);
    return undefined;
  }
  const args = useDist ? [compiled] : ['--import', tsx, source];
  return new Promise((resolve) => {
    const child = spawn(node, [...(o.nodeArgs ?? []), ...args, ...argv], {
      stdio: 'inherit',
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    const pass = (signal) => child.kill(signal);
    const ignore = () => undefined;
    process.on('SIGTERM', pass).on('SIGHUP', pass).on('SIGINT', ignore);
    child.on('error', (err) => {
      process.stderr.write(`${o.name}: cannot start ${node}: ${err.message}\n`);
      resolve(2);
    });
    child.on('exit', (code, signal) => {
      process.off('SIGTERM', pass).off('SIGHUP', pass).off('SIGINT', ignore);
      if (signal) {
        process.kill(process.pid, signal);
        return;
      }
      resolve(code ?? 2);
    });
  });
}

/** Runs `launch` as a bin's whole job: the exit code becomes this process's. */
export function main(o) {
  launch(o).then(
    (code) => {
      if (code !== undefined) process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`${o.name}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}

/**
 * dist/ is fresh when no source under the compiled folders changed after the entry was built
 * (tsc rewrites every output on a build). About 10 ms for the ~200 sources.
 */
function distIsFresh(compiled) {
  const built = statSync(compiled).mtimeMs;
  for (const dir of SOURCE_DIRS) {
    let entries;
    try {
      entries = readdirSync(join(root, dir), { recursive: true, withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith('.ts')) continue;
      if (statSync(join(e.parentPath, e.name)).mtimeMs > built) return false;
    }
  }
  return true;
}

function sameFile(a, b) {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

function resolveTsx() {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return undefined;
  }
}
