#!/usr/bin/env bash
# Workload identity cost, ECDSA P-256 vs RSA-2048: keygen, CSR, CA signing, CSR round trip over
# HTTPS, mutual-TLS handshake, all on loopback, in process. Bounded (REPS, default 200).
#   bash bench/identity/run.sh        (or: npm run bench -- identity)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
exec tsx bench/identity/bench.ts
