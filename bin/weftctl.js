#!/usr/bin/env node
// weftctl launcher: cli/main on the project's pinned Node, from dist/ when fresh or the sources
// through tsx (bin/launch.js). Exit status and signals pass through unchanged.
import { main } from './launch.js';

main({ name: 'weftctl', entry: 'cli/main', inProcessEnv: { WEFTCTL_MAIN: '1' } });
