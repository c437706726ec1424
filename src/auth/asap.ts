/**
 * ASAP (Atlassian S2S Authentication Protocol) constants and token minting. Runtime-agnostic: used
 * by the Worker, the CLI, the tests and the benchmark.
 */
import { SignJWT } from "jose";

/** Signature algorithms a token may use; `none`, HS* and everything else are rejected. */
export const ASAP_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
] as const;

/** An accepted signature algorithm. */
export type AsapAlgorithm = (typeof ASAP_ALGORITHMS)[number];

/** Hard upper bound of `exp - iat`, in seconds. */
export const MAX_LIFETIME_S = 3600;

/** Largest accepted token, in bytes (characters: a JWT is ASCII). */
export const MAX_TOKEN_BYTES = 8 * 1024;

/** R2 prefix under which the `r2` key source keeps public keys: `asap-keys/<kid>`. */
export const R2_KEY_PREFIX = "asap-keys/";

/** Media type of a PEM public key, requested from and required of key servers. */
export const PEM_CONTENT_TYPE = "application/x-pem-file";

const KID_RE = /^[\w.\-+/]+$/;

/**
 * Whether `kid` is a path-safe key id: only `[\w.\-+/]`, no leading `/`, and no empty, `.` or
 * `..` segment.
 */
export function isSafeKid(kid: string): boolean {
  return KID_RE.test(kid) && kid.split("/").every((s) => s !== "" && s !== "." && s !== "..");
}

/** What `mintToken` needs to sign a token. */
export interface MintOptions {
  issuer: string;
  /** Key id; must start with `issuer + "/"`. */
  kid: string;
  alg: AsapAlgorithm;
  privateKey: CryptoKey;
  audience: string | string[];
  /** Lifetime in seconds (default 60, at most `MAX_LIFETIME_S`). */
  ttlS?: number;
  subject?: string;
}

/** Signs a fresh ASAP token (new `jti`, `iat` = now). */
export function mintToken(options: MintOptions): Promise<string> {
  const ttl = options.ttlS ?? 60;
  if (!(ttl > 0 && ttl <= MAX_LIFETIME_S)) throw new RangeError(`ttl must be in (0, ${MAX_LIFETIME_S}] s`);
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: options.alg, kid: options.kid, typ: "JWT" })
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .setJti(crypto.randomUUID());
  if (options.subject !== undefined) jwt.setSubject(options.subject);
  return jwt.sign(options.privateKey);
}
