/* global process */
// The weft image's one entry point: `weft COMPONENT [ARGS...]` runs that component's compiled
// main module with ARGS, exactly as `node dist/COMPONENT/main.js ARGS` would (each main runs
// itself when process.argv[1] names it). One image serves every deployable (ADR 0004), so a
// node pulls one set of layers for the operator, weftd, the webhook, sidecars and gateways.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const COMPONENTS = {
  proxy: 'dist/proxy/main.js', // proxy sidecar | proxy gateway | proxy init ... (injected pods)
  operator: 'dist/operator/main.js',
  weftd: 'dist/controlplane/main.js',
  controlplane: 'dist/controlplane/main.js',
  webhook: 'dist/webhook/main.js',
  weftctl: 'dist/cli/main.js',
};

const [name, ...args] = process.argv.slice(2);
const usage = `usage: weft COMPONENT [ARGS...]   components: ${Object.keys(COMPONENTS).join(', ')}\n`;
if (name === undefined || name === '--help' || name === '-h') {
  process.stdout.write(usage);
  process.exit(name === undefined ? 2 : 0);
}
const rel = COMPONENTS[name];
if (rel === undefined) {
  process.stderr.write(`weft: unknown component "${name}"\n${usage}`);
  process.exit(2);
}
const main = join(root, rel);
if (!existsSync(main)) {
  process.stderr.write(`weft: ${name} is not in this image (${rel} missing)\n`);
  process.exit(2);
}
process.argv = [process.argv[0], main, ...args];
await import(pathToFileURL(main).href);
