/**
 * `weftctl render -f mesh.yaml`: prints the objects the operator would apply for a Mesh, as a
 * multi-document YAML stream, so a GitOps user can commit them instead of running the operator.
 * It calls the very function the operator calls (`pkg/render`), so the two cannot drift.
 *
 *   weftctl render -f mesh.yaml [--include-namespace=false] [--webhook-image IMG]
 *   cat mesh.yaml | weftctl render -f -
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';
import type { Mesh } from '../../pkg/api/mesh.js';
import { errorMessage, WeftError } from '../../pkg/errors/index.js';
import { render, type RenderOptions } from '../../pkg/render/index.js';
import { formatFinding, objectRef, validateObject } from '../../pkg/validation/index.js';
import { scanFlags } from '../args.js';

export interface RenderIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Reads a path, or standard input for `-`. */
  readInput?: (path: string) => string;
}

const MAX_INPUT = 4 * 1024 * 1024;

export const renderUsage = `Usage: weftctl render -f FILE [--include-namespace=false] [--webhook-image IMAGE]

Prints every object the operator would create for the Mesh in FILE ('-' for stdin) as YAML.
The webhook configurations carry no caBundle: the operator injects it at run time.
--webhook-image applies to spec.controlPlane.mode Separate; Combined runs the webhook in weftd's
image (spec.controlPlane.image).`;

interface RenderArgs {
  file: string;
  options: RenderOptions;
}

function parseArgs(argv: string[]): RenderArgs {
  let file: string | undefined;
  const options: RenderOptions = { includeNamespace: true };
  scanFlags(argv, renderUsage, (flag) => {
    const n = flag.name;
    if (n === '-f' || n === '--filename') file = flag.value();
    // `--include-namespace` alone means true; only the `=false` form turns it off.
    else if (n === '--include-namespace') options.includeNamespace = (flag.inline ?? 'true') !== 'false';
    else if (n === '--webhook-image') options.webhookImage = flag.value();
    else return false;
    return true;
  });
  if (!file) throw new WeftError('WEFT_INPUT_UNREADABLE', `-f FILE is required\n${renderUsage}`);
  return { file, options };
}

function defaultRead(path: string): string {
  return readFileSync(path === '-' ? 0 : path, 'utf8');
}

/** The Mesh documents of a YAML stream; anything else is an error naming the document. */
export function meshesFromYaml(text: string, source: string): Mesh[] {
  if (text.length > MAX_INPUT)
    throw new WeftError('WEFT_INPUT_TOO_LARGE', `${source} is larger than ${MAX_INPUT} bytes`);
  const meshes: Mesh[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    if (doc.errors.length > 0)
      throw new WeftError('WEFT_YAML_SYNTAX', `${source}: document ${i + 1}: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    const ref = objectRef(value);
    if (ref.kind !== 'Mesh')
      throw new WeftError('WEFT_UNKNOWN_KIND', `${source}: document ${i + 1} is a ${ref.kind}, not a Mesh`);
    const result = validateObject(value);
    if (result.errors.length > 0) {
      throw new WeftError('WEFT_MESH_INVALID', result.errors.map((f) => formatFinding(ref, f)).join('\n'));
    }
    meshes.push(value as Mesh);
  });
  if (meshes.length === 0) throw new WeftError('WEFT_NOT_AN_OBJECT', `${source} holds no Mesh`);
  return meshes;
}

/** Runs the command; returns the exit code (0 ok, 1 bad input). Never throws. */
export function runRender(argv: string[], io: RenderIO): number {
  try {
    if (argv.includes('-h') || argv.includes('--help')) {
      io.stdout(`${renderUsage}\n`);
      return 0;
    }
    const args = parseArgs(argv);
    let text: string;
    try {
      text = (io.readInput ?? defaultRead)(args.file);
    } catch (err) {
      throw new WeftError(
        'WEFT_INPUT_UNREADABLE',
        `cannot read ${args.file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`,
      );
    }
    const meshes = meshesFromYaml(text, args.file);
    if (meshes.length > 1) {
      throw new WeftError(
        'WEFT_MESH_CONFLICT',
        `${args.file} holds ${meshes.length} Meshes; a cluster runs one, render them one at a time`,
      );
    }
    const objects = render(meshes[0]!, args.options);
    io.stdout(objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
    return 0;
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return 1;
  }
}
