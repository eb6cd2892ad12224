/**
 * Every weftctl subcommand, in `--help` order. To add one: write `cli/commands/<name>.ts`
 * exporting a `(argv, io) => exitCode` function (or a Promise of one), and add one entry here.
 * Each command's module is imported only when it runs: `weftctl version` or `validate` must not
 * pay for the Kubernetes client that proxy-status loads (bench/cli measures it).
 */
import type { Command } from '../command.js';

export const commands: Command[] = [
  {
    name: 'validate',
    summary: 'validate Istio and weft objects in files, as the admission webhook would',
    run: async (argv, io) => (await import('./validate.js')).runValidate(argv, io),
  },
  {
    name: 'analyze',
    summary: 'validate a set of files and check them across objects (GitOps CI)',
    run: async (argv, io) => (await import('./analyze.js')).runAnalyze(argv, io),
  },
  {
    name: 'convert',
    summary: "print the RateLimit objects equivalent to Istio's memquota YAML",
    run: async (argv, io) => (await import('./convert.js')).runConvert(argv, io),
  },
  {
    name: 'render',
    summary: 'print the objects the operator would apply for a Mesh',
    run: async (argv, io) => (await import('./render.js')).runRender(argv, io),
  },
  {
    name: 'kube-inject',
    summary: 'print manifests with the sidecar injected, as the mutating webhook would',
    run: async (argv, io) => (await import('./kube-inject.js')).runKubeInject(argv, io),
  },
  {
    name: 'proxy-status',
    summary: 'list the proxies connected to weftd and whether each has its current config',
    run: async (argv, io) => (await import('./proxy-status.js')).runProxyStatus(argv, io),
  },
  {
    name: 'proxy-config',
    summary: "print a pod proxy's listeners, routes, clusters or endpoints",
    run: async (argv, io) => (await import('./proxy-config.js')).runProxyConfig(argv, io),
  },
  {
    name: 'explain',
    summary: 'say where a request from a pod would go and why, without sending it',
    run: async (argv, io) => (await import('./explain.js')).runExplain(argv, io),
  },
];
