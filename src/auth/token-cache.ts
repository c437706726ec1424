/**
 * Verified tokens kept per isolate for reuse, for issuers whose replay checking is `off` (a caller
 * that keeps one token for many requests, such as an SDK client given a token as its API key):
 * a reused token skips the signature check. Keyed by the token's SHA-256, so a hit is the very
 * string that was verified. Only tokens that passed every check are kept; an entry lives until
 * the token can no longer be accepted (`exp` + leeway) and its claims are checked again on every
 * use. Its key is looked up again on every use too (through the key cache, ./keys.ts): a revoked
 * key refuses the token as it would a fresh one, and a rotated key (another PEM under the same
 * kid) sends the token through full verification again. Bounded: the least recently used entry
 * goes first.
 */
import type { JWTPayload } from "jose";
import type { AsapAlgorithm } from "./asap";

/** Most verified tokens kept per isolate (~0.5 KB each). */
export const TOKEN_CACHE_MAX_ENTRIES = 1024;

/** A token that passed verification, with what a reuse must check again. */
export interface VerifiedToken {
  /** The verified payload (its claims are checked again on each use). */
  payload: JWTPayload;
  kid: string;
  alg: AsapAlgorithm;
  /** The PEM of the key the signature was verified with: a reuse needs the same key published. */
  pem: string;
  /** When the entry goes (ms since the epoch): when the token stops being acceptable. */
  until: number;
}

/** A bounded least-recently-used map of token hash → verified token. */
export class TokenCache {
  readonly #entries = new Map<string, VerifiedToken>();

  constructor(readonly capacity: number = TOKEN_CACHE_MAX_ENTRIES) {}

  /** The live entry for `hash` (now most recently used), or undefined; expired entries are dropped. */
  get(hash: string, now: number): VerifiedToken | undefined {
    const entry = this.#entries.get(hash);
    if (!entry) return undefined;
    this.#entries.delete(hash);
    if (entry.until <= now) return undefined;
    this.#entries.set(hash, entry);
    return entry;
  }

  /** Keeps `entry` for `hash`, dropping the least recently used entry when full. */
  set(hash: string, entry: VerifiedToken): void {
    this.#entries.delete(hash);
    this.#entries.set(hash, entry);
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value as string);
  }

  delete(hash: string): void {
    this.#entries.delete(hash);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** The isolate's cache of verified tokens. */
export const verifiedTokens = new TokenCache();

const encoder = new TextEncoder();

/** The cache key of `token`: its SHA-256, as a 32-character binary string. */
export async function tokenHash(token: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(token)));
  return String.fromCharCode(...digest);
}
