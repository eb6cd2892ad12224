/**
 * weftd's mesh settings for tests of a sidecar's whole scope (exportTo, Sidecar egress, ADR 0015):
 * on-demand hosts (ADR 0023) are on by default, and with them a sidecar starts with its own
 * namespace only, so a test of what the full scope holds turns them off.
 */
import { DEFAULT_MESH, type MeshSettings } from '../../controlplane/flags.js';

export const WHOLE_SCOPE_MESH: MeshSettings = { ...DEFAULT_MESH, onDemandHosts: false };
