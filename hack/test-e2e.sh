#!/usr/bin/env bash
# End-to-end tests on a real single-node Kubernetes (hack/local-cluster: control plane + node
# with containerd, CNI, kube-proxy, CoreDNS), bounded to a few minutes on a warm machine.
#
#   hack/test-e2e.sh [mocha args]
#
# If the cluster is not running, this script brings it up, runs the tests -- the last one
# takes it down, checks the machine is as it was, brings it up again, crashes the node and
# checks that down still restores the machine -- and always takes it down at the end,
# failing if anything the node made is left behind. A cluster that was
# already running is used as it is and left running (no lifecycle test).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
[ "$(id -u)" -eq 0 ] || { echo "test-e2e: the node needs root" >&2; exit 1; }

bash hack/ensure-deps.sh

owned=0
work=$(mktemp -d /tmp/weft-e2e.XXXXXX)
baseline="$work/host-before.json"

finish() {
  local rc=$?
  if [ "$owned" = 1 ]; then
    echo "test-e2e: taking the cluster down" >&2
    hack/local-cluster down || rc=1
    tsx test/e2e/support/snapshot-cli.ts > "$work/host-after.json"
    if ! tsx test/e2e/support/compare-cli.ts "$baseline" "$work/host-after.json"; then
      echo "test-e2e: FAILED: the node left something behind (see above)" >&2
      rc=1
    fi
  fi
  rm -rf "$work"
  exit $rc
}
trap finish EXIT

# One node per machine: another checkout's test run still on the node goes first (bounded).
tsx test/e2e/support/wait-node-free.ts

if hack/local-cluster status >/dev/null 2>&1; then
  echo "test-e2e: using the running cluster (left running; no lifecycle test)" >&2
else
  tsx test/e2e/support/snapshot-cli.ts > "$baseline"
  owned=1
  hack/local-cluster up   # prints its cold/warm timing per component
  export WEFT_E2E_BASELINE="$baseline"
fi

# weft's image from this checkout (test/e2e/mesh.test.ts runs weft as pods): tsc + the proxy's
# native addon, then an import into the node (a warm rebuild with unchanged inputs is a copy);
# and the Redis image the operator deploys for the Mesh's global rate limits (mesh.test.ts (c7)).
echo "test-e2e: building and loading the weft and redis images" >&2
npm run -s build
bash hack/images/load.sh weft redis

# Argo CD's controller and repo server for test/e2e/argocd.test.ts, built here (outside mocha's
# time budget) when the cache is cold: 8-15 min on two cores, once per hack/argocd/go.sum.
echo "test-e2e: Argo CD (hack/build-argocd.sh; cached after the first build)" >&2
bash hack/build-argocd.sh >/dev/null

# Bounded: a hung suite fails the run. test/e2e/argocd.test.ts installs weft and runs Argo CD
# against it (~5 min of the budget).
timeout --signal=TERM --kill-after=30 1800 \
  mocha --timeout 180000 'test/e2e/*.test.ts' "$@"
