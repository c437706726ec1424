/**
 * The `http` key source against external key repositories (test/key-server.ts, reached over the
 * Worker's real outbound fetch): failures, Cache-Control, coalescing and mirror failover.
 */
import { describe, expect, it } from "vitest";
import { PEM_CONTENT_TYPE } from "../src/auth/asap";
import { createTestKey, postJson, problem, type TestKey, tokenOf } from "./helpers";
import type { KeyReply } from "./key-server";

const PRIMARY = "https://keys.test/asap/";
const MIRROR = "https://keys-mirror.test/asap/";
const HTTP_SOURCE = {
  ASAP_KEY_SOURCE: "http",
  ASAP_KEY_BASE_URLS: `${PRIMARY},${MIRROR}`,
  ASAP_KEY_TIMEOUT_MS: "300",
};

/** Scripts the key server's answer for `url`. */
async function reply(url: string, answer: KeyReply): Promise<void> {
  const res = await fetch(`https://keys.test/__admin/reply?url=${encodeURIComponent(url)}`, {
    method: "PUT",
    body: JSON.stringify(answer),
  });
  expect(res.status).toBe(204);
}

/** How many times the key server was asked for `url`. */
async function hits(url: string): Promise<number> {
  const res = await fetch(`https://keys.test/__admin/hits?url=${encodeURIComponent(url)}`);
  return ((await res.json()) as { hits: number }).hits;
}

const pem = (key: TestKey, extra: Partial<KeyReply> = {}): KeyReply => ({
  status: 200,
  contentType: PEM_CONTENT_TYPE,
  body: key.publicPem,
  ...extra,
});

/** A key known only to the key server (not in R2), under a fresh issuer. */
const newKey = () => createTestKey(`http-${crypto.randomUUID().slice(0, 8)}`, "ES256", false);

/** POSTs a predict call signed by `key` through the real Worker entry with the http key source. */
async function call(key: TestKey, vars: Record<string, string> = {}): Promise<Response> {
  const authorization = `Bearer ${await tokenOf(key)}`;
  const body = { text: "hello", model: "no-such-model" };
  return postJson("/api/v1/predict", body, { authorization }, { vars: { ...HTTP_SOURCE, ...vars } });
}

/** Authentication passed: the handler ran and found no such model. */
async function expectAuthenticated(res: Response): Promise<void> {
  const p = await problem(res);
  expect(p.code, p.detail).toBe("model_not_found");
}

async function expectRefused(res: Response, status: number, code: string, reason: string): Promise<void> {
  expect(res.status).toBe(status);
  const p = await problem(res);
  expect(p.code).toBe(code);
  expect(p.reason).toBe(reason);
}

describe("http key source: hostile or broken key servers", () => {
  it("unknown kid (404 from every repository) → 401 unknown_key", async () => {
    const key = await newKey();
    await expectRefused(await call(key), 401, "invalid_token", "unknown_key");
    expect(await hits(`${PRIMARY}${key.kid}`)).toBe(1);
    expect(await hits(`${MIRROR}${key.kid}`)).toBe(1);
  });

  it("key server 500 → 503 auth_unavailable with Retry-After", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, { status: 500, body: "boom" });
    await reply(`${MIRROR}${key.kid}`, { status: 500, body: "boom" });
    const res = await call(key);
    expect(res.headers.get("retry-after")).toBe("1");
    await expectRefused(res, 503, "auth_unavailable", "key_server_unavailable");
  });

  it("key server timeout → 503 auth_unavailable, within the configured timeout", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, pem(key, { delayMs: 3000 }));
    await reply(`${MIRROR}${key.kid}`, pem(key, { delayMs: 3000 }));
    const started = Date.now();
    await expectRefused(await call(key), 503, "auth_unavailable", "key_server_unavailable");
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("wrong content type → 401 key_invalid, naming the content type", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, pem(key, { contentType: "text/html" }));
    await reply(`${MIRROR}${key.kid}`, pem(key, { contentType: "application/json" }));
    const res = await call(key);
    expect((await problem(res.clone())).detail).toMatch(/served the token's kid as 'text\/html', not a PEM/);
    await expectRefused(res, 401, "invalid_token", "key_invalid");
  });

  it("a PEM served as application/octet-stream (a plain static file server) is accepted", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, pem(key, { contentType: "application/octet-stream" }));
    // Authenticated: the call reaches the route, which answers 404 for its unknown model.
    expect((await problem(await call(key))).code).toBe("model_not_found");
  });

  it("non-PEM body → 401 key_invalid", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, pem(key, { body: "<html>hello</html>" }));
    await reply(
      `${MIRROR}${key.kid}`,
      pem(key, { body: key.publicPem.replace("PUBLIC KEY", "PRIVATE KEY") }),
    );
    await expectRefused(await call(key), 401, "invalid_token", "key_invalid");
  });

  it("a redirect is not followed → 503 auth_unavailable", async () => {
    const key = await newKey();
    for (const base of [PRIMARY, MIRROR]) {
      await reply(`${base}${key.kid}`, { status: 302, body: "" });
    }
    await expectRefused(await call(key), 503, "auth_unavailable", "key_server_unavailable");
  });

  it("a key for another algorithm family → 401 key_alg_mismatch", async () => {
    const key = await newKey();
    const rsa = await createTestKey(key.issuer, "RS256", false);
    await reply(`${PRIMARY}${key.kid}`, pem(rsa));
    await expectRefused(await call(key), 401, "invalid_token", "key_alg_mismatch");
  });

  it("missing keys are cached briefly: one fetch for repeated unknown kids", async () => {
    const key = await newKey();
    for (let i = 0; i < 3; i++) await expectRefused(await call(key), 401, "invalid_token", "unknown_key");
    expect(await hits(`${PRIMARY}${key.kid}`)).toBe(1);
  });
});

describe("http key source: caching and failover", () => {
  it("accepts a token whose key the primary serves", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, pem(key));
    await expectAuthenticated(await call(key));
    expect(await hits(`${MIRROR}${key.kid}`)).toBe(0);
  });

  it("honours Cache-Control: one fetch for many requests, sequential and concurrent", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, pem(key, { cacheControl: "public, max-age=300" }));
    await Promise.all(Array.from({ length: 5 }, async () => expectAuthenticated(await call(key))));
    for (let i = 0; i < 5; i++) await expectAuthenticated(await call(key));
    expect(await hits(`${PRIMARY}${key.kid}`)).toBe(1);
  });

  it("does not cache a key served with no-store", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, pem(key, { cacheControl: "no-store" }));
    for (let i = 0; i < 3; i++) await expectAuthenticated(await call(key));
    expect(await hits(`${PRIMARY}${key.kid}`)).toBe(3);
  });

  it("fails over to the mirror when the primary answers 500", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, { status: 500 });
    await reply(`${MIRROR}${key.kid}`, pem(key));
    await expectAuthenticated(await call(key));
    expect(await hits(`${PRIMARY}${key.kid}`)).toBe(1);
    expect(await hits(`${MIRROR}${key.kid}`)).toBe(1);
  });

  it("fails over to the mirror when the primary times out", async () => {
    const key = await newKey();
    await reply(`${PRIMARY}${key.kid}`, pem(key, { delayMs: 3000 }));
    await reply(`${MIRROR}${key.kid}`, pem(key));
    await expectAuthenticated(await call(key));
  });

  it("fails over to the mirror when the primary has not got the key yet (404)", async () => {
    const key = await newKey();
    await reply(`${MIRROR}${key.kid}`, pem(key));
    await expectAuthenticated(await call(key));
  });
});
