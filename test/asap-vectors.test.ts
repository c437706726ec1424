/**
 * The language-neutral ASAP vectors (test/fixtures/asap-vectors.json, made by
 * `npm run gen:asap-vectors`) through the real verifier: each vector's keys are published in local
 * R2 under their kid, where the `r2` key source finds them, and the verifier's clock reads the
 * vector's `now`.
 */
import { env } from "cloudflare:workers";
import { exportSPKI, importJWK, type JWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { R2_KEY_PREFIX } from "../src/auth/asap";
import { AuthError } from "../src/auth/failure";
import { verifyAsap } from "../src/auth/verify";
import file from "./fixtures/asap-vectors.json";

interface Vector {
  id: string;
  description: string;
  now: number;
  token: string;
  verdict: "accept" | "refuse";
  reason?: string;
  claims?: { issuer: string; subject: string; jti: string; exp: number };
}

const vectors = file.vectors as Vector[];

/** The verdict of the real verifier on `vector`: the claims, or the reason of its refusal. */
async function verdict(vector: Vector): Promise<{ claims: unknown } | { reason: string }> {
  try {
    const claims = await verifyAsap(vector.token, {
      audiences: file.verifier.audiences,
      leewayS: file.verifier.leeway_s,
      keySource: { kind: "r2", baseUrls: [], timeoutMs: 1000 },
      bucket: env.MODELS,
      now: () => vector.now * 1000,
    });
    return { claims };
  } catch (error) {
    if (error instanceof AuthError) return { reason: error.reason };
    throw error;
  }
}

beforeAll(async () => {
  for (const [kid, key] of Object.entries(file.keys)) {
    await env.MODELS.put(`${R2_KEY_PREFIX}${kid}`, key.pem);
  }
});

describe("ASAP test vectors", () => {
  it("cover at least 50 cases, both verdicts, unique ids", () => {
    expect(vectors.length).toBeGreaterThanOrEqual(50);
    expect(new Set(vectors.map((v) => v.id)).size).toBe(vectors.length);
    expect(vectors.some((v) => v.verdict === "accept")).toBe(true);
    expect(vectors.some((v) => v.verdict === "refuse")).toBe(true);
  });

  it("each key's JWK and PEM are the same public key", async () => {
    const CURVE_ALG: Record<string, string> = { "P-256": "ES256", "P-384": "ES384", "P-521": "ES512" };
    for (const key of Object.values(file.keys) as { jwk?: JWK; pem: string }[]) {
      if (!key.jwk) continue; // the deliberately unusable key
      const alg = key.jwk.kty === "RSA" ? "RS256" : (CURVE_ALG[key.jwk.crv ?? ""] ?? "");
      const fromJwk = await importJWK(key.jwk, alg);
      expect(await exportSPKI(fromJwk as CryptoKey)).toBe(key.pem.trim());
    }
  });

  for (const vector of vectors) {
    const expected = vector.verdict === "accept" ? "accepted" : `refused: ${vector.reason}`;
    it(`${vector.id} (${vector.description}) → ${expected}`, async () => {
      const got = await verdict(vector);
      if (vector.verdict === "accept") expect(got).toEqual({ claims: vector.claims });
      else expect(got).toEqual({ reason: vector.reason });
    });
  }
});
