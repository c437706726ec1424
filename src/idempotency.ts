/**
 * `Idempotency-Key` (IETF draft "The Idempotency-Key HTTP Header Field") on the async submits
 * (`POST /api/v1/predictions`, `POST /api/v1/models`). The key is scoped to the caller's issuer and
 * stored on the row it created with a fingerprint of the request; a unique index on
 * (issuer, key) makes concurrent submits with one key create one row (the losers read it back).
 * Keys live as long as their rows (`RETENTION_DAYS`, or until the model is deleted).
 */
import { parseItem } from "structured-headers";
import { d1 } from "./contracts/d1";
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
    throw invalidKey("a key is 1–255 visible ASCII characters (no spaces; one key per request)");
  return key;
}

function invalidKey(why: string): ApiError {
  return new ApiError("invalid_idempotency_key", `Idempotency-Key: ${why}`);
}

/** A submit's key, its issuer, and the fingerprint (SHA-256) of its validated content. */
export interface IdempotentRequest {
  key: string;
  caller: string | null;
  fingerprint: string;
}

/** The `IdempotentRequest` of a submit with `key` (undefined without one). */
export async function idempotentRequest(
  key: string | undefined,
  caller: string | null,
  content: unknown,
): Promise<IdempotentRequest | undefined> {
  if (key === undefined) return undefined;
  const fingerprint = await sha256Hex(new TextEncoder().encode(JSON.stringify(content)));
  return { key, caller, fingerprint };
}

/**
 * The row an earlier submit with this request's key created in `table`, if any; 422
 * `idempotency_key_reused` when that submit's content differs.
 */
export async function findReplay<T extends { request_hash: string | null }>(
  db: D1Database,
  table: "predictions" | "jobs",
  request: IdempotentRequest | undefined,
): Promise<T | null> {
  if (request === undefined) return null;
  const row = await d1(`read ${table}`, () =>
    db
      .prepare(`SELECT * FROM ${table} WHERE ifnull(caller, '') = ? AND idempotency_key = ?`)
      .bind(request.caller ?? "", request.key)
      .first<T>(),
  );
  if (row && row.request_hash !== request.fingerprint) {
    throw new ApiError(
      "idempotency_key_reused",
      "this Idempotency-Key was already used with a different request; use a new key for a new request",
    );
  }
  return row;
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
