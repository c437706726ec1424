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
 * The per-request line's text: the fields of `writeLine("info", "request", …)` in the same order,
 * built as one flat object (no spread into a second one) and serialised once; the path is cut from
 * the URL string instead of parsing it again.
 */
export function requestLineText(line: RequestLine): string {
  return JSON.stringify({
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
  });
}

/** How long a batch of request lines may wait for more before it is written, in ms. */
export const REQUEST_LOG_FLUSH_MS = 50;

/**
 * The isolate's request lines waiting to be written, batched: one `console.log` carries up to
 * `REQUEST_LOG_BATCH` lines joined by newlines. In workerd the first `console.log` of a request
 * costs several times what the line's JSON does (docs/benchmarks.md, "The request log"), so one call
 * per batch instead of one per request is most of the line's cost saved. A batch is written when it
 * is full, or `REQUEST_LOG_FLUSH_MS` after its first line by a timer that request keeps alive
 * (`ctx.waitUntil`), so no line waits longer than that and none is lost when traffic stops. Each
 * line keeps its own fields (`ts`, `request_id`, …); a batch is logged by the request that completes
 * or times it, so Workers Logs show it under that invocation. A batch of 1 writes each line at once.
 * Lines are plain strings: nothing of one request's I/O crosses into another.
 */
export class RequestLog {
  readonly #pending: string[] = [];
  #timer = false;

  constructor(private readonly write: (text: string) => void = (text) => console.log(text)) {}

  /**
   * Adds `text`; writes the batch when it reaches `batch` lines. Otherwise, when `text` starts a
   * batch, `keepAlive` is given the promise that writes it after `REQUEST_LOG_FLUSH_MS`.
   */
  add(text: string, batch: number, keepAlive: (flushed: Promise<void>) => void): void {
    this.#pending.push(text);
    if (this.#pending.length >= batch) this.flush();
    else if (!this.#timer) {
      this.#timer = true;
      keepAlive(this.#flushLater());
    }
  }

  /** Writes the waiting lines now, as one `console.log`. */
  flush(): void {
    if (this.#pending.length === 0) return;
    const text = this.#pending.length === 1 ? (this.#pending[0] as string) : this.#pending.join("\n");
    this.#pending.length = 0;
    this.write(text);
  }

  async #flushLater(): Promise<void> {
    try {
      await new Promise((resolve) => setTimeout(resolve, REQUEST_LOG_FLUSH_MS));
    } finally {
      this.#timer = false;
      this.flush();
    }
  }

  /** Lines waiting. */
  get size(): number {
    return this.#pending.length;
  }
}

/** The isolate's request log. */
export const requestLog = new RequestLog();

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
