/**
 * The original destination of a connection captured by iptables REDIRECT (the native addon in
 * original_dst.c, built by hack/build-native.sh). Without the addon the proxy still works, with
 * less precision: HTTP is routed by Host, inbound connections go to the Host header's port, and
 * non-HTTP outbound traffic cannot be passed through (one warning says so at start).
 */
import { createRequire } from 'node:module';
import { fs } from '../../pkg/builtins/index.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type net from 'node:net';

export interface OriginalDst {
  address: string;
  port: number;
  family: 4 | 6;
}

interface Addon {
  originalDst(fd: number): OriginalDst | null;
}

const ADDON_FILE = 'original_dst.node';

/** Next to this module in dist/, or the build output when running the sources through tsx. */
export function addonCandidates(here = path.dirname(fileURLToPath(import.meta.url))): string[] {
  const fromEnv = process.env.WEFT_NATIVE_DIR;
  return [
    ...(fromEnv ? [path.join(fromEnv, ADDON_FILE)] : []),
    path.join(here, ADDON_FILE),
    path.resolve(here, '../../dist/proxy/native', ADDON_FILE),
  ];
}

let loaded: { addon: Addon | null; reason: string } | undefined;

/** Loads the addon once; `reason` explains a null addon. */
export function loadAddon(): { addon: Addon | null; reason: string } {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const file of addonCandidates()) {
    if (!fs.existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    try {
      loaded = { addon: require(file) as Addon, reason: '' };
      return loaded;
    } catch (err) {
      tried.push(`${file} (${(err as Error).message})`);
    }
  }
  loaded = {
    addon: null,
    reason: `native addon not found (run hack/build-native.sh); tried ${tried.join(', ')}`,
  };
  return loaded;
}

/** The file descriptor behind a connected net.Socket (Linux TCP handles expose it). */
export function socketFd(socket: net.Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/**
 * Where `socket` was headed before the redirect; null when the addon is missing, the socket has
 * no fd, or the connection was not redirected (connected to the listener directly).
 */
export function originalDst(socket: net.Socket): OriginalDst | null {
  const { addon } = loadAddon();
  const fd = socketFd(socket);
  if (addon === null || fd === null) return null;
  const dst = addon.originalDst(fd);
  if (dst === null) return null;
  // a direct connection to the listener reports the listener itself: not a redirect
  if (dst.port === socket.localPort && dst.address === normalise(socket.localAddress)) return null;
  return dst;
}

function normalise(a: string | undefined): string {
  return (a ?? '').replace(/^::ffff:/, '');
}
