/**
 * What the webhook watches: Namespaces (injection labels), the Mesh (injection settings) and
 * every mesh kind (the cross-object index). Informers keep local caches so an admission request
 * costs no API call in the common case.
 */
import type { V1Namespace } from '@kubernetes/client-node';
import type { MeshInjection } from '../pkg/api/mesh.js';
import { meshKinds } from '../pkg/api/registry.js';
import { errorMessage } from '../pkg/errors/index.js';
import { settingsFromMesh, type InjectionSettings } from '../pkg/inject/index.js';
import type { KubeClient } from '../pkg/kube/client.js';
import type { Informer } from '../pkg/kube/informer.js';
import { ownInformers, type InformerSource } from '../pkg/kube/shared-informers.js';
import type { KubeObject } from '../pkg/kube/types.js';
import type { Logger } from '../pkg/log/index.js';
import { MeshIndex } from './mesh-index.js';

/** A namespace created a moment before its first pod may not be in the cache yet: ask, briefly. */
const NAMESPACE_GET_TIMEOUT_MS = 2000;

export class ClusterState {
  readonly index: MeshIndex;
  private readonly namespaces: Informer;
  private readonly meshes: Informer;
  private readonly kinds: Informer[];

  constructor(
    private readonly client: KubeClient,
    private readonly base: InjectionSettings,
    private readonly log: Logger,
    /** Shared with weftd's registry in the combined control plane (pkg/kube/shared-informers.ts). */
    informerOf: InformerSource = ownInformers(client),
  ) {
    this.namespaces = informerOf({ apiVersion: 'v1', kind: 'Namespace' }, log);
    this.meshes = informerOf({ apiVersion: 'mesh.weft.dev/v1alpha1', kind: 'Mesh' }, log);
    this.index = new MeshIndex(meshKinds.length);
    this.kinds = meshKinds.map((def) => {
      const inf = informerOf({ apiVersion: `${def.group}/${def.storageVersion}`, kind: def.kind }, log);
      inf.on((type, obj) => (type === 'delete' ? this.index.remove(obj) : this.index.upsert(obj)));
      void inf.hasSynced.then(() => this.index.markSynced());
      return inf;
    });
  }

  start(): void {
    for (const inf of [this.namespaces, this.meshes, ...this.kinds]) inf.start();
  }

  stop(): void {
    for (const inf of [this.namespaces, this.meshes, ...this.kinds]) inf.stop();
  }

  get synced(): { namespaces: boolean; mesh: boolean; index: boolean } {
    return { namespaces: this.namespaces.isSynced, mesh: this.meshes.isSynced, index: this.index.ready };
  }

  /** Settings of the oldest Mesh (the operator keeps one active), or the defaults when there is none. */
  settings(): InjectionSettings {
    const meshes = this.meshes
      .list()
      .sort((a, b) =>
        String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)),
      );
    const spec = meshes[0]?.spec as { injection?: MeshInjection } | undefined;
    return settingsFromMesh(spec?.injection, this.base);
  }

  async namespace(name: string): Promise<Pick<V1Namespace, 'metadata'> | undefined> {
    const cached = this.namespaces.get(name);
    if (cached) return cached as unknown as Pick<V1Namespace, 'metadata'>;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${NAMESPACE_GET_TIMEOUT_MS} ms`)),
        NAMESPACE_GET_TIMEOUT_MS,
      );
    });
    try {
      const ns = await Promise.race([
        this.client.get<KubeObject>({ apiVersion: 'v1', kind: 'Namespace', name }),
        timeout,
      ]);
      return (ns ?? undefined) as Pick<V1Namespace, 'metadata'> | undefined;
    } catch (err) {
      // Failing the request (failurePolicy decides) beats silently skipping injection in a mesh namespace.
      throw new Error(`cannot read namespace ${name}: ${errorMessage(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}
