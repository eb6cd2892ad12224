/** Prints a host snapshot as JSON (hack/test-e2e.sh keeps one from before `up`). */
import { snapshot } from './host.js';

process.stdout.write(`${JSON.stringify(snapshot(), null, 2)}\n`);
