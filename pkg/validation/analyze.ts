/**
 * Cross-object checks: problems no single object shows, that break Istio users in production.
 */
import type { ObjectFinding } from './types.js';

export function analyze(objs: unknown[], defaultNamespace: string): ObjectFinding[] {
  void objs;
  void defaultNamespace;
  return [];
}
