/**
 * A KubeRegistry over snapshots a test or bench builds, standing in for weftd's informers in the
 * discovery suites and the weftd benches. `change()` moves the generation, rebuilds the snapshot
 * and tells the subscribers, as an informer event would. One class, so a method added to the
 * interface is added here once.
 */
import type { KubeRegistry, PodInfo, Snapshot, TriggerType } from '../../controlplane/registry.js';
import type { ServiceRecord } from '../../pkg/translate/index.js';
import type { ValidationResult } from '../../pkg/validation/index.js';

export interface SnapshotRegistryOptions {
  /** What `change()` reports to onChange subscribers (default `config`). */
  trigger?: TriggerType;
  /** The labels of a pod by name (default `{app: <name>}`). */
  podLabels?: (name: string) => Record<string, string>;
}

/** The parts of a snapshot the builder leaves out: none of each. */
const EMPTY: Omit<Snapshot, 'generation'> = {
  services: [],
  kubeServices: [],
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  gateways: [],
  peerAuthentications: [],
};

export class SnapshotRegistry implements KubeRegistry {
  generation = 1;
  readonly events = 0;
  readonly ignoredEvents = 0;
  readonly hasSynced = Promise.resolve();
  private readonly listeners: ((t: TriggerType) => void)[] = [];
  private snap: Snapshot;

  /** `build` gets the generation and returns the snapshot's parts (loosely typed: hand-built). */
  constructor(
    private readonly build: (generation: number) => Record<string, unknown>,
    private readonly opts: SnapshotRegistryOptions = {},
  ) {
    this.snap = this.make();
  }

  private make(): Snapshot {
    return { ...EMPTY, ...this.build(this.generation), generation: this.generation } as Snapshot;
  }

  /** A change: `edit` first (it may move what `build` reads), then a new generation and snapshot. */
  change(edit?: () => void): void {
    edit?.();
    this.generation++;
    this.snap = this.make();
    for (const fn of this.listeners) fn(this.opts.trigger ?? 'config');
  }

  synced = (): boolean => true;
  unsynced = (): never[] => [];
  snapshot = (): Snapshot => this.snap;
  pod = (namespace: string, name: string): PodInfo => ({
    namespace,
    name,
    labels: this.opts.podLabels?.(name) ?? { app: name },
  });
  onChange(fn: (t: TriggerType) => void): void {
    this.listeners.push(fn);
  }
  onEvent(): void {}
  list(): never[] {
    return [];
  }
  changedAt(): number {
    return 0;
  }
  /** Hand-built snapshots hold what the test means to apply: valid by construction. */
  validation(): ValidationResult {
    return { errors: [], warnings: [] };
  }
  stop(): void {}
}

/** One HTTP service whose host names generation `g`: each change() is a new config. */
export function oneServiceAt(g: number): ServiceRecord[] {
  return [
    {
      host: `s${g}.ns.svc.cluster.local`,
      namespace: 'ns',
      addresses: ['10.0.0.1'],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      endpoints: [{ address: '10.1.0.1', labels: {}, ports: { http: 8080 } }],
    },
  ];
}

/**
 * `n` services of 100 endpoints each (a whole config of ~600 KB at 100), the endpoint addresses
 * marked with `tag` (a generation: each change() is a new config).
 */
export function manyServices(n: number, tag: number): ServiceRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    host: `s${i}.ns.svc.cluster.local`,
    namespace: 'ns',
    addresses: [`10.0.${i >> 8}.${i & 255}`],
    ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
    endpoints: Array.from({ length: 100 }, (_, j) => ({
      address: `10.${tag & 255}.${i & 255}.${j}`,
      // version: a label the proxy reads, so weftd keeps it (it trims the others, issue #19)
      labels: { app: `s${i}`, version: `v${j}` },
    })),
  }));
}
