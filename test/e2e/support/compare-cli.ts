/** Compares two host snapshots; exits 1 if the node left anything behind. */
import { readFileSync } from 'node:fs';
import { demoStateDir } from '../../../hack/cluster/paths.js';
import { diff, type HostSnapshot } from './host.js';

const [beforeFile, afterFile] = process.argv.slice(2);
if (beforeFile === undefined || afterFile === undefined) {
  process.stderr.write('usage: compare-cli.ts BEFORE.json AFTER.json\n');
  process.exit(2);
}
const load = (f: string): HostSnapshot => JSON.parse(readFileSync(f, 'utf8')) as HostSnapshot;
const d = diff(load(beforeFile), load(afterFile), demoStateDir);
for (const l of d.other) process.stdout.write(`host changed (not by the node): ${l}\n`);
for (const l of d.node) process.stdout.write(`LEFT BEHIND BY THE NODE: ${l}\n`);
process.stdout.write(d.node.length === 0 ? 'host check: nothing the node made is left\n' : '');
process.exit(d.node.length === 0 ? 0 : 1);
