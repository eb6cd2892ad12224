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
import { CONFIG_SECTIONS, type ConfigSection, configSection, sectionTable } from '../proxyview.js';
import { clusterFlagsUsage, connectWeftd, fetchProxyConfig, podRef } from '../weftd.js';

export const proxyConfigUsage = `Usage: weftctl proxy-config listeners|routes|clusters|endpoints POD[.NAMESPACE] [-n NAMESPACE] [-o text|json|yaml] [flags]
       weftctl proxy-config listeners|routes|clusters|endpoints --config FILE

Prints one part of the config a pod's proxy gets from weftd now:
  listeners   name, address, port, protocol, virtual host count (or TCP cluster)
  routes      listener, virtual host, domains, match (| between ORed blocks), destinations
              with weights, the Istio object and http[] rule it came from
  clusters    name, service, port, subset, load balancer, connection pool, outlier detection
  endpoints   address:port, cluster, weight, pod labels
-o json|yaml prints that part of the config raw. --config FILE reads a local ProxyConfig or
Istio YAML (as weft-proxy run --config does) instead of asking weftd.
  --kind sidecar|gateway    which proxy of the pod (default: gateway for weft.dev/gateway pods)

${clusterFlagsUsage}`;

function isSection(s: string | undefined): s is ConfigSection {
  return CONFIG_SECTIONS.includes(s as ConfigSection);
}

export async function runProxyConfig(argv: string[], io: CommandIO): Promise<number> {
  try {
    let kind: string | undefined;
    const extra = (flag: Flag): boolean => {
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
