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

/** Creates a logger writing JSON lines to the console at or above `minLevel`. */
export function createLogger(minLevel: LogLevel): Logger {
  const min = LOG_LEVELS.indexOf(minLevel);
  return {
    enabled: (level) => LOG_LEVELS.indexOf(level) >= min,
    log(level, event, fields = {}) {
      if (LOG_LEVELS.indexOf(level) < min) return;
      const line = JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields });
      if (level === "error") console.error(line);
      else if (level === "warn") console.warn(line);
      else console.log(line);
    },
  };
}
