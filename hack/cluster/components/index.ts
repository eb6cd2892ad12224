/**
 * Every component of the local cluster, in start order (stopped in reverse). The node
 * (issue 7: kube-scheduler, containerd, kubelet, kube-proxy, CoreDNS) adds its components
 * from `hack/node/` to the end of this list; mark root-only ones `profiles: ['demo']`.
 */
import type { Component } from '../types.js';
import { etcd } from './etcd.js';
import { kubeApiserver } from './kube-apiserver.js';
import { kubeControllerManager } from './kube-controller-manager.js';
import { nodeComponents } from '../../node/components.js';

export const components: Component[] = [etcd, kubeApiserver, kubeControllerManager, ...nodeComponents];
