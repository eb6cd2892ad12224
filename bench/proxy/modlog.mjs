/* global process */
// Preload for bench/proxy/sidecar.ts's "what is loaded" run (never for the RSS runs: the hook
// itself costs memory). Records every module the process loads (URL and source size); on
// SIGUSR2 writes them with process.memoryUsage() and V8 heap space sizes to WEFT_MODLOG.
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const loaded = [];
registerHooks({
  load(url, context, next) {
    const r = next(url, context);
    const size = r.source === undefined || r.source === null ? 0 : r.source.length;
    loaded.push({ url, size });
    return r;
  },
});
process.on('SIGUSR2', () => {
  writeFileSync(
    process.env.WEFT_MODLOG,
    JSON.stringify({
      modules: loaded,
      memoryUsage: process.memoryUsage(),
      heapSpaces: v8
        .getHeapSpaceStatistics()
        .map((s) => ({ name: s.space_name, used: s.space_used_size, size: s.space_size })),
    }),
  );
});
