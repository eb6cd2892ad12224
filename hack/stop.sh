#!/usr/bin/env bash
# `npm stop`: tear down what `npm start` brought up. weft and the demo run as pods in the local
# cluster, so taking the cluster down (which drains the node and restores the host; see
# docs/local-node.md) removes them too. Later teardown steps go in STOPS as `stop_<name>`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"

STOPS=(cluster)

stop_cluster() {
  hack/local-cluster down
  # The image digest npm start last installed: meaningless once the node's containerd is gone.
  rm -f "$root/.local/start/weft-image.digest" "$root/.local/start/restart-demo"
}

status=0
for s in "${STOPS[@]}"; do
  "stop_$s" || { echo "npm stop: '$s' failed; continuing with the rest" >&2; status=1; }
done
exit $status
