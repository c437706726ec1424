/** The authentication stage: ASAP bearer token → verified caller on `request.state`, or a problem. */
import type { AppRequest } from "../context";
import { ApiError } from "../errors";
import { AuthError, UNAVAILABLE_REASONS } from "./failure";
import { isAllowed } from "./policy";
import { type AsapClaims, verifyAsap } from "./verify";

/** RFC 6750 `Bearer <b64token>`; the scheme is case-insensitive. */
const BEARER_RE = /^Bearer +([\w\-.~+/]+=*) *$/i;

/**
 * Authenticates `request` for the route `api`/`method`: verifies the ASAP token, applies the
 * issuer policy (403 `forbidden`), then rejects a replayed `jti`. On success the caller is recorded
 * as `request.state.caller`. Failures log their reason code only, never the token. Does nothing
 * when `ASAP_AUTH` is off (dev/test only, for benchmark baselines).
 */
export async function authenticate(
  request: AppRequest,
  env: Env,
  route: { api: string; method: string },
): Promise<void> {
  const { config, logger, requestId } = request.state;
  if (!config.ASAP_AUTH) return;
  try {
    const claims = await verifyAsap(bearerToken(request.headers.get("authorization")), {
      audiences: config.ASAP_AUDIENCE,
      leewayS: config.ASAP_LEEWAY_S,
      keySource: {
        kind: config.ASAP_KEY_SOURCE,
        baseUrls: config.ASAP_KEY_BASE_URLS,
        timeoutMs: config.ASAP_KEY_TIMEOUT_MS,
      },
      bucket: env.MODELS,
    });
    if (!isAllowed(config.ASAP_POLICY, claims.issuer, route.api, route.method)) {
      logger.log("info", "auth_forbidden", { request_id: requestId, issuer: claims.issuer });
      throw new ApiError("forbidden", `issuer '${claims.issuer}' may not call ${route.method} ${route.api}`);
    }
    if (config.ASAP_REPLAY_PROTECTION) await claimJti(env, claims, config.ASAP_LEEWAY_S);
    request.state.caller = { issuer: claims.issuer, subject: claims.subject };
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    const unavailable = UNAVAILABLE_REASONS.has(error.reason);
    logger.log(unavailable ? "warn" : "info", "auth_rejected", {
      request_id: requestId,
      reason: error.reason,
    });
    if (unavailable) {
      throw new ApiError("auth_unavailable", error.message, {
        headers: { "retry-after": "1" },
        extensions: { reason: error.reason },
      });
    }
    throw new ApiError("invalid_token", error.message, {
      headers: {
        "www-authenticate": `Bearer error="invalid_token", error_description="${error.message.replace(/["\\]/g, "'")}"`,
      },
      extensions: { reason: error.reason },
    });
  }
}

function bearerToken(header: string | null): string {
  if (header === null || header.trim() === "") {
    throw new AuthError("missing_token", "send 'Authorization: Bearer <ASAP token>'");
  }
  const match = BEARER_RE.exec(header);
  if (!match?.[1])
    throw new AuthError("malformed_header", "the Authorization header must be 'Bearer <token>'");
  return match[1];
}

/**
 * Records the token's `jti` in its issuer's `ReplayGuard` until the token can no longer be
 * accepted (`exp` + leeway); a `jti` already recorded is a replay.
 */
async function claimJti(env: Env, claims: AsapClaims, leewayS: number): Promise<void> {
  let fresh: boolean;
  try {
    const guard = env.REPLAY_GUARD.get(env.REPLAY_GUARD.idFromName(claims.issuer));
    fresh = await guard.claim(claims.jti, (claims.exp + leewayS) * 1000);
  } catch {
    throw new AuthError("replay_guard_unavailable", "replay protection is unavailable; retry later");
  }
  if (!fresh) throw new AuthError("replayed_token", "token jti has been used before");
}
