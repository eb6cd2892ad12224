/**
 * A TCP port free on loopback right now (the kernel's choice), for processes a test or bench
 * starts. One implementation for the whole project: the local cluster's (hack/cluster/net.ts).
 */
export { freePort, freePorts } from '../../hack/cluster/net.js';
