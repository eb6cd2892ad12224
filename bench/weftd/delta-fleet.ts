/**
 * The simulated fleet of bench/weftd/delta.ts, a child process of its own (weftd's CPU and RSS
 * are then weftd's alone): PROXIES sidecars holding real discovery streams (TLS, NDJSON) to the
 * weftd child, each answering every push as soon as the line's last byte arrived (they do not
 * compile it: a real proxy adds its compile time, the same in every mode, to its own ACK): on the
 * stream's own connection, as the proxy does (an upgraded stream, weft-discovery/1), or, in the
 * `-post` modes, POSTed by the proxy's own AckSender as a proxy from before did. Only the head of
 * a line is parsed (version and nonce come first). Driven over IPC by the orchestrator. Modes
 * `ondemand*`: each proxy asks for on-demand hosts (ADR 0023) and, once connected, for the hosts
 * its workload calls (`calledHosts`).
 */
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { Duplex, Readable } from 'node:stream';
import {
  DISCOVERY_UPGRADE,
  discoveryQuery,
  encodeProxyMessage,
  ONDEMAND_PATH,
  type AckRequest,
} from '../../pkg/discovery/protocol.js';
import { createLogger } from '../../pkg/log/index.js';
import { AckSender } from '../../proxy/discovery/ack.js';
import { profile } from './profile.js';

const log = createLogger('bench', { silent: true });
/** Proxies connecting at once; the next batch once each got its first config (CONNECT_BATCH=2000: a whole fleet at once). */
const CONNECT_BATCH = Number(process.env.CONNECT_BATCH ?? 50);
const absNow = (): number => performance.timeOrigin + performance.now();
const HEAD = /"nonce":"([0-9a-f]{32})".*?"version":"([^"]+)"|"version":"([^"]+)","nonce":"([0-9a-f]{32})"/;

interface SimProxy {
  /** The `-post` modes' sender (null: answers on the stream). */
  acks: AckSender | null;
  /** The upgraded stream's connection (null: a plain stream). */
  socket: Duplex | null;
  /** When the newest line was complete (ms since the epoch, fractional). */
  lineAt: number;
}
const fleet: SimProxy[] = [];

/**
 * The services the proxies of workload `w` call on demand: svc0, whose VirtualService the measured
 * change edits (so every proxy is affected, as in the other modes), and 4 of its own.
 */
function calledHosts(w: number, services: number): string[] {
  const svc = (i: number): string => `svc${i}.ns${i % 20}.svc.cluster.local`;
  return [svc(0), ...Array.from({ length: 4 }, (_, k) => svc((w * 7919 + k * 21 + 1) % services))];
}

/** POSTs an on-demand ask for `pod`; resolves when weftd answered (after it wrote the push). */
function ask(port: number, ca: string, pod: string, hosts: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        ca,
        method: 'POST',
        path: ONDEMAND_PATH,
        headers: { authorization: `Bearer ${pod}`, 'content-type': 'application/json' },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`ask ${pod}: HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ kind: 'sidecar', namespace: 'ns', pod, hosts }));
  });
}

function connect(
  port: number,
  ca: string,
  delta: boolean,
  pod: string,
  onDemand: boolean,
  acksOnStream: boolean,
): Promise<SimProxy> {
  // on demand a token names its pod (asks need a pod-bound token, delta-weftd.ts)
  const token = onDemand ? pod : 'bench';
  const p: SimProxy = {
    lineAt: 0,
    socket: null,
    // the proxy's own sender and defaults, but more attempts: the fleet shares one event loop,
    // and when its ACK connections reconnect at once their handshakes queue behind each other
    acks: acksOnStream
      ? null
      : new AckSender({
          attempts: 10,
          timeoutMs: 60_000,
          host: '127.0.0.1',
          port,
          servername: undefined,
          ca: () => ca,
          token: () => token,
          log,
        }),
  };
  const answer = (ack: AckRequest): void => {
    if (p.acks) void p.acks.send(ack);
    else if (p.socket && !p.socket.destroyed) p.socket.write(encodeProxyMessage({ type: 'ack', ...ack }));
  };
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      ca,
      path: discoveryQuery({
        kind: 'sidecar',
        namespace: 'ns',
        pod,
        acks: true,
        delta,
        ...(onDemand ? { onDemand: true } : {}),
      }),
      headers: {
        authorization: `Bearer ${token}`,
        ...(acksOnStream ? { connection: 'Upgrade', upgrade: DISCOVERY_UPGRADE } : {}),
      },
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200 || acksOnStream)
        return reject(new Error(`stream ${pod}: HTTP ${res.statusCode} (not upgraded)`));
      read(res);
    });
    req.on('upgrade', (_res: IncomingMessage, socket: Duplex, head: Buffer) => {
      p.socket = socket;
      socket.on('error', (err) => reject(err));
      if (head.length > 0) socket.unshift(head);
      read(socket);
    });
    const read = (stream: Readable): void => {
      let head = '';
      stream.on('data', (chunk: Buffer) => {
        let from = 0;
        for (;;) {
          const nl = chunk.indexOf(10, from);
          const part = chunk.subarray(from, nl < 0 ? chunk.length : nl);
          if (head.length < 400) head += part.subarray(0, 400 - head.length).toString('latin1');
          if (nl < 0) break;
          const m = HEAD.exec(head);
          if (m) {
            p.lineAt = absNow(); // a push (pings carry no nonce)
            const nonce = m[1] ?? m[4]!;
            const version = m[2] ?? m[3]!;
            answer({ kind: 'sidecar', namespace: 'ns', pod, version, nonce });
            resolve(p); // connected once the first config is in: a fleet connects in batches
          }
          head = '';
          from = nl + 1;
        }
      });
    };
    req.end();
  });
}

interface Command {
  id: number;
  cmd: 'connect' | 'received' | 'profile' | 'stop';
  port?: number;
  ca?: string;
  delta?: boolean;
  proxies?: number;
  mode?: string;
  services?: number;
}
process.on('message', (m: Command) => {
  const run = async (): Promise<unknown> => {
    switch (m.cmd) {
      case 'connect': {
        const onDemand = m.mode!.startsWith('ondemand');
        const acksOnStream = !m.mode!.endsWith('-post');
        for (let i = 0; i < m.proxies!; i += CONNECT_BATCH) {
          const batch = Array.from({ length: Math.min(CONNECT_BATCH, m.proxies! - i) }, (_, j) => i + j);
          fleet.push(
            ...(await Promise.all(
              batch.map((n) => connect(m.port!, m.ca!, m.delta!, `${m.mode}-${n}`, onDemand, acksOnStream)),
            )),
          );
          // pod <mode>-<n> is a replica of workload w<n % 100> (delta-weftd.ts): its calls
          if (onDemand)
            await Promise.all(
              batch.map((n) => ask(m.port!, m.ca!, `${m.mode}-${n}`, calledHosts(n % 100, m.services!))),
            );
        }
        return {};
      }
      case 'received': {
        const cpu = process.cpuUsage();
        return {
          lineAt: fleet.map((p) => p.lineAt),
          failed: fleet.reduce((n, p) => n + (p.acks?.failed ?? 0), 0),
          cpuMs: (cpu.user + cpu.system) / 1000,
        };
      }
      case 'profile':
        return profile(m.mode!);
      case 'stop':
        for (const p of fleet) {
          p.acks?.stop();
          p.socket?.destroy();
        }
        setImmediate(() => process.exit(0));
        return {};
    }
  };
  run().then(
    (value) => process.send!({ id: m.id, value }),
    (err: unknown) => process.send!({ id: m.id, error: String(err) }),
  );
});
process.send!({ id: 0, value: {} });
