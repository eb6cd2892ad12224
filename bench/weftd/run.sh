#!/usr/bin/env bash
# weftd's push cost as the mesh grows (translation once per change, the per-proxy line) and the
# workload CA's signing cost, in process, no cluster. Bounded: a few seconds per size. Then the
# ACK cost of a push to 1,000 proxies: keep-alive vs a new connection per ACK (acks.ts). Then the
# status writer at 2,000 objects and 2,000 proxies: pass cost, writes per change (status.ts).
#   bash bench/weftd/run.sh            (or: npm run bench -- weftd)
#   SIZES=100,1000 REPS=5 bash bench/weftd/run.sh
#   WEFTD_BENCH=acks PROXIES=1000 REPS=5 bash bench/weftd/run.sh   (only one of push|acks|status)
#   WEFTD_BENCH=status OBJECTS=1000 PROXIES=2000 REPS=5 bash bench/weftd/run.sh
# Delta pushes (ADR 0020): one VirtualService change at 1,000 services to 2,000 proxies, delta vs
# whole-config fleets, weftd and the fleet in processes of their own, and weftd during a burst of
# 100 changes (delta.ts; minutes: 35 s idle before each change, and the whole-config fleet moves
# ~1.5 MB per proxy per change, so keep FULL_PROXIES small; not in the default list):
#   WEFTD_BENCH=delta SERVICES=1000 PROXIES=2000 FULL_PROXIES=500 REPS=3 bash bench/weftd/run.sh
# On-demand hosts (ADR 0023): config held by a sidecar calling 5 of 1,000 services, on vs off, and
# the first request's added latency through a real `proxy sidecar` process (ondemand.ts):
#   WEFTD_BENCH=ondemand SERVICES=1000 CALLS=5 REPS=3 HOSTS=20 bash bench/weftd/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
for b in ${WEFTD_BENCH:-push acks status}; do
  case "$b" in
    push) tsx bench/weftd/bench.ts ;;
    acks) tsx bench/weftd/acks.ts ;;
    status) tsx bench/weftd/status.ts ;;
    delta) tsx bench/weftd/delta.ts ;;
    ondemand) tsx bench/weftd/ondemand.ts ;;
    *) echo "bench/weftd: WEFTD_BENCH must be push, acks, status, delta or ondemand, got $b" >&2; exit 2 ;;
  esac
done
