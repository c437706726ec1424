/** The authentication stage: ASAP bearer token → verified caller on `request.state`, or a problem. */

import type { AppRequest } from "../context";
import { ApiError } from "../errors";
import { AuthError } from "./failure";
import { isAllowed } from "./policy";
import { replayChecked } from "./replay-policy";
import { verifiedTokens } from "./token-cache";
import { type AsapClaims, verifyAsap } from "./verify";

/** RFC 6750 `Bearer <b64token>`; the scheme is case-insensitive. */
const BEARER_RE = /^Bearer +([\w\-.~+/]+=*) *$/i;

/**
 * Authenticates `request` for the route `api`/`method`: verifies the ASAP token and applies the
 * issuer policy (403 `forbidden`). On success the caller is recorded as `request.state.caller`
 * and, when the issuer's replay checking is `strict` (`ASAP_REPLAY_POLICY`), the token's id as
 * `request.state.token`: the admission stage (src/admission/) spends it in its replay shard and
 * refuses the request if it was used before. Tokens of issuers whose replay checking is `off`
 * that pass every check here are kept per isolate (./token-cache.ts), so a reused one skips the
 * signature check; strict issuers' tokens are verified in full every time, as each is used once.
 * Failures log their reason code only, never the token. Does nothing when `ASAP_AUTH` is off
 * (dev/test only, for benchmark baselines).
 */
export async function authenticate(
  request: AppRequest,
  env: Env,
  route: { api: string; method: string },
): Promise<void> {
  const { config, logger, requestId } = request.state;
  if (!config.ASAP_AUTH) return;
  const replayOff = (issuer: string) =>
    !config.ASAP_REPLAY_PROTECTION || !replayChecked(config.ASAP_REPLAY_POLICY, issuer);
  // An AuthError is rendered by the router's `toProblem`, with every other error.
  const claims: AsapClaims = await verifyAsap(bearerToken(request.headers.get("authorization")), {
    audiences: config.ASAP_AUDIENCE,
    leewayS: config.ASAP_LEEWAY_S,
    keySource: {
      kind: config.ASAP_KEY_SOURCE,
      baseUrls: config.ASAP_KEY_BASE_URLS,
      timeoutMs: config.ASAP_KEY_TIMEOUT_MS,
    },
    bucket: env.MODELS,
    // Only when some issuer's tokens may be reused: otherwise no token is even looked up.
    ...(mayReuse(config) && {
      reuse: {
        cache: verifiedTokens,
        accepts: (c: AsapClaims) =>
          replayOff(c.issuer) && isAllowed(config.ASAP_POLICY, c.issuer, route.api, route.method),
      },
    }),
  });
  if (!isAllowed(config.ASAP_POLICY, claims.issuer, route.api, route.method)) {
    logger.log("info", "auth_forbidden", { request_id: requestId, issuer: claims.issuer });
    throw new ApiError("forbidden", `issuer '${claims.issuer}' may not call ${route.method} ${route.api}`);
  }
  request.state.caller = { issuer: claims.issuer, subject: claims.subject };
  if (config.ASAP_REPLAY_PROTECTION && replayChecked(config.ASAP_REPLAY_POLICY, claims.issuer)) {
    // Spent until the token can no longer be accepted anyway (`exp` + leeway).
    request.state.token = { jti: claims.jti, expiresAt: (claims.exp + config.ASAP_LEEWAY_S) * 1000 };
  }
}

/** Whether any issuer's replay checking is `off` under `config` (so its tokens may be reused). */
function mayReuse(config: AppRequest["state"]["config"]): boolean {
  const policy = config.ASAP_REPLAY_POLICY;
  return (
    !config.ASAP_REPLAY_PROTECTION ||
    policy.default === "off" ||
    Object.values(policy.issuers).includes("off")
  );
}

function bearerToken(header: string | null): string {
  if (header === null || header.trim() === "") {
    throw new AuthError(
      "missing_token",
      "send 'Authorization: Bearer <ASAP token>'; locally, `npx edge-inference token` prints one " +
        '(curl -H "Authorization: Bearer $(npx edge-inference token)" ...; see docs/auth.md)',
    );
  }
  const match = BEARER_RE.exec(header);
  if (!match?.[1])
    throw new AuthError("malformed_header", "the Authorization header must be 'Bearer <token>'");
  return match[1];
}
