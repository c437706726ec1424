/** Verification of one ASAP bearer token with jose: header, key, signature and claims. */
import { compactVerify, decodeJwt, decodeProtectedHeader, errors, type JWTPayload } from "jose";
import { z } from "zod";
import { ASAP_ALGORITHMS, type AsapAlgorithm, isSafeKid, MAX_LIFETIME_S, MAX_TOKEN_BYTES } from "./asap";
import { AuthError } from "./failure";
import { getPublicKey, type KeySource } from "./keys";

/** What verification needs from the configuration and bindings. */
export interface VerifyOptions {
  /** Our audiences: the token's `aud` must be (or contain) one of them. */
  audiences: readonly string[];
  /** Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. */
  leewayS: number;
  keySource: KeySource;
  /** Bucket of the `r2` key source. */
  bucket: R2Bucket;
}

/** The verified identity and replay facts of a token. */
export interface AsapClaims {
  issuer: string;
  /** `sub`, defaulting to `iss`. */
  subject: string;
  jti: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

const claimsSchema = z.object({
  iss: z.string().min(1).max(256),
  sub: z.string().min(1).max(256).optional(),
  jti: z.string().min(1).max(256),
  iat: z.number().finite(),
  exp: z.number().finite(),
  nbf: z.number().finite().optional(),
});

const ALGORITHMS: ReadonlySet<string> = new Set(ASAP_ALGORITHMS);
const ALGORITHM_LIST: string[] = [...ASAP_ALGORITHMS];

/** Claims every ASAP token carries, checked in this order. */
const REQUIRED_CLAIMS = ["iss", "aud", "iat", "exp", "jti"] as const;

/**
 * The registered-claim checks of RFC 7519 as ASAP uses them: the required claims are present, `aud`
 * (a string or an array) names one of our audiences, `iat`/`nbf`/`exp` are numbers, and now is
 * within [`nbf`, `exp`] give or take the leeway. Returns the payload for the schema.
 */
function checkRegisteredClaims(payload: JWTPayload, options: VerifyOptions): JWTPayload {
  for (const claim of REQUIRED_CLAIMS) {
    if (!(claim in payload)) throw new AuthError("missing_claim", `missing required claim '${claim}'`);
  }
  const aud = payload.aud;
  const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.some((a) => options.audiences.includes(a))) {
    throw new AuthError("wrong_audience", "token audience does not include this service");
  }
  for (const claim of ["iat", "nbf", "exp"] as const) {
    if (payload[claim] !== undefined && typeof payload[claim] !== "number") {
      throw new AuthError("invalid_claim", `claim '${claim}' is invalid`);
    }
  }
  const now = Math.floor(Date.now() / 1000);
  if (payload.nbf !== undefined && payload.nbf > now + options.leewayS) {
    throw new AuthError("token_not_yet_valid", "token is not valid yet (nbf)");
  }
  if ((payload.exp as number) <= now - options.leewayS)
    throw new AuthError("token_expired", "token has expired");
  return payload;
}

/**
 * Verifies `token` and returns its claims, or throws an `AuthError` naming the first problem.
 * Cheap header checks (size, `alg`, `kid` shape, `kid` owned by `iss`) run before any key lookup,
 * so a hostile token cannot make us fetch keys of other issuers or at unsafe paths.
 */
export async function verifyAsap(token: string, options: VerifyOptions): Promise<AsapClaims> {
  if (token.length > MAX_TOKEN_BYTES) {
    throw new AuthError("token_too_large", `token exceeds ${MAX_TOKEN_BYTES} bytes`);
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    throw new AuthError("malformed_token", "token is not a well-formed signed JWT");
  }
  const alg = header.alg;
  if (typeof alg !== "string" || !ALGORITHMS.has(alg)) {
    throw new AuthError("alg_not_allowed", `alg must be one of ${ASAP_ALGORITHMS.join(", ")}`);
  }
  const kid = header.kid;
  if (typeof kid !== "string" || kid.length > 512 || !isSafeKid(kid)) {
    throw new AuthError("invalid_kid", "kid header is missing or not a safe key id");
  }
  const iss = unverified.iss;
  if (iss === undefined) throw new AuthError("missing_claim", "missing required claim 'iss'");
  if (typeof iss !== "string" || iss === "") throw new AuthError("invalid_claim", "claim 'iss' is invalid");
  if (!kid.startsWith(`${iss}/`)) {
    throw new AuthError("kid_issuer_mismatch", "kid must start with the token's issuer followed by '/'");
  }

  // jose checks the signature over the very payload decoded above; the registered claims are then
  // checked here (jose's jwtVerify would decode and check them a second time).
  try {
    await compactVerify(
      token,
      () => getPublicKey(options.bucket, options.keySource, kid, alg as AsapAlgorithm),
      {
        algorithms: ALGORITHM_LIST,
      },
    );
  } catch (error) {
    throw toAuthError(error);
  }
  const payload = checkRegisteredClaims(unverified, options);
  const parsed = claimsSchema.safeParse(payload);
  if (!parsed.success) {
    const claim = parsed.error.issues[0]?.path.join(".") ?? "?";
    throw new AuthError("invalid_claim", `claim '${claim}' is invalid`);
  }
  const claims = parsed.data;
  if (claims.iat >= claims.exp) throw new AuthError("invalid_claim", "iat must be before exp");
  if (claims.exp - claims.iat > MAX_LIFETIME_S) {
    throw new AuthError("lifetime_too_long", `token lifetime (exp - iat) exceeds ${MAX_LIFETIME_S} s`);
  }
  if (claims.iat > Date.now() / 1000 + options.leewayS) {
    throw new AuthError("iat_in_future", "token iat is in the future");
  }
  return { issuer: claims.iss, subject: claims.sub ?? claims.iss, jti: claims.jti, exp: claims.exp };
}

/** Maps jose's errors (and our key errors) to reason codes. */
function toAuthError(error: unknown): AuthError {
  if (error instanceof AuthError) return error;
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError("bad_signature", "token signature is invalid");
  }
  return new AuthError("malformed_token", "token is not a well-formed signed JWT");
}
