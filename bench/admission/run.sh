#!/usr/bin/env bash
# Admission latency at a fixed rate (default 100 req/s) for /validate and /inject, over real
# HTTPS on loopback, against the real webhook process. Bounded: DURATION seconds per webhook.
#   bash bench/admission/run.sh            (or: npm run bench -- admission)
#   RATE=200 DURATION=20 bash bench/admission/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
exec tsx bench/admission/bench.ts
