#!/usr/bin/env bash
# Builds CoreDNS for the local node from its Go module (hack/node/coredns, a wrapper with only
# the plugins the node needs) into a cache outside the work tree keyed by the wrapper's go.sum
# and main.go, so a warm machine skips the build. Prints the binary's path last.
#
#   hack/node/build-coredns.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
COREDNS_VERSION=v1.15.0
key=$(cat "$here/coredns/go.sum" "$here/coredns/main.go" | sha256sum | cut -c1-12)
cache_root=${WEFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}
bin_dir="$cache_root/bin/coredns-$COREDNS_VERSION-$key"
if [ ! -x "$bin_dir/coredns" ]; then
  mkdir -p "$bin_dir"
  # One heavy Go build at a time on this machine (the same lock as hack/build-binaries.sh's
  # callers); a concurrent caller waits, then finds the binary built.
  if command -v flock >/dev/null; then exec 9>"$cache_root/build.lock"; flock 9; fi
fi
if [ ! -x "$bin_dir/coredns" ]; then
  echo "[build-coredns] building CoreDNS $COREDNS_VERSION (cold: ~2-4 min on 2 cores)..." >&2
  start=$SECONDS
  tmp="$bin_dir/.coredns.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  (cd "$here/coredns" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$tmp" .)
  mv "$tmp" "$bin_dir/coredns"
  echo "[build-coredns] built in $((SECONDS - start)) s" >&2
fi
echo "$bin_dir/coredns"
