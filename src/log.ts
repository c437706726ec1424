/** Structured JSON logs: one object per line, filtered by the configured level. */

/** Log levels in increasing severity. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A logger bound to a minimum level. Fields must never hold request text, tokens or keys. */
export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
  /** Whether `level` is written (to skip building fields that would be dropped). */
  enabled(level: LogLevel): boolean;
}

/** Writes one JSON log line, whatever the configured level. */
export function writeLine(level: LogLevel, event: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

/** Creates a logger writing JSON lines to the console at or above `minLevel`. */
export function createLogger(minLevel: LogLevel): Logger {
  const min = LOG_LEVELS.indexOf(minLevel);
  return {
    enabled: (level) => LOG_LEVELS.indexOf(level) >= min,
    log(level, event, fields = {}) {
      if (LOG_LEVELS.indexOf(level) < min) return;
      writeLine(level, event, fields);
    },
  };
}

/**
 * Parses `REQUEST_LOG`, which decides which requests get the per-request line independently of
 * `LOG_LEVEL` (production runs at `warn` and still wants request lines): `all`, `off`, or
 * `sample:<rate>` with a rate in (0, 1]. Returns the share of requests logged (1 = all, 0 = off),
 * or undefined when the value is none of these.
 */
export function parseRequestLog(setting: string): number | undefined {
  if (setting === "all") return 1;
  if (setting === "off") return 0;
  const match = /^sample:(\d*\.?\d+)$/.exec(setting);
  const rate = Number(match?.[1]);
  return match && rate > 0 && rate <= 1 ? rate : undefined;
}

/** Whether this request's line is written, at `rate` (see `parseRequestLog`). */
export function sampleRequest(rate: number): boolean {
  return rate >= 1 || (rate > 0 && Math.random() < rate);
}
