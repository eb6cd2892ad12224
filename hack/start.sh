#!/usr/bin/env bash
# `npm start`: the local cluster (control plane + node) with weft running in it as pods, and
# the demo (docs/local-node.md, "weft on the node").
#
# Structured as steps: each is a function `step_<name>`, run in the order of STEPS with its
# time printed. Every step is idempotent: re-running `npm start` on a running cluster
# re-asserts everything (and rebuilds/reloads the weft image if the code changed).
#
#   npm start                         all steps
#   WEFT_START_STEPS="mesh demo" npm start   only those (the cluster must be up)
#   WEFT_START_MESH_TIMEOUT=300       seconds to wait for mesh/default Ready (default 240)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
export KUBECONFIG="$root/.local/kubeconfig"
kubectl="$root/.local/bin/kubectl"
state="$root/.local/start"
mesh_timeout=${WEFT_START_MESH_TIMEOUT:-240}
demo_timeout=${WEFT_START_DEMO_TIMEOUT:-180}
ctr_() { ctr --address "$root/.local/cluster/containerd/containerd.sock" --namespace k8s.io "$@"; }

read -r -a STEPS <<<"${WEFT_START_STEPS:-deps cluster images crds install mesh demo usage}"

step_deps() { bash hack/ensure-deps.sh; }

# Builds or reuses the binaries and starts the control plane and the node; idempotent.
step_cluster() { hack/local-cluster up; }

# The weft image from this checkout's code (npm run build: tsc + the proxy's native addon),
# the demo's images, and the Redis the operator runs when a Mesh sets rateLimits.redis.deploy
# (docs/rate-limits.md), into the node's containerd. Nothing is pulled (docs/adr/0004-images.md).
step_images() {
  npm run -s build
  bash hack/images/load.sh weft echo toolbox redis
}

step_crds() {
  shopt -s nullglob
  local files=(crds/*.yaml crds/*.yml)
  if [ ${#files[@]} -eq 0 ]; then
    echo "no CRDs in crds/ yet; skipping"
    return 0
  fi
  local args=()
  for f in "${files[@]}"; do args+=(-f "$f"); done
  "$kubectl" apply --server-side --force-conflicts --field-manager=weft-start "${args[@]}" >/dev/null
  "$kubectl" wait --for=condition=Established --timeout=60s "${args[@]}" >/dev/null
  echo "CRDs established: ${#files[@]}"
}

# The image's digest as containerd holds it now (empty when not loaded).
weft_digest() { ctr_ images ls "name==ghcr.io/weft-mesh/weft:0.1.0" 2>/dev/null | awk 'NR==2 {print $3}'; }

# The install exactly as a user runs it, then a rollout wait. Pods keep the image they started
# with (same tag, IfNotPresent), so when the loaded image changed since the last start, weft's
# Deployments are restarted to run the new code.
step_install() {
  "$kubectl" apply --server-side --force-conflicts --field-manager=weft-start -k config/default >/dev/null
  echo "applied config/default (CRDs, RBAC, operator)"
  mkdir -p "$state"
  local now last=""
  now=$(weft_digest)
  [ -f "$state/weft-image.digest" ] && last=$(cat "$state/weft-image.digest")
  if [ -n "$last" ] && [ "$now" != "$last" ]; then
    echo "the weft image changed ($last -> $now): restarting weft's Deployments"
    "$kubectl" -n weft-system rollout restart deployment >/dev/null || true
    touch "$state/restart-demo" # the demo's sidecars too, once the new webhook injects them
  fi
  echo "$now" >"$state/weft-image.digest"
  "$kubectl" -n weft-system rollout status deployment/weft-operator --timeout=120s
  if [ -f "$state/restart-demo" ]; then
    # Until the restarted pods are ready the Mesh may still show the old Ready=True.
    local d
    for d in $("$kubectl" -n weft-system get deployments -o name); do
      "$kubectl" -n weft-system rollout status "$d" --timeout="${mesh_timeout}s" >/dev/null || true
    done
  fi
}

# What a Mesh that is not Ready is waiting for: its conditions, weft-system's unready pods
# with their last words, and recent warnings.
explain_mesh() {
  echo "--- kubectl get mesh default (conditions)" >&2
  "$kubectl" get mesh default -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2 || true
  echo "--- pods in weft-system" >&2
  "$kubectl" -n weft-system get pods -o wide >&2 || true
  local p
  for p in $("$kubectl" -n weft-system get pods -o jsonpath='{range .items[?(@.status.containerStatuses[0].ready==false)]}{.metadata.name}{"\n"}{end}' 2>/dev/null); do
    echo "--- logs of $p (last 5 lines)" >&2
    "$kubectl" -n weft-system logs "$p" --all-containers --tail=5 2>&1 | cut -c1-300 >&2 || true
  done
  echo "--- warnings" >&2
  "$kubectl" get events -A --field-selector type=Warning --sort-by=.lastTimestamp 2>/dev/null | tail -8 >&2 || true
}

step_mesh() {
  "$kubectl" apply --server-side --field-manager=weft-start -f config/samples/mesh.yaml >/dev/null
  echo "applied config/samples/mesh.yaml; waiting up to ${mesh_timeout} s for mesh/default Ready"
  if ! "$kubectl" wait --for=condition=Ready mesh/default --timeout="${mesh_timeout}s" >/dev/null; then
    echo "npm start: mesh/default is not Ready after ${mesh_timeout} s" >&2
    explain_mesh
    return 1
  fi
  "$kubectl" get mesh default
}

step_demo() {
  "$kubectl" apply --server-side --field-manager=weft-start -k config/samples/demo >/dev/null
  if [ -f "$state/restart-demo" ]; then
    "$kubectl" -n demo rollout restart deployment >/dev/null || true
    rm -f "$state/restart-demo"
  fi
  echo "applied config/samples/demo; waiting up to ${demo_timeout} s for its pods"
  local d
  for d in echo-v1 echo-v2 client; do
    if ! "$kubectl" -n demo rollout status "deployment/$d" --timeout="${demo_timeout}s" >/dev/null; then
      echo "npm start: demo deployment $d is not ready" >&2
      "$kubectl" -n demo get pods -o wide >&2 || true
      "$kubectl" -n demo describe pods -l "app=${d%-v*}" 2>/dev/null | sed -n '/^Events:/,$p' | tail -8 >&2 || true
      return 1
    fi
  done
  "$kubectl" -n demo get pods
}

step_usage() {
  cat <<USAGE

weft runs on the local cluster: operator, weftd, webhook and ingress gateway in weft-system,
the demo in namespace demo. Use it with:

  export KUBECONFIG=$KUBECONFIG
  export PATH=$root/.local/bin:\$PATH     # kubectl v1.36.3 (/usr/bin/kubectl is older)
  kubectl get mesh                        # Ready, and what each component reports
  kubectl -n weft-system get pods
  kubectl -n demo get pods                # each with weft-proxy injected (2/2)

  # through the sidecars: the VirtualService sends 80 % to v1, 20 % to v2 ...
  kubectl -n demo exec deploy/client -c client -- sh -c 'for i in \$(seq 20); do wget -qO- http://echo/version; done'
  # ... and x-canary: true always to v2
  kubectl -n demo exec deploy/client -c client -- wget -qO- --header 'x-canary: true' http://echo/version
  # the client's proxy: Prometheus metrics
  kubectl -n demo exec deploy/client -c client -- wget -qO- http://127.0.0.1:15090/stats/prometheus | head

Status: npm run cluster:status     Stop: npm stop (takes the whole cluster down)
USAGE
}

# Not in the default STEPS: `WEFT_START_STEPS=memory npm start` prints what the cluster uses at
# idle, as docs/local-node.md reports it — RSS of the cluster's own processes (status --json),
# of every process in the pods' cgroups, and of the containerd shims serving our socket.
step_memory() {
  local comp=0 pods=0 shims=0 nshims=0 pid kb f
  comp=$(hack/local-cluster status --json | grep -oE '"rssBytes": *[0-9]+' | grep -oE '[0-9]+$' | awk '{s+=$1} END {print int(s/1024)}')
  for f in $(find /sys/fs/cgroup/memory/kubepods -name cgroup.procs 2>/dev/null); do
    for pid in $(cat "$f"); do
      kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      pods=$((pods + ${kb:-0}))
    done
  done
  local sock="$root/.local/cluster/containerd/containerd.sock"
  for pid in $(pgrep -f "containerd-shim.*-address $sock" || true); do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    shims=$((shims + ${kb:-0})); nshims=$((nshims + 1))
  done
  printf 'cluster processes (control plane + node): %d MB\n' $((comp / 1024))
  printf 'pods (%s running): %d MB\n' "$("$kubectl" get pods -A --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l)" $((pods / 1024))
  printf 'containerd shims (%d): %d MB\n' "$nshims" $((shims / 1024))
  printf 'total RSS: %d MB\n' $(((comp + pods + shims) / 1024))
  step_memory_control_plane
}

# weft's control plane by pod (issue #19's target: operator + weftd + webhook ≤ 250 MB in all):
# the RSS of every process in each weft-system pod's cgroup (all its containers).
step_memory_control_plane() {
  local ns=weft-system uid name kb pid dir total=0
  while read -r uid name; do
    [ -n "$uid" ] || continue
    kb=0
    dir=$(find /sys/fs/cgroup/memory/kubepods -maxdepth 3 -type d -name "pod${uid}" 2>/dev/null | head -n 1)
    if [ -n "$dir" ]; then
      for pid in $(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null); do
        kb=$((kb + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)))
      done
    fi
    printf '  %s/%s: %d MB\n' "$ns" "$name" $((kb / 1024))
    case "$name" in weft-operator-* | weftd-* | weft-webhook-*) total=$((total + kb)) ;; esac
  done < <("$kubectl" -n "$ns" get pods --field-selector=status.phase=Running \
    -o jsonpath='{range .items[*]}{.metadata.uid}{" "}{.metadata.name}{"\n"}{end}' 2>/dev/null)
  printf 'weft control plane (operator + weftd + webhook pods): %d MB\n' $((total / 1024))
}

total_start=$SECONDS
for step in "${STEPS[@]}"; do
  t=$SECONDS
  echo "==> $step"
  if ! "step_$step"; then
    echo "npm start: step '$step' failed (see above); the cluster is left as it is — npm stop tears it down" >&2
    exit 1
  fi
  echo "    ($step: $((SECONDS - t)) s)"
done
echo "npm start: done in $((SECONDS - total_start)) s"
