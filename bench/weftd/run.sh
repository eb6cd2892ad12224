#!/usr/bin/env bash
# weftd's push cost as the mesh grows (translation once per change, the per-proxy line) and the
# workload CA's signing cost, in process, no cluster. Bounded: a few seconds per size.
#   bash bench/weftd/run.sh            (or: npm run bench -- weftd)
#   SIZES=100,1000 REPS=5 bash bench/weftd/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
exec tsx bench/weftd/bench.ts
