/**
 * Verification of one ASAP bearer token: syntax, header, key (imported by jose, ./keys.ts),
 * signature (Web Crypto) and claims.
 */
import type { JWSHeaderParameters, JWTPayload } from "jose";
import { base64Bytes } from "../bytes";
import { ASAP_ALGORITHMS, type AsapAlgorithm, isSafeKid, MAX_LIFETIME_S, MAX_TOKEN_BYTES } from "./asap";
import { AuthError } from "./failure";
import { getPublicKeyPem, type KeySource, resolvePublicKey } from "./keys";
import { isKeptLength, type TokenCache } from "./token-cache";

/** What verification needs from the configuration and bindings. */
export interface VerifyOptions {
  /** Our audiences: the token's `aud` must be (or contain) one of them. */
  audiences: readonly string[];
  /** Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. */
  leewayS: number;
  keySource: KeySource;
  /** Bucket of the `r2` key source. */
  bucket: R2Bucket;
  /** The clock the time claims are checked against, in ms since the epoch (default `Date.now`). */
  now?: () => number;
  /**
   * Reuse of verified tokens (./token-cache.ts): `accepts` says whether a verified token may be
   * kept (its issuer's replay checking is off, and the caller would accept it); it is asked again
   * when a kept token comes back. Without it every token is verified in full.
   */
  reuse?: { cache: TokenCache; accepts(claims: AsapClaims): boolean };
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

const ALGORITHMS: ReadonlySet<string> = new Set(ASAP_ALGORITHMS);

/** Claims every ASAP token carries, checked in this order. */
const REQUIRED_CLAIMS = ["iss", "aud", "iat", "exp", "jti"] as const;

/** Longest accepted `iss`, `sub` and `jti`. */
const MAX_CLAIM_LENGTH = 256;

function invalidClaim(claim: string): AuthError {
  return new AuthError("invalid_claim", `claim '${claim}' is invalid`);
}

function finiteNumber(claim: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw invalidClaim(claim);
  return value;
}

/** Whether `value` is a string of 1..MAX_CLAIM_LENGTH characters. */
function isIdentifier(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_CLAIM_LENGTH;
}

/** The base64url alphabet, in the order of the 6-bit values its characters stand for. */
const BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const BASE64URL_RE = /^[A-Za-z0-9_-]*$/;

/**
 * Whether `segment` is canonical unpadded base64url (RFC 7515 §2): only the url alphabet, no
 * padding, a length that encodes whole bytes (not 1 mod 4), and zero unused bits in the last
 * character (4 of them when the length is 2 mod 4, 2 when it is 3 mod 4). These are exactly the
 * strings that decoding and re-encoding gives back; they refuse padding, characters outside the url
 * alphabet (including the whitespace and `+`/`/` a lenient decoder skips or maps) and non-zero
 * unused bits, each of which would let one signed token be spelled in several ways. A string check:
 * nothing is decoded.
 */
export function isCanonicalBase64url(segment: string): boolean {
  const rest = segment.length % 4;
  if (rest === 1 || !BASE64URL_RE.test(segment)) return false;
  if (rest === 0) return true;
  const last = BASE64URL_ALPHABET.indexOf(segment.charAt(segment.length - 1));
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}

/** Strict UTF-8, as jose decodes a JWS header and a JWT claims set (a leading BOM is dropped). */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * The JSON object a canonical base64url segment (see `isCanonicalBase64url`) encodes, read as
 * jose's `decodeProtectedHeader` and `decodeJwt` read it (strict UTF-8, then JSON, and a plain
 * object), or undefined when it is not one.
 */
function decodeJsonSegment(segment: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(base64urlBytes(segment)));
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** A token's parts after `checkSyntax`. */
interface TokenParts {
  header: JWSHeaderParameters;
  /** The payload segment (its claims are decoded once, by `checkHeader`). */
  payload: string;
  signature: string;
  /** What the signature covers: `<header>.<payload>` as sent (ASCII). */
  signingInput: string;
}

/**
 * The syntax of an ASAP token, checked before anything else: three segments, each canonical
 * base64url, and a plain JWS header: no `crit` (ASAP defines no extensions) and no `b64` (RFC
 * 7797's unencoded payload changes what the signature covers).
 */
function checkSyntax(token: string): TokenParts {
  const segments = token.split(".");
  if (segments.length !== 3) throw new AuthError("malformed_token", "token is not a well-formed signed JWT");
  const [head, payload, signature] = segments as [string, string, string];
  if (!isCanonicalBase64url(head) || !isCanonicalBase64url(payload) || !isCanonicalBase64url(signature)) {
    throw new AuthError("invalid_encoding", "a token segment is not canonical unpadded base64url");
  }
  const header = decodeJsonSegment(head);
  if (!header) throw new AuthError("malformed_token", "token is not a well-formed signed JWT");
  if ("crit" in header || "b64" in header) {
    throw new AuthError("forbidden_header", "the token header must not carry 'crit' or 'b64'");
  }
  return { header, payload, signature, signingInput: token.slice(0, head.length + 1 + payload.length) };
}

/**
 * The checks that need only the token's header and unverified payload, run before any key lookup
 * so a hostile token cannot make us fetch keys of other issuers or at unsafe paths: `alg` is
 * allowed, `kid` is path-safe and starts with `iss + "/"`. Returns the unverified claims.
 */
function checkHeader(
  header: JWSHeaderParameters,
  payloadSegment: string,
): { kid: string; alg: AsapAlgorithm; payload: JWTPayload } {
  const { alg, kid } = header;
  // A JWS names its algorithm (RFC 7515 §4.1.1): without one it is malformed, not a refused alg.
  if (typeof alg !== "string" || alg === "") {
    throw new AuthError("malformed_token", "token is not a well-formed signed JWT");
  }
  if (!ALGORITHMS.has(alg)) {
    throw new AuthError("alg_not_allowed", `alg must be one of ${ASAP_ALGORITHMS.join(", ")}`);
  }
  if (typeof kid !== "string" || kid.length > 512 || !isSafeKid(kid)) {
    throw new AuthError("invalid_kid", "kid header is missing or not a safe key id");
  }
  const payload: JWTPayload | undefined = decodeJsonSegment(payloadSegment);
  if (!payload) throw new AuthError("malformed_token", "token is not a well-formed signed JWT");
  const iss = payload.iss;
  if (iss === undefined) throw new AuthError("missing_claim", "missing required claim 'iss'");
  if (!isIdentifier(iss)) throw invalidClaim("iss");
  if (!kid.startsWith(`${iss}/`)) {
    throw new AuthError("kid_issuer_mismatch", "kid must start with the token's issuer followed by '/'");
  }
  return { kid, alg: alg as AsapAlgorithm, payload };
}

/**
 * The claim checks of RFC 7519 as ASAP uses them, on the verified payload: the required claims are
 * present; `aud` (a string or an array) names one of our audiences; `iat`/`nbf`/`exp` are finite
 * numbers and `jti`/`sub` short non-empty strings; now is within [`nbf`, `exp`] give or take the
 * leeway, `iat` is not in the future and precedes `exp` by at most `MAX_LIFETIME_S`.
 */
function checkClaims(payload: JWTPayload, options: VerifyOptions): AsapClaims {
  for (const claim of REQUIRED_CLAIMS) {
    if (!(claim in payload)) throw new AuthError("missing_claim", `missing required claim '${claim}'`);
  }
  const aud = payload.aud;
  const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.some((a) => options.audiences.includes(a))) {
    throw new AuthError("wrong_audience", "token audience does not include this service");
  }
  const iat = finiteNumber("iat", payload.iat);
  const exp = finiteNumber("exp", payload.exp);
  const nbf = payload.nbf === undefined ? undefined : finiteNumber("nbf", payload.nbf);
  const { sub, jti } = payload;
  if (!isIdentifier(jti)) throw invalidClaim("jti");
  if (sub !== undefined && !isIdentifier(sub)) throw invalidClaim("sub");
  const iss = payload.iss as string; // checked by checkHeader
  const now = (options.now ?? Date.now)() / 1000;
  if (nbf !== undefined && nbf > Math.floor(now) + options.leewayS) {
    throw new AuthError("token_not_yet_valid", "token is not valid yet (nbf)");
  }
  if (exp <= Math.floor(now) - options.leewayS) throw new AuthError("token_expired", "token has expired");
  if (iat >= exp) throw new AuthError("invalid_claim", "iat must be before exp");
  if (exp - iat > MAX_LIFETIME_S) {
    throw new AuthError("lifetime_too_long", `token lifetime (exp - iat) exceeds ${MAX_LIFETIME_S} s`);
  }
  if (iat > now + options.leewayS) throw new AuthError("iat_in_future", "token iat is in the future");
  return { issuer: iss, subject: sub ?? iss, jti, exp };
}

/**
 * Verifies `token` and returns its claims, or throws an `AuthError` naming the first problem.
 * Its syntax is checked first (`checkSyntax`), then the header and unverified payload
 * (`checkHeader`), before the key is looked up; the signature is checked over the very segments
 * those checks decoded (`checkSignature`), and the claims last (`checkClaims`).
 */
export async function verifyAsap(token: string, options: VerifyOptions): Promise<AsapClaims> {
  if (token.length > MAX_TOKEN_BYTES) {
    throw new AuthError("token_too_large", `token exceeds ${MAX_TOKEN_BYTES} bytes`);
  }
  const reuse = options.reuse && isKeptLength(token) ? options.reuse : undefined;
  if (reuse) {
    const claims = await reused(token, reuse, options);
    if (claims) return claims;
  }
  let checked: ReturnType<typeof checkHeader>;
  let pem: string;
  try {
    const parts = checkSyntax(token);
    checked = checkHeader(parts.header, parts.payload);
    const resolved = await resolvePublicKey(options.bucket, options.keySource, checked.kid, checked.alg);
    pem = resolved.pem;
    await checkSignature(checked.alg, resolved.key, parts);
  } catch (error) {
    throw toAuthError(error);
  }
  const { payload, kid, alg } = checked;
  const claims = checkClaims(payload, options);
  if (reuse?.accepts(claims)) {
    const until = (claims.exp + options.leewayS) * 1000;
    reuse.cache.set(token, { payload, kid, alg, pem, until });
  }
  return claims;
}

/** Smallest RSA modulus accepted (RFC 7518 §3.3, §3.5; jose refuses smaller keys). */
const MIN_RSA_BITS = 2048;

/** How an accepted JWS algorithm (RFC 7518 §3.3–3.5) is verified, and what its key must be. */
interface AlgorithmSpec {
  /** Web Crypto's `verify` parameters, as jose passes them. */
  verify: SubtleCryptoSignAlgorithm;
  /** The key's algorithm: name, and hash (RSA) or curve (EC), as jose requires them. */
  key: { name: string; hash?: string; namedCurve?: string; minBits?: number };
}

const pkcs1 = (hash: string): AlgorithmSpec => ({
  verify: { name: "RSASSA-PKCS1-v1_5", hash },
  key: { name: "RSASSA-PKCS1-v1_5", hash, minBits: MIN_RSA_BITS },
});
/** PSS with a salt as long as the hash (RFC 7518 §3.5). */
const pss = (hash: string, saltLength: number): AlgorithmSpec => ({
  verify: { name: "RSA-PSS", hash, saltLength },
  key: { name: "RSA-PSS", hash, minBits: MIN_RSA_BITS },
});
/** ECDSA; Web Crypto takes the raw `r || s` signature JWS uses. */
const ecdsa = (hash: string, namedCurve: string): AlgorithmSpec => ({
  verify: { name: "ECDSA", hash },
  key: { name: "ECDSA", namedCurve },
});

const SPECS: Record<AsapAlgorithm, AlgorithmSpec> = {
  RS256: pkcs1("SHA-256"),
  RS384: pkcs1("SHA-384"),
  RS512: pkcs1("SHA-512"),
  PS256: pss("SHA-256", 32),
  PS384: pss("SHA-384", 48),
  PS512: pss("SHA-512", 64),
  ES256: ecdsa("SHA-256", "P-256"),
  ES384: ecdsa("SHA-384", "P-384"),
  ES512: ecdsa("SHA-512", "P-521"),
};

/** Keys already found fit, with the algorithm they were checked for (a key is imported per alg). */
const fitKeys = new WeakMap<CryptoKey, AsapAlgorithm>();

/**
 * Whether `key` may verify `alg` signatures, as jose checks it: a public key for verifying, of
 * the algorithm, hash or curve `alg` names, RSA of at least 2048 bits. Checked once per key.
 */
function isFitKey(key: CryptoKey, alg: AsapAlgorithm): boolean {
  if (fitKeys.get(key) === alg) return true;
  const want = SPECS[alg].key;
  const algorithm = key.algorithm as Partial<CryptoKeyRsaKeyAlgorithm & CryptoKeyEllipticKeyAlgorithm>;
  const fit =
    key.type === "public" &&
    key.usages.includes("verify") &&
    algorithm.name === want.name &&
    (want.hash === undefined || algorithm.hash?.name === want.hash) &&
    (want.namedCurve === undefined || algorithm.namedCurve === want.namedCurve) &&
    (want.minBits === undefined ||
      (typeof algorithm.modulusLength === "number" && algorithm.modulusLength >= want.minBits));
  if (fit) fitKeys.set(key, alg);
  return fit;
}

/**
 * Checks the token's signature with `key` (Web Crypto's `verify`): `bad_signature` when it does
 * not match (or cannot be checked), `malformed_token` when the key is unfit for `alg` (as jose
 * refused it: e.g. an RSA key under 2048 bits).
 */
async function checkSignature(alg: AsapAlgorithm, key: CryptoKey, parts: TokenParts): Promise<void> {
  if (!isFitKey(key, alg)) throw new AuthError("malformed_token", "token is not a well-formed signed JWT");
  let valid = false;
  try {
    valid = await crypto.subtle.verify(
      SPECS[alg].verify,
      key,
      base64urlBytes(parts.signature),
      asciiBytes(parts.signingInput),
    );
  } catch {
    valid = false;
  }
  if (!valid) throw new AuthError("bad_signature", "token signature is invalid");
}

const encoder = new TextEncoder();

/** The bytes of an ASCII string (what `checkSyntax` leaves: base64url segments and dots). */
const asciiBytes = (text: string): Uint8Array => encoder.encode(text);

/** `Uint8Array` with the runtime's base64 decoder (workerd has it; jose uses it too, when there). */
const Bytes = Uint8Array as unknown as { fromBase64?: (text: string, options: object) => Uint8Array };

/** The bytes a canonical base64url segment (see `isCanonicalBase64url`) encodes. */
function base64urlBytes(segment: string): Uint8Array {
  return Bytes.fromBase64 ? Bytes.fromBase64(segment, { alphabet: "base64url" }) : base64Bytes(segment);
}

/**
 * The claims of `token` if it is kept in `reuse.cache`, checked again: its issuer is still
 * accepted for reuse, its kid still names the very key it was verified with (a revoked key throws
 * here, as it would for a fresh token), and its claims hold now. Undefined when it must be
 * verified in full (not kept, expired, no longer reusable, its kid now names another key).
 */
async function reused(
  token: string,
  reuse: NonNullable<VerifyOptions["reuse"]>,
  options: VerifyOptions,
): Promise<AsapClaims | undefined> {
  const entry = reuse.cache.get(token, (options.now ?? Date.now)());
  if (!entry) return undefined;
  try {
    const pem = await getPublicKeyPem(options.bucket, options.keySource, entry.kid);
    const claims = pem === entry.pem ? checkClaims(entry.payload, options) : undefined;
    if (claims && reuse.accepts(claims)) return claims;
  } catch (error) {
    reuse.cache.delete(token);
    throw error;
  }
  reuse.cache.delete(token);
  return undefined;
}

/** Our refusals as they are; anything else (an unexpected error on the way) as a malformed token. */
function toAuthError(error: unknown): AuthError {
  if (error instanceof AuthError) return error;
  return new AuthError("malformed_token", "token is not a well-formed signed JWT");
}
