/**
 * The proxy's side of the discovery stream (contract: pkg/discovery/protocol.ts). Connects to
 * weftd over TLS verified against the mesh root (re-read on every connect, so a rotated root is
 * picked up), presents the projected token (also re-read on every connect: the kubelet rotates
 * it), and hands every config message to `onConfig`, which compiles and swaps it in. A config
 * that fails to apply is rejected there; the stream stays up and the last good config stays in
 * force. A broken stream, an HTTP error (e.g. 401 for a bad token), or 3× the ping interval of
 * silence ends the connection; the client reconnects with exponential backoff and full jitter
 * (pkg/kube/backoff.ts), reset once a connection delivered a config.
 *
 * It asks with `acks=1` and answers every config that carries a nonce: an ACK once `onConfig`
 * has compiled and swapped it in, a NACK with the error when `onConfig` threw. The answers ride
 * the stream's own connection: the stream is asked for as an upgrade (DISCOVERY_UPGRADE), so a
 * proxy holds one TLS connection to weftd, not two (issue #19: most of weftd's memory is per
 * connection). A weftd from before upgrades answers 200 with a plain stream; then proxy/discovery/
 * ack.ts POSTs the answers over a keep-alive connection of its own.
 *
 * With acks it also asks for deltas (`delta=1`, ADR 0020): it keeps the resources of the config it
 * runs (proxy/discovery/held.ts) and, on reconnecting, names their state hash so weftd can resume
 * with a delta. A delta is applied to a copy, checked against weftd's state hash, then goes
 * through `onConfig` like a whole config; one that does not apply is NACKed with `resync` (weftd
 * answers with the whole config), one that does not compile is NACKed as any config is. Either
 * way the proxy keeps running, and holding, its last good config.
 */
import https from 'node:https';
import { fs } from '../../pkg/builtins/index.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import {
  DISCOVERY_UPGRADE,
  MessageDecoder,
  PING_INTERVAL_MS,
  encodeProxyMessage,
  truncateError,
  type AckRequest,
  discoveryQuery,
  ONDEMAND_PATH,
  type OnDemandResponse,
  type OnDemandResult,
  type DiscoveryMessage,
  type DiscoveryRequest,
} from '../../pkg/discovery/protocol.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import { backoffDelay, sleep, type BackoffPolicy } from '../../pkg/kube/backoff.js';
import { errorMessage } from '../../pkg/errors/index.js';
import type { Logger } from '../../pkg/log/index.js';
import { AckSender } from './ack.js';
import { ResourceHolder, type HeldResources } from './held.js';
import { isWeftError } from '../../pkg/errors/index.js';

export interface DiscoveryClientOptions {
  /** host:port of weftd (WEFT_DISCOVERY_ADDRESS). */
  address: string;
  caRootPath: string;
  tokenPath: string;
  request: DiscoveryRequest;
  log: Logger;
  /** Compile and swap in; throw to reject (the last good config stays). */
  onConfig: (config: ProxyConfig, version: string) => Promise<void>;
  pingIntervalMs?: number;
  backoff?: BackoffPolicy;
  random?: () => number;
  /** Answer pushes with ACK/NACK (default true; false acts as a proxy from before the protocol had them). */
  acks?: boolean;
  /** Ask for delta pushes (default true with acks; false acts as a proxy from before deltas). */
  delta?: boolean;
  /**
   * Answer on the stream's own connection (default true with acks; false acts as a proxy from
   * before, which POSTs its answers on a second connection).
   */
  acksOnStream?: boolean;
  /** Say it holds and asks for hosts (default true; false acts as a proxy from before ADR 0023). */
  onDemand?: boolean;
  /** Ask for short service domains (default true; false acts as a proxy from before them, issue #19). */
  serviceDomains?: boolean;
  /** Called when a stream opened (on-demand hosts re-declare their subscriptions then). */
  onOpen?: () => void;
}

/** An on-demand request that weftd does not answer in this long has failed (the hold is shorter anyway). */
const ONDEMAND_TIMEOUT_MS = 5_000;

/** Reconnect delays: 0.5 s doubling to 30 s, half of it random so a fleet does not reconnect in step. */
export const DISCOVERY_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000, jitter: 0.5 };

/** Splits `host:port` / `[v6]:port`; the host is also the TLS server name. */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  const port = Number(m?.[2]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`discovery address must be host:port, got ${JSON.stringify(address)}`);
  return { host: m[1]!, port };
}

/** What one connection ended with, for the log and readiness. */
export type StreamEnd =
  | { kind: 'http-error'; status: number; body: string }
  | { kind: 'silent'; ms: number }
  | { kind: 'closed'; gotConfig: boolean }
  | { kind: 'error'; message: string; gotConfig: boolean };

export class DiscoveryClient {
  /** Why the client has no live stream (null while streaming), for readiness and /config_dump. */
  lastProblem: string | null = 'not connected yet';
  connected = false;
  readonly versionsApplied: string[] = [];
  private failures = 0;
  private stopped = false;
  private readonly abort = new AbortController();
  private currentReq: ReturnType<typeof https.request> | null = null;
  /** The upgraded connection of the current stream (null: none, or a plain stream). */
  private currentSocket: Duplex | null = null;
  private onDemandAgent: https.Agent | undefined;
  /**
   * Made with the first answer POSTed (a weftd from before upgrades; the address has parsed by
   * then); null while none was.
   */
  acks: AckSender | null = null;
  /** Answers written on upgraded streams. */
  answersOnStream = 0;
  /** An upgrade came back as another protocol: streams are asked for plainly (answers POSTed). */
  private plainStreams = false;
  /** The resources of the running config (delta streams). */
  readonly held = new ResourceHolder();
  /** Pushes applied, by kind, and deltas that did not apply (resync NACKs). */
  readonly applied = { full: 0, delta: 0, resyncs: 0, unchanged: 0 };

  constructor(private readonly o: DiscoveryClientOptions) {}

  /** Runs until stop(); never throws. */
  async run(): Promise<void> {
    const policy = this.o.backoff ?? DISCOVERY_BACKOFF;
    while (!this.stopped) {
      const end = await this.connectOnce().catch((err: unknown): StreamEnd => ({
        kind: 'error',
        message: errorMessage(err),
        gotConfig: false,
      }));
      this.connected = false;
      if (this.stopped) break;
      this.lastProblem = describeEnd(end);
      const delivered = (end.kind === 'closed' || end.kind === 'error') && end.gotConfig;
      this.failures = delivered ? 1 : this.failures + 1;
      const delay = backoffDelay(this.failures, policy, this.o.random);
      const level = end.kind === 'http-error' || this.failures > 3 ? 'error' : 'warn';
      this.o.log.log(level, 'Discovery stream ended; reconnecting', {
        address: this.o.address,
        reason: this.lastProblem,
        retryInMs: delay,
        failures: this.failures,
      });
      await sleep(delay, this.abort.signal);
    }
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    this.currentReq?.destroy();
    this.currentSocket?.destroy();
    this.acks?.stop();
    this.onDemandAgent?.destroy();
  }

  // async: a missing token or CA file (read below) must reject into run()'s retry loop, not throw past it.
  private async connectOnce(): Promise<StreamEnd> {
    const { host, port } = parseAddress(this.o.address);
    const token = fs.readFileSync(this.o.tokenPath, 'utf8').trim();
    const ca = fs.readFileSync(this.o.caRootPath, 'utf8');
    return new Promise<StreamEnd>((resolve) => {
      let settled = false;
      const finish = (e: StreamEnd): void => {
        if (settled) return;
        settled = true;
        clearTimeout(silence);
        req.destroy();
        this.currentSocket?.destroy();
        resolve(e);
      };
      const silentMs = 3 * (this.o.pingIntervalMs ?? PING_INTERVAL_MS);
      let silence = setTimeout(() => finish({ kind: 'silent', ms: silentMs }), silentMs);
      const heard = (): void => {
        clearTimeout(silence);
        silence = setTimeout(() => finish({ kind: 'silent', ms: silentMs }), silentMs);
      };
      let gotConfig = false;
      /** Reads the stream's messages and applies them, one at a time, in order. */
      const stream = (from: Readable, reply: Reply): void => {
        this.connected = true;
        this.lastProblem = null;
        this.o.log.info('Discovery stream open', {
          address: this.o.address,
          acksOnStream: reply !== this.post,
        });
        this.o.onOpen?.();
        const decoder = new MessageDecoder();
        // a slow compile never reorders versions
        let chain = Promise.resolve();
        from.on('data', (chunk: Buffer) => {
          heard();
          let messages: DiscoveryMessage[];
          try {
            messages = decoder.push(chunk);
          } catch (err) {
            return finish({ kind: 'error', message: errorMessage(err), gotConfig });
          }
          for (const m of messages)
            chain = chain.then(async () => {
              if (await this.handle(m, reply)) gotConfig = true;
            });
        });
        from.on('end', () => finish({ kind: 'closed', gotConfig }));
        from.on('error', (err) => finish({ kind: 'error', message: errorMessage(err), gotConfig }));
      };
      const upgrade = this.acksOnStream();
      const req = https.request({
        host,
        port,
        servername: isIp(host) ? undefined : host,
        ca,
        path: discoveryQuery(this.request()),
        method: 'GET',
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/x-ndjson',
          ...(upgrade ? { connection: 'Upgrade', upgrade: DISCOVERY_UPGRADE } : {}),
        },
        agent: false,
      });
      this.currentReq = req;
      this.currentSocket = null;
      req.on('error', (err) => finish({ kind: 'error', message: errorMessage(err), gotConfig }));
      req.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
        heard();
        this.currentSocket = socket;
        socket.on('error', (err) => finish({ kind: 'error', message: errorMessage(err), gotConfig }));
        const to = String(res.headers.upgrade ?? '').toLowerCase();
        if (to !== DISCOVERY_UPGRADE) {
          // something between us (or a weftd that speaks another protocol): ask plainly from now on
          this.plainStreams = true;
          return finish({
            kind: 'error',
            message: `the stream was switched to ${JSON.stringify(to.slice(0, 60))}, not ${DISCOVERY_UPGRADE}; asking for plain streams from now on`,
            gotConfig,
          });
        }
        if (head.length > 0) socket.unshift(head);
        stream(socket, (ack) => {
          // a closed stream's answer is lost with it: the next stream resumes from the held state
          if (socket.destroyed || !socket.writable) return;
          this.answersOnStream++;
          socket.write(encodeProxyMessage({ type: 'ack', ...ack }));
        });
      });
      req.on('response', (res: IncomingMessage) => {
        heard();
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body.length < 2000 ? (body += c) : undefined));
          res.on('end', () => finish({ kind: 'http-error', status: res.statusCode ?? 0, body: body.trim() }));
          res.on('error', () =>
            finish({ kind: 'http-error', status: res.statusCode ?? 0, body: body.trim() }),
          );
          return;
        }
        // a plain stream: weftd predates upgrades (or was not asked); answers are POSTed
        stream(res, this.post);
      });
      req.end();
    });
  }

  /** Answers over a POST connection of their own (a plain stream). */
  private readonly post: Reply = (ack) => {
    this.acks ??= this.newAckSender();
    void this.acks.send(ack);
  };

  private acksOnStream(): boolean {
    return this.o.acks !== false && this.o.acksOnStream !== false && !this.plainStreams;
  }

  private deltas(): boolean {
    return this.o.acks !== false && this.o.delta !== false;
  }

  /** The discovery query: acks, deltas, and the state held when there is one (a resume). */
  private request(): DiscoveryRequest {
    const acks = this.o.acks !== false;
    const state = this.held.state;
    return {
      ...this.o.request,
      acks,
      ...(this.o.serviceDomains !== false ? { serviceDomains: true } : {}),
      ...(this.o.onDemand !== false ? { onDemand: true } : {}),
      ...(this.deltas() ? { delta: true, ...(state !== undefined ? { state } : {}) } : {}),
    };
  }

  /**
   * A push that leaves this proxy with the config it runs: a whole config, or an empty delta (a
   * resumed stream's first push), with its version and resource state hash. weftd states the
   * hash, so nothing is hashed here (ADR 0020).
   */
  private alreadyRunning(m: Extract<DiscoveryMessage, { type: 'config' | 'delta' }>): boolean {
    const held = this.held;
    if (!this.deltas() || held.state === undefined) return false;
    if (m.state !== held.state || m.version !== held.version) return false;
    return (
      m.type === 'config' || (m.base === held.state && m.resources.length === 0 && m.removed.length === 0)
    );
  }

  /** Applies one message, answering through `reply`; true when a config was applied. */
  private async handle(m: DiscoveryMessage, reply: Reply): Promise<boolean> {
    if (m.type === 'ping') return false;
    if (m.type === 'error') {
      this.o.log.warn('weftd reports a problem with this proxy', { code: m.code, message: m.message });
      return false;
    }
    if (this.alreadyRunning(m)) {
      // e.g. what a reconnect brings: recompiling it would stall every request for the
      // compile (100-300 ms at 1,000 services) to change nothing
      this.applied.unchanged++;
      this.o.log.debug('The push from weftd leaves the running config as it is; not recompiled', {
        version: m.version,
      });
      this.answer(reply, m.version, m.nonce, undefined);
      return true;
    }
    let config: ProxyConfig;
    let next: HeldResources | null;
    try {
      if (m.type === 'delta') ({ config, next } = this.held.applyDelta(m));
      else {
        config = m.config;
        next = this.deltas() ? this.held.fromFull(config, m.version) : null;
        if (m.state !== undefined && next?.held.state !== m.state)
          this.o.log.warn(
            'The resources of a whole config hash differently here than in weftd; deltas will resync',
            {
              version: m.version,
              weftd: m.state,
              proxy: next?.held.state,
            },
          );
      }
    } catch (err) {
      const resync = isWeftError(err, 'WEFT_DISCOVERY_DELTA_MISMATCH');
      if (resync) this.applied.resyncs++;
      this.o.log.warn('A delta push does not apply; asking weftd for the whole config', {
        version: m.version,
        error: errorMessage(err),
      });
      this.answer(reply, m.version, m.nonce, errorMessage(err), resync);
      return false;
    }
    try {
      await this.o.onConfig(config, m.version);
      if (this.deltas()) this.held.commit(next);
      this.applied[m.type === 'delta' ? 'delta' : 'full']++;
      this.versionsApplied.push(m.version);
      if (this.versionsApplied.length > 20) this.versionsApplied.shift();
      this.answer(reply, m.version, m.nonce, undefined);
      return true;
    } catch (err) {
      // onConfig logged and counted the rejection; weftd hears why (the held resources stay the last good ones)
      this.answer(reply, m.version, m.nonce, errorMessage(err));
      return false;
    }
  }

  /**
   * Asks weftd for on-demand hosts (ADR 0023) over a keep-alive connection of its own; rejects on
   * a transport failure or an HTTP error (the caller stops holding).
   */
  askHosts(names: string[], redeclare = false): Promise<Record<string, OnDemandResult>> {
    const { host, port } = parseAddress(this.o.address);
    const { kind, namespace, pod } = this.o.request;
    const body = JSON.stringify({
      kind,
      namespace,
      pod,
      hosts: names,
      ...(redeclare ? { redeclare: true } : {}),
    });
    this.onDemandAgent ??= new https.Agent({ keepAlive: true, maxSockets: 2, maxFreeSockets: 2 });
    return new Promise((resolve, reject) => {
      const req = https.request({
        host,
        port,
        servername: isIp(host) ? undefined : host,
        ca: fs.readFileSync(this.o.caRootPath, 'utf8'),
        path: ONDEMAND_PATH,
        method: 'POST',
        agent: this.onDemandAgent,
        timeout: ONDEMAND_TIMEOUT_MS,
        headers: {
          authorization: `Bearer ${fs.readFileSync(this.o.tokenPath, 'utf8').trim()}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      });
      req.on('timeout', () => req.destroy(new Error('no answer from weftd in time')));
      req.on('error', reject);
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text.length < 64 * 1024 ? (text += c) : undefined));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode !== 200)
            return reject(new Error(`weftd answered HTTP ${res.statusCode}: ${text.trim().slice(0, 300)}`));
          try {
            resolve((JSON.parse(text) as OnDemandResponse).hosts ?? {});
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      });
      req.end(body);
    });
  }

  private newAckSender(): AckSender {
    const { host, port } = parseAddress(this.o.address);
    const { caRootPath, tokenPath, log } = this.o;
    return new AckSender({
      host,
      port,
      servername: isIp(host) ? undefined : host,
      ca: () => fs.readFileSync(caRootPath, 'utf8'),
      token: () => fs.readFileSync(tokenPath, 'utf8').trim(),
      log,
    });
  }

  /** ACK (no error) or NACK one push; not awaited: the next config must not wait for weftd's answer. */
  private answer(
    reply: Reply,
    version: string,
    nonce: string | undefined,
    error: string | undefined,
    resync = false,
  ): void {
    if (this.o.acks === false || nonce === undefined || this.stopped) return; // an older weftd sends no nonce
    const { kind, namespace, pod } = this.o.request;
    reply({
      kind,
      namespace,
      pod,
      version,
      nonce,
      // cut here for both ways: on the stream an over-long line would end it (MAX_ACK_BYTES)
      ...(error !== undefined ? { error: truncateError(error) } : {}),
      ...(error !== undefined && resync ? { resync: true } : {}),
    });
  }
}

/** How a stream's answers reach weftd: on its own connection, or POSTed. */
type Reply = (ack: AckRequest) => void;

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

export function describeEnd(e: StreamEnd): string {
  switch (e.kind) {
    case 'http-error':
      return `weftd answered HTTP ${e.status}${e.body ? `: ${e.body}` : ''}`;
    case 'silent':
      return `no message from weftd for ${e.ms} ms (3 ping intervals): treated as a dead stream`;
    case 'closed':
      return 'weftd closed the stream';
    case 'error':
      return e.message;
  }
}
