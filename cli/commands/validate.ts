/**
 * `weftctl validate -f FILE|DIR|- ...`: validates every object on its own, exactly as the
 * admission webhook would (schema + Istio's rules + weft's per-object extras).
 *
 * Exit 0: all valid. 1: some object invalid. 2: some input unreadable or not YAML.
 */
import { errorMessage } from '../../pkg/errors/index.js';
import { parseManifestArgs } from '../args.js';
import type { CommandIO } from '../command.js';
import { useValidatorCache } from '../validator-cache.js';
import { readInputs } from '../input.js';
import {
  EXIT_INPUT,
  EXIT_INVALID,
  EXIT_OK,
  findingLines,
  plural,
  problemLine,
  validateDocuments,
} from '../report.js';

export const validateUsage = `Usage: weftctl validate -f FILE|DIR|- [-f ...] [-o text|json] [-n NAMESPACE] [--ignore-unknown-kinds]

Validates each Kubernetes object in the given YAML/JSON files (directories are read
recursively; '-' is standard input) as weft's admission webhook would.

  -f, --filename          file, directory or '-' (repeatable)
  -o, --output            text (default): 'file: Kind namespace/name: path: message' lines; json
  -n, --namespace         namespace assumed for objects without one (default "default")
  --ignore-unknown-kinds  skip objects of kinds weft does not validate (Deployments, ...)

Exit status: 0 all valid, 1 an object is invalid, 2 unreadable input or a YAML syntax error.`;

export function runValidate(argv: string[], io: CommandIO): number {
  useValidatorCache();
  let args;
  try {
    args = parseManifestArgs(argv, validateUsage);
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return EXIT_INPUT;
  }
  if (args.help) {
    io.stdout(`${validateUsage}\n`);
    return EXIT_OK;
  }
  const readStdin = io.readInput ? () => io.readInput!('-') : undefined;
  const inputs = readInputs(args.files, readStdin ? { readStdin } : {});
  const reports = validateDocuments(inputs.documents, args.namespace, args.ignoreUnknownKinds);
  const invalid = reports.filter((r) => !r.valid).length;
  const code = inputs.problems.length > 0 ? EXIT_INPUT : invalid > 0 ? EXIT_INVALID : EXIT_OK;

  if (args.output === 'json') {
    io.stdout(
      `${JSON.stringify({ exitCode: code, inputErrors: inputs.problems, objects: reports }, null, 2)}\n`,
    );
    return code;
  }
  for (const p of inputs.problems) io.stdout(`${problemLine(p)}\n`);
  for (const r of reports) for (const line of findingLines(r)) io.stdout(`${line}\n`);
  const checked = reports.filter((r) => !r.skipped).length;
  const summary = [`${plural(checked, 'object')} checked: ${checked - invalid} valid, ${invalid} invalid`];
  if (inputs.problems.length > 0)
    summary.push(`${plural(inputs.problems.length, 'input')} could not be read`);
  io.stderr(`${summary.join('; ')}\n`);
  return code;
}
