/**
 * ASAP authentication against the real Worker (router, R2 key source, CallerGuard Durable Object).
 * Tokens are real: signed with keypairs generated here, public keys published in local R2.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { base64url, exportSPKI, type JWTPayload, SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { CallerGuard } from "../durable-objects/caller-guard";
import { R2_KEY_PREFIX } from "../src/auth/asap";
import { AuthError } from "../src/auth/failure";
import { authenticate } from "../src/auth/stage";
import { isCanonicalBase64url, verifyAsap } from "../src/auth/verify";
import { ConfigError, loadConfig } from "../src/config";
import type { AppRequest } from "../src/context";
import { createLogger } from "../src/log";
import { api, createTestKey, postJson, problem, TEST_AUDIENCE, type TestKey, testToken } from "./helpers";

/** A predict body that passes validation and then fails on the model: 404 proves auth passed. */
const BODY = { text: "hello", model: "no-such-model" };

const enc = (value: unknown) => base64url.encode(JSON.stringify(value));
const now = () => Math.floor(Date.now() / 1000);

let key: TestKey;

/** Valid claims for `key`, with `overrides` applied and `omit` removed. */
function claims(overrides: Record<string, unknown> = {}, omit: string[] = []): Record<string, unknown> {
  const t = now();
  const out: Record<string, unknown> = {
    iss: key.issuer,
    aud: TEST_AUDIENCE,
    iat: t,
    exp: t + 60,
    jti: crypto.randomUUID(),
    ...overrides,
  };
  for (const name of omit) delete out[name];
  return out;
}

/** Signs `payload` with `signer` (default: this file's key) and header `{ alg, kid, ...header }`. */
function sign(
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
  signer: TestKey = key,
): Promise<string> {
  return new SignJWT(payload as JWTPayload)
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, ...header })
    .sign(signer.privateKey);
}

/** POSTs the predict body with `authorization` (none when null). */
function send(authorization: string | null, headers: Record<string, string> = {}): Promise<Response> {
  return postJson("/api/v1/predict", BODY, authorization === null ? headers : { ...headers, authorization }, {
    auth: false,
  });
}

/** The request was authenticated and reached the handler. */
async function expectAuthenticated(res: Response): Promise<void> {
  const p = await problem(res);
  expect(p.code, p.detail).toBe("model_not_found");
}

/** Calls the real Worker entry with wrangler.toml's config plus `vars`. */
function callWith(vars: Record<string, string>, authorization: string): Promise<Response> {
  return postJson("/api/v1/predict", BODY, { authorization }, { vars });
}

beforeAll(async () => {
  key = await createTestKey("auth-tests");
});

describe("hostile requests are refused with 401 invalid_token (or 503) and a reason", () => {
  type Case = [name: string, authorization: () => Promise<string | null>, status: number, reason: string];
  const bearer = async (token: Promise<string> | string) => `Bearer ${await token}`;
  const cases: Case[] = [
    // Header form
    ["no Authorization header", async () => null, 401, "missing_token"],
    ["empty Authorization header", async () => "", 401, "missing_token"],
    ["token without the Bearer scheme", async () => sign(claims()), 401, "malformed_header"],
    ["Basic credentials", async () => "Basic dXNlcjpwYXNz", 401, "malformed_header"],
    ["Bearer without a token", async () => "Bearer ", 401, "malformed_header"],
    [
      "two tokens",
      async () => `Bearer ${await sign(claims())} ${await sign(claims())}`,
      401,
      "malformed_header",
    ],
    [
      "token with a comma (list form)",
      async () => `Bearer ${await sign(claims())},x`,
      401,
      "malformed_header",
    ],
    [
      "oversized token (> 8 KiB)",
      () => bearer(sign(claims({ pad: "x".repeat(9000) }))),
      401,
      "token_too_large",
    ],
    // Shape and algorithm
    ["not a JWT", () => bearer("abc"), 401, "malformed_token"],
    [
      "two-part token",
      async () => `Bearer ${enc({ alg: "ES256" })}.${enc(claims())}`,
      401,
      "malformed_token",
    ],
    [
      "header is not JSON",
      async () => `Bearer ${base64url.encode("{nope")}.${enc(claims())}.sig`,
      401,
      "malformed_token",
    ],
    ["five-part (JWE) token", async () => "Bearer a.b.c.d.e", 401, "malformed_token"],
    [
      "no alg (a JWS requires one)",
      async () => `Bearer ${enc({ kid: key.kid })}.${enc(claims())}.c2ln`,
      401,
      "malformed_token",
    ],
    [
      "alg none",
      async () => `Bearer ${enc({ alg: "none", kid: key.kid })}.${enc(claims())}.`,
      401,
      "alg_not_allowed",
    ],
    [
      "HS256 signed with the public key as the secret",
      () =>
        bearer(
          new SignJWT(claims() as JWTPayload)
            .setProtectedHeader({ alg: "HS256", kid: key.kid })
            .sign(new TextEncoder().encode(key.publicPem)),
        ),
      401,
      "alg_not_allowed",
    ],
    [
      "HS512",
      () =>
        bearer(
          new SignJWT(claims() as JWTPayload)
            .setProtectedHeader({ alg: "HS512", kid: key.kid })
            .sign(new TextEncoder().encode("k".repeat(64))),
        ),
      401,
      "alg_not_allowed",
    ],
    [
      "EdDSA (not enabled)",
      async () => `Bearer ${enc({ alg: "EdDSA", kid: key.kid })}.${enc(claims())}.c2ln`,
      401,
      "alg_not_allowed",
    ],
    [
      "RS256 header on an EC key",
      async () => `Bearer ${enc({ alg: "RS256", kid: key.kid })}.${enc(claims())}.c2ln`,
      401,
      "key_alg_mismatch",
    ],
    [
      "unknown critical header",
      () =>
        bearer(
          new SignJWT(claims() as JWTPayload)
            .setProtectedHeader({ alg: key.alg, kid: key.kid, crit: ["x-must"], "x-must": 1 })
            .sign(key.privateKey, { crit: { "x-must": true } }),
        ),
      401,
      "forbidden_header",
    ],
    [
      "b64 named critical (RFC 7797), validly signed",
      () => bearer(sign(claims(), { crit: ["b64"], b64: true })),
      401,
      "forbidden_header",
    ],
    // Encoding: one signed token has one spelling.
    ["signature with '=' padding", async () => `Bearer ${await sign(claims())}==`, 401, "invalid_encoding"],
    [
      "signature with a non-zero unused bit (same bytes)",
      async () => {
        const token = await sign(claims()); // ES256: 86 characters, the last one carries 4 unused bits
        const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        return `Bearer ${token.slice(0, -1)}${alphabet[alphabet.indexOf(token.slice(-1)) | 1]}`;
      },
      401,
      "invalid_encoding",
    ],
    [
      "signature in the standard base64 alphabet",
      async () => `Bearer ${(await sign(claims())).replace(/[^.]$/, "/")}`,
      401,
      "invalid_encoding",
    ],
    // kid
    ["missing kid", () => bearer(sign(claims(), { kid: undefined })), 401, "invalid_kid"],
    ["kid with ..", () => bearer(sign(claims(), { kid: `${key.issuer}/../other/k` })), 401, "invalid_kid"],
    ["kid with a leading /", () => bearer(sign(claims(), { kid: `/${key.issuer}/k` })), 401, "invalid_kid"],
    [
      "kid with bad characters",
      () => bearer(sign(claims(), { kid: `${key.issuer}/k%2e?x=1` })),
      401,
      "invalid_kid",
    ],
    ["kid with a space", () => bearer(sign(claims(), { kid: `${key.issuer}/a b` })), 401, "invalid_kid"],
    [
      "kid with an empty segment",
      () => bearer(sign(claims(), { kid: `${key.issuer}//k` })),
      401,
      "invalid_kid",
    ],
    ["kid that is a number", () => bearer(sign(claims(), { kid: 42 })), 401, "invalid_kid"],
    [
      "kid not prefixed by iss",
      () => bearer(sign(claims(), { kid: "other-service/k1" })),
      401,
      "kid_issuer_mismatch",
    ],
    [
      "kid equal to iss (no '/')",
      () => bearer(sign(claims(), { kid: key.issuer })),
      401,
      "kid_issuer_mismatch",
    ],
    [
      "iss that is a prefix of the kid's issuer",
      () => bearer(sign(claims({ iss: key.issuer.slice(0, -1) }))),
      401,
      "kid_issuer_mismatch",
    ],
    [
      "unknown kid (no key published)",
      () => bearer(sign(claims(), { kid: `${key.issuer}/nope` })),
      401,
      "unknown_key",
    ],
    // Signature
    [
      "tampered payload",
      async () => {
        const [h, , s] = (await sign(claims())).split(".");
        return `Bearer ${h}.${enc(claims({ sub: "admin" }))}.${s}`;
      },
      401,
      "bad_signature",
    ],
    [
      "tampered signature",
      async () => {
        const token = await sign(claims());
        const i = token.length - 10; // inside the signature, away from its padding bits
        return `Bearer ${token.slice(0, i)}${token[i] === "A" ? "B" : "A"}${token.slice(i + 1)}`;
      },
      401,
      "bad_signature",
    ],
    [
      "signed by another key under the same kid",
      async () =>
        bearer(sign(claims(), {}, { ...(await createTestKey("auth-tests", "ES256", false)), kid: key.kid })),
      401,
      "bad_signature",
    ],
    // Claims
    ["missing iss", () => bearer(sign(claims({}, ["iss"]))), 401, "missing_claim"],
    ["missing aud", () => bearer(sign(claims({}, ["aud"]))), 401, "missing_claim"],
    ["missing iat", () => bearer(sign(claims({}, ["iat"]))), 401, "missing_claim"],
    ["missing exp", () => bearer(sign(claims({}, ["exp"]))), 401, "missing_claim"],
    ["missing jti", () => bearer(sign(claims({}, ["jti"]))), 401, "missing_claim"],
    ["wrong aud", () => bearer(sign(claims({ aud: "someone-else" }))), 401, "wrong_audience"],
    ["aud array without ours", () => bearer(sign(claims({ aud: ["a", "b"] }))), 401, "wrong_audience"],
    ["expired", () => bearer(sign(claims({ iat: now() - 300, exp: now() - 120 }))), 401, "token_expired"],
    [
      "lifetime over 1 h",
      () => bearer(sign(claims({ iat: now(), exp: now() + 3601 }))),
      401,
      "lifetime_too_long",
    ],
    [
      "iat in the future",
      () => bearer(sign(claims({ iat: now() + 120, exp: now() + 180 }))),
      401,
      "iat_in_future",
    ],
    ["nbf in the future", () => bearer(sign(claims({ nbf: now() + 120 }))), 401, "token_not_yet_valid"],
    ["iat equal to exp", () => bearer(sign(claims({ iat: now(), exp: now() }))), 401, "invalid_claim"],
    ["exp as a string", () => bearer(sign(claims({ exp: String(now() + 60) }))), 401, "invalid_claim"],
    ["iss not a string", () => bearer(sign(claims({ iss: 7 }))), 401, "invalid_claim"],
    ["empty jti", () => bearer(sign(claims({ jti: "" }))), 401, "invalid_claim"],
    ["sub not a string", () => bearer(sign(claims({ sub: { id: 1 } }))), 401, "invalid_claim"],
  ];

  for (const [name, authorization, status, reason] of cases) {
    it(`${name} → ${status} ${reason}`, async () => {
      const header = await authorization();
      const res = await send(header);
      expect(res.status).toBe(status);
      const p = await problem(res);
      expect(p.code).toBe("invalid_token");
      expect(p.reason).toBe(reason);
      const challenge = res.headers.get("www-authenticate") ?? "";
      expect(challenge).toMatch(/^Bearer error="invalid_token", error_description="[^"\\]+"$/);
      // Never echoed: no part of the token in the problem or the challenge.
      const token = header?.replace(/^\S+\s*/, "") ?? "";
      for (const part of token.split(/[.\s,]/).filter((s) => s.length > 16)) {
        expect(JSON.stringify(p)).not.toContain(part);
        expect(challenge).not.toContain(part);
      }
    });
  }

  it("replayed jti → 401 replayed_token", async () => {
    const token = await sign(claims());
    await expectAuthenticated(await send(`Bearer ${token}`));
    const again = await send(`Bearer ${token}`);
    expect(again.status).toBe(401);
    const p = await problem(again);
    expect(p.code).toBe("invalid_token");
    expect(p.reason).toBe("replayed_token");
  });

  it("the same token sent concurrently is accepted exactly once", async () => {
    const token = `Bearer ${await sign(claims())}`;
    const responses = await Promise.all(Array.from({ length: 8 }, () => send(token)));
    const statuses = responses.map((r) => r.status).sort();
    // 404: authenticated, then the (deliberately unknown) model was not found.
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 401, 404]);
    for (const r of responses.filter((r) => r.status === 401)) {
      expect((await problem(r)).reason).toBe("replayed_token");
    }
  });

  it("public key in R2 that is not PEM → 401 key_invalid", async () => {
    const bad = await createTestKey("auth-tests", "ES256", false);
    await env.MODELS.put(`${R2_KEY_PREFIX}${bad.kid}`, "not a key");
    const res = await send(`Bearer ${await sign(claims(), {}, bad)}`);
    expect(res.status).toBe(401);
    expect((await problem(res)).reason).toBe("key_invalid");
  });

  it("token in a query string or another header is not accepted → 401 missing_token", async () => {
    const token = await sign(claims());
    const res = await api(
      `/api/v1/predict?access_token=${token}`,
      {
        method: "POST",
        headers: { "content-type": "application/json", "x-authorization": `Bearer ${token}` },
        body: JSON.stringify(BODY),
      },
      { auth: false },
    );
    expect(res.status).toBe(401);
    const p = await problem(res);
    expect(p.code).toBe("invalid_token");
    expect(p.reason).toBe("missing_token");
  });
});

describe("valid tokens", () => {
  for (const alg of ["RS256", "RS512", "PS256", "PS384", "ES256", "ES384", "ES512"] as const) {
    it(`${alg} is accepted`, async () => {
      const k = await createTestKey(`alg-${alg.toLowerCase()}`, alg);
      const token = await sign({ ...claims(), iss: k.issuer }, {}, k);
      await expectAuthenticated(await send(`Bearer ${token}`));
    });
  }

  it("accepts an aud array containing our audience, and a lower-case scheme", async () => {
    await expectAuthenticated(await send(`bearer ${await sign(claims({ aud: ["other", TEST_AUDIENCE] }))}`));
  });

  it("accepts the 1 h lifetime exactly", async () => {
    await expectAuthenticated(await send(`Bearer ${await sign(claims({ iat: now(), exp: now() + 3600 }))}`));
  });

  describe("leeway (30 s)", () => {
    const edge = (name: string, overrides: () => Record<string, unknown>, ok: boolean, reason: string) =>
      it(`${name} → ${ok ? "accepted" : reason}`, async () => {
        const res = await send(`Bearer ${await sign(claims(overrides()))}`);
        if (ok) return expectAuthenticated(res);
        expect(res.status).toBe(401);
        expect((await problem(res)).reason).toBe(reason);
      });
    edge("exp 20 s ago", () => ({ iat: now() - 100, exp: now() - 20 }), true, "");
    edge("exp 40 s ago", () => ({ iat: now() - 100, exp: now() - 40 }), false, "token_expired");
    edge("nbf in 20 s", () => ({ nbf: now() + 20 }), true, "");
    edge("nbf in 40 s", () => ({ nbf: now() + 40 }), false, "token_not_yet_valid");
    edge("iat in 20 s", () => ({ iat: now() + 20, exp: now() + 80 }), true, "");
    edge("iat in 40 s", () => ({ iat: now() + 40, exp: now() + 100 }), false, "iat_in_future");
  });

  it("health needs no token", async () => {
    const res = await api("/api/v1/health", {}, { auth: false });
    expect(res.status).toBe(200);
  });

  it("ASAP_AUTH=off (dev/test only) lets a request without a token through", async () => {
    const res = await postJson("/api/v1/predict", BODY, {}, { auth: false, vars: { ASAP_AUTH: "off" } });
    await expectAuthenticated(res);
  });

  it("records the caller; sub defaults to iss", async () => {
    const stateFor = () =>
      ({
        requestId: "t",
        startedAt: 0,
        api: "predict",
        config: loadConfig(env as unknown as Record<string, unknown>),
        logger: createLogger("error"),
      }) as AppRequest["state"];
    const request = (token: string) =>
      Object.assign(new Request("http://edge.test/", { headers: { authorization: `Bearer ${token}` } }), {
        state: stateFor(),
      }) as unknown as AppRequest;
    const route = { api: "predict", method: "POST" };
    const plain = request(await sign(claims()));
    await authenticate(plain, env, route);
    expect(plain.state.caller).toEqual({ issuer: key.issuer, subject: key.issuer });
    const onBehalf = request(await testToken({ subject: "user-42" }));
    await authenticate(onBehalf, env, route);
    expect(onBehalf.state.caller).toEqual({ issuer: "edge-inference-tests", subject: "user-42" });
  });
});

/** Asks `guard` to record token id `jti` until `expiresAt` (no rate part): true unless a replay. */
async function claim(
  guard: DurableObjectStub<CallerGuard>,
  jti: string,
  expiresAt: number,
): Promise<boolean> {
  return !(await guard.admit({ token: { jti, expiresAt } })).replayed;
}

describe("replay protection", () => {
  it("is per issuer: the same jti from two issuers is accepted once each", async () => {
    const other = await createTestKey("auth-tests-other");
    const jti = crypto.randomUUID();
    await expectAuthenticated(await send(`Bearer ${await sign(claims({ jti }))}`));
    await expectAuthenticated(
      await send(`Bearer ${await sign(claims({ jti, iss: other.issuer }), {}, other)}`),
    );
  });

  it("can be switched off (ASAP_REPLAY_PROTECTION=off)", async () => {
    const token = `Bearer ${await sign(claims())}`;
    for (let i = 0; i < 2; i++) {
      await expectAuthenticated(await callWith({ ASAP_REPLAY_PROTECTION: "off" }, token));
    }
  });

  it("CallerGuard stores an id before accepting it: a fresh instance still refuses the replay", async () => {
    const name = `guard-${crypto.randomUUID()}`;
    const guard = () => env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(name));
    const expiresAt = Date.now() + 600_000;
    expect(await claim(guard(), "stored", expiresAt)).toBe(true);
    expect(await storedIds(guard(), "spent")).toEqual([{ jti: "stored", expires_at: expiresAt }]);
    await abortAllDurableObjects();
    expect(await claim(guard(), "stored", expiresAt)).toBe(false);
  });

  it("CallerGuard accepts each of many concurrent ids exactly once (one commit per group)", async () => {
    const stub = env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(`guard-${crypto.randomUUID()}`));
    const ids = Array.from({ length: 40 }, (_, i) => `id-${i % 20}`);
    const accepted = await Promise.all(ids.map((id) => claim(stub, id, Date.now() + 600_000)));
    expect(accepted.filter(Boolean)).toHaveLength(20);
    expect(new Set(ids.filter((_, i) => accepted[i]))).toEqual(new Set(ids.slice(0, 20)));
    expect(await storedIds(stub, "spent")).toHaveLength(20);
  });

  it("CallerGuard lets an expired jti be used again before the alarm has pruned it", async () => {
    const stub = env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(`guard-${crypto.randomUUID()}`));
    expect(await claim(stub, "j2", Date.now() + 200)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const renewed = Date.now() + 60_000;
    expect(await claim(stub, "j2", renewed)).toBe(true);
    expect(await claim(stub, "j2", renewed)).toBe(false);
    expect((await storedIds(stub, "spent")).filter((row) => row.expires_at > Date.now())).toEqual([
      { jti: "j2", expires_at: renewed },
    ]);
  });

  it("CallerGuard keeps ids beyond its memory limit in the indexed table, and refuses their replays", async () => {
    const name = `guard-${crypto.randomUUID()}`;
    const guard = () => env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(name));
    const limit = async () =>
      runInDurableObject(guard(), (instance: CallerGuard) => {
        instance.maxIdsInMemory = 3;
      });
    await limit();
    const expiresAt = Date.now() + 600_000;
    const ids = Array.from({ length: 5 }, (_, i) => `over-${i}`);
    // One at a time: concurrent calls may reach the object in any order, and which ids fit in
    // memory depends on that order.
    for (const id of ids) expect(await claim(guard(), id, expiresAt)).toBe(true);
    expect((await storedIds(guard(), "spent")).map((row) => row.jti)).toEqual(ids.slice(0, 3));
    expect(await storedIds(guard(), "seen")).toEqual(
      ids.slice(3).map((jti) => ({ jti, expires_at: expiresAt })),
    );
    for (const id of ids) expect(await claim(guard(), id, expiresAt)).toBe(false);
    await abortAllDurableObjects(); // a fresh instance: the log is reloaded, the table read
    await limit();
    for (const id of ids) expect(await claim(guard(), id, expiresAt)).toBe(false);
    expect(await claim(guard(), "over-new", expiresAt)).toBe(true);
    expect(await storedIds(guard(), "seen")).toHaveLength(3);
  });

  it("CallerGuard refuses ids stored in the indexed table by an earlier version", async () => {
    const name = `guard-${crypto.randomUUID()}`;
    const guard = () => env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(name));
    await claim(guard(), "first", Date.now() + 600_000); // creates the tables
    await runInDurableObject(guard(), (_, state) => {
      state.storage.sql.exec(
        "INSERT INTO seen (jti, expires_at) VALUES (?, ?)",
        "legacy",
        Date.now() + 600_000,
      );
    });
    await abortAllDurableObjects();
    expect(await claim(guard(), "legacy", Date.now() + 600_000)).toBe(false);
  });

  it("CallerGuard forgets a jti when its alarm runs after expiry", async () => {
    const stub = env.CALLER_GUARD.get(env.CALLER_GUARD.idFromName(`guard-${crypto.randomUUID()}`));
    const expiresAt = Date.now() + 500;
    expect(await claim(stub, "j1", expiresAt)).toBe(true);
    expect(await claim(stub, "j1", expiresAt)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, expiresAt - Date.now() + 20));
    await runDurableObjectAlarm(stub); // unless the real alarm already ran
    expect(await storedIds(stub, "spent")).toEqual([]);
    expect(await claim(stub, "j1", Date.now() + 60_000)).toBe(true);
  });
});

type IdRow = { jti: string; expires_at: number };

/** The spent ids `guard` stores in `table` (the append-only log or the indexed table), by id. */
function storedIds(guard: DurableObjectStub<CallerGuard>, table: "spent" | "seen"): Promise<IdRow[]> {
  return runInDurableObject(guard, (_, state) =>
    state.storage.sql.exec<IdRow>(`SELECT jti, expires_at FROM ${table} ORDER BY jti`).toArray(),
  );
}

describe("policy (ASAP_POLICY)", () => {
  const policy = (value: unknown) => ({ ASAP_POLICY: JSON.stringify(value) });

  it("an issuer not allowed the route → 403 forbidden", async () => {
    const res = await callWith(
      policy({ issuers: { [key.issuer]: ["predict:GET"] } }),
      `Bearer ${await sign(claims())}`,
    );
    expect(res.status).toBe(403);
    expect((await problem(res)).code).toBe("forbidden");
  });

  it("unknown issuers are denied by default → 403 forbidden", async () => {
    const res = await callWith(policy({ issuers: { someone: ["*"] } }), `Bearer ${await sign(claims())}`);
    expect(res.status).toBe(403);
    expect((await problem(res)).code).toBe("forbidden");
  });

  it("allows an issuer its listed API and method", async () => {
    const res = await callWith(
      policy({ issuers: { [key.issuer]: ["predict:POST"] } }),
      `Bearer ${await sign(claims())}`,
    );
    await expectAuthenticated(res);
  });

  it("allows unknown issuers what `default` grants", async () => {
    await expectAuthenticated(
      await callWith(policy({ default: ["*:POST"] }), `Bearer ${await sign(claims())}`),
    );
  });
});

describe("configuration", () => {
  const base = { ...(env as unknown as Record<string, unknown>) };
  const load = (vars: Record<string, string>) => () => loadConfig({ ...base, ...vars });

  it("rejects an ASAP_POLICY that is not JSON", () => {
    expect(load({ ASAP_POLICY: "{nope" })).toThrow(ConfigError);
    expect(load({ ASAP_POLICY: "{nope" })).toThrow(/ASAP_POLICY is not valid JSON/);
  });

  it("rejects unknown policy members and malformed rules, naming them", () => {
    expect(load({ ASAP_POLICY: '{"issuer":{}}' })).toThrow(/ASAP_POLICY/);
    expect(load({ ASAP_POLICY: '{"issuers":{"a":["predict:FETCH"]}}' })).toThrow(
      /ASAP_POLICY\.issuers\.a\.0/,
    );
  });

  it("requires base URLs for the http key source, ending in '/', https except loopback", () => {
    expect(load({ ASAP_KEY_SOURCE: "http", ASAP_KEY_BASE_URLS: "" })).toThrow(/ASAP_KEY_BASE_URLS must list/);
    expect(load({ ASAP_KEY_SOURCE: "http", ASAP_KEY_BASE_URLS: "https://k.example/keys" })).toThrow(
      /must end with '\/'/,
    );
    expect(load({ ASAP_KEY_SOURCE: "http", ASAP_KEY_BASE_URLS: "http://k.example/" })).toThrow(
      /must use https/,
    );
    expect(load({ ASAP_KEY_SOURCE: "ftp" })).toThrow(/ASAP_KEY_SOURCE must be/);
    const ok = loadConfig({
      ...base,
      ASAP_KEY_SOURCE: "http",
      ASAP_KEY_BASE_URLS: "https://k.example/a/, http://127.0.0.1:9000/",
    });
    expect(ok.ASAP_KEY_BASE_URLS).toEqual(["https://k.example/a/", "http://127.0.0.1:9000/"]);
  });

  it("ASAP_AUTH=off is refused outside dev and test", () => {
    expect(load({ ASAP_AUTH: "off", ENVIRONMENT: "production" })).toThrow(/ASAP_AUTH=off is only allowed/);
    expect(load({ ASAP_AUTH: "off", ENVIRONMENT: "staging" })).toThrow(ConfigError);
    expect(loadConfig({ ...base, ASAP_AUTH: "off", ENVIRONMENT: "dev" }).ASAP_AUTH).toBe(false);
  });

  it("defaults: audience edge-inference, r2 keys, 30 s leeway, replay protection on, deny unknown issuers", () => {
    const c = loadConfig(
      Object.fromEntries(Object.entries(base).filter(([name]) => !name.startsWith("ASAP_"))),
    );
    expect(c.ASAP_AUTH).toBe(true);
    expect(c.ASAP_AUDIENCE).toEqual(["edge-inference"]);
    expect(c.ASAP_KEY_SOURCE).toBe("r2");
    expect(c.ASAP_LEEWAY_S).toBe(30);
    expect(c.ASAP_REPLAY_PROTECTION).toBe(true);
    expect(c.ASAP_POLICY).toEqual({ issuers: {}, default: [] });
  });
});

describe("canonical base64url: one signed token has one spelling", () => {
  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  /** Characters a lenient decoder skips or maps: padding, the standard alphabet, whitespace. */
  const OTHERS = "=+/ \t\n\r.%~";

  /** The definition the string check stands for: decoding and re-encoding gives the segment back. */
  function roundTrips(segment: string): boolean {
    try {
      return base64url.encode(base64url.decode(segment)) === segment;
    } catch {
      return false;
    }
  }

  it("the string check accepts exactly the segments that decode and re-encode to themselves", () => {
    const segments: string[] = [""];
    // Every last character after every length class, and every short string over a mixed set.
    for (const prefix of ["", "A", "AA", "AAA", "AAAA", "QUJD", "QUJDRA", "QUJDREU"]) {
      for (const c of ALPHABET + OTHERS) segments.push(prefix + c, `${prefix}${c}=`, `${prefix}${c}==`);
    }
    const mixed = "AQgw_-8z=+/ \n";
    for (const a of mixed)
      for (const b of mixed) for (const c of mixed) segments.push(a + b + c, `QQ${a}${b}${c}`);
    // Random segments of every length class, mostly in the alphabet.
    const pool = ALPHABET.repeat(4) + OTHERS;
    for (let i = 0; i < 4000; i++) {
      const length = i % 13;
      let s = "";
      for (let j = 0; j < length; j++) s += pool[Math.floor(Math.random() * pool.length)];
      segments.push(s);
    }
    let accepted = 0;
    for (const segment of segments) {
      expect(isCanonicalBase64url(segment), JSON.stringify(segment)).toBe(roundTrips(segment));
      if (roundTrips(segment)) accepted++;
    }
    // Both verdicts are well represented.
    expect(accepted).toBeGreaterThan(1000);
    expect(segments.length - accepted).toBeGreaterThan(1000);
  });

  /** The verifier's verdict on `token`: `accepted` or the reason of its refusal. */
  async function verdict(token: string): Promise<string> {
    try {
      await verifyAsap(token, {
        audiences: [TEST_AUDIENCE],
        leewayS: 30,
        keySource: { kind: "r2", baseUrls: [], timeoutMs: 1000 },
        bucket: env.MODELS,
      });
      return "accepted";
    } catch (error) {
      if (error instanceof AuthError) return error.reason;
      throw error;
    }
  }

  it("refuses whitespace, '+', '/', padding, a length of 1 mod 4 and non-zero unused bits in any segment", async () => {
    const token = await sign(claims());
    expect(await verdict(token)).toBe("accepted");
    const segments = token.split(".") as [string, string, string];
    const spellings: string[] = [];
    for (let i = 0; i < 3; i++) {
      const seg = segments[i] as string;
      const respell = (other: string) => segments.map((s, j) => (j === i ? other : s)).join(".");
      spellings.push(
        respell(`${seg.slice(0, 4)} ${seg.slice(4)}`),
        respell(`${seg.slice(0, 4)}\n${seg.slice(4)}`),
        respell(`${seg}\t`),
        respell(`${seg.slice(0, 4)}+${seg.slice(5)}`),
        respell(`${seg.slice(0, 4)}/${seg.slice(5)}`),
        respell(`${seg}${"=".repeat((4 - (seg.length % 4)) % 4 || 4)}`),
        respell(`${seg}${"A".repeat((5 - (seg.length % 4)) % 4)}`),
      );
      if (seg.length % 4 !== 0) {
        const last = ALPHABET.indexOf(seg.slice(-1));
        spellings.push(respell(`${seg.slice(0, -1)}${ALPHABET[last | 1]}`));
      }
    }
    for (const spelling of spellings) expect(await verdict(spelling), spelling).toBe("invalid_encoding");
  });

  it("a header or payload that is not a JSON object → malformed_token", async () => {
    const [h, p, s] = (await sign(claims())).split(".");
    for (const bad of [enc([1]), enc("x"), enc(null), base64url.encode("{"), ""]) {
      expect(await verdict(`${bad}.${p}.${s}`)).toBe("malformed_token");
      expect(await verdict(`${h}.${bad}.${s}`)).toBe("malformed_token");
    }
  });

  it("a header or payload with non-ASCII text is decoded as UTF-8 (and refused when not UTF-8)", async () => {
    const t = await sign(claims({ sub: "caf\u00e9 \u{1F600}" }));
    expect(await verdict(t)).toBe("accepted");
    const [h, , s] = t.split(".");
    const notUtf8 = base64url.encode(new Uint8Array([0x7b, 0xff, 0x7d])); // "{", invalid byte, "}"
    expect(await verdict(`${h}.${notUtf8}.${s}`)).toBe("malformed_token");
  });
});

describe("signature keys", () => {
  /** A token signed with a fresh RS256 key of `bits`, its public key published in R2. */
  async function rsaToken(bits: number): Promise<string> {
    const issuer = `rsa-${bits}-${crypto.randomUUID().slice(0, 8)}`;
    const kid = `${issuer}/k1`;
    const { privateKey, publicKey } = (await crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: bits,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      true,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    await env.MODELS.put(`${R2_KEY_PREFIX}${kid}`, await exportSPKI(publicKey));
    const t = now();
    const input = `${enc({ alg: "RS256", kid })}.${enc({ iss: issuer, aud: TEST_AUDIENCE, iat: t, exp: t + 60, jti: "x" })}`;
    const signature = await crypto.subtle.sign(
      "RSASSA-PKCS1-v1_5",
      privateKey,
      new TextEncoder().encode(input),
    );
    return `${input}.${base64url.encode(new Uint8Array(signature))}`;
  }

  it("an RSA key of 2048 bits verifies; one under 2048 bits is refused even with a valid signature → malformed_token", async () => {
    await expectAuthenticated(await send(`Bearer ${await rsaToken(2048)}`));
    const res = await send(`Bearer ${await rsaToken(1024)}`);
    expect(res.status).toBe(401);
    expect((await problem(res)).reason).toBe("malformed_token");
  });
});
