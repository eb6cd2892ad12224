/**
 * Structured logging for every weft component: JSON lines on stderr by default (what log
 * collectors want), a readable format when WEFT_LOG_FORMAT=text. Use a child logger per unit
 * of work (a reconcile key, an admission request) so every line carries its context.
 *
 * The lines are the ones winston's json() + timestamp() wrote (keys sorted at every depth, a
 * circular reference as "[Circular]", a meta `message` appended to the message), but without
 * winston: importing it cost every process ~12 MB RSS, a sixth of a proxy sidecar
 * (docs/proxy-modes.md#memory). The methods are the npm-level subset weft uses.
 */

/** npm levels, most severe first (what winston used). */
export const LEVELS = { error: 0, warn: 1, info: 2, http: 3, verbose: 4, debug: 5, silly: 6 } as const;
export type Level = keyof typeof LEVELS;
type Meta = Record<string, unknown>;
type LogMethod = (message: unknown, meta?: Meta) => Logger;

export interface Logger {
  level: string;
  silent: boolean;
  log(level: string, message: unknown, meta?: Meta): Logger;
  error: LogMethod;
  warn: LogMethod;
  info: LogMethod;
  http: LogMethod;
  verbose: LogMethod;
  debug: LogMethod;
  silly: LogMethod;
  /** A logger whose lines also carry `meta`. */
  child(meta: Meta): Logger;
}

export interface LoggerOptions {
  level?: string;
  format?: 'json' | 'text';
  /** Silences output entirely (tests). */
  silent?: boolean;
}

/** JSON with keys sorted at every depth and cycles cut, as winston's json format wrote it. */
export function stableStringify(value: unknown): string {
  const seen: unknown[] = [];
  const sorted = (v: unknown): unknown => {
    if (typeof v === 'bigint') return Number(v);
    if (v === null || typeof v !== 'object') return v;
    const withJson = v as { toJSON?: () => unknown };
    if (typeof withJson.toJSON === 'function') return sorted(withJson.toJSON());
    if (seen.includes(v)) return '[Circular]';
    seen.push(v);
    let out: unknown;
    if (Array.isArray(v)) out = v.map((x) => (x === undefined || typeof x === 'function' ? null : sorted(x)));
    else {
      const o: Meta = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Meta)[k];
        if (x !== undefined && typeof x !== 'function' && typeof x !== 'symbol') o[k] = sorted(x);
      }
      out = o;
    }
    seen.pop();
    return out;
  };
  return JSON.stringify(sorted(value));
}

function messageText(message: unknown): string {
  if (message instanceof Error) return message.message;
  return typeof message === 'string' ? message : String(message);
}

/** Level and silence, shared by a logger and its children (setting either on one sets both, as in winston). */
interface Settings {
  level: string;
  silent: boolean;
}

class LineLogger implements Logger {
  constructor(
    private readonly settings: Settings,
    private readonly format: 'json' | 'text',
    private readonly meta: Meta,
  ) {}

  get level(): string {
    return this.settings.level;
  }
  set level(v: string) {
    this.settings.level = v;
  }
  get silent(): boolean {
    return this.settings.silent;
  }
  set silent(v: boolean) {
    this.settings.silent = v;
  }

  log(level: string, message: unknown, meta?: Meta): Logger {
    const rank = LEVELS[level as Level] ?? LEVELS.info;
    if (this.silent || rank > (LEVELS[this.level as Level] ?? LEVELS.info)) return this;
    let text = messageText(message);
    const extra: Meta = { ...meta };
    if (typeof extra.message === 'string') {
      text = `${text} ${extra.message}`;
      delete extra.message;
    }
    const timestamp = new Date().toISOString();
    process.stderr.write(`${this.render(level, text, extra, timestamp)}\n`);
    return this;
  }

  private render(level: string, message: string, extra: Meta, timestamp: string): string {
    if (this.format === 'json') return stableStringify({ ...this.meta, ...extra, level, message, timestamp });
    const { component, ...rest } = { ...this.meta, ...extra };
    const tail = Object.keys(rest).length > 0 ? ` ${stableStringify(rest)}` : '';
    return `${timestamp} ${level} [${String(component)}] ${message}${tail}`;
  }

  error: LogMethod = (m, meta) => this.log('error', m, meta);
  warn: LogMethod = (m, meta) => this.log('warn', m, meta);
  info: LogMethod = (m, meta) => this.log('info', m, meta);
  http: LogMethod = (m, meta) => this.log('http', m, meta);
  verbose: LogMethod = (m, meta) => this.log('verbose', m, meta);
  debug: LogMethod = (m, meta) => this.log('debug', m, meta);
  silly: LogMethod = (m, meta) => this.log('silly', m, meta);

  child(meta: Meta): Logger {
    return new LineLogger(this.settings, this.format, { ...this.meta, ...meta });
  }
}

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.WEFT_LOG_LEVEL ?? 'info';
  const format = options.format ?? (process.env.WEFT_LOG_FORMAT === 'text' ? 'text' : 'json');
  const silent = options.silent ?? process.env.WEFT_LOG_SILENT === '1';
  return new LineLogger({ level, silent }, format, { component });
}
