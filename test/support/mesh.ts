/**
 * weftd's mesh settings for tests of a sidecar's whole scope (exportTo, Sidecar egress, ADR 0015):
 * with on-demand hosts (ADR 0023) a sidecar starts with its own namespace only, so a test of what
 * the full scope holds says they are off, whatever the default (off today; ADR 0023 decision 1
 * says what turning it on waits for).
 */
import { DEFAULT_MESH, type MeshSettings } from '../../controlplane/flags.js';

export const WHOLE_SCOPE_MESH: MeshSettings = { ...DEFAULT_MESH, onDemandHosts: false };
