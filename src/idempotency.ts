/**
 * `Idempotency-Key` (IETF draft "The Idempotency-Key HTTP Header Field") on the async submits
 * (`POST /api/v1/predictions`, `POST /api/v1/models`). The key is scoped to the caller's issuer and
 * stored on the row it created with a fingerprint of the request; a unique index on
 * (issuer, key) makes concurrent submits with one key create one row (the losers read it back).
 * Keys live as long as their rows (`RETENTION_DAYS`, or until the model is deleted).
 */
import { parseItem } from "structured-headers";
import { ApiError } from "./errors";
import { sha256Hex } from "./hash";

/** 1–255 visible ASCII characters (VCHAR). */
const KEY_RE = /^[\x21-\x7e]{1,255}$/;

/** Response header marking a replayed (not newly created) result. */
export const REPLAYED_HEADERS = { "idempotent-replayed": "true" } as const;

/**
 * The request's `Idempotency-Key`, or undefined without one. The draft's form is a structured-field
 * string (`"…"`); a bare value is taken as it is, since many clients send keys unquoted. Either way
 * the key must be 1–255 visible ASCII characters (400 `invalid_idempotency_key`); several
 * `Idempotency-Key` headers arrive joined by ", " and are refused by that rule.
 */
export function idempotencyKey(headers: Headers): string | undefined {
  const raw = headers.get("idempotency-key");
  if (raw === null) return undefined;
  let key = raw.trim();
  if (key.startsWith('"')) {
    let item: ReturnType<typeof parseItem> | undefined;
    try {
      item = parseItem(key);
    } catch {
      item = undefined;
    }
    if (typeof item?.[0] !== "string") throw invalidKey("a quoted key must be one structured-field string");
    key = item[0];
  }
  if (!KEY_RE.test(key))
    throw invalidKey("a key is 1–255 visible ASCII characters (no spaces or commas lists)");
  return key;
}

function invalidKey(why: string): ApiError {
  return new ApiError("invalid_idempotency_key", `Idempotency-Key: ${why}`);
}

/** SHA-256 of a request's validated content (`JSON.stringify`), compared when a key is reused. */
export function requestFingerprint(content: unknown): Promise<string> {
  return sha256Hex(new TextEncoder().encode(JSON.stringify(content)));
}

/** The row `caller` created with `key` in `table`, if any. */
export function findByIdempotencyKey<T>(
  db: D1Database,
  table: "predictions" | "jobs",
  caller: string | null,
  key: string,
): Promise<T | null> {
  return db
    .prepare(`SELECT * FROM ${table} WHERE ifnull(caller, '') = ? AND idempotency_key = ?`)
    .bind(caller ?? "", key)
    .first<T>();
}

/** Refuses a reused key whose stored request differs (422 `idempotency_key_reused`). */
export function assertSameRequest(row: { request_hash: string | null }, fingerprint: string): void {
  if (row.request_hash !== fingerprint) {
    throw new ApiError(
      "idempotency_key_reused",
      "this Idempotency-Key was already used with a different request; use a new key for a new request",
    );
  }
}

/** 409 for a key whose first request claimed it but then gave up before anyone could read it. */
export function keyInProgress(): ApiError {
  return new ApiError(
    "idempotency_key_in_progress",
    "a request with this Idempotency-Key is in progress; retry",
    {
      headers: { "retry-after": "1" },
    },
  );
}
