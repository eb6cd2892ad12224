#!/usr/bin/env bash
# `npm stop`: tear down what `npm start` brought up. Later issues add their own teardown as
# `stop_<name>` functions listed in STOPS (run in order, before the cluster goes).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"

STOPS=(operator webhook cluster)

stop_operator() { tsx operator/local.ts down; }

stop_webhook() { tsx webhook/local.ts down; }

stop_cluster() { hack/local-cluster down; }

status=0
for s in "${STOPS[@]}"; do
  "stop_$s" || { echo "npm stop: '$s' failed; continuing with the rest" >&2; status=1; }
done
exit $status
