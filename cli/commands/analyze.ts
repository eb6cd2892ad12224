/**
 * `weftctl analyze -f FILE|DIR|- ...`: what a GitOps repository's CI runs before merge. Every
 * object is validated on its own, then the set is checked as a whole (subsets no
 * DestinationRule defines, two VirtualServices claiming one host for the mesh, ...).
 *
 * Exit 0: no errors (warnings allowed). 1: an error finding. 2: unreadable input / YAML error.
 */
import { errorMessage } from '../../pkg/errors/index.js';
import { analyzeObjects, formatFinding, type ObjectFinding } from '../../pkg/validation/index.js';
import { parseManifestArgs } from '../args.js';
import type { CommandIO } from '../command.js';
import { useValidatorCache } from '../validator-cache.js';
import { readInputs, type InputDocument } from '../input.js';
import {
  EXIT_INPUT,
  EXIT_INVALID,
  EXIT_OK,
  findingLines,
  plural,
  problemLine,
  validateDocuments,
} from '../report.js';

export const analyzeUsage = `Usage: weftctl analyze -f FILE|DIR|- [-f ...] [-o text|json] [-n NAMESPACE] [--ignore-unknown-kinds]

Validates every object, then checks the set across objects: VirtualService subsets that no
DestinationRule defines, VirtualServices claiming the same host for the mesh (naming the one
sidecars use), DestinationRules for one host in one namespace or in several (which one each
client uses). Run it over a whole GitOps repository.

Exit status: 0 no errors (warnings are printed), 1 an error, 2 unreadable input or a YAML syntax error.`;

export function runAnalyze(argv: string[], io: CommandIO): number {
  useValidatorCache();
  let args;
  try {
    args = parseManifestArgs(argv, analyzeUsage);
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return EXIT_INPUT;
  }
  if (args.help) {
    io.stdout(`${analyzeUsage}\n`);
    return EXIT_OK;
  }
  const readStdin = io.readInput ? () => io.readInput!('-') : undefined;
  const inputs = readInputs(args.files, readStdin ? { readStdin } : {});
  const reports = validateDocuments(inputs.documents, args.namespace, args.ignoreUnknownKinds);
  // Cross-object checks only see objects that are valid on their own: broken ones are already reported.
  const validDocs = inputs.documents.filter(
    (_, i) => reports[i]?.valid === true && reports[i]?.skipped !== true,
  );
  const findings = analyzeObjects(
    validDocs.map((d) => d.value),
    { defaultNamespace: args.namespace },
  );
  const sourceOf = sourceIndex(validDocs, args.namespace);
  const invalid = reports.filter((r) => !r.valid).length;
  const crossErrors = findings.filter((f) => f.severity === 'error').length;
  const code = inputs.problems.length > 0 ? EXIT_INPUT : invalid + crossErrors > 0 ? EXIT_INVALID : EXIT_OK;

  if (args.output === 'json') {
    const cross = findings.map((f) => ({ source: sourceOf(f), ...f }));
    io.stdout(
      `${JSON.stringify({ exitCode: code, inputErrors: inputs.problems, objects: reports, findings: cross }, null, 2)}\n`,
    );
    return code;
  }
  for (const p of inputs.problems) io.stdout(`${problemLine(p)}\n`);
  for (const r of reports) for (const line of findingLines(r)) io.stdout(`${line}\n`);
  for (const f of findings) {
    const message = f.severity === 'warning' ? `warning: ${f.message}` : f.message;
    io.stdout(`${sourceOf(f)}: ${formatFinding(f.object, { ...f, message })}\n`);
  }
  const warnings = findings.length - crossErrors;
  io.stderr(
    `${plural(reports.filter((r) => !r.skipped).length, 'object')} analyzed: ${invalid} invalid, ${plural(crossErrors, 'cross-object error')}, ${plural(warnings, 'cross-object warning')}\n`,
  );
  return code;
}

/** The file each object came from, for cross-object findings. */
function sourceIndex(docs: InputDocument[], namespace: string): (f: ObjectFinding) => string {
  const map = new Map<string, string>();
  for (const d of docs) {
    const v = d.value as { kind?: string; metadata?: { name?: string; namespace?: string } };
    map.set(`${v.kind}/${v.metadata?.namespace ?? namespace}/${v.metadata?.name}`, d.source);
  }
  return (f) => map.get(`${f.object.kind}/${f.object.namespace ?? namespace}/${f.object.name}`) ?? '<input>';
}
