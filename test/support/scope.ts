/**
 * Cleanups registered by the helpers (namespaces, webhook configurations), run by the root
 * hooks in cluster-hooks.ts: what is created during a test (its `it` or `beforeEach`) is
 * removed after that test; what is created in a `before` hook is removed by the root
 * `afterAll` — at the end of the run, or of the file under `mocha --parallel`. State lives
 * on globalThis so that every copy of this module (ESM, CJS, a mocha worker) sees the same
 * registry.
 */
import { errorMessage } from '../../pkg/errors/index.js';

type Cleanup = () => Promise<void>;

interface Registry {
  hooksLoaded: boolean;
  inTest: boolean;
  test: Cleanup[];
  suite: Cleanup[];
}

const KEY = Symbol.for('weft.test.support.scope');
const g = globalThis as typeof globalThis & { [KEY]?: Registry };
const registry: Registry = (g[KEY] ??= { hooksLoaded: false, inTest: false, test: [], suite: [] });

export function markHooksLoaded(): void {
  registry.hooksLoaded = true;
}

export function hooksLoaded(): boolean {
  return registry.hooksLoaded;
}

export function enterTest(): void {
  registry.inTest = true;
}

/** Registers `fn` to run at the end of the current test, or of the run if outside a test. */
export function onCleanup(fn: Cleanup): void {
  (registry.inTest ? registry.test : registry.suite).push(fn);
}

/** Runs (newest first) and forgets the cleanups of `scope`; returns the failures' messages. */
export async function runCleanups(scope: 'test' | 'suite'): Promise<string[]> {
  if (scope === 'test') registry.inTest = false;
  const fns = registry[scope].splice(0).reverse();
  const failures: string[] = [];
  for (const fn of fns) {
    try {
      await fn();
    } catch (err) {
      failures.push(errorMessage(err));
    }
  }
  return failures;
}
