/** Istio's API kinds as TypeScript models (field names exactly as in Istio's API reference). */
export * from './common.js';
export * from './virtualservice.js';
export * from './destinationrule.js';
export * from './gateway.js';
export * from './serviceentry.js';
export * from './sidecar.js';
export * from './peerauthentication.js';
export * from './authorizationpolicy.js';
export * from './requestauthentication.js';
export * from './workloadentry.js';
export * from './telemetry.js';
export * from './proxyconfig.js';
export * from './envoyfilter.js';
export * from './wasmplugin.js';
