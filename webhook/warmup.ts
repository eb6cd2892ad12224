/**
 * Validates one minimal object of every kind before the server takes traffic: the validator
 * compiles each kind's schema on first use (~300 ms here), and that cost belongs at startup,
 * not inside the first `kubectl apply`'s timeout.
 */
import { kindDefinitions } from '../pkg/api/registry.js';
import { validateObject } from '../pkg/validation/index.js';

export function warmUpValidation(): number {
  const started = performance.now();
  for (const def of kindDefinitions) {
    validateObject({
      apiVersion: `${def.group}/${def.storageVersion}`,
      kind: def.kind,
      metadata: { name: 'warm-up', ...(def.scope === 'Namespaced' ? { namespace: 'default' } : {}) },
      spec: {},
    });
  }
  return Math.round(performance.now() - started);
}
