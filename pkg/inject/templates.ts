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
  V1VolumeMount,
} from '@kubernetes/client-node';
import { ROOT_CERT_CONFIGMAP, ROOT_CERT_KEY } from '../discovery/protocol.js';
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
/** The mesh root weftd publishes in every namespace (ConfigMap weft-ca-root-cert), mounted read-only. */
export const VOLUME_CA_ROOT = ROOT_CERT_CONFIGMAP;
export const TOKEN_DIR = '/var/run/secrets/tokens';
export const CA_ROOT_DIR = '/etc/weft/ca';
export const CA_ROOT_PATH = `${CA_ROOT_DIR}/${ROOT_CERT_KEY}`;
/** 12 h, as Istio: the kubelet refreshes the file at 80 % of its lifetime. */
const TOKEN_EXPIRATION_SECONDS = 43200;

/** How a proxy (sidecar or gateway) reaches weftd: its address and the token audience it presents. */
export type DiscoverySettings = Pick<InjectionSettings, 'discoveryAddress' | 'tokenAudience'>;

/** The projected service-account token a proxy presents to weftd (discovery and CSRs). */
export function tokenVolume(audience: string): V1Volume {
  return {
    name: VOLUME_TOKEN,
    projected: {
      sources: [
        {
          serviceAccountToken: { audience, expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: VOLUME_TOKEN },
        },
      ],
    },
  };
}

/**
 * The mesh root, from the ConfigMap weftd keeps in every namespace. Not optional (as Istio's
 * istiod-ca-cert): a proxy that cannot verify weftd is useless, so the pod waits in
 * ContainerCreating until weftd has published the root, then starts.
 */
export function caRootVolume(): V1Volume {
  return { name: VOLUME_CA_ROOT, configMap: { name: ROOT_CERT_CONFIGMAP } };
}

/** Mounts of the token and the mesh root, for every proxy container. */
export function meshIdentityMounts(): V1VolumeMount[] {
  return [
    { name: VOLUME_TOKEN, mountPath: TOKEN_DIR, readOnly: true },
    { name: VOLUME_CA_ROOT, mountPath: CA_ROOT_DIR, readOnly: true },
  ];
}

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
    tokenVolume(settings.tokenAudience),
    caRootVolume(),
  ];
}

function fieldEnv(name: string, fieldPath: string): V1EnvVar {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}

/** Who the proxy is, from the downward API (the discovery request names its pod and namespace). */
export function identityEnv(): V1EnvVar[] {
  return [
    fieldEnv('POD_NAME', 'metadata.name'),
    fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
    fieldEnv('INSTANCE_IP', 'status.podIP'),
    fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
  ];
}

/** Where weftd is and what the proxy needs to talk to it: token file, audience, root to verify it with. */
export function discoveryEnv(settings: DiscoverySettings): V1EnvVar[] {
  return [
    { name: 'WEFT_DISCOVERY_ADDRESS', value: settings.discoveryAddress },
    { name: 'WEFT_TOKEN_PATH', value: `${TOKEN_DIR}/${VOLUME_TOKEN}` },
    { name: 'WEFT_TOKEN_AUDIENCE', value: settings.tokenAudience },
    { name: 'WEFT_CA_ROOT_PATH', value: CA_ROOT_PATH },
  ];
}

function proxyEnv(settings: InjectionSettings, probers: Record<string, AppProber>): V1EnvVar[] {
  const env = [...identityEnv(), ...discoveryEnv(settings)];
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
    args: [
      'proxy',
      'sidecar',
      ...(overrides.rateLimitCheckTimeoutMs !== undefined
        ? [`--ratelimit-timeout-ms=${overrides.rateLimitCheckTimeoutMs}`]
        : []),
    ],
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
      ...meshIdentityMounts(),
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
