/** Serving certificates for webhook and operator servers under test (node-forge CA + leaf). */
export { makeServingCert, type ServingCert } from '../../hack/cluster/pki.js';
