/**
 * A Deployment (2 replicas) behind a ClusterIP Service on the real node: the scheduler places
 * the pods, the kubelet runs them through containerd, the EndpointSlice controller fills the
 * slice, CoreDNS answers the Service name, kube-proxy's iptables rules spread requests over
 * both pods — all seen from a client pod, as an application would.
 */
import { expect } from 'chai';
import {
  apply,
  clientPod,
  freshNamespace,
  IMAGES,
  kubectl,
  kubectlJson,
  waitFor,
  waitForServiceAccount,
  waitPodReady,
  waitPodsReady,
} from './support/kube.js';

const echoDeployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'echo', labels: { app: 'echo' } },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: 'echo' } },
    template: {
      metadata: { labels: { app: 'echo', version: 'v1' } },
      spec: {
        terminationGracePeriodSeconds: 5,
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'echo',
            image: IMAGES.echo,
            imagePullPolicy: 'IfNotPresent',
            env: [
              { name: 'SERVICE_NAME', value: 'echo' },
              { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            ],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
          },
        ],
      },
    },
  },
};

const echoService = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'echo' },
  spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
};

interface Slice {
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean }; targetRef?: { name?: string } }[];
  ports?: { port?: number }[];
}

describe('e2e: echo Deployment + Service on the real node', function () {
  this.timeout(180_000);
  let ns = '';
  let cleanup = (): void => undefined;
  let podIPs: string[] = [];

  before(async () => {
    ({ ns, cleanup } = freshNamespace('e2e-echo'));
    await waitForServiceAccount(ns);
    apply(ns, [echoDeployment, echoService, clientPod('client')]);
  });
  after(() => cleanup());

  it('runs both replicas on the node, Running and Ready', async () => {
    const pods = await waitPodsReady(ns, 'app=echo', 2);
    podIPs = pods.map((p) => p.status?.podIP ?? '');
    for (const ip of podIPs) expect(ip).to.match(/^10\.244\.0\.\d+$/);
    expect(new Set(podIPs).size).to.equal(2);
  });

  it('has an EndpointSlice with both pod IPs, ready, on the target port', async () => {
    const slice = await waitFor('a filled EndpointSlice for echo', () => {
      const list = kubectlJson<{ items: Slice[] }>([
        'get',
        'endpointslices',
        '-n',
        ns,
        '-l',
        'kubernetes.io/service-name=echo',
      ]);
      const eps = list.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready === true);
      return eps.length === 2 ? list.items[0] : undefined;
    });
    const addrs = (slice?.endpoints ?? []).flatMap((e) => e.addresses).sort();
    expect(addrs).to.deep.equal([...podIPs].sort());
    expect(slice?.ports?.[0]?.port).to.equal(8080);
  });

  it('resolves echo.<ns>.svc.cluster.local to the ClusterIP from a client pod', async () => {
    await waitPodReady(ns, 'client');
    const clusterIP = kubectlJson<{ spec: { clusterIP: string } }>(['get', 'service', 'echo', '-n', ns]).spec
      .clusterIP;
    const out = kubectl(['exec', '-n', ns, 'client', '--', 'nslookup', `echo.${ns}.svc.cluster.local`]);
    expect(out).to.include(clusterIP);
  });

  it('serves http://echo.<ns>.svc.cluster.local from both replicas', async () => {
    const url = `http://echo.${ns}.svc.cluster.local/`;
    const seen = new Set<string>();
    // kube-proxy picks an endpoint at random per connection: 20 requests miss one of two
    // ready pods with probability 2^-19.
    for (let i = 0; i < 20; i++) {
      const body = kubectl(['exec', '-n', ns, 'client', '--', 'wget', '-qO-', url]);
      const reply = JSON.parse(body) as { service: string; hostname: string; podIP: string };
      expect(reply.service).to.equal('echo');
      expect(podIPs).to.include(reply.podIP);
      seen.add(reply.hostname);
      if (seen.size === 2) break;
    }
    expect(seen.size).to.equal(2);
  });

  it('resolves the short name through the pod search path', () => {
    const body = kubectl(['exec', '-n', ns, 'client', '--', 'wget', '-qO-', 'http://echo/version']);
    expect(body.trim()).to.equal('v1');
  });

  it('gives names outside the cluster no answer (no upstream resolver, nothing leaves the node)', () => {
    const r = kubectl([
      'exec',
      '-n',
      ns,
      'client',
      '--',
      'sh',
      '-c',
      'nslookup example.com >/dev/null 2>&1; echo rc=$?',
    ]);
    expect(r.trim()).to.not.equal('rc=0');
  });
});
