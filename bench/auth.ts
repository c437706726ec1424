/**
 * Benchmark hook for ASAP: a bench issuer whose public key is put in the service's R2 bucket, and
 * a supply of pre-signed tokens (each `jti` is single-use while replay protection is on, and
 * autocannon's `setupRequest` is synchronous, so tokens are minted before the load starts).
 * See bench/auth-notes.md.
 */
import { exportSPKI, generateKeyPair } from "jose";
import { mintToken, PEM_CONTENT_TYPE, R2_KEY_PREFIX } from "../src/auth/asap";

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
 * Creates the bench issuer's ES256 keypair, publishes the public key in `bucket` (the service's
 * `MODELS`), and signs `count` tokens for `audience` valid for `ttlS` seconds.
 */
export async function prepareBenchAuth(
  bucket: Bucket,
  count: number,
  audience = "edge-inference",
  ttlS = 600,
): Promise<BenchAuth> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const kid = `${BENCH_ISSUER}/bench-${Date.now().toString(36)}`;
  await bucket.put(`${R2_KEY_PREFIX}${kid}`, await exportSPKI(publicKey), {
    httpMetadata: { contentType: PEM_CONTENT_TYPE },
  });
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    tokens.push(await mintToken({ issuer: BENCH_ISSUER, kid, alg: "ES256", privateKey, audience, ttlS }));
  }
  let next = 0;
  return {
    count,
    nextHeaders: () => ({ authorization: `Bearer ${tokens[next++ % count]}` }),
  };
}
