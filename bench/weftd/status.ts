/**
 * The status writer at scale (controlplane/statuswriter.ts), in process, no cluster: OBJECTS
 * VirtualServices and as many DestinationRules over as many Services, PROXIES simulated proxy
 * streams. Measures, medians of REPS:
 *   - a pass after one VirtualService changes (validation cached, analyzers over everything),
 *     against the baseline of the same run: a cold pass (every object validated);
 *   - status writes per change: one VirtualService edited, its rollout pending, then every proxy
 *     ACKing, against the baseline a writer without the up-to-date check would make (every object,
 *     every pass);
 *   - the time from the change to its Reconciled=True written, once the proxies run it (the
 *     writer's own latency: debounce and pass; the push and ACK round trip are bench/weftd/acks.ts);
 *   - validations per change: the registry's memoised verdict (controlplane/validity.ts) is read
 *     by every pass and status write, so one edit is validated once (target: 1).
 * The API server is a map: applyStatus stores the status and fires the informer event, as the
 * real one would. Writes bench/weftd/last-run-status.json.
 *   npx tsx bench/weftd/status.ts        OBJECTS=1000 PROXIES=2000 REPS=5
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type {
  KubeRegistry,
  RegistryEventResult,
  Snapshot,
  WatchedKind,
} from '../../controlplane/registry.js';
import type { ProxyProgress } from '../../controlplane/status.js';
import { StatusWriter } from '../../controlplane/statuswriter.js';
import { ObjectValidity } from '../../controlplane/validity.js';
import type { KubeClient } from '../../pkg/kube/client.js';
import type { KubeObject } from '../../pkg/kube/types.js';
import { createLogger } from '../../pkg/log/index.js';

const OBJECTS = Number(process.env.OBJECTS ?? 1000);
const PROXIES = Number(process.env.PROXIES ?? 2000);
const REPS = Number(process.env.REPS ?? 5);
const log = createLogger('bench', { silent: true });
const NET = 'networking.istio.io/v1';
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Registry and API server in one: objects by kind, a generation, events on every write. */
class World {
  generation = 1;
  readonly objects = new Map<WatchedKind, Map<string, KubeObject>>();
  readonly changed = new Map<string, number>();
  readonly listeners: ((kind: WatchedKind, result: RegistryEventResult) => void)[] = [];
  /** The registry's verdicts, as weftd's (validation once per object version). */
  readonly validity = new ObjectValidity({ log });
  writes = 0;
  writesByObject = new Map<string, number>();

  constructor() {
    for (let i = 0; i < OBJECTS; i++) {
      const ns = `ns${i % 20}`;
      this.put('VirtualService', {
        apiVersion: NET,
        kind: 'VirtualService',
        metadata: { name: `vs${i}`, namespace: ns, uid: `vs${i}`, generation: 1 },
        spec: { hosts: [`svc${i}`], http: [{ route: [{ destination: { host: `svc${i}`, subset: 'v1' } }] }] },
      });
      this.put('DestinationRule', {
        apiVersion: NET,
        kind: 'DestinationRule',
        metadata: { name: `dr${i}`, namespace: ns, uid: `dr${i}`, generation: 1 },
        spec: { host: `svc${i}`, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
      });
    }
  }

  put(kind: WatchedKind, o: KubeObject): void {
    if (!this.objects.has(kind)) this.objects.set(kind, new Map());
    this.objects.get(kind)!.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
  }

  /** A spec edit: new generation, a new registry generation for it. */
  edit(name: string): void {
    const o = this.objects.get('VirtualService')!.get(name)!;
    this.generation++;
    o.metadata.generation = (o.metadata.generation ?? 1) + 1;
    this.changed.set(`VirtualService/${name}`, this.generation);
    for (const fn of this.listeners) fn('VirtualService', 'changed');
  }

  registry(): KubeRegistry {
    const services = [...Array(OBJECTS).keys()].map((i) => ({
      host: `svc${i}.ns${i % 20}.svc.cluster.local`,
      namespace: `ns${i % 20}`,
      addresses: [],
      ports: [],
      endpoints: [],
    }));
    const snapshot = { services, serviceEntries: [] } as unknown as Snapshot;
    return {
      generation: this.generation,
      synced: () => true,
      unsynced: () => [],
      snapshot: () => snapshot,
      pod: () => undefined,
      onChange: () => undefined,
      onEvent: (fn) => void this.listeners.push(fn),
      list: (kind) => [...(this.objects.get(kind)?.values() ?? [])],
      changedAt: (kind, ns, name) => this.changed.get(`${kind}/${ns}/${name}`) ?? 1,
      validation: (o) => this.validity.validation(o),
      events: 0,
      ignoredEvents: 0,
      hasSynced: Promise.resolve(),
      stop: () => undefined,
    };
  }

  /** The API calls the writer makes: a Lease (always granted) and status applies. */
  kube(): KubeClient {
    let lease: KubeObject | null = null;
    return {
      get: () => Promise.resolve(lease),
      create: (o: KubeObject) => Promise.resolve((lease = o)),
      replace: (o: KubeObject) => Promise.resolve((lease = o)),
      applyStatus: (o: KubeObject) => {
        const kind = o.kind as WatchedKind;
        const key = `${o.metadata.namespace}/${o.metadata.name}`;
        const live = this.objects.get(kind)!.get(key)!;
        live.status = o.status;
        this.writes++;
        this.writesByObject.set(`${kind}/${key}`, (this.writesByObject.get(`${kind}/${key}`) ?? 0) + 1);
        for (const fn of this.listeners) fn(kind, 'ignored');
        return Promise.resolve(live);
      },
    } as unknown as KubeClient;
  }
}

async function quiet(w: World, writer: StatusWriter): Promise<void> {
  let last = -1;
  while (last !== w.writes + writer.counts.passes) {
    last = w.writes + writer.counts.passes;
    await sleep(300);
  }
}

async function main(): Promise<void> {
  const w = new World();
  let runningAt = 1;
  const proxies = (): ProxyProgress[] =>
    Array.from({ length: PROXIES }, (_, i) => ({
      name: `ns${i % 20}/p${i}`,
      namespace: `ns${i % 20}`,
      acks: true,
      runningAt,
    }));
  let progress = (): void => undefined;
  const writer = new StatusWriter({
    kube: w.kube(),
    registry: w.registry(),
    log,
    lease: { namespace: 'weft-system', identity: 'bench' },
    writesPerSecond: 1e6, // the API server here is a map: measure the writer, not the limiter
    burst: 1e6,
    debounce: { afterMs: 20, maxMs: 200 },
    leaseTiming: { retryPeriodMs: 50 },
    proxies: { list: proxies, onProgress: (fn) => (progress = fn) },
  });
  const passMs: number[] = [];
  const realPass = (writer as unknown as { pass(): void }).pass.bind(writer);
  (writer as unknown as { pass(): void }).pass = () => {
    const t = performance.now();
    realPass();
    passMs.push(performance.now() - t);
  };
  writer.start();
  await quiet(w, writer);
  const coldPassMs = passMs[0]!;
  const initialWrites = w.writes;

  const incremental: number[] = [];
  const writesPerChange: number[] = [];
  const otherWrites: number[] = [];
  const toReconciledMs: number[] = [];
  const validationsPerChange: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const name = `ns${r % 20}/vs${r}`;
    const before = new Map(w.writesByObject);
    const total = w.writes;
    const validated = w.validity.validations;
    passMs.length = 0;
    w.edit(name);
    await quiet(w, writer); // the rollout is pending: the proxies have not ACKed
    incremental.push(median(passMs));
    const t = performance.now();
    runningAt = w.generation; // every proxy ACKs the config computed at the change
    progress();
    const key = `VirtualService/${name}`;
    while (
      (
        w.objects.get('VirtualService')!.get(name)!.status as {
          conditions?: { type: string; status: string }[];
        }
      )?.conditions?.find((c) => c.type === 'Reconciled')?.status !== 'True'
    )
      await sleep(5);
    toReconciledMs.push(performance.now() - t);
    await quiet(w, writer);
    const mine = (w.writesByObject.get(key) ?? 0) - (before.get(key) ?? 0);
    writesPerChange.push(mine);
    otherWrites.push(w.writes - total - mine);
    // every pass and status write of the rollout reuses the verdict: one validation per version
    validationsPerChange.push(w.validity.validations - validated);
  }
  await writer.stop();

  const result = {
    objects: OBJECTS * 2,
    proxies: PROXIES,
    reps: REPS,
    coldPassMs: Number(coldPassMs.toFixed(1)),
    incrementalPassMs: Number(median(incremental).toFixed(1)),
    passRatioVsCold: Number((median(incremental) / coldPassMs).toFixed(3)),
    initialWrites,
    writesPerChangeOfTheObject: median(writesPerChange),
    writesPerChangeOfOthers: median(otherWrites),
    naiveWritesPerPass: OBJECTS * 2,
    validationsPerChange: median(validationsPerChange),
    changeToReconciledWrittenMs: Number(median(toReconciledMs).toFixed(1)),
    rssMB: Math.round(process.memoryUsage().rss / 1e6),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  writeFileSync('bench/weftd/last-run-status.json', `${JSON.stringify(result, null, 2)}\n`);
}

await main();
