/**
 * Reading `-f FILE|DIR|-` for weftctl: files, directories (recursively, *.yaml|*.yml|*.json,
 * sorted), or standard input, each split into its YAML documents. Input problems are reported
 * per source with a coded error and never stop the other sources from being read.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { type ErrorCode, errorMessage } from '../pkg/errors/index.js';

/** Larger than any Kubernetes object can be (etcd caps a value at 1.5 MiB); a 10 MB file is refused. */
export const MAX_INPUT_BYTES = 4 * 1024 * 1024;
/** YAML alias expansions allowed per document (stops "billion laughs"). */
const MAX_ALIASES = 100;
const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
/** kustomize's own file in a directory is build input, not an object (named files are still read). */
const KUSTOMIZATION_FILES = new Set(['kustomization.yaml', 'kustomization.yml']);

export interface InputDocument {
  /** The file name as the user gave it (or `<stdin>`). */
  source: string;
  /** 1-based position of the document in its file. */
  index: number;
  /** First line of the document in its file (1-based), for messages. */
  line: number;
  value: unknown;
}

export interface InputProblem {
  source: string;
  code: ErrorCode;
  message: string;
}

export interface Inputs {
  documents: InputDocument[];
  problems: InputProblem[];
}

export interface ReadOptions {
  /** Reads standard input (injected by tests). */
  readStdin?: () => string;
}

/** A directory walk stops here (`-f /` must not read the whole machine). */
export const MAX_FILES = 10_000;
/** All inputs together; far above any GitOps repository's manifests. */
export const MAX_TOTAL_BYTES = 64 * 1024 * 1024;

interface Walk {
  out: Inputs;
  /** Directories already read, by device and inode: symlink loops end here. */
  seenDirs: Set<string>;
  files: number;
  bytes: number;
  stopped: boolean;
}

export function readInputs(paths: string[], options: ReadOptions = {}): Inputs {
  const walk: Walk = {
    out: { documents: [], problems: [] },
    seenDirs: new Set(),
    files: 0,
    bytes: 0,
    stopped: false,
  };
  for (const path of paths) {
    if (path === '-') {
      const before = found(walk.out);
      readText('<stdin>', () => (options.readStdin ?? readStdinSync)(), walk.out);
      requireObjects(walk.out, '<stdin>', before);
    } else readPath(path, walk, true);
  }
  return walk.out;
}

function readPath(path: string, walk: Walk, explicit: boolean): void {
  if (walk.stopped) return;
  let stat;
  try {
    stat = statSync(path);
  } catch (err) {
    walk.out.problems.push({
      source: path,
      code: 'WEFT_INPUT_UNREADABLE',
      message: `cannot read: ${describeFsError(err)}`,
    });
    return;
  }
  if (stat.isDirectory()) {
    const id = `${stat.dev}:${stat.ino}`;
    if (walk.seenDirs.has(id)) return; // reached again through a symlink
    walk.seenDirs.add(id);
    readDirectory(path, walk, explicit);
    return;
  }
  // Directory walks read regular files only; a named FIFO or device is read when asked for.
  if (!explicit && !stat.isFile()) return;
  if (stat.size > MAX_INPUT_BYTES) {
    walk.out.problems.push({
      source: path,
      code: 'WEFT_INPUT_TOO_LARGE',
      message: `file is ${stat.size} bytes; the limit is ${MAX_INPUT_BYTES} bytes (no Kubernetes object is this large)`,
    });
    return;
  }
  walk.files++;
  walk.bytes += stat.size;
  if (walk.files > MAX_FILES || walk.bytes > MAX_TOTAL_BYTES) {
    walk.stopped = true;
    walk.out.problems.push({
      source: path,
      code: 'WEFT_INPUT_TOO_LARGE',
      message: `stopped reading: more than ${MAX_FILES} files or ${MAX_TOTAL_BYTES} bytes in total; point -f at the manifests directory`,
    });
    return;
  }
  const before = found(walk.out);
  readText(path, () => readFileSync(path, 'utf8'), walk.out);
  if (explicit) requireObjects(walk.out, path, before);
}

function found(out: Inputs): number {
  return out.documents.length + out.problems.length;
}

/**
 * A file named on the command line (or stdin) that holds nothing is a mistake worth saying so;
 * a placeholder file met while walking a directory is not.
 */
function requireObjects(out: Inputs, source: string, before: number): void {
  if (found(out) === before)
    out.problems.push({
      source,
      code: 'WEFT_NOT_AN_OBJECT',
      message: 'holds no objects (empty, or only comments)',
    });
}

function readDirectory(path: string, walk: Walk, explicit: boolean): void {
  let entries: string[];
  try {
    entries = readdirSync(path).sort();
  } catch (err) {
    walk.out.problems.push({
      source: path,
      code: 'WEFT_INPUT_UNREADABLE',
      message: `cannot list directory: ${describeFsError(err)}`,
    });
    return;
  }
  const out = walk.out;
  const before = out.documents.length + out.problems.length;
  for (const entry of entries) {
    const child = join(path, entry);
    let isDir: boolean;
    try {
      isDir = statSync(child).isDirectory();
    } catch {
      // A dangling link in a directory is not worth failing the run for; it is skipped.
      continue;
    }
    const manifest =
      MANIFEST_EXTENSIONS.has(extname(entry).toLowerCase()) && !KUSTOMIZATION_FILES.has(entry.toLowerCase());
    if (isDir ? !entry.startsWith('.') : manifest) readPath(child, walk, false);
  }
  if (explicit && out.documents.length + out.problems.length === before) {
    out.problems.push({
      source: path,
      code: 'WEFT_INPUT_UNREADABLE',
      message: 'directory holds no .yaml, .yml or .json files',
    });
  }
}

function readText(source: string, read: () => string, out: Inputs): void {
  let text: string;
  try {
    text = read();
  } catch (err) {
    out.problems.push({
      source,
      code: 'WEFT_INPUT_UNREADABLE',
      message: `cannot read: ${describeFsError(err)}`,
    });
    return;
  }
  if (Buffer.byteLength(text) > MAX_INPUT_BYTES) {
    out.problems.push({
      source,
      code: 'WEFT_INPUT_TOO_LARGE',
      message: `input is larger than the limit of ${MAX_INPUT_BYTES} bytes`,
    });
    return;
  }
  parseDocuments(source, text, out);
}

/**
 * JSON first when the text looks like JSON (JSON files may be tab-indented, which YAML
 * forbids), then YAML's multi-document stream. A `kind: List` is expanded into its items.
 */
export function parseDocuments(source: string, text: string, out: Inputs): void {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      pushValue(source, 1, 1, JSON.parse(text) as unknown, out);
      return;
    } catch (err) {
      if (err instanceof RangeError) {
        out.problems.push({
          source,
          code: 'WEFT_INPUT_UNREADABLE',
          message: 'document is nested too deeply to read',
        });
        return;
      }
      // Not JSON after all: YAML is a superset, let the YAML parser say what is wrong.
    }
  }
  if (flowDepth(text) > MAX_FLOW_DEPTH) {
    out.problems.push({
      source,
      code: 'WEFT_INPUT_UNREADABLE',
      message: `document nests [ ] / { } more than ${MAX_FLOW_DEPTH} deep; refusing to parse it`,
    });
    return;
  }
  let docs;
  try {
    docs = parseAllDocuments(text, { prettyErrors: true });
  } catch (err) {
    out.problems.push({ source, code: 'WEFT_YAML_SYNTAX', message: errorMessage(err) });
    return;
  }
  const list = Array.isArray(docs) ? docs : [];
  const lineAt = lineCounter(text);
  for (let i = 0; i < list.length; i++) {
    const doc = list[i];
    if (!doc) continue;
    const line = lineAt(doc.range[0]);
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      const where = pos ? `line ${pos.line}, column ${pos.col}` : `document ${i + 1}`;
      // The parser recurses per nesting level; it reports its own stack overflow as an error.
      if (err.message.includes('Maximum call stack'))
        out.problems.push({
          source,
          code: 'WEFT_INPUT_UNREADABLE',
          message: `${where}: document is nested too deeply to read`,
        });
      else
        out.problems.push({
          source,
          code: 'WEFT_YAML_SYNTAX',
          message: `${where}: ${firstLine(err.message)}`,
        });
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (e) {
      const message =
        e instanceof RangeError ? 'document is nested too deeply to read' : firstLine(errorMessage(e));
      out.problems.push({
        source,
        code: e instanceof RangeError ? 'WEFT_INPUT_UNREADABLE' : 'WEFT_YAML_SYNTAX',
        message: `document ${i + 1} (line ${line}): ${message}`,
      });
      continue;
    }
    pushValue(source, i + 1, line, value, out);
  }
}

function pushValue(source: string, index: number, line: number, value: unknown, out: Inputs): void {
  if (value === null || value === undefined) return; // empty document (`---` at the end, comments only)
  const v = value as { kind?: unknown; items?: unknown };
  if (typeof v === 'object' && !Array.isArray(v) && v.kind === 'List' && Array.isArray(v.items)) {
    for (const item of v.items) out.documents.push({ source, index, line, value: item });
    return;
  }
  out.documents.push({ source, index, line, value });
}

const MAX_FLOW_DEPTH = 256;

/**
 * Deepest `[`/`{` nesting outside quotes and comments: one linear pass, so a hostile file of
 * brackets is refused before the (recursive, slower) YAML parser sees it.
 */
function flowDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== '') {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'") {
      // A quote only opens a string at the start of a scalar; in `it's` it is just a character.
      const prev = text[i - 1];
      if (prev === undefined || ' \t\n[{,:-'.includes(prev)) quote = c;
    } else if (c === '#' && (i === 0 || ' \t\n'.includes(text[i - 1] ?? ''))) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
    } else if (c === '[' || c === '{') max = Math.max(max, ++depth);
    else if ((c === ']' || c === '}') && depth > 0) depth--;
    else if (
      c === '\n' &&
      text[i + 1] !== ' ' &&
      text[i + 1] !== '\t' &&
      depth > 0 &&
      text[i + 1] !== ']' &&
      text[i + 1] !== '}'
    ) {
      // Flow collections cannot span a line that starts at column 0 in valid YAML; reset so a
      // stray bracket in a plain scalar does not accumulate across the whole file.
      depth = 0;
    }
  }
  return max;
}

/** Line numbers for increasing offsets, in one pass over the text overall. */
function lineCounter(text: string): (offset: number) => number {
  let pos = 0;
  let line = 1;
  return (offset) => {
    for (; pos < offset && pos < text.length; pos++) if (text.charCodeAt(pos) === 10) line++;
    return line;
  };
}

/** The yaml library's message without its source excerpt and repeated position. */
function firstLine(s: string): string {
  return (s.split('\n')[0] ?? s).replace(/ at line \d+, column \d+:?$/, '');
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return code ?? errorMessage(err);
}

function readStdinSync(): string {
  return readFileSync(0, 'utf8');
}
