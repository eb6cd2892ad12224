/**
 * The functions with the most self time in a .cpuprofile (bench/weftd/profile.ts), and the
 * share of the profile each takes:   npx tsx bench/weftd/profile-top.ts x.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
const file = process.argv[2];
if (file === undefined) throw new Error('usage: profile-top.ts <file.cpuprofile> [N]');
const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; startTime: number; endTime: number };
const self = new Map<string, number>();
let total = 0;
for (const n of p.nodes) {
  const hits = n.hitCount ?? 0;
  total += hits;
  const where = n.callFrame.url.replace(/^.*\/(?=[^/]+\/[^/]+$)/, '');
  const key = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + hits);
}
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 25));
process.stdout.write(`${file}: ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms profiled\n`);
for (const [k, v] of top) process.stdout.write(`${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}\n`);
