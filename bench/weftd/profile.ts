/**
 * CPU profiles of a bench child around what is measured (PROF=<dir>): `profile('x')` starts one,
 * the next `profile('x')` call writes it to <dir>/x.cpuprofile (open it in Chrome DevTools, or
 * summarize it with bench/weftd/profile-top.ts). Without PROF, nothing.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

const dir = process.env.PROF;
let session: Session | undefined;

export async function profile(name: string): Promise<{ file?: string }> {
  if (dir === undefined || dir === '') return {};
  if (session === undefined) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    return {};
  }
  const { profile: p } = await session.post('Profiler.stop');
  session.disconnect();
  session = undefined;
  const file = join(dir, `${name}.cpuprofile`);
  writeFileSync(file, JSON.stringify(p));
  return { file };
}
