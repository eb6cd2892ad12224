#!/usr/bin/env bash
# The control plane's own cost (issue #19, ADR 0022): what importing each daemon costs in RSS
# (memory.ts, needs dist/: built here), and TLS connections per API call (connections.ts).
#   bash bench/controlplane/run.sh            (or: npm run bench -- controlplane)
#   CONTROLPLANE_BENCH=connections REQUESTS=200 REPS=5 bash bench/controlplane/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
for b in ${CONTROLPLANE_BENCH:-memory connections}; do
  case "$b" in
    memory) tsc -p tsconfig.build.json && tsx bench/controlplane/memory.ts ;;
    connections) tsx bench/controlplane/connections.ts ;;
    *) echo "bench/controlplane: CONTROLPLANE_BENCH must be memory or connections, got $b" >&2; exit 2 ;;
  esac
done
