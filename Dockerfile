# weft: one image, one entry point per component (docs/adr/0004-images.md):
#   weft proxy init|sidecar|gateway ... | weft operator | weft weftd | weft webhook | weft weftctl
#
# The build context is staged by hack/images/build.sh weft (compiled dist/, production
# node_modules, the entry point), so nothing here runs a command or reaches a network.
# Here it builds with buildah against a locally made base image of the same name; with Docker:
#   WEFT_IMAGE_BUILDER=docker hack/images/build.sh weft
FROM docker.io/library/node:26-bookworm-slim
WORKDIR /opt/weft
ENV NODE_ENV=production
# A 1 MB young generation (V8's default grows to 16 MB): proxy sidecar with 1,001 services idles at
# ~80 instead of ~92 MB RSS and ~97 instead of ~108 MB at 1,000 req/s, same CPU (bench/proxy/sidecar.ts,
# docs/proxy-modes.md#memory). Every component gets it; a pod's own NODE_OPTIONS replaces it.
ENV NODE_OPTIONS="--max-semi-space-size=1"
COPY package.json ./
COPY node_modules/ ./node_modules/
COPY dist/ ./dist/
COPY entrypoint.mjs ./entrypoint.mjs
# `proxy`, `weftd`, `weftctl`, `weft` on PATH: shims to the entry point (pods exec them by name).
COPY bin/ /usr/local/bin/
# Non-root by default; `proxy init` runs as root by its pod's securityContext (NET_ADMIN).
USER 65532:65532
ENTRYPOINT ["node", "/opt/weft/entrypoint.mjs"]
