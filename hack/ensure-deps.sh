#!/usr/bin/env bash
# Installs the Debian packages weft's tests and demo need, only when missing, so a fresh
# machine works from the README's commands alone. Needs root (or passwordless sudo).
set -euo pipefail
# command name -> Debian package
declare -A wanted=(
  [iptables]=iptables
  [ip]=iproute2
  [openssl]=openssl
  [lua5.4]=lua5.4
  [wrk]=wrk
  [nginx]=nginx-light
  # HTTP/2 and gRPC load (bench/proxy/h2.ts)
  [h2load]=nghttp2-client
  # a real Redis: global rate limits (test/integration/ratelimit) and Argo CD's cache (test/e2e/argocd.test.ts)
  [redis-server]=redis-server
  # the local node (hack/node): container runtime, image builder, static busybox for images
  [containerd]=containerd
  [runc]=runc
  [buildah]=buildah
  [conntrack]=conntrack
  [nft]=nftables
  # the proxy's native addon (hack/build-native.sh)
  [cc]=gcc
)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${wanted[$cmd]}")
done
# files rather than commands: CNI plugins live in /usr/lib/cni; images need a *static* busybox
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-deps: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo -n)
export DEBIAN_FRONTEND=noninteractive
# weft runs its own containerd, nginx and redis-server (supervised or per test, on loopback): a package's postinst must
# not start the system's copies. Hold a policy-rc.d that refuses starts while installing,
# unless the machine already has one, and remove ours afterwards.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$policy"
  trap '"${sudo_cmd[@]}" rm -f "$policy"' EXIT
fi
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
