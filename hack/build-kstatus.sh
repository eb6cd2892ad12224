#!/usr/bin/env bash
# Builds the kstatus test helper (hack/kstatus: sigs.k8s.io/cli-utils' kstatus library) from the
# Go module proxy into a cache outside the work tree keyed by its sources; prints the binary's
# path last. About a minute cold on two cores, nothing warm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
key=$(cat "$here/kstatus/go.mod" "$here/kstatus/go.sum" "$here/kstatus/main.go" | sha256sum | cut -c1-12)
cache_root=${WEFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}
bin="$cache_root/bin/kstatus-cli-utils-v0.37.2-$key/kstatus"
if [ ! -x "$bin" ]; then
  mkdir -p "$(dirname "$bin")"
  echo "[build-kstatus] building the kstatus helper (sigs.k8s.io/cli-utils v0.37.2)..." >&2
  tmp="$bin.tmp.$$"
  (cd "$here/kstatus" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp" .)
  mv "$tmp" "$bin"
fi
echo "$bin"
