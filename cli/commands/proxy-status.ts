/**
 * `weftctl proxy-status [POD[.NS]]`: istioctl proxy-status for weft. Every proxy connected to
 * weftd, the config version weftd last sent it, the version it last ACKed, and its state from
 * its answers (cli/proxyview.ts syncState): SYNCED, STALE, NACKED with the reason, NOT SENT, or
 * UNKNOWN for a proxy that does not answer.
 */
import { errorMessage, WeftError } from '../../pkg/errors/index.js';
import type { CommandIO } from '../command.js';
import { parseMeshArgs } from '../meshargs.js';
import { statusEntries, statusTable } from '../proxyview.js';
import { clusterFlagsUsage, connectWeftd, fetchConnections, podRef } from '../weftd.js';

export const proxyStatusUsage = `Usage: weftctl proxy-status [POD[.NAMESPACE]] [-n NAMESPACE] [-o text|json] [flags]

Lists the proxies connected to weftd: NAME (pod.namespace), KIND (sidecar|gateway), VERSION (the
config version weftd last sent), ACKED (the version the proxy last confirmed it compiled and runs),
PUSHES (configs sent on this connection), CONNECTED (how long ago it connected) and STATE:
  SYNCED     the proxy ACKed the newest push, and it is what weftd would send now
  STALE      the newest push is not ACKed yet, or weftd has a newer one to send
  NACKED     the proxy refused the newest push (the reason follows); it runs its previous config
  NOT SENT   weftd has sent nothing (in brackets why, e.g. pod-unknown)
  UNKNOWN    the proxy does not answer pushes (a build from before ACK/NACK)
With POD or -n, only that pod or namespace.

${clusterFlagsUsage}`;

export async function runProxyStatus(argv: string[], io: CommandIO): Promise<number> {
  try {
    const args = parseMeshArgs(argv, proxyStatusUsage, ['text', 'json']);
    if (args.help) {
      io.stdout(`${proxyStatusUsage}\n`);
      return 0;
    }
    if (args.positionals.length > 1)
      throw new WeftError(
        'WEFT_INPUT_UNREADABLE',
        `at most one pod, got ${args.positionals.join(' ')}\n\n${proxyStatusUsage}`,
      );
    const target = connectWeftd(args.cluster);
    const answer = await fetchConnections(target);
    const only =
      args.positionals[0] !== undefined
        ? podRef(args.positionals[0], args.namespace, target.defaultNamespace)
        : undefined;
    const connections = answer.connections.filter(
      (c) =>
        (only === undefined || (c.pod === only.pod && c.namespace === only.namespace)) &&
        (only !== undefined || args.namespace === undefined || c.namespace === args.namespace),
    );
    const entries = statusEntries(connections, Date.now());
    if (args.output === 'json') {
      io.stdout(`${JSON.stringify({ generation: answer.generation, proxies: entries }, null, 2)}\n`);
      return 0;
    }
    if (entries.length === 0) {
      io.stderr(
        `no proxies connected to weftd${only ? ` for pod ${only.pod}.${only.namespace}` : args.namespace ? ` in namespace ${args.namespace}` : ''}\n`,
      );
      return 0;
    }
    io.stdout(statusTable(entries));
    return 0;
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n`);
    return 2;
  }
}
