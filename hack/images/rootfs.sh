#!/usr/bin/env bash
# Assembles image root file systems from this machine's own files, with no container engine
# and no registry: a static busybox (shell and tools), iptables (nft and legacy back ends, for
# init containers), and for the Node base the project's pinned Node binary. Every dynamic
# binary brings exactly the libraries `ldd` lists for it.
#
#   hack/images/rootfs.sh pause|toolbox|node-base|redis <empty dir>
set -euo pipefail

kind=${1:-}; dest=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
die() { echo "rootfs.sh: $*" >&2; exit 1; }
[ -n "$kind" ] && [ -n "$dest" ] || die "usage: rootfs.sh pause|toolbox|node-base|redis DIR"
[ -d "$dest" ] && [ -z "$(ls -A "$dest")" ] || die "$dest must be an existing empty directory"

busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox is missing (apt-get install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then die "$busybox is dynamic; install busybox-static"; fi

# Copies a file to the same path under $dest, following symlinks.
put() { mkdir -p "$dest$(dirname "$2")"; cp -L "$1" "$dest$2"; }

# Copies a binary or shared object and every library ldd lists for it.
put_with_libs() {
  local src=$1 at=$2 lib
  put "$src" "$at"
  while read -r lib; do
    [ -n "$lib" ] && [ ! -e "$dest$lib" ] && put "$lib" "$lib"
  done < <(ldd "$src" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | sort -u)
  return 0
}

skeleton() {
  mkdir -p "$dest"/{bin,sbin,etc,tmp,root,proc,sys,dev,run,var/run,usr/bin,usr/sbin,usr/local/bin}
  chmod 1777 "$dest/tmp"
  cat > "$dest/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
weft-proxy:x:1337:1337:weft proxy:/nonexistent:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
  cat > "$dest/etc/group" <<'G'
root:x:0:
weft-proxy:x:1337:
nogroup:x:65534:
G
  printf 'hosts: files dns\n' > "$dest/etc/nsswitch.conf"
  put "$busybox" /bin/busybox
}

busybox_applets() {
  local a
  for a in $("$busybox" --list); do
    [ -e "$dest/bin/$a" ] || ln -s /bin/busybox "$dest/bin/$a"
  done
}

iptables_tools() {
  local m so
  put_with_libs /usr/sbin/xtables-nft-multi /usr/sbin/xtables-nft-multi
  put_with_libs /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-legacy-multi
  for so in /usr/lib/x86_64-linux-gnu/xtables/*.so; do put_with_libs "$so" "$so"; done
  for m in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf xtables-nft-multi "$dest/usr/sbin/$m"
    ln -sf xtables-legacy-multi "$dest/usr/sbin/${m/tables/tables-legacy}"
  done
  # busybox has no iptables applet, so nothing shadows these in /bin.
}

case "$kind" in
  pause)
    skeleton
    ln -s /bin/busybox "$dest/bin/sleep"
    ;;
  toolbox)
    skeleton; busybox_applets; iptables_tools
    ;;
  node-base)
    skeleton; busybox_applets; iptables_tools
    node_bin=$(readlink -f "$repo/node_modules/node/bin/node")
    [ -x "$node_bin" ] || die "$repo/node_modules/node/bin/node is missing (run npm ci)"
    put_with_libs "$node_bin" /usr/local/bin/node
    # Debug info is most of the file (150 MB -> ~110 MB); the code is untouched.
    if command -v strip >/dev/null; then strip --strip-debug "$dest/usr/local/bin/node"; fi
    "$dest/usr/local/bin/node" --version >/dev/null || die "the copied node binary does not run"
    ;;
  redis)
    # Debian's redis-server (what the tests run) for the operator-deployed global rate-limit
    # store (spec.rateLimits.redis.deploy); busybox sh reads the password from the Secret.
    skeleton; busybox_applets
    [ -x /usr/bin/redis-server ] || die "/usr/bin/redis-server is missing (apt-get install redis-server)"
    put_with_libs "$(readlink -f /usr/bin/redis-server)" /usr/bin/redis-server
    "$dest/usr/bin/redis-server" --version >/dev/null || die "the copied redis-server does not run"
    ;;
  *) die "unknown rootfs kind '$kind' (pause|toolbox|node-base|redis)";;
esac
