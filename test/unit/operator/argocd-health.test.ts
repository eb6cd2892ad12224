/**
 * Runs the Argo CD health check for Mesh (config/argocd/health/mesh.weft.dev/Mesh/health.lua)
 * with a real Lua 5.4 interpreter (Debian's lua5.4, installed by hack/ensure-deps.sh) over the
 * fixtures listed in health_test.yaml — the same layout Argo CD's own resource_customizations
 * tests use. Each fixture becomes the global `obj`, as Argo CD sets it.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { STATUS_KINDS } from '../../../controlplane/statuswriter.js';

const dir = 'config/argocd/health/mesh.weft.dev/Mesh';
const lua = readFileSync(join(dir, 'health.lua'), 'utf8');

/** A JS value as a Lua table constructor (strings escaped via JSON, which Lua 5.4 accepts for these). */
export function toLua(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `{${v.map(toLua).join(', ')}}`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `[${JSON.stringify(k)}] = ${toLua(x)}`)
    .join(', ')}}`;
}

function runHealth(obj: unknown): { status: string; message: string } {
  const script = `obj = ${toLua(obj)}\nlocal function check()\n${lua}\nend\nlocal hs = check()\nio.write(hs.status, "\\n", hs.message or "")`;
  const r = spawnSync('lua5.4', ['-'], { input: script, encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run lua5.4 (install it with hack/ensure-deps.sh): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`lua5.4 failed: ${r.stderr}`);
  const [status = '', ...rest] = r.stdout.split('\n');
  return { status, message: rest.join('\n') };
}

describe('Argo CD health check for Mesh (real lua5.4)', () => {
  const tests = (
    parse(readFileSync(join(dir, 'health_test.yaml'), 'utf8')) as {
      tests: { healthStatus: { status: string; message: string }; inputPath: string }[];
    }
  ).tests;
  it('covers healthy, progressing (reconciling, stale generation, no status), degraded and terminating', () => {
    const inputs = tests.map((t) => t.inputPath).join(' ');
    for (const f of [
      'healthy',
      'progressing_reconciling',
      'progressing_stale_generation',
      'progressing_no_status',
      'degraded_stalled',
      'terminating',
    ])
      expect(inputs).to.include(f);
  });
  for (const t of tests) {
    it(`${t.inputPath} → ${t.healthStatus.status}`, () => {
      const got = runHealth(parse(readFileSync(join(dir, t.inputPath), 'utf8')));
      expect(got).to.deep.equal(t.healthStatus);
    });
  }
  it('a Lua error would fail the test (the runner is not a stub)', () => {
    expect(() => runHealth(5)).to.throw(/lua5.4 failed/);
  });
});

describe('config/argocd/argocd-cm.yaml (the keys users merge into argocd-cm)', () => {
  const cm = parse(readFileSync('config/argocd/argocd-cm.yaml', 'utf8')) as { data: Record<string, string> };
  it('every key is a valid ConfigMap key (the API server refuses `*`, e.g. `networking.istio.io_*`)', () => {
    for (const k of Object.keys(cm.data)) expect(k).to.match(/^[-._a-zA-Z0-9]+$/);
  });
  it('the Mesh and every kind weftd writes status on has its key, with health.lua', () => {
    // spelled out rather than derived as the generator does, so a wrong group is caught
    const groups: Record<string, string> = {
      PeerAuthentication: 'security.istio.io',
      AuthorizationPolicy: 'security.istio.io',
      RequestAuthentication: 'security.istio.io',
      RateLimit: 'mesh.weft.dev',
      memquota: 'config.istio.io',
    };
    const group = (k: string): string => groups[k] ?? 'networking.istio.io';
    const want = ['mesh.weft.dev_Mesh', ...STATUS_KINDS.map((k) => `${group(k)}_${k}`)].map(
      (gk) => `resource.customizations.health.${gk}`,
    );
    expect(Object.keys(cm.data)).to.have.members(want);
    for (const k of want) expect(cm.data[k], k).to.equal(lua);
  });
});
