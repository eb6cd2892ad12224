#!/usr/bin/env bash
# The webhook under hostile input (issue #12): crash sequence, regex flood with typical traffic
# alongside (p50/p99), huge objects, slow clients; RSS idle/peak/after. Bounded (~1-2 min).
#   bash bench/admission/abuse.sh
#   PHASES=regex_flood,huge_flood FLOOD_SECONDS=10 bash bench/admission/abuse.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
exec tsx bench/admission/abuse.ts
