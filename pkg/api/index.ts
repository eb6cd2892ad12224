/** weft's API: Istio kinds, the Mesh kind, and the registry of kind definitions. */
export * from './kind.js';
export * from './istio.js';
export * from './mesh.js';
export * from './registry.js';
