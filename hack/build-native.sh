#!/usr/bin/env bash
# Builds the proxy's native addon (proxy/native/original_dst.c: SO_ORIGINAL_DST for connections
# captured by iptables) into dist/proxy/native/original_dst.node, where both the compiled proxy
# (dist/proxy/native/*.js) and the tsx runs from source (proxy/native/*.ts) look for it.
# Plain `cc -shared -fPIC`, no node-gyp: the addon declares the few Node-API functions it uses
# (ABI-stable) and they resolve from the node executable at load time. Skipped when the output
# was built from the same source and compiler (hash in original_dst.node.sha256).
set -euo pipefail
cd "$(dirname "$0")/.."
src=proxy/native/original_dst.c
out_dir=dist/proxy/native
out=$out_dir/original_dst.node
cc_bin=${CC:-cc}
if ! command -v "$cc_bin" >/dev/null 2>&1; then
  echo "build-native: no C compiler ($cc_bin); install gcc and libc6-dev (hack/ensure-deps.sh does)" >&2
  exit 1
fi
hash=$( { cat "$src" "$0"; "$cc_bin" --version | head -1; } | sha256sum | cut -d' ' -f1)
if [ -f "$out" ] && [ "$(cat "$out.sha256" 2>/dev/null)" = "$hash" ]; then
  exit 0
fi
mkdir -p "$out_dir"
tmp=$(mktemp "$out_dir/.original_dst.XXXXXX")
trap 'rm -f "$tmp"' EXIT
"$cc_bin" -O2 -Wall -Wextra -shared -fPIC -fvisibility=hidden -o "$tmp" "$src"
chmod 0755 "$tmp" # the image runs the proxy as a non-root uid
mv -f "$tmp" "$out"
echo "$hash" >"$out.sha256"
echo "build-native: built $out" >&2
