/**
 * The objects the injector adds: the proxy container, the `proxy init` container and the
 * volumes the proxy mounts. Each is a small pure builder; `inject.ts` decides where they go.
 */
import type {
  V1Container,
  V1EnvVar,
  V1Probe,
  V1ResourceRequirements,
  V1Volume,
} from '@kubernetes/client-node';
import type { PodOverrides } from './annotations.js';
import { proxyInitArgs } from './iptables.js';
import {
  INIT_CONTAINER,
  PORT_HEALTH,
  PORT_INBOUND,
  PORT_OUTBOUND,
  PORT_PROMETHEUS,
  PROXY_CONTAINER,
  PROXY_UID,
  READY_PATH,
} from './ports.js';
import { APP_PROBERS_ENV, type AppProber } from './probes.js';
import type { InjectionSettings } from './settings.js';

export const VOLUME_TOKEN = 'weft-token';
export const VOLUME_DATA = 'weft-data';
export const VOLUME_PODINFO = 'weft-podinfo';
export const TOKEN_DIR = '/var/run/secrets/tokens';
/** 12 h, as Istio: the kubelet refreshes the file at 80 % of its lifetime. */
const TOKEN_EXPIRATION_SECONDS = 43200;

export function proxyVolumes(settings: InjectionSettings): V1Volume[] {
  return [
    { name: VOLUME_DATA, emptyDir: {} },
    {
      name: VOLUME_PODINFO,
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    {
      name: VOLUME_TOKEN,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: settings.tokenAudience,
              expirationSeconds: TOKEN_EXPIRATION_SECONDS,
              path: VOLUME_TOKEN,
            },
          },
        ],
      },
    },
  ];
}

function fieldEnv(name: string, fieldPath: string): V1EnvVar {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}

function proxyEnv(settings: InjectionSettings, probers: Record<string, AppProber>): V1EnvVar[] {
  const env = [
    fieldEnv('POD_NAME', 'metadata.name'),
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('INSTANCE_IP', 'status.podIP'),
    fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    { name: 'WEFT_DISCOVERY_ADDRESS', value: settings.discoveryAddress },
    { name: 'WEFT_TOKEN_PATH', value: `${TOKEN_DIR}/${VOLUME_TOKEN}` },
    { name: 'WEFT_TOKEN_AUDIENCE', value: settings.tokenAudience },
  ];
  if (Object.keys(probers).length > 0) env.push({ name: APP_PROBERS_ENV, value: JSON.stringify(probers) });
  return env;
}

/** Mesh defaults, then the pod's annotations, key by key. */
export function proxyResources(settings: InjectionSettings, o: PodOverrides): V1ResourceRequirements {
  return {
    requests: { ...settings.resources.requests, ...o.requests },
    limits: { ...settings.resources.limits, ...o.limits },
  };
}

function readinessProbe(): V1Probe {
  return {
    httpGet: { path: READY_PATH, port: PORT_HEALTH, scheme: 'HTTP' },
    initialDelaySeconds: 0,
    periodSeconds: 15,
    timeoutSeconds: 3,
    failureThreshold: 4,
  };
}

/** Native mode: the kubelet starts the next container only once this passes, so poll fast (Istio's values). */
function startupProbe(): V1Probe {
  return {
    httpGet: { path: READY_PATH, port: PORT_HEALTH, scheme: 'HTTP' },
    initialDelaySeconds: 0,
    periodSeconds: 1,
    timeoutSeconds: 3,
    failureThreshold: 600,
  };
}

export interface ProxyContainerOptions {
  settings: InjectionSettings;
  overrides: PodOverrides;
  probers: Record<string, AppProber>;
  native: boolean;
  hold: boolean;
}

export function proxyContainer(opts: ProxyContainerOptions): V1Container {
  const { settings, overrides, native, hold } = opts;
  const c: V1Container = {
    name: PROXY_CONTAINER,
    image: overrides.proxyImage ?? settings.proxyImage,
    imagePullPolicy: settings.imagePullPolicy,
    args: ['proxy', 'sidecar'],
    ports: [
      { name: 'tcp-outbound', containerPort: PORT_OUTBOUND, protocol: 'TCP' },
      { name: 'tcp-inbound', containerPort: PORT_INBOUND, protocol: 'TCP' },
      { name: 'http-health', containerPort: PORT_HEALTH, protocol: 'TCP' },
      { name: 'http-envoy-prom', containerPort: PORT_PROMETHEUS, protocol: 'TCP' },
    ],
    env: proxyEnv(settings, opts.probers),
    resources: proxyResources(settings, overrides),
    readinessProbe: readinessProbe(),
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: PROXY_UID,
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
    },
    volumeMounts: [
      { name: VOLUME_DATA, mountPath: '/var/lib/weft/data' },
      { name: VOLUME_PODINFO, mountPath: '/etc/weft/pod' },
      { name: VOLUME_TOKEN, mountPath: TOKEN_DIR, readOnly: true },
    ],
  };
  if (native) {
    c.restartPolicy = 'Always';
    c.startupProbe = startupProbe();
  } else if (hold) {
    // The kubelet runs postStart to completion before starting the next container, so the app
    // starts only once `proxy wait` has seen the proxy ready.
    c.lifecycle = { postStart: { exec: { command: ['proxy', 'wait'] } } };
  }
  return c;
}

/** Sets up iptables redirection; root with NET_ADMIN and NET_RAW and nothing else, then exits. */
export function initContainer(settings: InjectionSettings, o: PodOverrides): V1Container {
  return {
    name: INIT_CONTAINER,
    image: o.proxyImage ?? settings.proxyImage,
    imagePullPolicy: settings.imagePullPolicy,
    args: proxyInitArgs(o),
    resources: proxyResources(settings, o),
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    },
  };
}
