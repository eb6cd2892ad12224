#!/usr/bin/env bash
# Runs weft's benchmarks: every bench/<name>/run.sh, or only the names given
# (`npm run bench -- proxy`). Each suite prints its own report and writes
# bench/<name>/last-run.json. Loopback only, bounded duration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/ensure-deps.sh
suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
  for d in bench/*/; do [ -f "$d/run.sh" ] && suites+=("$(basename "$d")"); done
fi
for s in "${suites[@]}"; do
  [ -f "bench/$s/run.sh" ] || { echo "bench: no suite named $s (bench/$s/run.sh)" >&2; exit 2; }
  echo "== bench/$s" >&2
  bash "bench/$s/run.sh"
done
