/**
 * `proxy init` flags, in istio-iptables' short form (what the injector emits, see
 * pkg/inject/iptables.ts), with the long names as aliases:
 *
 *   -p --proxy-port               outbound capture port (15001)
 *   -z --inbound-capture-port     inbound capture port (15006)
 *   -u --proxy-uid                uid whose traffic is never captured (1337)
 *   -g --proxy-gid                gid whose traffic is never captured (default: the uid)
 *   -m --inbound-interception-mode  REDIRECT (TPROXY is refused: weft does not implement it)
 *   -i --include-outbound-ip-ranges  CIDRs to capture, "*" = all, "" = none
 *   -x --exclude-outbound-ip-ranges  CIDRs never captured
 *   -b --include-inbound-ports    inbound ports to capture, "*" = all, "" = none
 *   -d --exclude-inbound-ports    inbound ports never captured (with -b "*")
 *   -o --exclude-outbound-ports   outbound ports never captured
 *   -q --include-outbound-ports   outbound ports always captured, whatever the destination
 *   --dry-run                     print the ruleset instead of applying it
 */
export interface InitConfig {
  proxyPort: number;
  inboundPort: number;
  proxyUid: string[];
  proxyGid: string[];
  includeOutboundCidrs: '*' | string[];
  excludeOutboundCidrs: string[];
  includeInboundPorts: '*' | number[];
  excludeInboundPorts: number[];
  excludeOutboundPorts: number[];
  includeOutboundPorts: number[];
  dryRun: boolean;
}

export class InitUsageError extends Error {}

const ALIASES: Record<string, string> = {
  '--proxy-port': '-p',
  '--inbound-capture-port': '-z',
  '--proxy-uid': '-u',
  '--proxy-gid': '-g',
  '--inbound-interception-mode': '-m',
  '--include-outbound-ip-ranges': '-i',
  '--exclude-outbound-ip-ranges': '-x',
  '--include-inbound-ports': '-b',
  '--exclude-inbound-ports': '-d',
  '--exclude-outbound-ports': '-o',
  '--include-outbound-ports': '-q',
};

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function portNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535)
    throw new InitUsageError(`${flag} needs port numbers 1-65535, got ${JSON.stringify(v)}`);
  return n;
}

function ports(v: string, flag: string): number[] {
  return list(v).map((p) => portNumber(p, flag));
}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\/(\d{1,2}))?$/;

/** IPv4 only: the rules are for iptables (v4); an IPv6 range is refused rather than ignored. */
function cidrs(v: string, flag: string): string[] {
  return list(v).map((c) => {
    const m = IPV4_CIDR.exec(c);
    const octetsOk = m !== null && [m[1], m[2], m[3], m[4]].every((o) => Number(o) <= 255);
    if (!m || !octetsOk || (m[6] !== undefined && Number(m[6]) > 32))
      throw new InitUsageError(`${flag} needs IPv4 CIDRs like 10.0.0.0/8, got ${JSON.stringify(c)}`);
    return m[5] === undefined ? `${c}/32` : c;
  });
}

function ids(v: string, flag: string): string[] {
  const out = list(v);
  if (out.length === 0 || out.some((id) => !/^\d+$/.test(id)))
    throw new InitUsageError(`${flag} needs numeric ids, got ${JSON.stringify(v)}`);
  return out;
}

export function parseInitFlags(argv: string[]): InitConfig {
  const c: InitConfig = {
    proxyPort: 15001,
    inboundPort: 15006,
    proxyUid: ['1337'],
    proxyGid: [],
    includeOutboundCidrs: [],
    excludeOutboundCidrs: [],
    includeInboundPorts: [],
    excludeInboundPorts: [],
    excludeOutboundPorts: [],
    includeOutboundPorts: [],
    dryRun: false,
  };
  let gidSet = false;
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i]!;
    let inline: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) {
      inline = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    if (flag === '--dry-run') {
      c.dryRun = true;
      continue;
    }
    const short = ALIASES[flag] ?? flag;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new InitUsageError(`${flag} needs a value`);
      return v;
    };
    switch (short) {
      case '-p':
        c.proxyPort = portNumber(value(), flag);
        break;
      case '-z':
        c.inboundPort = portNumber(value(), flag);
        break;
      case '-u':
        c.proxyUid = ids(value(), flag);
        break;
      case '-g':
        c.proxyGid = ids(value(), flag);
        gidSet = true;
        break;
      case '-m': {
        const mode = value();
        if (mode !== 'REDIRECT')
          throw new InitUsageError(`-m ${JSON.stringify(mode)}: weft supports only REDIRECT interception`);
        break;
      }
      case '-i': {
        const v = value().trim();
        c.includeOutboundCidrs = v === '*' ? '*' : cidrs(v, flag);
        break;
      }
      case '-x':
        c.excludeOutboundCidrs = cidrs(value(), flag);
        break;
      case '-b': {
        const v = value().trim();
        c.includeInboundPorts = v === '*' ? '*' : ports(v, flag);
        break;
      }
      case '-d':
        c.excludeInboundPorts = ports(value(), flag);
        break;
      case '-o':
        c.excludeOutboundPorts = ports(value(), flag);
        break;
      case '-q':
        c.includeOutboundPorts = ports(value(), flag);
        break;
      default:
        throw new InitUsageError(`unknown flag ${JSON.stringify(flag)}`);
    }
  }
  if (!gidSet) c.proxyGid = c.proxyUid;
  return c;
}
