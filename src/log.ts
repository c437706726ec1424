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

/** What the per-request line (`REQUEST_LOG`) says: values at hand when the response is ready. */
export interface RequestLine {
  request_id: string;
  client_request_id: string | number | undefined;
  api: string;
  issuer: string | undefined;
  method: string;
  /** The request's URL (as workerd normalised it); the line carries its path as `route`. */
  url: string;
  status: number;
  latency_ms: number;
  model: string | undefined;
  model_version: string | undefined;
}

/**
 * Writes the per-request line: the fields of `writeLine("info", "request", …)` in the same order,
 * built as one flat object (no spread into a second one) and serialised once; the path is cut from
 * the URL string instead of parsing it again. What remains is `console.log` of one string: most of
 * the line's cost in workerd (docs/benchmarks.md, "The request log").
 */
export function writeRequestLine(line: RequestLine): void {
  console.log(
    JSON.stringify({
      ts: new Date().toISOString(),
      level: "info",
      event: "request",
      request_id: line.request_id,
      client_request_id: line.client_request_id,
      api: line.api,
      issuer: line.issuer,
      method: line.method,
      route: pathOf(line.url),
      status: line.status,
      latency_ms: line.latency_ms,
      model: line.model,
      model_version: line.model_version,
    }),
  );
}

/** The path of an absolute, normalised URL (`new URL(url).pathname` without a second parse). */
export function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const end = url.indexOf("?", start);
  const hash = url.indexOf("#", start);
  const stop = end === -1 ? hash : hash === -1 ? end : Math.min(end, hash);
  return stop === -1 ? url.slice(start) : url.slice(start, stop);
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
