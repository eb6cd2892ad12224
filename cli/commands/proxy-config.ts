/**
 * `weftctl proxy-config listeners|routes|clusters|endpoints POD[.NS]`: istioctl proxy-config for
 * weft. Reads the config weftd would send that pod's proxy now (`/debug/config`), or a local
 * file with `--config`, and prints one part of it as a table, or raw with `-o json|yaml`.
 */
import { stringify } from 'yaml';
import { errorMessage, WeftError } from '../../pkg/errors/index.js';
import type { ProxyConfig } from '../../pkg/proxyconfig/types.js';
import type { Flag } from '../args.js';
import type { CommandIO } from '../command.js';
import { loadLocalConfig, parseMeshArgs } from '../meshargs.js';
import {
  CONFIG_SECTIONS,
  type CertsAnswer,
  type ConfigSection,
  configSection,
  secretTable,
  sectionTable,
} from '../proxyview.js';
import {
  clusterFlagsUsage,
  connectWeftd,
  fetchProxyCerts,
  fetchProxyConfig,
  parseWeftdAddress,
  podRef,
} from '../weftd.js';

export const proxyConfigUsage = `Usage: weftctl proxy-config listeners|routes|clusters|endpoints POD[.NAMESPACE] [-n NAMESPACE] [-o text|json|yaml] [flags]
       weftctl proxy-config listeners|routes|clusters|endpoints --config FILE
       weftctl proxy-config secret POD[.NAMESPACE] [-n NAMESPACE] [-o text|json|yaml] [--proxy-address URL]

Prints one part of the config a pod's proxy gets from weftd now:
  listeners   name, address, port, protocol, virtual host count (or TCP cluster)
  routes      listener, virtual host, domains, match (| between ORed blocks), destinations
              with weights, the Istio object and http[] rule it came from
  clusters    name, service, port, subset, load balancer, connection pool, outlier detection
  endpoints   address:port, cluster, weight, the pod labels the proxy reads (tlsMode, version,
              failoverPriority ones; weftd trims the others)
  secret      the proxy's workload certificate and trusted roots as the proxy holds them now
              (istioctl's columns), read from the pod's port 15090 /certs through the API
              server (RBAC: get pods/proxy), or --proxy-address http://HOST:PORT directly
-o json|yaml prints that part of the config raw. --config FILE reads a local ProxyConfig or
Istio YAML (as weft-proxy run --config does) instead of asking weftd.
  --kind sidecar|gateway    which proxy of the pod (default: gateway for weft.dev/gateway pods)

${clusterFlagsUsage}`;

/** `proxy-config secret`: asks the proxy itself, not weftd (the certificate is the proxy's). */
async function runSecret(
  args: ReturnType<typeof parseMeshArgs>,
  proxyAddress: string | undefined,
  io: CommandIO,
): Promise<number> {
  const [, pod, ...rest] = args.positionals;
  if (pod === undefined || rest.length > 0)
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      `proxy-config secret needs one POD[.NAMESPACE]\n\n${proxyConfigUsage}`,
    );
  if (args.configFile !== undefined)
    throw new WeftError(
      'WEFT_INPUT_UNREADABLE',
      'proxy-config secret reads a running proxy; --config does not apply',
    );
  let defaultNamespace = 'default';
  if (proxyAddress === undefined) defaultNamespace = connectWeftd(args.cluster).defaultNamespace;
  const ref = podRef(pod, args.namespace, defaultNamespace);
  const answer = (await fetchProxyCerts(args.cluster, ref.namespace, ref.pod, proxyAddress)) as CertsAnswer;
  if (args.output === 'json') io.stdout(`${JSON.stringify(answer, null, 2)}\n`);
  else if (args.output === 'yaml') io.stdout(stringify(answer, { lineWidth: 0 }));
  else {
    if (!answer || !Array.isArray(answer.roots))
      throw new WeftError(
        'WEFT_WEFTD_ANSWER',
        'the proxy answered /certs with something that is not a certificate summary',
      );
    io.stdout(secretTable(answer));
  }
  return 0;
}

function isSection(s: string | undefined): s is ConfigSection {
  return CONFIG_SECTIONS.includes(s as ConfigSection);
}

export async function runProxyConfig(argv: string[], io: CommandIO): Promise<number> {
  try {
    let kind: string | undefined;
    let proxyAddress: string | undefined;
    const extra = (flag: Flag): boolean => {
      if (flag.name === '--proxy-address') {
        proxyAddress = parseWeftdAddress(flag.value());
        return true;
      }
      if (flag.name !== '--kind') return false;
      kind = flag.value();
      if (kind !== 'sidecar' && kind !== 'gateway')
        throw new WeftError(
          'WEFT_INPUT_UNREADABLE',
          `--kind must be sidecar or gateway (got ${JSON.stringify(kind)})`,
        );
      return true;
    };
    const args = parseMeshArgs(argv, proxyConfigUsage, ['text', 'json', 'yaml'], extra);
    if (args.help) {
      io.stdout(`${proxyConfigUsage}\n`);
      return 0;
    }
    if (args.positionals[0] === 'secret') return await runSecret(args, proxyAddress, io);
    const [section, pod, ...rest] = args.positionals;
    if (!isSection(section))
      throw new WeftError(
        'WEFT_INPUT_UNREADABLE',
        `${section === undefined ? 'a part is required' : `unknown part ${JSON.stringify(section)}`}: ${CONFIG_SECTIONS.join(', ')}\n\n${proxyConfigUsage}`,
      );
    if (rest.length > 0)
      throw new WeftError(
        'WEFT_INPUT_UNREADABLE',
        `too many arguments: ${rest.join(' ')}\n\n${proxyConfigUsage}`,
      );
    let config: ProxyConfig;
    if (args.configFile !== undefined) {
      if (pod !== undefined)
        throw new WeftError('WEFT_INPUT_UNREADABLE', `give a POD or --config FILE, not both`);
      config = loadLocalConfig(args.configFile, io);
    } else {
      if (pod === undefined)
        throw new WeftError(
          'WEFT_INPUT_UNREADABLE',
          `POD[.NAMESPACE] is required (or --config FILE)\n\n${proxyConfigUsage}`,
        );
      const target = connectWeftd(args.cluster);
      const ref = podRef(pod, args.namespace, target.defaultNamespace);
      config = (await fetchProxyConfig(target, ref.namespace, ref.pod, kind)).config!;
    }
    const part = configSection(config, section);
    if (args.output === 'json') io.stdout(`${JSON.stringify(part, null, 2)}\n`);
    else if (args.output === 'yaml') io.stdout(stringify(part, { lineWidth: 0 }));
    else io.stdout(sectionTable(config, section));
    return 0;
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return 2;
  }
}
