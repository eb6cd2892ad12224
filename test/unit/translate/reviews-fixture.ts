/** The Bookinfo `reviews` ServiceEntry (v1, v2) and the routes a translation gives its host. */
import { parse } from 'yaml';
import { translate, type TranslateInput } from '../../../pkg/translate/index.js';
import type { ServiceEntry } from '../../../pkg/api/index.js';
import type { HttpListener, Route } from '../../../pkg/proxyconfig/types.js';

export const SE = parse(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}}
  - {address: 10.0.0.2, labels: {version: v2}}
`) as ServiceEntry;

export const routesOf = (input: TranslateInput, host = 'reviews.default.svc.cluster.local:9080'): Route[] => {
  const l = translate({ serviceEntries: [SE], ...input }).config.listeners[0] as HttpListener;
  return l.virtualHosts.find((v) => v.name === host)?.routes ?? [];
};
