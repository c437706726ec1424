import type { z } from "zod";
import { ApiError } from "./errors";

const JSON_TYPES =
  /^(application\/(json|[\w.+-]+\+json)|application\/x-www-form-urlencoded|text\/plain)\s*(;|$)/i;

/**
 * Reads a JSON request body of at most `maxBytes`, refusing early on `Content-Length` and again
 * while streaming (chunked bodies have no length). Accepts `application/json` and `+json` types, and
 * for curl's `-d` default (`x-www-form-urlencoded`) and `text/plain`, a body that is JSON.
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  return parseJsonBytes(await readJsonBodyBytes(request, maxBytes));
}

/** The raw bytes of a JSON request body, with `readJsonBody`'s media-type and size checks. */
export async function readJsonBodyBytes(request: Request, maxBytes: number): Promise<Uint8Array> {
  const type = request.headers.get("content-type");
  if (type && !JSON_TYPES.test(type)) {
    throw new ApiError(
      "unsupported_media_type",
      `expected a JSON body, got Content-Type '${type.slice(0, 100)}'`,
    );
  }
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) throw payloadTooLarge(maxBytes);
  // With a declared length the runtime enforces it, so the native read is safe (an empty body is
  // refused by the parser); chunked bodies are streamed with a running count. The native read
  // also skips materialising `request.body` as a stream object on the hot path.
  if (Number.isFinite(declared)) return new Uint8Array(await request.arrayBuffer());
  if (!request.body) throw new ApiError("invalid_json", "request body is empty");
  return readCapped(request.body, maxBytes);
}

/**
 * Reads a body stream into bytes, refusing past `maxBytes` with `tooLarge()` (default: 413
 * `payload_too_large`); the stream is cancelled then.
 */
export async function readCapped(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  tooLarge: () => Error = () => payloadTooLarge(maxBytes),
): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return bytes;
}

/** Parses UTF-8 JSON bytes (400 `invalid_json` when empty, not UTF-8 or not JSON). */
export function parseJsonBytes(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("invalid_json", "request body is not valid UTF-8");
  }
  if (text.trim() === "") throw new ApiError("invalid_json", "request body is empty");
  try {
    return JSON.parse(text);
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

/** A JSON response. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}
