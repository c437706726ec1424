/**
 * Benchmark hook for ASAP: a bench issuer's keypair and a pool of pre-signed tokens, and a way to
 * hand them out. Each `jti` is single-use while replay protection is on, and autocannon's
 * `setupRequest` is synchronous while signing is async, so tokens are minted before the load
 * starts. Services have their own replay state, so they may share one pool, each with its own
 * cursor; tokens that run out repeat and come back as 401 `replayed_token` (visible in `statuses`).
 */
import { exportSPKI, generateKeyPair } from "jose";
import { type AsapAlgorithm, mintToken, PEM_CONTENT_TYPE, R2_KEY_PREFIX } from "../src/auth/asap";

/** The slice of Miniflare's R2 bucket used here. */
interface Bucket {
  put(key: string, value: string, options: { httpMetadata: { contentType: string } }): Promise<unknown>;
}

/** Issuer of bench tokens; wrangler.toml's dev policy allows it. */
export const BENCH_ISSUER = "edge-inference-bench";

/** A keypair of the bench issuer and tokens signed with it. */
export interface TokenPool {
  kid: string;
  publicKeyPem: string;
  tokens: readonly string[];
}

/** Pre-signed tokens handed out in order as request headers. */
export interface BenchAuth {
  /** Headers with the next unused token; after `count` calls tokens repeat (and are replays). */
  nextHeaders(): Record<string, string>;
  count: number;
}

/** Creates a keypair of the bench issuer for `alg` and signs `count` tokens for `audience`, valid `ttlS` s. */
export async function createTokenPool(
  count: number,
  alg: AsapAlgorithm = "RS256",
  audience = "edge-inference",
  ttlS = 1800,
): Promise<TokenPool> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const kid = `${BENCH_ISSUER}/bench-${alg.toLowerCase()}-${Date.now().toString(36)}`;
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    tokens.push(await mintToken({ issuer: BENCH_ISSUER, kid, alg, privateKey, audience, ttlS }));
  }
  return { kid, publicKeyPem: await exportSPKI(publicKey), tokens };
}

/** Publishes `pool`'s public key in `bucket` (the service's `MODELS`) and returns a fresh cursor over its tokens. */
export async function useTokenPool(bucket: Bucket, pool: TokenPool): Promise<BenchAuth> {
  await bucket.put(`${R2_KEY_PREFIX}${pool.kid}`, pool.publicKeyPem, {
    httpMetadata: { contentType: PEM_CONTENT_TYPE },
  });
  let next = 0;
  const { tokens } = pool;
  return {
    count: tokens.length,
    nextHeaders: () => ({ authorization: `Bearer ${tokens[next++ % tokens.length]}` }),
  };
}

/** `createTokenPool` + `useTokenPool` for one service (ES256: quick to sign). */
export async function prepareBenchAuth(
  bucket: Bucket,
  count: number,
  alg: AsapAlgorithm = "ES256",
): Promise<BenchAuth> {
  return useTokenPool(bucket, await createTokenPool(count, alg));
}
