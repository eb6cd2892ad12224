/**
 * `node:http` and `node:fs` loaded with require(), not `import` (ADR 0009). An ESM import of a
 * built-in builds its namespace by reading every export once, which runs lazy getters: Node 26's
 * `node:http` exports `WebSocket`, `CloseEvent` and `MessageEvent` as getters that load undici
 * (~90 internal modules, +15 MB RSS in a bare process; require('node:http') is +4 MB), and
 * `node:fs`'s `promises` getter and friends add ~3 MB. Processes that never use them should not
 * pay for them: import these bindings instead of the modules (types: `import type`).
 */
import { createRequire } from 'node:module';
import type * as Fs from 'node:fs';
import type * as Http from 'node:http';

const require = createRequire(import.meta.url);

export const http = require('node:http') as typeof Http;
export const fs = require('node:fs') as typeof Fs;
