#!/usr/bin/env bash
# Builds weft's container images with Debian's buildah -- no daemon, no registry: every base
# is made locally (hack/images/rootfs.sh) and every build runs with --pull=never and no
# network. Each image is exported as an OCI archive into .local/images, cached by a hash of
# its inputs, so a warm run only prints the paths.
#
#   hack/images/build.sh [infra|weft|IMAGE...]      prints "NAME<TAB>ARCHIVE" per image
#
# infra = pause, toolbox, node-base, echo (what the local node and e2e tests need);
# redis = weft.local/redis:1 (Debian's redis-server) for Mesh spec.rateLimits.redis.deploy;
# weft  = node-base + the weft image (needs `npm run build` output in dist/).
# On a machine with Docker, `docker build -t ghcr.io/weft-mesh/weft:0.1.0 .` builds the same
# Dockerfile against the public node:26-bookworm-slim instead (see docs/adr/0004-images.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${WEFT_IMAGES_DIR:-$repo/.local/images}
store=$out/storage
die() { echo "images: $*" >&2; exit 1; }
log() { echo "[images] $*" >&2; }
if [ "${WEFT_IMAGE_BUILDER:-buildah}" = docker ]; then command -v docker >/dev/null || die "WEFT_IMAGE_BUILDER=docker but docker is missing"
else command -v buildah >/dev/null || die "buildah is missing (apt-get install buildah)"; fi
mkdir -p "$out"

# The names below are what manifests use. node-base carries the public Node image's name so
# the Dockerfile's FROM works unchanged with Docker elsewhere; here it never leaves the machine.
declare -A NAME=(
  [pause]=weft.local/pause:1
  [toolbox]=weft.local/toolbox:1
  [node-base]=docker.io/library/node:26-bookworm-slim
  [echo]=weft.local/echo:1
  [redis]=weft.local/redis:1
  [weft]=ghcr.io/weft-mesh/weft:0.1.0
)
# Extra names for the weft image: one image, one entry point per component (ADR 0004).
WEFT_ALIASES=(ghcr.io/weft-mesh/weft-proxy:0.1.0 ghcr.io/weft-mesh/weft-operator:0.1.0
  ghcr.io/weft-mesh/weftd:0.1.0 ghcr.io/weft-mesh/weft-webhook:0.1.0)

bh() { buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs "$@"; }

# Hash of files and directories (content for small trees, size+mtime for the big node binary).
input_key() {
  local p
  {
    for p in "$@"; do
      if [ -d "$p" ]; then (cd "$p" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
      elif [ -f "$p" ] && [ "$(stat -c %s "$p")" -gt 50000000 ]; then stat -L -c '%n %s %Y' "$p"
      elif [ -e "$p" ]; then sha256sum "$p"
      else echo "missing $p"; fi
    done
  } | sha256sum | cut -c1-16
}

archive_for() { echo "$out/$1-$2.tar"; }

# Keeps only the newest archive of an image (inputs changed: the old one is dead weight).
prune_old() { find "$out" -maxdepth 1 -name "$1-*.tar" ! -path "$2" -delete; }

# Exports IMAGE from buildah storage to an OCI archive named after it, atomically.
export_archive() {
  local img=$1 dest=$2 tmp="$2.tmp.$$"
  rm -f "$tmp"
  bh push -q --disable-compression "$img" "oci-archive:$tmp:$img" >/dev/null
  mv "$tmp" "$dest"
}

# Makes sure an image built earlier is in buildah's storage (a later build may start FROM it).
load_into_store() {
  local img=$1 archive=$2
  bh inspect --type image "$img" >/dev/null 2>&1 && return 0
  bh pull -q "oci-archive:$archive" >/dev/null
  bh tag "$(bh images -q --filter "reference=$img" | head -1 || true)" "$img" 2>/dev/null || true
  bh inspect --type image "$img" >/dev/null 2>&1 || die "could not load $archive into buildah storage"
}

# Image from a locally assembled root file system (buildah from scratch: nothing is run).
build_rootfs_image() {
  local id=$1 kind=$2 img=${NAME[$1]} key archive rootfs ctr
  shift 2
  # redis-server counts for the redis image only: the others' archives stay valid when it changes
  local extra=()
  [ "$kind" = redis ] && extra=(/usr/bin/redis-server)
  key=$(input_key "$here/rootfs.sh" /bin/busybox /usr/sbin/xtables-nft-multi "$repo/node_modules/node/bin/node" "${extra[@]}")
  archive=$(archive_for "$id" "$key")
  if [ ! -f "$archive" ]; then
    log "building $img from a local root file system ($kind)"
    rootfs=$(mktemp -d "$out/.rootfs-$id.XXXXXX")
    bash "$here/rootfs.sh" "$kind" "$rootfs" || { rm -rf "$rootfs"; die "rootfs for $img failed"; }
    ctr=$(bh from --pull=never scratch)
    bh copy "$ctr" "$rootfs/" / >/dev/null
    rm -rf "$rootfs"
    bh config "$@" --os linux --arch amd64 --label "org.opencontainers.image.source=weft local build" "$ctr"
    bh commit -q --rm "$ctr" "$img" >/dev/null
    export_archive "$img" "$archive"
    prune_old "$id" "$archive"
  fi
  load_into_store "$img" "$archive"
  printf '%s\t%s\n' "$img" "$archive"
}

# Image from a Dockerfile, exactly as `docker build` would take it (no RUN needed, no pulls).
build_dockerfile_image() {
  local id=$1 dockerfile=$2 context=$3 img=${NAME[$1]} key archive base_archive
  if [ "${WEFT_IMAGE_BUILDER:-buildah}" = docker ]; then base_archive=docker
  else base_archive=$(build_rootfs_image node-base node-base | cut -f2); fi
  key=$(input_key "$dockerfile" "$context" "$base_archive")
  archive=$(archive_for "$id" "$key")
  if [ "${WEFT_IMAGE_BUILDER:-buildah}" = docker ]; then
    # A machine with Docker: the same Dockerfile and context; its base comes from Docker Hub.
    docker build -q -f "$dockerfile" -t "$img" "$context" >&2
    printf '%s\t%s\n' "$img" docker
    return 0
  fi
  if [ ! -f "$archive" ]; then
    log "building $img from $(realpath --relative-to="$repo" "$dockerfile")"
    # No RUN allowed: a RUN would execute in a container with the host's network.
    if grep -qiE '^[[:space:]]*RUN[[:space:]]' "$dockerfile"; then die "$dockerfile has a RUN step; stage its inputs instead"; fi
    bh bud -q --pull=never --isolation=chroot --layers=false \
      -f "$dockerfile" -t "$img" "$context" >/dev/null
    export_archive "$img" "$archive"
    prune_old "$id" "$archive"
  fi
  printf '%s\t%s\n' "$img" "$archive"
}

build_one() {
  case "$1" in
    pause) build_rootfs_image pause pause --entrypoint '[]' --cmd '["/bin/sleep","infinity"]' ;;
    toolbox) build_rootfs_image toolbox toolbox --entrypoint '[]' --cmd '["/bin/sh"]' \
      --env PATH=/usr/sbin:/usr/bin:/sbin:/bin ;;
    node-base) build_rootfs_image node-base node-base --entrypoint '[]' --cmd '["node"]' \
      --env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION=26 ;;
    echo) build_dockerfile_image echo "$repo/images/echo/Dockerfile" "$repo/images/echo" ;;
    redis) build_rootfs_image redis redis --entrypoint '[]' --cmd '["/usr/bin/redis-server"]' \
      --env PATH=/usr/bin:/bin --user 1337:1337 ;;
    weft) build_weft ;;
    *) die "unknown image '$1' (pause, toolbox, node-base, echo, redis, weft)" ;;
  esac
}

# The weft image's context is staged: compiled JS from dist/ plus production dependencies,
# so the Dockerfile needs no RUN (no npm or network inside the build) here or with Docker.
build_weft() {
  [ -d "$repo/dist" ] || die "dist/ is missing: run \`npm run build\` first"
  bash "$here/stage-weft.sh" "$out/weft-context" >&2
  build_dockerfile_image weft "$repo/Dockerfile" "$out/weft-context"
  if [ "${WEFT_IMAGE_BUILDER:-buildah}" = docker ]; then
    for a in "${WEFT_ALIASES[@]}"; do docker tag "${NAME[weft]}" "$a"; done
  fi
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(infra)
for t in "${targets[@]}"; do
  case "$t" in
    infra) for i in pause toolbox node-base echo; do build_one "$i"; done ;;
    weft) build_one weft ;;
    *) build_one "$t" ;;
  esac
done
