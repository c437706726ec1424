/**
 * Faults through the real Worker: a restart of every Durable Object, model storage (R2) failing,
 * and Durable Objects that cannot be reached. A failing binding is a wrapper that rejects every
 * call: it simulates the platform, not our code. The caller guard's fail-open / fail-closed
 * behaviour is in test/throttle.test.ts; persistence of each object on its own is in
 * test/statistics.test.ts, test/throttle.test.ts, test/online.test.ts and test/auth.test.ts.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { readApiStatistics } from "../src/metering/stats";
import { learnerMetrics } from "../src/online/client";
import type { BankSample } from "../src/online/sample";
import { api, createTestKey, problem, seedShippedModel, type TestKey, testToken, tokenOf } from "./helpers";

/** Calls the real Worker with `testEnv` and waits for its `waitUntil` work (statistics). */
async function call(testEnv: Env, path: string, init: RequestInit = {}, token?: string): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token ?? (await testToken())}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  return api(path, { ...init, headers }, { env: testEnv });
}

const post = (testEnv: Env, path: string, body: unknown, token?: string) =>
  call(testEnv, path, { method: "POST", body: JSON.stringify(body) }, token);

const simulated = (what: string) => () => Promise.reject(new Error(`simulated: ${what} unreachable`));

/** An R2 bucket whose every operation fails, as when R2 is down. */
const failingR2 = (() => {
  const fail = simulated("R2");
  return { head: fail, get: fail, put: fail, delete: fail, list: fail } as unknown as R2Bucket;
})();

/**
 * A Durable Object namespace whose stubs reject every RPC, as when the object cannot be reached.
 * `then` is left undefined so a stub is not mistaken for a promise.
 */
function failingNamespace<T extends Rpc.DurableObjectBranded | undefined>(
  real: DurableObjectNamespace<T>,
  what: string,
  hang = false,
): DurableObjectNamespace<T> {
  const never = () => new Promise<never>(() => {});
  const stub = new Proxy(
    {},
    { get: (_, name) => (name === "then" ? undefined : hang ? never : simulated(what)) },
  );
  return {
    idFromName: (name: string) => real.idFromName(name),
    get: () => stub,
  } as unknown as DurableObjectNamespace<T>;
}

const COMPANIES = ["int:a055470", "int:d113597", "int:7cb070e"];
const WORDS = ["str:rent", "str:fuel", "str:coffee", "str:salary", "str:tax"];

/** A deterministic synthetic bank sample (the account follows from company + word). */
function sample(i: number): BankSample {
  const c = i % COMPANIES.length;
  const w = (i * 7 + Math.floor(i / 3)) % WORDS.length;
  return {
    CompanyId: COMPANIES[c] as string,
    BankEntryDate: "2016-03-01",
    BankEntryText: `${WORDS[w]} int:${i.toString(16)}`,
    BankEntryAmount: i % 2 ? "> -1000" : "< 10000",
    AccountName: `str:${c}${w}`,
    AccountNumber: String(1000 + c * 100 + w * 10),
    AccountTypeName: "Profit and Loss",
  };
}
const samples = (from: number, count: number) => Array.from({ length: count }, (_, i) => sample(from + i));

beforeAll(async () => {
  for (const id of ["toxicity", "spam", "sentiment"]) await seedShippedModel(id);
});

describe("a restart of every Durable Object loses nothing that was acknowledged", () => {
  it("statistics, learner state, the registry and spent token ids survive; work goes on", async () => {
    const healthCalls = async () => {
      const res = await call(env, "/api/v1/statistics?api=health");
      expect(res.status).toBe(200);
      return ((await res.json()) as { per_hour: number[] }).per_hour.reduce((a, b) => a + b, 0);
    };
    const metrics = async () => {
      const res = await call(env, "/api/v1/models/bank/metrics");
      expect(res.status).toBe(200);
      return res.json();
    };
    const registry = async () => {
      const res = await call(env, "/api/v1/models/spam");
      expect(res.status).toBe(200);
      return res.json();
    };

    for (let i = 0; i < 7; i++) expect((await call(env, "/api/v1/health")).status).toBe(200);
    const ingested = await post(env, "/api/v1/models/bank/samples", samples(0, 40));
    expect(ingested.status).toBe(200);
    expect(await ingested.json()).toMatchObject({ samples_total: 40 });
    const spent = await testToken();
    expect((await call(env, "/api/v1/statistics?api=health", {}, spent)).status).toBe(200);
    const before = { health: await healthCalls(), metrics: await metrics(), registry: await registry() };
    expect(before.health).toBe(7);

    const learner = () => env.ONLINE_LEARNER.get(env.ONLINE_LEARNER.idFromName("bank"));
    await runInDurableObject(learner(), (instance) => Object.assign(instance, { marker: true }));
    await abortAllDurableObjects();
    expect(await runInDurableObject(learner(), (instance) => "marker" in instance)).toBe(false); // a new instance

    expect({ health: await healthCalls(), metrics: await metrics(), registry: await registry() }).toEqual(
      before,
    );
    const replay = await call(env, "/api/v1/statistics?api=health", {}, spent);
    expect(replay.status).toBe(401);
    expect(await problem(replay)).toMatchObject({ code: "invalid_token", reason: "replayed_token" });
    const more = await post(env, "/api/v1/models/bank/samples", samples(40, 5));
    expect(await more.json()).toMatchObject({ samples_total: 45 });
    expect((await post(env, "/api/v1/predict", { model: "spam", text: "hello" })).status).toBe(200);
  });
});

describe("model storage (R2) failing", () => {
  // The tests' ACTIVE_POINTER_TTL_MS of 0 re-reads the pointer and manifest on every request, so
  // every request during the outage finds its cached copies expired: a loaded model serves only
  // because an unreachable R2 keeps the last pointer and manifest (stale-if-error).
  const vars = {};
  const up = { ...env, ...vars } as Env;
  const down = { ...env, ...vars, MODELS: failingR2 } as Env;

  it("a loaded model keeps serving; one not loaded yet → 503 model_unavailable; both serve once R2 is back", async () => {
    const text = { model: "toxicity", text: "you are lovely" };
    const warm = await post(up, "/api/v1/predict", text); // also caches the test issuer's key
    expect(warm.status).toBe(200);
    const { sentiment, model } = (await warm.json()) as Record<string, unknown>;

    const served = await post(down, "/api/v1/predict", text);
    expect(served.status).toBe(200);
    expect(await served.json()).toMatchObject({ sentiment, model });

    const cold = await post(down, "/api/v1/predict", { model: "sentiment", text: "great" });
    expect(cold.status).toBe(503);
    expect(await problem(cold)).toMatchObject({ code: "model_unavailable" });
    // The failure of one model does not disturb the other.
    expect((await post(down, "/api/v1/predict", text)).status).toBe(200);

    const back = await post(up, "/api/v1/predict", { model: "sentiment", text: "great" });
    expect(back.status).toBe(200);
  });

  it("a public key not cached yet → 503 auth_unavailable (key_server_unavailable), not 401; R2 back → accepted", async () => {
    const key: TestKey = await createTestKey("faults-new-issuer");
    const token = () => tokenOf(key);
    const res = await call(down, "/api/v1/statistics?api=health", {}, await token());
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await problem(res)).toMatchObject({ code: "auth_unavailable", reason: "key_server_unavailable" });
    // The outage was not cached as an unknown key.
    expect((await call(up, "/api/v1/statistics?api=health", {}, await token())).status).toBe(200);
  });
});

describe("Durable Objects that cannot be reached", () => {
  it("statistics shards: requests are still served (counting fails open); reading → 503 statistics_unavailable", async () => {
    const testEnv = { ...env, STATS_SHARD: failingNamespace(env.STATS_SHARD, "statistics shard") } as Env;
    expect((await call(testEnv, "/api/v1/health")).status).toBe(200);
    expect((await post(testEnv, "/api/v1/predict", { model: "spam", text: "hello" })).status).toBe(200);
    const res = await call(testEnv, "/api/v1/statistics?api=health");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect((await problem(res)).code).toBe("statistics_unavailable");
  });

  it("online learner: samples, learner predictions and metrics → 503 learner_unavailable with Retry-After", async () => {
    const testEnv = { ...env, ONLINE_LEARNER: failingNamespace(env.ONLINE_LEARNER, "learner") } as Env;
    for (const res of [
      await post(testEnv, "/api/v1/models/bank/samples", samples(0, 3)),
      await post(testEnv, "/api/v1/models/bank/predict?source=learner", sample(1)),
      await call(testEnv, "/api/v1/models/bank/metrics"),
    ]) {
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expect((await problem(res)).code).toBe("learner_unavailable");
    }
  });

  it("objects that hang instead of failing: statistics reads and learner calls time out as 503s", async () => {
    const hungStats = {
      ...env,
      STATS_SHARD: failingNamespace(env.STATS_SHARD, "statistics shard", true),
    } as Env;
    const read = readApiStatistics(hungStats, "health", 2, Date.now(), 200);
    await expect(read).rejects.toMatchObject({ code: "statistics_unavailable" });
    const hungLearner = {
      ...env,
      ONLINE_LEARNER: failingNamespace(env.ONLINE_LEARNER, "learner", true),
    } as Env;
    await expect(learnerMetrics(hungLearner, "bank", 200)).rejects.toMatchObject({
      code: "learner_unavailable",
    });
  });
});
