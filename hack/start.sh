#!/usr/bin/env bash
# `npm start`: bring weft up on a real local Kubernetes control plane.
#
# Structured as steps: each is a function `step_<name>`, run in the order of STEPS with its
# time printed. Later issues add theirs (webhook, operator, demo) by writing a function and
# inserting its name into STEPS — keep each step idempotent, so re-running `npm start` on a
# running cluster just re-asserts everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
export KUBECONFIG="$root/.local/kubeconfig"
kubectl="$root/.local/bin/kubectl"

STEPS=(deps cluster crds webhook operator usage)

step_deps() { bash hack/ensure-deps.sh; }

# Builds or reuses the binaries (hack/build-binaries.sh via the cluster code) and starts
# etcd, kube-apiserver and kube-controller-manager; idempotent.
step_cluster() { hack/local-cluster up; }

step_crds() {
  shopt -s nullglob
  local files=(crds/*.yaml crds/*.yml)
  if [ ${#files[@]} -eq 0 ]; then
    echo "no CRDs in crds/ yet; skipping"
    return 0
  fi
  local args=()
  for f in "${files[@]}"; do args+=(-f "$f"); done
  "$kubectl" apply --server-side --force-conflicts --field-manager=weft-start "${args[@]}"
  "$kubectl" wait --for=condition=Established --timeout=60s "${args[@]}" >/dev/null
}

# The admission webhooks as a local process registered by URL + caBundle (the API server here
# cannot reach pods), and a `demo` namespace labelled for injection. See docs/webhook.md.
step_webhook() { tsx webhook/local.ts up; }

# The operator as a local process (leader election on) + the sample Mesh: kubectl get mesh.
step_operator() { tsx operator/local.ts up; }

step_usage() {
  cat <<USAGE

weft's local cluster is up. Use it with:

  export KUBECONFIG=$KUBECONFIG
  export PATH=$root/.local/bin:\$PATH     # kubectl v1.36.3 (/usr/bin/kubectl is older)
  kubectl get crd
  kubectl api-resources --api-group=networking.istio.io

Status: npm run cluster:status     Stop: npm stop
USAGE
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
