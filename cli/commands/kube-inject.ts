/**
 * `weftctl kube-inject -f deploy.yaml`: prints the manifests with the sidecar injected into
 * every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob pod template,
 * using the very injector the mutating webhook runs (pkg/inject). Other objects pass through.
 *
 *   weftctl kube-inject -f deploy.yaml | kubectl apply -f -
 *   weftctl kube-inject -f deploy.yaml --mesh-file mesh.yaml     (settings from a Mesh)
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';
import type { Mesh } from '../../pkg/api/mesh.js';
import { errorMessage, WeftError } from '../../pkg/errors/index.js';
import {
  DEFAULT_INJECTION_SETTINGS,
  injectManifests,
  settingsFromMesh,
  type InjectionSettings,
} from '../../pkg/inject/index.js';
import { booleanFlag, scanFlags } from '../args.js';
import type { CommandIO } from '../command.js';
import { readInputs } from '../input.js';
import { EXIT_INPUT, EXIT_INVALID, EXIT_OK } from '../report.js';

export const kubeInjectUsage = `Usage: weftctl kube-inject -f FILE|DIR|- [flags]

Prints the manifests with weft's sidecar injected into every pod template (Pod, Deployment,
StatefulSet, DaemonSet, ReplicaSet, Job, CronJob), as the mutating webhook would. Objects that
must not be injected (hostNetwork, sidecar.istio.io/inject: "false", system or mesh namespace,
already injected) are printed unchanged, with a note on stderr.

Flags:
  -f, --filename FILE   manifests to inject (repeatable; '-' reads stdin)
  --mesh-file FILE      take injection settings from the Mesh in FILE (default: the Mesh defaults)
  --mesh-namespace NS   the mesh's own namespace (default weft-system)
  --native-sidecar B    override native sidecar mode (true|false)
  --proxy-image IMAGE   override the proxy image`;

interface KubeInjectArgs {
  files: string[];
  meshFile?: string;
  meshNamespace: string;
  nativeSidecar?: boolean;
  proxyImage?: string;
  help: boolean;
}

function parse(argv: string[]): KubeInjectArgs {
  const args: KubeInjectArgs = { files: [], meshNamespace: 'weft-system', help: false };
  scanFlags(argv, kubeInjectUsage, (flag) => {
    const n = flag.name;
    if (n === '-f' || n === '--filename') args.files.push(flag.value());
    else if (n === '--mesh-file') args.meshFile = flag.value();
    else if (n === '--mesh-namespace') args.meshNamespace = flag.value();
    else if (n === '--proxy-image') args.proxyImage = flag.value();
    else if (n === '--native-sidecar') args.nativeSidecar = booleanFlag(flag);
    else if (n === '-h' || n === '--help') args.help = true;
    else return false;
    return true;
  });
  if (!args.help && args.files.length === 0)
    throw new WeftError('WEFT_INPUT_UNREADABLE', `-f FILE|DIR|- is required\n\n${kubeInjectUsage}`);
  return args;
}

function meshFrom(file: string): Mesh {
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map(
    (d) => d.toJS({ maxAliasCount: 100 }) as unknown,
  );
  const mesh = docs.find((d): d is Mesh => (d as { kind?: unknown } | null)?.kind === 'Mesh');
  if (!mesh) throw new WeftError('WEFT_NOT_AN_OBJECT', `${file} holds no Mesh`);
  return mesh;
}

function settingsFor(args: KubeInjectArgs): InjectionSettings {
  const base: InjectionSettings = structuredClone(DEFAULT_INJECTION_SETTINGS) as InjectionSettings;
  base.meshNamespace = args.meshNamespace;
  base.discoveryAddress = `weftd.${args.meshNamespace}.svc:15012`;
  const s = args.meshFile ? settingsFromMesh(meshFrom(args.meshFile).spec?.injection, base) : base;
  if (args.nativeSidecar !== undefined) s.nativeSidecar = args.nativeSidecar;
  if (args.proxyImage !== undefined) s.proxyImage = args.proxyImage;
  return s;
}

export function runKubeInject(argv: string[], io: CommandIO): number {
  let args: KubeInjectArgs;
  let settings: InjectionSettings;
  try {
    args = parse(argv);
    if (args.help) {
      io.stdout(`${kubeInjectUsage}\n`);
      return EXIT_OK;
    }
    settings = settingsFor(args);
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return EXIT_INPUT;
  }
  const inputs = readInputs(args.files, io.readInput ? { readStdin: () => io.readInput!('-') } : {});
  for (const p of inputs.problems) io.stderr(`${p.source}: ${p.code}: ${p.message}\n`);
  if (inputs.problems.length > 0) return EXIT_INPUT;
  try {
    const { objects, results } = injectManifests(
      inputs.documents.map((d) => d.value),
      settings,
    );
    for (const r of results) {
      const name = `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}`;
      for (const w of r.warnings ?? []) io.stderr(`Warning: ${name}: ${w}\n`);
      if (!r.injected)
        io.stderr(`${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}: not injected (${r.reason})\n`);
    }
    io.stdout(objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
    return EXIT_OK;
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return EXIT_INVALID;
  }
}
