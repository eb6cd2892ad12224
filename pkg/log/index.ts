/**
 * Structured logging for every weft component: JSON lines on stderr by default (what log
 * collectors want), a readable format when WEFT_LOG_FORMAT=text. Use a child logger per unit
 * of work (a reconcile key, an admission request) so every line carries its context.
 */
import winston from 'winston';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level?: string;
  format?: 'json' | 'text';
  /** Silences output entirely (tests). */
  silent?: boolean;
}

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.WEFT_LOG_LEVEL ?? 'info';
  const formatName = options.format ?? (process.env.WEFT_LOG_FORMAT === 'text' ? 'text' : 'json');
  const format =
    formatName === 'text'
      ? winston.format.combine(
          winston.format.timestamp(),
          winston.format.printf(({ timestamp, level: lvl, message, component: c, ...rest }) => {
            const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
            return `${String(timestamp)} ${lvl} [${String(c)}] ${String(message)}${extra}`;
          }),
        )
      : winston.format.combine(winston.format.timestamp(), winston.format.json());
  return winston.createLogger({
    level,
    format,
    defaultMeta: { component },
    silent: options.silent ?? process.env.WEFT_LOG_SILENT === '1',
    transports: [new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) })],
  });
}
