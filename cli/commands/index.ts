/**
 * Every weftctl subcommand, in `--help` order. To add one: write `cli/commands/<name>.ts`
 * exporting a `(argv, io) => exitCode` function (or a Promise of one), and add one line here.
 */
import type { Command } from '../command.js';
import { runValidate } from './validate.js';
import { runAnalyze } from './analyze.js';
import { runRender } from './render.js';
import { runKubeInject } from './kube-inject.js';
import { runProxyStatus } from './proxy-status.js';
import { runProxyConfig } from './proxy-config.js';
import { runExplain } from './explain.js';

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
  {
    name: 'proxy-status',
    summary: 'list the proxies connected to weftd and whether each has its current config',
    run: runProxyStatus,
  },
  {
    name: 'proxy-config',
    summary: "print a pod proxy's listeners, routes, clusters or endpoints",
    run: runProxyConfig,
  },
  {
    name: 'explain',
    summary: 'say where a request from a pod would go and why, without sending it',
    run: runExplain,
  },
];
