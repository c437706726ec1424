/**
 * Verified tokens kept per isolate for reuse, for issuers whose replay checking is `off` (a
 * caller that keeps one token for many requests, such as an SDK client given a token as its API
 * key): a reused token skips the signature check. Filed under the token's last characters (its
 * signature's) and holding the whole token, which a hit must equal: a hit is the very string
 * that was verified, with no digest to compute first. Only tokens of at most
 * `TOKEN_CACHE_MAX_TOKEN_LENGTH` characters are kept, which bounds the memory held to ~2 MiB.
 * Only tokens that passed every check are kept; an entry lives until the token can no longer be
 * accepted (`exp` + leeway) and its claims are checked again on every use. Its key is looked up
 * again on every use too (through the key cache, ./keys.ts): a revoked key refuses the token as
 * it would a fresh one, and a rotated key (another PEM under the same kid) sends the token
 * through full verification again. Bounded: the least recently used entry goes first.
 */
import type { JWTPayload } from "jose";
import { BoundedMap } from "../bounded-map";
import type { AsapAlgorithm } from "./asap";

/** Most verified tokens kept per isolate. */
export const TOKEN_CACHE_MAX_ENTRIES = 1024;

/**
 * Longest token kept, in characters (a JWT is ASCII): an RS256 token with the usual claims is
 * ~0.7 KB, while `MAX_TOKEN_BYTES` allows 8 KiB; longer tokens are verified in full every time.
 */
export const TOKEN_CACHE_MAX_TOKEN_LENGTH = 2048;

/** Whether `token` is short enough to be kept (and so worth looking up). */
export const isKeptLength = (token: string): boolean => token.length <= TOKEN_CACHE_MAX_TOKEN_LENGTH;

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

/**
 * Characters of a token its entry is filed under: its last 32, from its signature (192 bits; every
 * accepted algorithm's signature is longer). Cheaper to hash than the whole token; a hit still
 * needs the whole kept token to equal the presented one, so a token that merely shares the tail
 * (a forgery reusing a signature) never hits, and does not displace the entry either.
 */
const KEY_LENGTH = 32;

const keyOf = (token: string): string => token.slice(-KEY_LENGTH);

/** A bounded least-recently-used map of token → verified token. */
export class TokenCache {
  readonly #entries: BoundedMap<string, { token: string; entry: VerifiedToken }>;

  constructor(readonly capacity: number = TOKEN_CACHE_MAX_ENTRIES) {
    this.#entries = new BoundedMap(capacity);
  }

  /**
   * The live entry for exactly `token` (now most recently used), or undefined; an expired entry is
   * dropped.
   */
  get(token: string, now: number): VerifiedToken | undefined {
    const key = keyOf(token);
    const kept = this.#entries.get(key);
    if (!kept || kept.token !== token) return undefined;
    if (kept.entry.until <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    this.#entries.touch(key);
    return kept.entry;
  }

  /** Keeps `entry` for `token`, dropping the least recently used entry when full. */
  set(token: string, entry: VerifiedToken): void {
    const key = keyOf(token);
    this.#entries.set(key, { token, entry });
  }

  /** Drops the entry of exactly `token`, if kept. */
  delete(token: string): void {
    const key = keyOf(token);
    if (this.#entries.get(key)?.token === token) this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** The isolate's cache of verified tokens. */
export const verifiedTokens = new TokenCache();
