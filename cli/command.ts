/**
 * What a weftctl subcommand is. Each lives in `cli/commands/<name>.ts` and is listed once in
 * `cli/commands/index.ts`; `cli/main.ts` dispatches to it.
 */
export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Reads a path, or standard input for `-` (tests inject it). */
  readInput?: (path: string) => string;
}

export interface Command {
  name: string;
  /** One line for `weftctl --help`. */
  summary: string;
  /** Returns the process exit code. Must not throw for bad input; main.ts catches anything else. */
  run: (argv: string[], io: CommandIO) => number | Promise<number>;
}
