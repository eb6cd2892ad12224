#!/usr/bin/env node
// weft-proxy launcher (`npx weft-proxy run --config FILE`): proxy/main on the project's pinned
// Node, from dist/ when fresh or the sources through tsx (bin/launch.js). Always a child process:
// V8 reads --max-semi-space-size only at start-up (docs/proxy.md), and the config loader re-runs
// the entry point by its path. SIGTERM (drain) and SIGHUP (reload) are passed on.
import { main } from './launch.js';

main({ name: 'weft-proxy', entry: 'proxy/main', nodeArgs: ['--max-semi-space-size=2'] });
