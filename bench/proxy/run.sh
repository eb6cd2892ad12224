#!/usr/bin/env bash
# weft proxy vs nginx, same machine, same run. Knobs (env): REPS (3), MAX_SECONDS (10),
# FIXED_SECONDS (15), SERVICES (1000).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec npx tsx bench/proxy/bench.ts
