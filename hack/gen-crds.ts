/**
 * Writes crds/<plural>.<group>.yaml for every kind in pkg/api/registry.ts and removes stale
 * generated files. Run with `npm run gen:crds`.
 */
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kindDefinitions } from '../pkg/api/registry.js';
import { CRD_HEADER, crdFileName, renderCRDYaml } from '../pkg/api/crd.js';

const MAX_BYTES = 256 * 1024;
const dir = join(import.meta.dirname, '..', 'crds');

const wanted = new Set<string>();
for (const def of kindDefinitions) {
  const file = crdFileName(def);
  const text = renderCRDYaml(def);
  if (Buffer.byteLength(text) >= MAX_BYTES) {
    console.error(
      `${file}: ${Buffer.byteLength(text)} bytes, over the ${MAX_BYTES}-byte client-side apply limit`,
    );
    process.exit(1);
  }
  writeFileSync(join(dir, file), text);
  wanted.add(file);
  console.log(`wrote crds/${file} (${Buffer.byteLength(text)} bytes)`);
}
for (const file of readdirSync(dir)) {
  if (
    file.endsWith('.yaml') &&
    !wanted.has(file) &&
    readFileSync(join(dir, file), 'utf8').startsWith(CRD_HEADER)
  ) {
    unlinkSync(join(dir, file));
    console.log(`removed stale crds/${file}`);
  }
}
