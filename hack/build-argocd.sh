#!/usr/bin/env bash
# Builds Argo CD's application controller and repo server (argo-cd v3.6.2, one multi-call binary
# that dispatches on its name) from the Go module proxy into a cache outside the work tree keyed
# by the wrapper module's go.sum (hack/argocd), so a warm machine skips the build entirely. The
# e2e suite test/e2e/argocd.test.ts runs them against the local cluster.
#
# Cold: ~1-2 min of module downloads plus 8-15 min of compiling on two cores; one ~300 MB
# binary. argo-cd's go.mod needs go 1.27: GOTOOLCHAIN fetches it through the module proxy.
# Two callers at once on a cold machine build once (a flock on the cache's argocd-build.lock).
#
#   hack/build-argocd.sh   # prints the binary's path last
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ARGOCD_VERSION=v3.6.2
GO_TOOLCHAIN=${WEFT_ARGOCD_GOTOOLCHAIN:-go1.27.3}
key=$(sha256sum <"$here/argocd/go.sum" | cut -c1-12)
cache_root=${WEFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}
bin_dir="$cache_root/bin/argocd-$ARGOCD_VERSION-$key"
bin="$bin_dir/argocd"
mkdir -p "$bin_dir"

# fd 9 holds the lock; every child that could outlive this script gets it closed (9>&-) so the
# lock goes when the script does.
exec 9>"$cache_root/argocd-build.lock"
flock 9

if [ ! -x "$bin" ]; then
  echo "[build-argocd] building Argo CD $ARGOCD_VERSION (cold: 8-15 min on two cores)..." >&2
  # A background ticker so a cold build never looks hung; see hack/build-binaries.sh for why
  # its pending sleep is killed too.
  ( while sleep 60; do echo "[build-argocd] still building... ($(date +%T))" >&2; done ) >/dev/null 9>&- &
  ticker=$!
  stop_ticker() {
    local sleepers
    sleepers=$(pgrep -P "$ticker" 2>/dev/null || true)
    kill "$ticker" 2>/dev/null || true
    if [ -n "$sleepers" ]; then kill $sleepers 2>/dev/null || true; fi
  }
  trap stop_ticker EXIT
  start=$SECONDS
  tmp="$bin_dir/.argocd.tmp.$$"
  (cd "$here/argocd" && GOTOOLCHAIN=$GO_TOOLCHAIN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
    -o "$tmp" github.com/argoproj/argo-cd/v3/cmd) 9>&-
  mv "$tmp" "$bin"
  echo "[build-argocd] built in $((SECONDS - start)) s" >&2
fi
# The binary picks its role from its name (argo-cd's cmd/main.go).
for name in argocd-repo-server argocd-application-controller; do
  [ -L "$bin_dir/$name" ] || ln -sfn argocd "$bin_dir/$name"
done
echo "$bin"
