/**
 * `proxy init`: installs the capture rules in the pod's network namespace (run as an init
 * container with NET_ADMIN/NET_RAW), or prints them with `--dry-run`. Exit 0 on success, 1 when
 * iptables refuses (the rules and iptables' own stderr are printed), 2 on a usage error.
 */
import { spawnSync } from 'node:child_process';
import { InitUsageError, parseInitFlags } from './flags.js';
import { natRules, withoutExistingJumps } from './rules.js';

const USAGE = `usage: proxy init -p PORT -z PORT -u UID [-g GID] -m REDIRECT -i CIDRS|'*' [-x CIDRS]
                  -b PORTS|'*' [-d PORTS] [-o PORTS] [-q PORTS] [--dry-run]`;

export function runInit(argv: string[], out: NodeJS.WritableStream = process.stdout): number {
  let rules: string;
  let dryRun: boolean;
  try {
    const cfg = parseInitFlags(argv);
    rules = natRules(cfg);
    dryRun = cfg.dryRun;
  } catch (err) {
    if (!(err instanceof InitUsageError)) throw err;
    process.stderr.write(`proxy init: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (dryRun) {
    out.write(rules);
    return 0;
  }
  const saved = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' });
  if (saved.error || saved.status !== 0) {
    process.stderr.write(
      `proxy init: iptables-save failed (${saved.error?.message ?? `exit ${saved.status}`}): ${saved.stderr ?? ''}\n` +
        'proxy init needs iptables in the image and NET_ADMIN/NET_RAW in the init container.\n',
    );
    return 1;
  }
  const input = withoutExistingJumps(rules, saved.stdout);
  const r = spawnSync('iptables-restore', ['--noflush'], { input, encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    process.stderr.write(
      `proxy init: iptables-restore --noflush failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stderr ?? ''}\n` +
        `rules were:\n${input}`,
    );
    return 1;
  }
  out.write(`proxy init: installed capture rules\n${input}`);
  return 0;
}
