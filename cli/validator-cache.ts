/**
 * weftctl's cache of compiled schema validators. Compiling a kind's schema with ajv costs
 * 150–250 ms per kind (VirtualService, DestinationRule...), more than the rest of a
 * `weftctl validate -f one.yaml` run; servers pay it once at start-up, a CLI on every run. So
 * weftctl keeps ajv's generated code (standalone, no imports) as one file per schema, named by a
 * hash of the schema, ajv's version and options: a file is only ever used for exactly the schema
 * it was made from, and a changed schema simply makes a new one.
 *
 * The files are code this process runs, so the cache is used only when its directory belongs to
 * this user and nobody else may write to it (created 0700, files 0600, written whole then
 * renamed). Anything wrong with the cache (unwritable, corrupt file, foreign directory) means
 * compiling as without it; it never fails a command. `WEFTCTL_CACHE=off` turns it off.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Ajv, ValidateFunction } from 'ajv';
import type { JSONSchema } from '../pkg/api/kind.js';
import { AJV_SETUP, newAjv, setSchemaCompiler, type SchemaCompiler } from '../pkg/validation/schema.js';

const require = createRequire(import.meta.url);

/** `$XDG_CACHE_HOME/weft/weftctl` (else `~/.cache/...`), or undefined when turned off. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.WEFTCTL_CACHE === 'off') return undefined;
  const base = env.XDG_CACHE_HOME?.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'weft', 'weftctl');
}

/** Ours and not writable by group or others; false for anything else (or when it is missing). */
export function privateDir(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    const uid = process.getuid?.();
    return st.isDirectory() && (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** The cache file for a schema: the hash covers everything the generated code depends on. */
export function cacheFile(dir: string, schema: JSONSchema): string {
  const ajvVersion = (require('ajv/package.json') as { version: string }).version;
  const key = createHash('sha256')
    .update(`ajv ${ajvVersion}\0${JSON.stringify(AJV_SETUP)}\0${JSON.stringify(schema)}`)
    .digest('hex')
    .slice(0, 40);
  return join(dir, `validator-${key}.cjs`);
}

/** A SchemaCompiler that loads a cached validator when there is one, else compiles and stores it. */
export function cachingCompiler(dir: string): SchemaCompiler {
  let ajv: Ajv | undefined;
  return (schema) => {
    const file = cacheFile(dir, schema);
    if (privateDir(dir)) {
      try {
        const cached = require(file) as unknown;
        if (typeof cached === 'function') return cached as ValidateFunction;
      } catch {
        // missing or unreadable: compile below (and replace it)
      }
    }
    ajv ??= newAjv({ source: true });
    const fn = ajv.compile(schema);
    try {
      store(dir, file, standalone(ajv, fn));
    } catch {
      // a cache that cannot be written is no cache; the validator works the same
    }
    return fn;
  };
}

function standalone(ajv: Ajv, fn: ValidateFunction): string {
  const mod = require('ajv/dist/standalone') as { default: (a: Ajv, f: ValidateFunction) => string };
  return mod.default(ajv, fn);
}

function store(dir: string, file: string, code: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!privateDir(dir)) return;
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeSync(fd, code);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

let installed = false;

/** Makes validation in this process use the cache (once; no-op when turned off). */
export function useValidatorCache(env: NodeJS.ProcessEnv = process.env): void {
  if (installed) return;
  installed = true;
  const dir = cacheDir(env);
  if (dir) setSchemaCompiler(cachingCompiler(dir));
}
