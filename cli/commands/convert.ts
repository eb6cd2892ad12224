/**
 * `weftctl convert -f memquota.yaml`: prints the RateLimit objects equivalent to Istio's Mixer
 * `memquota` objects in the input (pkg/translate/memquota-convert.ts), each one validated as the
 * webhook would before it is printed. Other kinds are skipped with a note on stderr.
 *
 * Exit 0: converted. 1: something could not be converted (unknown dimensions, an invalid
 * memquota). 2: unreadable input.
 */
import { stringify } from 'yaml';
import { errorMessage } from '../../pkg/errors/index.js';
import type { MemQuota } from '../../pkg/api/memquota.js';
import { convertMemQuota } from '../../pkg/translate/memquota-convert.js';
import { formatFinding, objectRef, validateObject } from '../../pkg/validation/index.js';
import { parseManifestArgs } from '../args.js';
import type { CommandIO } from '../command.js';
import { readInputs } from '../input.js';
import { EXIT_INPUT, EXIT_INVALID, EXIT_OK, problemLine } from '../report.js';

export const convertUsage = `Usage: weftctl convert -f FILE|DIR|- [-f ...] [-n NAMESPACE] [-o text|json]

Prints the weft RateLimit objects equivalent to Istio's memquota (config.istio.io/v1alpha2)
objects in the given files. A destination or source dimension names pods by their app label,
as Istio's quota instances did; the RateLimits are written to the namespace of those pods.

  -f, --filename   file, directory or '-' (repeatable)
  -n, --namespace  namespace of the destination workloads (default "default")
  -o, --output     text (default): YAML documents; json: a JSON list

Exit status: 0 converted, 1 something could not be converted, 2 unreadable input.`;

export function runConvert(argv: string[], io: CommandIO): number {
  let args;
  try {
    args = parseManifestArgs(argv, convertUsage);
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return EXIT_INPUT;
  }
  if (args.help) {
    io.stdout(`${convertUsage}\n`);
    return EXIT_OK;
  }
  const readStdin = io.readInput ? () => io.readInput!('-') : undefined;
  const inputs = readInputs(args.files, readStdin ? { readStdin } : {});
  for (const p of inputs.problems) io.stderr(`${problemLine(p)}\n`);
  let failed = false;
  const out: unknown[] = [];
  for (const doc of inputs.documents) {
    const ref = objectRef(doc.value);
    if (ref.kind !== 'memquota') {
      io.stderr(`${doc.source}: ${ref.kind} ${ref.name}: skipped (only memquota is converted)\n`);
      continue;
    }
    const v = validateObject(doc.value);
    if (v.errors.length > 0) {
      failed = true;
      for (const f of v.errors) io.stderr(`${doc.source}: ${formatFinding(ref, f)}\n`);
      continue;
    }
    const c = convertMemQuota(doc.value as MemQuota, args.namespace);
    for (const e of c.errors) io.stderr(`${doc.source}: memquota ${ref.name}: ${e}\n`);
    if (c.errors.length > 0) failed = true;
    for (const rl of c.rateLimits) {
      // what we print must be admitted: a converter that emits invalid YAML is a bug, said loudly
      const check = validateObject(rl, { defaultNamespace: args.namespace });
      for (const f of check.errors) {
        failed = true;
        io.stderr(`converted ${formatFinding(objectRef(rl), f)}\n`);
      }
      out.push(rl);
    }
  }
  if (args.output === 'json') io.stdout(`${JSON.stringify(out, null, 2)}\n`);
  else for (const o of out) io.stdout(`---\n${stringify(o)}`);
  return inputs.problems.length > 0 ? EXIT_INPUT : failed ? EXIT_INVALID : EXIT_OK;
}
