#!/usr/bin/env bash
# Builds the Kubernetes and etcd binaries weft's local cluster runs, from the Go module
# proxy (no prebuilt downloads), into a cache outside the work tree keyed by version and
# by the wrapper modules' go.sum, so a warm machine skips the build entirely.
#
#   hack/build-binaries.sh [cmd ...]   # default: every binary; prints the bin dir last
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.8
key=$(cat "$here/k8s-testbin/go.sum" "$here/etcd-testbin/go.sum" | sha256sum | cut -c1-12)
cache_root=${WEFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}
bin_dir="$cache_root/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-$key"
mkdir -p "$bin_dir"

all=(kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy etcd)
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${all[@]}")

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean"

build() {
  local cmd=$1 start=$SECONDS
  if [ -x "$bin_dir/$cmd" ]; then return 0; fi
  echo "[build-binaries] building $cmd (a cold build takes minutes; kube-apiserver ~8 min on 2 cores)..." >&2
  local tmp="$bin_dir/.$cmd.tmp.$$"
  if [ "$cmd" = etcd ]; then
    (cd "$here/etcd-testbin" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp" .)
  else
    (cd "$here/k8s-testbin" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp" "k8s.io/kubernetes/cmd/$cmd")
  fi
  mv "$tmp" "$bin_dir/$cmd"
  echo "[build-binaries] $cmd built in $((SECONDS - start)) s" >&2
}

# A background ticker so a cold build never looks hung. Its stdout goes nowhere (callers read
# the bin dir from ours). On exit its pending `sleep` is killed too, or that orphan would hold
# the caller's stderr pipe open for up to a minute; the ticker goes first so nobody is left to
# print "Terminated". errexit applies inside traps, hence every command is guarded.
( while sleep 60; do echo "[build-binaries] still building... ($(date +%T))" >&2; done ) >/dev/null &
ticker=$!
stop_ticker() {
  local sleepers
  sleepers=$(pgrep -P "$ticker" 2>/dev/null || true)
  kill "$ticker" 2>/dev/null || true
  if [ -n "$sleepers" ]; then kill $sleepers 2>/dev/null || true; fi
}
trap stop_ticker EXIT

for cmd in "${wanted[@]}"; do build "$cmd"; done
echo "$bin_dir"
