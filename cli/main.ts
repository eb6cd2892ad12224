/**
 * weftctl entry point: `weftctl <command> [flags]`. Finds the command in cli/commands/index.ts
 * and exits with its code. Nothing a user types can produce a stack trace: anything thrown is
 * printed as one line and exits 2.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { errorMessage } from '../pkg/errors/index.js';
import type { CommandIO } from './command.js';
import { commands } from './commands/index.js';
import { WEFT_VERSION as VERSION } from '../pkg/api/images.js';

export function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `weftctl: command line for weft, a service mesh that speaks Istio's API

Usage: weftctl <command> [flags]    (weftctl <command> --help for its flags)

Commands:
${lines.join('\n')}
  version${' '.repeat(Math.max(0, width - 7))}  print the version`;
}

export async function main(argv: string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    io.stdout(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === 'version' || name === '--version') {
    io.stdout(`weftctl ${VERSION}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr(`weftctl: unknown command ${JSON.stringify(name)}\n\n${usage()}\n`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    io.stderr(`weftctl ${name}: ${errorMessage(err)}\n`);
    return 2;
  }
}

/** Writes through to the process streams; exit happens via exitCode, so pipes drain first. */
const processIO: CommandIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

const isEntry = isEntryPoint();
if (isEntry || process.env.WEFTCTL_MAIN === '1') {
  process.on('uncaughtException', (err) => {
    process.stderr.write(`weftctl: ${errorMessage(err)}\n`);
    process.exit(2);
  });
  main(process.argv.slice(2), processIO).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`weftctl: ${errorMessage(err)}\n`);
      process.exitCode = 2;
    },
  );
}
