/**
 * Benchmark hook for ASAP: a bench issuer whose public key is put in the service's R2 bucket, and
 * a supply of pre-signed tokens. Each `jti` is single-use while replay protection is on, and
 * autocannon's `setupRequest` is synchronous while signing is async, so tokens are minted before
 * the load starts; size `count` above the expected requests (tokens that run out repeat and come
 * back as 401 `replayed_token`, visible in `statuses`).
 */
import { exportSPKI, generateKeyPair } from "jose";
import { type AsapAlgorithm, mintToken, PEM_CONTENT_TYPE, R2_KEY_PREFIX } from "../src/auth/asap";

/** The slice of Miniflare's R2 bucket used here. */
interface Bucket {
  put(key: string, value: string, options: { httpMetadata: { contentType: string } }): Promise<unknown>;
}

/** Issuer of bench tokens; wrangler.toml's dev policy allows it. */
export const BENCH_ISSUER = "edge-inference-bench";

/** Pre-signed tokens handed out in order as request headers. */
export interface BenchAuth {
  /** Headers with the next unused token; after `count` calls tokens repeat (and are replays). */
  nextHeaders(): Record<string, string>;
  count: number;
}

/**
 * Creates a keypair of the bench issuer for `alg`, publishes the public key in `bucket` (the
 * service's `MODELS`), and signs `count` tokens for `audience` valid for `ttlS` seconds.
 */
export async function prepareBenchAuth(
  bucket: Bucket,
  count: number,
  alg: AsapAlgorithm = "RS256",
  audience = "edge-inference",
  ttlS = 600,
): Promise<BenchAuth> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const kid = `${BENCH_ISSUER}/bench-${alg.toLowerCase()}-${Date.now().toString(36)}`;
  await bucket.put(`${R2_KEY_PREFIX}${kid}`, await exportSPKI(publicKey), {
    httpMetadata: { contentType: PEM_CONTENT_TYPE },
  });
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    tokens.push(await mintToken({ issuer: BENCH_ISSUER, kid, alg, privateKey, audience, ttlS }));
  }
  let next = 0;
  return {
    count,
    nextHeaders: () => ({ authorization: `Bearer ${tokens[next++ % count]}` }),
  };
}
