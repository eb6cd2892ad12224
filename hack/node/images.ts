/**
 * Builds (or reuses) the node's images with hack/images/build.sh and imports them into
 * containerd's `k8s.io` namespace, where the kubelet finds them, so no pod ever needs a
 * registry. Images are made on this machine; nothing is pulled.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { WeftError } from '../../pkg/errors/index.js';
import { repoRoot } from '../cluster/paths.js';

export interface BuiltImage {
  name: string;
  archive: string;
}

/** Images the node imports on every `up`; node-base is only a build input (echo contains it). */
export const NODE_IMAGES = ['pause', 'toolbox', 'echo'];

/** Parses build.sh's "NAME<TAB>ARCHIVE" lines. */
export function parseBuildOutput(text: string): BuiltImage[] {
  const out: BuiltImage[] = [];
  for (const line of text.split('\n')) {
    const [name, archive, ...rest] = line.split('\t');
    if (name === undefined || archive === undefined || rest.length > 0 || name === '' || archive === '')
      continue;
    out.push({ name, archive });
  }
  return out;
}

/** Runs hack/images/build.sh for `targets`; its progress goes to our stderr. */
export function buildImages(targets: string[]): BuiltImage[] {
  const script = join(repoRoot, 'hack', 'images', 'build.sh');
  const r = spawnSync('bash', [script, ...targets], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 15 * 60_000,
  });
  const images = parseBuildOutput(r.stdout ?? '');
  if (r.status !== 0 || images.length === 0) {
    throw new WeftError(
      'WEFT_IMAGE_BUILD_FAILED',
      `hack/images/build.sh ${targets.join(' ')} failed (exit ${r.status ?? 'signal'}); see its output above`,
    );
  }
  return images;
}

function ctr(socket: string, args: string[], timeoutMs = 120_000): { ok: boolean; out: string } {
  const r = spawnSync('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

/** Imports each archive (unpacked for the overlayfs snapshotter) and adds `aliases` as tags. */
export function importImages(
  socket: string,
  images: BuiltImage[],
  aliases: Record<string, string[]> = {},
): void {
  for (const img of images) {
    if (!existsSync(img.archive)) throw new WeftError('WEFT_IMAGE_BUILD_FAILED', `${img.archive} is missing`);
    const r = ctr(socket, ['images', 'import', '--no-unpack=false', img.archive]);
    if (!r.ok)
      throw new WeftError(
        'WEFT_IMAGE_BUILD_FAILED',
        `importing ${img.name} into containerd failed: ${r.out.trim()}`,
      );
    for (const alias of aliases[img.name] ?? []) {
      ctr(socket, ['images', 'rm', alias]);
      const t = ctr(socket, ['images', 'tag', img.name, alias]);
      if (!t.ok)
        throw new WeftError(
          'WEFT_IMAGE_BUILD_FAILED',
          `tagging ${img.name} as ${alias} failed: ${t.out.trim()}`,
        );
    }
  }
}

/** Names of the images containerd's k8s.io namespace holds. */
export function listImages(socket: string): string[] {
  const r = ctr(socket, ['images', 'ls', '-q'], 10_000);
  return r.ok ? r.out.split('\n').filter((l) => l.trim() !== '') : [];
}
