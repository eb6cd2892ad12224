/**
 * The daemons (weftd, the operator, the webhook) reach the API server through weft's own
 * kubeconfig loader and client (ADR 0022): following their static, non-type imports,
 * `@kubernetes/client-node` (~60 MB RSS, ~870 modules) and `undici` are never reached. weftctl
 * may load client-node, lazily, for exec / auth-provider users only (cli/kube-plugins.ts).
 */
import { expect } from 'chai';
import { reachable } from '../../support/imports.js';

describe('daemon imports', () => {
  for (const entry of ['controlplane/main.ts', 'operator/main.ts', 'webhook/main.ts', 'cli/weftd.ts']) {
    it(`${entry} reaches neither @kubernetes/client-node nor undici`, () => {
      const { files, packages } = reachable(entry);
      expect(files.size).to.be.greaterThan(10);
      expect(packages.get('@kubernetes/client-node'), 'imported by').to.equal(undefined);
      expect(packages.get('undici'), 'imported by').to.equal(undefined);
    });
  }
});
