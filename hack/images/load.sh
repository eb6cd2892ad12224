#!/usr/bin/env bash
# Builds (or reuses) images and imports them into the running local node's containerd
# (namespace k8s.io), so pods can use them with imagePullPolicy IfNotPresent -- no registry.
# The weft image is also tagged under each component's name (ADR 0004).
#
#   hack/images/load.sh [infra|weft|IMAGE...]      (default: weft)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
sock=${WEFT_CONTAINERD_SOCKET:-$repo/.local/cluster/containerd/containerd.sock}
[ -S "$sock" ] || { echo "images: no local node running ($sock missing): hack/local-cluster up" >&2; exit 1; }
ctr_() { ctr --address "$sock" --namespace k8s.io "$@"; }

targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(weft)
bash "$here/build.sh" "${targets[@]}" | while IFS=$'\t' read -r img archive; do
  ctr_ images import "$archive" >/dev/null
  if [ "$img" = ghcr.io/weft-mesh/weft:0.1.0 ]; then
    # The component names (ADR 0004; pkg/api/images.ts is what manifests use).
    for a in ghcr.io/weft-mesh/weft-proxy:0.1.0 ghcr.io/weft-mesh/weft-operator:0.1.0 \
      ghcr.io/weft-mesh/weftd:0.1.0 ghcr.io/weft-mesh/weft-webhook:0.1.0; do
      ctr_ images rm "$a" >/dev/null 2>&1 || true
      ctr_ images tag "$img" "$a" >/dev/null
    done
  fi
  echo "loaded $img" >&2
done
