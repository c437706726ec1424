import { ApiError } from "../errors";

/** Why a request failed authentication: a stable reason code, logged and shown in the problem. */
export type AuthReason =
  | "missing_token"
  | "malformed_header"
  | "token_too_large"
  | "malformed_token"
  | "invalid_encoding"
  | "forbidden_header"
  | "alg_not_allowed"
  | "invalid_kid"
  | "kid_issuer_mismatch"
  | "unknown_key"
  | "key_invalid"
  | "key_alg_mismatch"
  | "bad_signature"
  | "missing_claim"
  | "invalid_claim"
  | "wrong_audience"
  | "token_expired"
  | "token_not_yet_valid"
  | "iat_in_future"
  | "lifetime_too_long"
  | "replayed_token"
  | "key_server_unavailable"
  | "replay_guard_unavailable";

/** Reasons that are our fault (a dependency is down): 503 instead of 401. */
export const UNAVAILABLE_REASONS: ReadonlySet<AuthReason> = new Set([
  "key_server_unavailable",
  "replay_guard_unavailable",
]);

/**
 * An authentication failure. `message` is safe to show the client: it never holds the token, its
 * claims' values or key material.
 */
export class AuthError extends Error {
  override name = "AuthError";
  constructor(
    readonly reason: AuthReason,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The problem for an authentication failure: 401 `invalid_token` with `WWW-Authenticate`, or 503
 * `auth_unavailable` when a dependency (key server, replay shard) is down; the reason code is kept
 * in `reason`.
 */
export function authApiError(error: AuthError): ApiError {
  if (UNAVAILABLE_REASONS.has(error.reason)) {
    return new ApiError("auth_unavailable", error.message, {
      headers: { "retry-after": "1" },
      extensions: { reason: error.reason },
    });
  }
  return new ApiError("invalid_token", error.message, {
    headers: {
      "www-authenticate": `Bearer error="invalid_token", error_description="${error.message.replace(/["\\]/g, "'")}"`,
    },
    extensions: { reason: error.reason },
  });
}
