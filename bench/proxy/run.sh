#!/usr/bin/env bash
# weft proxy vs nginx, same machine, same run (bench.ts), then the proxy in its pod mode
# (sidecar.ts: `proxy sidecar` through the image's entry point, fed by a fake weftd),
# then two sidecars with mesh mTLS between them vs two nginx with TLS on the same hop, and one
# plaintext sidecar (mesh.ts, issue 13). PROXY_BENCH=inbound measures the sidecar's inbound
# listener alone (direct / plaintext / mTLS). PROXY_BENCH=authz: the proxy's CPU per request with
# 20 AuthorizationPolicies and RequestAuthentication against none (authz-e2e.ts, issue 14).
# PROXY_BENCH=ratelimit: the local rate limiter's cost per request against no limit (issue 17).
# PROXY_BENCH=tcproutes: new TCP connections/s through 21 L4 routes against one cluster, and TLS
# passthrough by SNI against the TLS server dialled directly (tcp-routes.ts, issue 18).
# PROXY_BENCH=h2: h2c and gRPC unary through one sidecar against nginx grpc_pass (h2.ts, issue 18).
# Knobs (env): PROXY_BENCH (standalone sidecar mesh; or inbound, authz), REPS (3), MAX_SECONDS (10; mesh 5),
# FIXED_SECONDS (15 standalone / 10 sidecar / 8 mesh), SERVICES (1000), VARIANTS (sidecar's Node-flag variants).
set -euo pipefail
cd "$(dirname "$0")/../.."
for b in ${PROXY_BENCH:-standalone sidecar mesh}; do
  case "$b" in
    standalone) npx tsx bench/proxy/bench.ts ;;
    sidecar) npx tsx bench/proxy/sidecar.ts ;;
    mesh) npx tsx bench/proxy/mesh.ts ;;
    inbound) npx tsx bench/proxy/inbound.ts ;;
    authz) npx tsx bench/proxy/authz-e2e.ts ;;
    ratelimit) npx tsx bench/proxy/ratelimit.ts ;;
    tcproutes) npx tsx bench/proxy/tcp-routes.ts ;;
    h2) npx tsx bench/proxy/h2.ts ;;
    *) echo "bench/proxy: PROXY_BENCH names standalone, sidecar, mesh, inbound, authz, ratelimit, tcproutes or h2, got $b" >&2; exit 2 ;;
  esac
done
