/**
 * weft's release and the names of its image. There is one image (docs/adr/0004-images.md); each
 * component names it by the tag that says what it runs, so `kubectl get pods -o wide` reads well
 * and a user who mirrors only the proxy knows which name to mirror. hack/images/build.sh tags the
 * one image with every name below.
 */
export const WEFT_VERSION = '0.1.0';

const REGISTRY = 'ghcr.io/weft-mesh';

export const WEFT_IMAGES = {
  proxy: `${REGISTRY}/weft-proxy:${WEFT_VERSION}`,
  weftd: `${REGISTRY}/weftd:${WEFT_VERSION}`,
  webhook: `${REGISTRY}/weft-webhook:${WEFT_VERSION}`,
  operator: `${REGISTRY}/weft-operator:${WEFT_VERSION}`,
} as const;
