/** The proxy's well-known ports and uid, as Istio's, so operators' habits and dashboards carry over. */
export const PROXY_UID = 1337;
export const PORT_OUTBOUND = 15001;
export const PORT_INBOUND = 15006;
export const PORT_ADMIN = 15000;
export const PORT_HEALTH = 15021;
export const PORT_PROMETHEUS = 15090;

export const PROXY_CONTAINER = 'weft-proxy';
export const INIT_CONTAINER = 'weft-init';
export const READY_PATH = '/healthz/ready';
