#!/usr/bin/env bash
# `npm test`: every test — unit first (fast, no cluster), then integration (a real
# kube-apiserver, etcd and kube-controller-manager started once for the run), then e2e on a
# real single node (kubelet, containerd, CNI, CoreDNS; needs root, see docs/local-node.md).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "node $(node --version) ($(command -v node))"
npx tsc -p tsconfig.json --noEmit
bash hack/build-native.sh # the proxy's SO_ORIGINAL_DST addon (cached by source hash)
mocha 'test/unit/**/*.test.ts'
if compgen -G 'test/integration/**/*.test.ts' > /dev/null || compgen -G 'test/integration/*.test.ts' > /dev/null; then
  mocha --timeout 180000 --require test/support/cluster-hooks.ts 'test/integration/**/*.test.ts'
fi
bash hack/test-e2e.sh
