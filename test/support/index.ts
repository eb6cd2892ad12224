/**
 * Test support for integration suites (run with `--require test/support/cluster-hooks.ts`).
 * See docs/local-cluster.md for the how-to.
 */
export {
  testCluster,
  freshNamespace,
  apiErrorMessage,
  apiErrorCode,
  type TestCluster,
  type KubectlResult,
  type KubectlOptions,
  type FreshNamespaceOptions,
} from './cluster.js';
export { installCRDs, crdFiles } from './crds.js';
export { registerWebhook, type WebhookSpec, type RegisteredWebhook } from './webhooks.js';
export { makeServingCert, type ServingCert } from './certs.js';
export { onCleanup } from './scope.js';
export { waitFor, sleep } from './wait.js';
