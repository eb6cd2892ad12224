#!/usr/bin/env bash
# weftctl start-up: `weftctl version` and `weftctl validate -f <one file>` as users run them,
# whole process, median of RUNS (default 15), against `node -e 0` on the pinned Node measured in
# the same run. Builds dist/ into a temporary directory first (the repository's dist/ is untouched).
#   bash bench/cli/run.sh        (or: npm run bench -- cli)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
exec tsx bench/cli/startup.ts
