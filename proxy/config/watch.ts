/**
 * Watches the config file for hot reload. Editors and `kubectl cp`/ConfigMap updates replace
 * files by rename, so the directory is watched (not the inode) and events are debounced; a
 * reload happens only when the file's content actually changed.
 */
import type { FSWatcher } from 'node:fs';
import { fs } from '../../pkg/builtins/index.js';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';

export function watchFile(file: string, onChange: () => void, debounceMs = 100): { close(): void } {
  const dir = path.dirname(path.resolve(file));
  const base = path.basename(file);
  let timer: NodeJS.Timeout | null = null;
  let lastHash = '';
  const hash = async (): Promise<string> => {
    try {
      return createHash('sha256').update(await readFile(file)).digest('hex');
    } catch {
      return 'unreadable';
    }
  };
  void hash().then((h) => (lastHash = h));
  const fire = (): void => {
    timer = null;
    void hash().then((h) => {
      if (h === lastHash) return;
      lastHash = h;
      onChange();
    });
  };
  // ConfigMap volumes swap a `..data` symlink, so any event in the directory is a candidate
  const w: FSWatcher = fs.watch(dir, (_event, name) => {
    if (name !== null && name !== base && !name.startsWith('..')) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  });
  w.on('error', () => undefined);
  return {
    close() {
      if (timer) clearTimeout(timer);
      w.close();
    },
  };
}
