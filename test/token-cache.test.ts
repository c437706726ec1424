/**
 * Verified tokens reused without a second signature check (src/auth/token-cache.ts), through the
 * real Worker entry: only for issuers with replay checking `off`, never for refused tokens, and
 * never past the token's expiry or its key's revocation or rotation. Signature checks are counted
 * at Web Crypto's `verify`, which jose calls once per full verification.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { PEM_CONTENT_TYPE } from "../src/auth/asap";
import {
  TOKEN_CACHE_MAX_ENTRIES,
  TOKEN_CACHE_MAX_TOKEN_LENGTH,
  TokenCache,
  type VerifiedToken,
  verifiedTokens,
} from "../src/auth/token-cache";
import worker from "../src/index";
import { createTestKey, problem, TEST_AUDIENCE, type TestKey, tokenOf } from "./helpers";
import type { KeyReply } from "./key-server";

const PRIMARY = "https://keys.test/asap/";
const REPLAY_OFF = { ASAP_REPLAY_POLICY: '{"default":"off"}' };
/** Keys from the key server, re-read on every use (no-store): revocation shows at once. */
const HTTP_SOURCE = {
  ASAP_KEY_SOURCE: "http",
  ASAP_KEY_BASE_URLS: PRIMARY,
  ASAP_KEY_TIMEOUT_MS: "1000",
};

async function reply(url: string, answer: KeyReply): Promise<void> {
  const res = await fetch(`https://keys.test/__admin/reply?url=${encodeURIComponent(url)}`, {
    method: "PUT",
    body: JSON.stringify(answer),
  });
  expect(res.status).toBe(204);
}

const noStore = (key: TestKey): KeyReply => ({
  status: 200,
  contentType: PEM_CONTENT_TYPE,
  body: key.publicPem,
  cacheControl: "no-store",
});

/** A predict call with `token` through the real Worker entry under `vars`. */
async function call(token: string, vars: Record<string, string> = {}): Promise<Response> {
  const request = new Request("http://edge.test/api/v1/predict", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ text: "hello", model: "no-such-model" }),
  });
  return worker.fetch(
    request as Parameters<typeof worker.fetch>[0],
    { ...env, ...vars } as Env,
    createExecutionContext(),
  );
}

/** Authentication passed: the handler ran and found no such model. */
async function expectAuthenticated(res: Response): Promise<void> {
  const p = await problem(res);
  expect(p.code, `${p.detail} ${p.reason ?? ""}`).toBe("model_not_found");
}

async function expectRefused(res: Response, status: number, reason: string): Promise<void> {
  expect(res.status).toBe(status);
  const p = await problem(res);
  expect(p.reason ?? p.code).toBe(reason);
}

/** Counts signature checks (jose verifies a JWS signature with `crypto.subtle.verify`). */
function countSignatureChecks() {
  return vi.spyOn(crypto.subtle, "verify");
}

const newIssuer = () => `reuse-${crypto.randomUUID().slice(0, 8)}`;

describe("verified tokens reused (replay off)", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it("a token reused by a replay-off issuer is verified once", async () => {
    const key = await createTestKey(newIssuer());
    const token = await tokenOf(key);
    const verify = countSignatureChecks();
    for (let i = 0; i < 4; i++) await expectAuthenticated(await call(token, REPLAY_OFF));
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it("strict issuers: every token is verified in full, and a reuse is a replay", async () => {
    const key = await createTestKey(newIssuer());
    const issuer = key.issuer;
    // Another issuer's replay checking is off (so the cache is in use), this one's is strict.
    const vars = { ASAP_REPLAY_POLICY: JSON.stringify({ default: "off", issuers: { [issuer]: "strict" } }) };
    const token = await tokenOf(key);
    const verify = countSignatureChecks();
    await expectAuthenticated(await call(token, vars));
    await expectRefused(await call(token, vars), 401, "replayed_token");
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it("an entry expires with its token", async () => {
    const key = await createTestKey(newIssuer());
    const vars = { ...REPLAY_OFF, ASAP_LEEWAY_S: "0" };
    const token = await tokenOf(key, { ttlS: 5 });
    await expectAuthenticated(await call(token, vars));
    await expectAuthenticated(await call(token, vars));
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 6_000);
    await expectRefused(await call(token, vars), 401, "token_expired");
  });

  it("a revoked key refuses a kept token at once (key served no-store)", async () => {
    const key = await createTestKey(newIssuer(), "ES256", false);
    await reply(`${PRIMARY}${key.kid}`, noStore(key));
    const vars = { ...REPLAY_OFF, ...HTTP_SOURCE };
    const token = await tokenOf(key);
    const verify = countSignatureChecks();
    await expectAuthenticated(await call(token, vars));
    await expectAuthenticated(await call(token, vars));
    expect(verify).toHaveBeenCalledTimes(1);
    await reply(`${PRIMARY}${key.kid}`, { status: 404 });
    await expectRefused(await call(token, vars), 401, "unknown_key");
    await expectRefused(await call(token, vars), 401, "unknown_key");
  });

  it("a rotated key (another key under the same kid) sends a kept token through full verification", async () => {
    const key = await createTestKey(newIssuer(), "ES256", false);
    await reply(`${PRIMARY}${key.kid}`, noStore(key));
    const vars = { ...REPLAY_OFF, ...HTTP_SOURCE };
    const token = await tokenOf(key);
    await expectAuthenticated(await call(token, vars));
    const other = await createTestKey(key.issuer, "ES256", false);
    await reply(`${PRIMARY}${key.kid}`, noStore(other));
    const verify = countSignatureChecks();
    await expectRefused(await call(token, vars), 401, "bad_signature");
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it("refused tokens are never kept: a forbidden issuer's token and a bad signature are checked each time", async () => {
    const key = await createTestKey(newIssuer());
    const forbidding = { ...REPLAY_OFF, ASAP_POLICY: '{"issuers":{},"default":[]}' };
    const token = await tokenOf(key);
    const verify = countSignatureChecks();
    const before = verifiedTokens.size;
    await expectRefused(await call(token, forbidding), 403, "forbidden");
    await expectRefused(await call(token, forbidding), 403, "forbidden");
    expect(verify).toHaveBeenCalledTimes(2);
    const [head, payload] = token.split(".");
    const forged = `${head}.${payload}.${(await tokenOf(key)).split(".")[2]}`;
    await expectRefused(await call(forged, REPLAY_OFF), 401, "bad_signature");
    await expectRefused(await call(forged, REPLAY_OFF), 401, "bad_signature");
    expect(verify).toHaveBeenCalledTimes(4);
    expect(verifiedTokens.size).toBe(before);
  });
  it("a kept token's signature under another payload is no hit: verified in full, refused", async () => {
    const key = await createTestKey(newIssuer());
    const token = await tokenOf(key);
    await expectAuthenticated(await call(token, REPLAY_OFF));
    const [head, payload, signature] = token.split(".") as [string, string, string];
    const claims = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/")));
    const other = btoa(JSON.stringify({ ...claims, sub: "admin" }))
      .replaceAll("+", "-")
      .replaceAll("/", "_")
      .replaceAll("=", "");
    const verify = countSignatureChecks();
    await expectRefused(await call(`${head}.${other}.${signature}`, REPLAY_OFF), 401, "bad_signature");
    expect(verify).toHaveBeenCalledTimes(1);
    await expectAuthenticated(await call(token, REPLAY_OFF));
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it(`a token longer than ${TOKEN_CACHE_MAX_TOKEN_LENGTH} characters is never kept: verified in full each time`, async () => {
    const key = await createTestKey(newIssuer());
    const token = await tokenOf(key, { audience: [TEST_AUDIENCE, "a".repeat(TOKEN_CACHE_MAX_TOKEN_LENGTH)] });
    expect(token.length).toBeGreaterThan(TOKEN_CACHE_MAX_TOKEN_LENGTH);
    const before = verifiedTokens.size;
    const verify = countSignatureChecks();
    for (let i = 0; i < 3; i++) await expectAuthenticated(await call(token, REPLAY_OFF));
    expect(verify).toHaveBeenCalledTimes(3);
    expect(verifiedTokens.size).toBe(before);
  });
});

describe("TokenCache bound", () => {
  const entry = (until: number) => ({ until }) as VerifiedToken;

  it("keeps at most its capacity, dropping the least recently used first", () => {
    const cache = new TokenCache(3);
    for (const h of ["a", "b", "c"]) cache.set(h, entry(Number.MAX_SAFE_INTEGER));
    expect(cache.get("a", 0)).toBeDefined(); // a is now the most recently used
    cache.set("d", entry(Number.MAX_SAFE_INTEGER));
    expect(cache.size).toBe(3);
    expect(cache.get("b", 0)).toBeUndefined();
    for (const h of ["a", "c", "d"]) expect(cache.get(h, 0)).toBeDefined();
    for (let i = 0; i < 100; i++) cache.set(`x${i}`, entry(Number.MAX_SAFE_INTEGER));
    expect(cache.size).toBe(3);
  });

  it("a hit needs the whole token: another token with the same tail misses and leaves the entry", () => {
    const cache = new TokenCache(3);
    const tail = "S".repeat(40);
    cache.set(`h1.p1.${tail}`, entry(Number.MAX_SAFE_INTEGER));
    expect(cache.get(`h2.p2.${tail}`, 0)).toBeUndefined();
    cache.delete(`h2.p2.${tail}`);
    expect(cache.get(`h1.p1.${tail}`, 0)).toBeDefined();
    expect(cache.size).toBe(1);
  });

  it("drops an entry at its expiry", () => {
    const cache = new TokenCache(3);
    cache.set("a", entry(1_000));
    expect(cache.get("a", 999)).toBeDefined();
    expect(cache.get("a", 1_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("the isolate's cache is bounded", () => {
    expect(verifiedTokens.capacity).toBe(TOKEN_CACHE_MAX_ENTRIES);
    expect(TOKEN_CACHE_MAX_ENTRIES).toBeLessThanOrEqual(4096);
  });
});
