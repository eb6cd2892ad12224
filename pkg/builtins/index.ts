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
import type * as Http2 from 'node:http2';

const require = createRequire(import.meta.url);

export const http = require('node:http') as typeof Http;
export const fs = require('node:fs') as typeof Fs;

let http2Module: typeof Http2 | undefined;

/**
 * `node:http2`, loaded on first use (+5 MB RSS over node:http and node:tls: nghttp2 and its
 * modules): a sidecar whose app and upstreams speak HTTP/1 never loads it. Synchronous, so the
 * first HTTP/2 connection or upstream session is set up in the same tick as before.
 */
export function http2(): typeof Http2 {
  return (http2Module ??= require('node:http2') as typeof Http2);
}
