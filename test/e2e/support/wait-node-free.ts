/**
 * `tsx test/e2e/support/wait-node-free.ts`: exits 0 once no other checkout's node runs on this
 * machine, 1 after WEFT_E2E_NODE_WAIT_S seconds (default 1500) with the owner named.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { demoStateDir } from '../../../hack/cluster/paths.js';
import { runningOtherOwner, waitForNodeFree } from '../../../hack/node/host.js';

const timeoutS = Number(process.env.WEFT_E2E_NODE_WAIT_S ?? 1500);
const free = await waitForNodeFree({
  busyWith: () => runningOtherOwner(demoStateDir),
  sleep: (ms) => sleep(ms),
  now: () => Date.now(),
  say: (line) => process.stderr.write(`test-e2e: ${line}\n`),
  timeoutMs: timeoutS * 1000,
  pollMs: 5000,
});
if (!free) {
  process.stderr.write(
    `test-e2e: FAILED: another weft node (state ${runningOtherOwner(demoStateDir) ?? '?'}) still runs on this machine after ${timeoutS} s; run \`hack/local-cluster down\` in its checkout\n`,
  );
  process.exit(1);
}
