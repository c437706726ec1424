import type { z } from "zod";
import { concatBytes } from "./bytes";
import { ApiError } from "./errors";

const JSON_TYPES =
  /^(application\/(json|[\w.+-]+\+json)|application\/x-www-form-urlencoded|text\/plain)\s*(;|$)/i;

/**
 * Reads a JSON request body of at most `maxBytes` (see `readBodyBytes`). Accepts `application/json`
 * and `+json` types, and for curl's `-d` default (`x-www-form-urlencoded`) and `text/plain`, a body
 * that is JSON.
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  return parseJsonBytes(await readJsonBodyBytes(request, maxBytes));
}

/** A `JSON.parse` reviver; `context.source` is the value's JSON text (primitives only). */
export type JsonReviver = (key: string, value: unknown, context?: { source?: string }) => unknown;

/** The raw bytes of a JSON request body, with `readJsonBody`'s media-type and size checks. */
export async function readJsonBodyBytes(
  request: Request,
  maxBytes: number,
  tooLarge?: () => Error,
): Promise<Uint8Array> {
  const type = request.headers.get("content-type");
  if (type && !JSON_TYPES.test(type)) {
    throw new ApiError(
      "unsupported_media_type",
      `expected a JSON body, got Content-Type '${type.slice(0, 100)}'`,
    );
  }
  return readBodyBytes(request, maxBytes, tooLarge);
}

/**
 * A request body the Worker did not read to its end — refused over a limit (declared or while
 * streaming), or never looked at (401, 404, 429, a refused dataset upload) — is read and thrown
 * away for up to this many bytes and this long before it is cancelled.
 *
 * Why: answering while the client is still sending and abandoning the body leaves the connection
 * that carried it unusable. Behind `wrangler dev`'s proxy (`npm start`) every request passes one
 * pooled connection from the proxy Worker to this Worker; after a cancelled body that connection
 * is reset, and the next request — from any client — failed with 503 "Your worker restarted
 * mid-request" (a GET was retried with its used body: a 25 s hang, then 500). A body never read
 * at all was instead drained whole by wrangler's body-draining middleware before the answer went
 * out, so a declared length that never arrived got no answer. Draining a bounded remainder lets
 * the connection be reused; a declared length past the bound is cancelled at once (it could not be
 * drained within bounds anyway).
 */
export const REFUSED_BODY_DRAIN_BYTES = 16 * 1024 * 1024;
export const REFUSED_BODY_DRAIN_MS = 3000;

/**
 * Last stage of every request (the router's `finally`): drains an unread request body within
 * `REFUSED_BODY_DRAIN_BYTES` / `REFUSED_BODY_DRAIN_MS`, then cancels what is left; cancels at once
 * a body whose declared length is over the bound. Never throws.
 */
export async function settleRequestBody(request: Request): Promise<void> {
  const body = request.body;
  if (!body || request.bodyUsed || body.locked) return;
  const raw = request.headers.get("content-length");
  const declared = raw !== null && /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : undefined;
  const reader = body.getReader();
  if (declared !== undefined && declared > REFUSED_BODY_DRAIN_BYTES) {
    await reader.cancel().catch(() => undefined);
    return;
  }
  await drainThenCancel(reader, REFUSED_BODY_DRAIN_BYTES, REFUSED_BODY_DRAIN_MS);
}

/**
 * The declared `Content-Length` of `request`: undefined when absent; 400 `invalid_content_length`
 * unless it is one run of decimal digits (`Number()` would take `""`, `-1`, `0x10`, `1e3`).
 */
export function declaredLength(request: Request): number | undefined {
  const raw = request.headers.get("content-length");
  if (raw === null) return undefined;
  if (!/^\d{1,16}$/.test(raw.trim())) {
    throw new ApiError("invalid_content_length", `Content-Length '${raw.slice(0, 40)}' is not a byte count`);
  }
  return Number(raw.trim());
}

/**
 * Reads a request body of at most `maxBytes` (empty when there is none). A declared
 * `Content-Length` over the limit is refused at once without reading (the router's last stage,
 * `settleRequestBody`, drains or cancels the body within bounds); a body without one (chunked) is
 * streamed with a running count and refused as soon as it passes the limit (the rest drained
 * within bounds, see `REFUSED_BODY_DRAIN_BYTES`). `tooLarge` builds the refusal (default: 413
 * `payload_too_large`).
 */
export async function readBodyBytes(
  request: Request,
  maxBytes: number,
  tooLarge: () => Error = () => payloadTooLarge(maxBytes),
): Promise<Uint8Array> {
  const declared = declaredLength(request);
  if (declared !== undefined && declared > maxBytes) throw tooLarge();
  if (!request.body) return new Uint8Array(0);
  // With a valid declared length the runtime enforces it, so the native read is safe; it also
  // skips materialising the body as a JS stream on the hot path.
  if (declared !== undefined) return new Uint8Array(await request.arrayBuffer());
  return readCapped(request.body, maxBytes, tooLarge, { drainBytes: REFUSED_BODY_DRAIN_BYTES });
}

/**
 * Reads a body stream into bytes, refusing past `maxBytes` with `tooLarge()` (default: 413
 * `payload_too_large`). The stream is then cancelled, after reading and dropping up to
 * `drainBytes` more (within `REFUSED_BODY_DRAIN_MS`) when asked: request bodies, not R2 objects.
 */
export async function readCapped(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  tooLarge: () => Error = () => payloadTooLarge(maxBytes),
  { drainBytes = 0 }: { drainBytes?: number } = {},
): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await drainThenCancel(reader, drainBytes, REFUSED_BODY_DRAIN_MS);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}

/** Reads and drops at most `maxBytes` within `ms`, then cancels whatever is left; never throws. */
async function drainThenCancel(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  maxBytes: number,
  ms: number,
): Promise<void> {
  const deadline = Date.now() + ms;
  let seen = 0;
  try {
    while (seen <= maxBytes && maxBytes > 0) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let timer: Parameters<typeof clearTimeout>[0];
      const next = await Promise.race([
        reader.read(),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
      if (next === undefined) break;
      if (next.done) return;
      seen += next.value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The stream failed or was already closed: nothing is left to cancel.
  }
}

/** Parses UTF-8 JSON bytes (400 `invalid_json` when empty, not UTF-8 or not JSON). */
export function parseJsonBytes(bytes: Uint8Array, reviver?: JsonReviver): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("invalid_json", "request body is not valid UTF-8");
  }
  if (text.trim() === "") throw new ApiError("invalid_json", "request body is empty");
  try {
    return JSON.parse(text, reviver as Parameters<typeof JSON.parse>[1]);
  } catch (e) {
    throw new ApiError(
      "invalid_json",
      `request body is not valid JSON: ${(e as Error).message.slice(0, 200)}`,
    );
  }
}

/** The 413 `payload_too_large` error for a body over `maxBytes`. */
export function payloadTooLarge(maxBytes: number): ApiError {
  return new ApiError("payload_too_large", `request body exceeds ${maxBytes} bytes`, {
    extensions: { limit_bytes: maxBytes },
  });
}

/**
 * Validates `value` with `schema`, turning failures into a 400 `invalid_request` listing each issue
 * (request schemas are strict objects: every unknown field is listed).
 */
export function validate<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  // An unknown field is its own error, so a caller sees each one it sent (e.g. `model_id`).
  const errors = parsed.error.issues.flatMap((i) =>
    i.code === "unrecognized_keys"
      ? i.keys.map((key) => ({ path: [...i.path, key].join("."), message: "unknown field" }))
      : [{ path: i.path.join(".") || "(body)", message: i.message }],
  );
  throw new ApiError("invalid_request", errors.map((e) => `${e.path}: ${e.message}`).join("; "), {
    extensions: { errors },
  });
}

/**
 * A JSON answer described by `schema` (src/answers.ts): `body` must be the schema's input type, so
 * `tsc` checks every handler against the schema its route documents in /api/v1/openapi.json.
 * Nothing is parsed at run time (test/node/openapi-answers.test.ts checks real answers instead).
 */
export function reply<S extends z.ZodType>(
  _schema: S,
  body: z.input<S>,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return json(body, status, headers);
}

/** A JSON response. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** Request headers a cross-origin caller may send (preflight `Access-Control-Allow-Headers`). */
export const CORS_ALLOW_HEADERS =
  "authorization, content-type, x-request-id, idempotency-key, inference-header-content-length";
/** Response headers a cross-origin caller may read beyond the CORS-safelisted ones. */
export const CORS_EXPOSE_HEADERS =
  "x-request-id, ratelimit, ratelimit-policy, retry-after, location, allow, x-model-version, idempotent-replayed, inference-header-content-length";
/** How long a browser may cache a preflight answer (Chromium caps it at 7200 s). */
export const CORS_MAX_AGE_S = 7200;
/** `Strict-Transport-Security` when `HSTS=on`: one year; subdomains are not this service's to pin. */
export const HSTS_VALUE = "max-age=31536000";

/** The `Access-Control-Allow-Origin` value for `origin` under `allowList` (`CORS_ORIGINS`), if any. */
export function allowedOrigin(origin: string | null, allowList: readonly string[]): string | undefined {
  if (!origin || allowList.length === 0) return undefined;
  if (allowList.includes("*")) return "*";
  return allowList.includes(origin) ? origin : undefined;
}

/**
 * Adds the headers every API response carries (called once, by the router's last stage):
 * `X-Content-Type-Options: nosniff` and `Cache-Control: no-store` always; with a valid config,
 * `Strict-Transport-Security` when `HSTS` is on, and when `CORS_ORIGINS` is set, `Vary: Origin`
 * plus, for an allowed `Origin`, `Access-Control-Allow-Origin` and `-Expose-Headers`.
 * `Access-Control-Allow-Credentials` is never sent: callers authenticate with a bearer token,
 * not cookies.
 */
export function applyResponseHeaders(
  headers: Headers,
  request: Request,
  config: { HSTS: boolean; CORS_ORIGINS: readonly string[] } | undefined,
): void {
  headers.set("x-content-type-options", "nosniff");
  headers.set("cache-control", "no-store");
  if (!config) return;
  if (config.HSTS) headers.set("strict-transport-security", HSTS_VALUE);
  if (config.CORS_ORIGINS.length === 0) return;
  appendVary(headers, "Origin");
  const allow = allowedOrigin(request.headers.get("origin"), config.CORS_ORIGINS);
  if (!allow) return;
  headers.set("access-control-allow-origin", allow);
  headers.set("access-control-expose-headers", CORS_EXPOSE_HEADERS);
}

/**
 * Answers `OPTIONS` on a route's path. A CORS preflight (`Origin` and
 * `Access-Control-Request-Method`) from an origin `CORS_ORIGINS` allows → 204 with the path's
 * methods, `CORS_ALLOW_HEADERS` and `CORS_MAX_AGE_S`; from any other origin (or with CORS off)
 * → 403 `origin_not_allowed`. A plain `OPTIONS` → 204 with `Allow`.
 */
export function optionsResponse(
  request: Request,
  methods: readonly string[],
  corsOrigins: readonly string[],
) {
  const origin = request.headers.get("origin");
  const allow = [...methods, "OPTIONS"].join(", ");
  if (!origin || !request.headers.has("access-control-request-method")) {
    return new Response(null, { status: 204, headers: { allow } });
  }
  const allowed = allowedOrigin(origin, corsOrigins);
  if (!allowed) {
    throw new ApiError(
      "origin_not_allowed",
      corsOrigins.length === 0
        ? "cross-origin requests are not enabled (CORS_ORIGINS is empty)"
        : `origin '${origin.slice(0, 200)}' is not in CORS_ORIGINS`,
    );
  }
  return new Response(null, {
    status: 204,
    headers: {
      "access-control-allow-origin": allowed,
      "access-control-allow-methods": allow,
      "access-control-allow-headers": CORS_ALLOW_HEADERS,
      "access-control-max-age": String(CORS_MAX_AGE_S),
      vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    },
  });
}

/** Adds `name` to `Vary` unless it is already listed. */
function appendVary(headers: Headers, name: string): void {
  const current = headers.get("vary");
  if (!current) headers.set("vary", name);
  else if (!current.split(",").some((v) => v.trim().toLowerCase() === name.toLowerCase()))
    headers.set("vary", `${current}, ${name}`);
}
