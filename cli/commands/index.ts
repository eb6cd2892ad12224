/**
 * Every weftctl subcommand, in `--help` order. To add one: write `cli/commands/<name>.ts`
 * exporting a `(argv, io) => exitCode` function, and add one line here.
 */
import type { Command } from '../command.js';
import { runValidate } from './validate.js';
import { runAnalyze } from './analyze.js';
import { runRender } from './render.js';
import { runKubeInject } from './kube-inject.js';

export const commands: Command[] = [
  {
    name: 'validate',
    summary: 'validate Istio and weft objects in files, as the admission webhook would',
    run: runValidate,
  },
  {
    name: 'analyze',
    summary: 'validate a set of files and check them across objects (GitOps CI)',
    run: runAnalyze,
  },
  { name: 'render', summary: 'print the objects the operator would apply for a Mesh', run: runRender },
  {
    name: 'kube-inject',
    summary: 'print manifests with the sidecar injected, as the mutating webhook would',
    run: runKubeInject,
  },
];
