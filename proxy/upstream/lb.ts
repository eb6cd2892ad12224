/**
 * Load balancers over a cluster's healthy endpoints, as DestinationRule `loadBalancer` names
 * them. Unset means LEAST_REQUEST (what Istio picks in practice). LEAST_REQUEST is Envoy's
 * power-of-two-choices on in-flight counts. Consistent hash is a ring (64 points per endpoint,
 * FNV-1a + murmur finaliser) rebuilt only when the healthy set changes; `exclude` lets retries avoid the previous
 * host (Envoy's previous_hosts predicate), except for consistent hash as in Istio.
 */
import type { LoadBalancer } from '../../pkg/proxyconfig/types.js';
import { queryParam, type RequestView } from '../compile/match.js';

export interface LbEndpoint {
  active: number;
  readonly key: string;
}

export interface HashInput {
  view: RequestView;
  sourceIp: string;
  /** Where the request's connection was going (ORIGINAL_DST clusters only; null: unknown). */
  originalDst?: { address: string; port: number } | null;
}

export interface Balancer {
  readonly kind: string;
  rebuild(healthy: LbEndpoint[]): void;
  pick<E extends LbEndpoint>(input: HashInput | null, exclude: E | null): E | null;
}

abstract class ListBalancer implements Balancer {
  abstract readonly kind: string;
  protected hosts: LbEndpoint[] = [];
  rebuild(healthy: LbEndpoint[]): void {
    this.hosts = healthy.slice();
  }
  abstract pickIndex(): number;
  pick<E extends LbEndpoint>(_input: HashInput | null, exclude: E | null): E | null {
    const n = this.hosts.length;
    if (n === 0) return null;
    let h = this.hosts[this.pickIndex()]!;
    if (exclude !== null && h === exclude && n > 1) h = this.hosts[(this.hosts.indexOf(h) + 1) % n]!;
    return h as E;
  }
}

class RoundRobin extends ListBalancer {
  readonly kind = 'ROUND_ROBIN';
  private next = 0;
  pickIndex(): number {
    const i = this.next % this.hosts.length;
    this.next = i + 1;
    return i;
  }
}

class RandomLb extends ListBalancer {
  readonly kind = 'RANDOM';
  constructor(private readonly rand: () => number) {
    super();
  }
  pickIndex(): number {
    return Math.floor(this.rand() * this.hosts.length);
  }
}

class LeastRequest extends ListBalancer {
  readonly kind = 'LEAST_REQUEST';
  constructor(private readonly rand: () => number) {
    super();
  }
  pickIndex(): number {
    const n = this.hosts.length;
    if (n === 1) return 0;
    const a = Math.floor(this.rand() * n);
    let b = Math.floor(this.rand() * (n - 1));
    if (b >= a) b++;
    return this.hosts[b]!.active < this.hosts[a]!.active ? b : a;
  }
}

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // murmur3 finaliser: FNV alone clusters badly on short, similar keys (u1, u2, 10.0.0.1:80_3)
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const RING_POINTS_PER_HOST = 64;

class RingHash implements Balancer {
  readonly kind = 'CONSISTENT_HASH';
  private points: Uint32Array = new Uint32Array(0);
  private owners: LbEndpoint[] = [];
  constructor(
    private readonly key: (input: HashInput) => string | undefined,
    private readonly rand: () => number,
  ) {}
  rebuild(healthy: LbEndpoint[]): void {
    const entries: [number, LbEndpoint][] = [];
    for (const h of healthy)
      for (let i = 0; i < RING_POINTS_PER_HOST; i++) entries.push([fnv1a(`${h.key}_${i}`), h]);
    entries.sort((a, b) => a[0] - b[0]);
    this.points = Uint32Array.from(entries.map((e) => e[0]));
    this.owners = entries.map((e) => e[1]);
  }
  pick<E extends LbEndpoint>(input: HashInput | null): E | null {
    const n = this.points.length;
    if (n === 0) return null;
    const k = input === null ? undefined : this.key(input);
    // no hash key on this request: Envoy picks a random host
    const h = k === undefined ? Math.floor(this.rand() * 0xffffffff) : fnv1a(k);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === n ? 0 : lo] as E;
  }
}

function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const s = Array.isArray(header) ? header.join('; ') : header;
  for (const part of s.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function createBalancer(lb: LoadBalancer | undefined, rand: () => number): Balancer {
  if (lb === undefined) return new LeastRequest(rand);
  if ('simple' in lb) {
    switch (lb.simple) {
      case 'ROUND_ROBIN':
        return new RoundRobin();
      case 'RANDOM':
        return new RandomLb(rand);
      default:
        return new LeastRequest(rand);
    }
  }
  const ch = lb.consistentHash;
  if ('httpHeaderName' in ch) {
    const name = ch.httpHeaderName.toLowerCase();
    return new RingHash((i) => {
      const v = i.view.headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    }, rand);
  }
  if ('httpCookie' in ch) {
    const name = ch.httpCookie.name;
    return new RingHash((i) => cookieValue(i.view.headers.cookie, name), rand);
  }
  if ('httpQueryParameterName' in ch) {
    const name = ch.httpQueryParameterName;
    return new RingHash((i) => queryParam(i.view, name), rand);
  }
  return new RingHash((i) => i.sourceIp, rand);
}
