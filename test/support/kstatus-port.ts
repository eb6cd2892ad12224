/**
 * A port of kstatus' generic checks (sigs.k8s.io/cli-utils pkg/kstatus) for unit tables that
 * must not need a Go build: deletionTimestamp → Terminating; observedGeneration ≠ generation →
 * InProgress; Reconciling=True → InProgress; Stalled=True → Failed; Ready=False → InProgress;
 * else Current. test/integration/kstatus-library.test.ts checks it against the library.
 */
export type Cond = { type: string; status: string };
export type Obj = {
  metadata: { generation?: number; deletionTimestamp?: string };
  status?: { observedGeneration?: number; conditions?: Cond[] };
};

export function kstatus(obj: Obj): 'Terminating' | 'InProgress' | 'Failed' | 'Current' {
  if (obj.metadata.deletionTimestamp) return 'Terminating';
  const og = obj.status?.observedGeneration;
  if (og !== undefined && og !== obj.metadata.generation) return 'InProgress';
  const conds = obj.status?.conditions ?? [];
  const is = (t: string, s: string): boolean => conds.some((c) => c.type === t && c.status === s);
  if (is('Reconciling', 'True')) return 'InProgress';
  if (is('Stalled', 'True')) return 'Failed';
  if (is('Ready', 'False')) return 'InProgress';
  return 'Current';
}
