/**
 * Safe rollout (#30 items 1–2, docs/rollout.md): the traffic split (sticky per caller on every
 * path, overridable by an explicit version, followed from the R2 pointer after an isolate's cache
 * is dropped), shadow versions scored after the answer with their comparisons (in the ShadowShard
 * objects, kept across object restarts), per-version traffic, and the bad inputs. Real models
 * (two tiny trained versions that give opposite answers), real tokens, real bindings.
 */
import { abortAllDurableObjects, env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { ordinalPosition, versionAt } from "../src/contracts/rollout";
import { sampledShadows } from "../src/predictions/shadow";
import { rolloutCallers } from "../src/rollout/callers";
import { clearModelMetadataCache } from "../src/storage/model-store";
import { api, issuerToken, postJson, problem } from "./helpers";
import { CALM, tinyModel, upload, waitForStatus } from "./registry-helpers";

const ID = "rollout";
const V1_CALM = "calm";

const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
const put = (path: string, body: unknown) => api(path, json("PUT", body));
const del = (path: string) => api(path, { method: "DELETE" });
const as = async (issuer: string) => ({ authorization: `Bearer ${await issuerToken(issuer)}` });

beforeAll(async () => {
  // Version 1 says `calm` for calm texts; version 2 (flipped) says `loud`; 3 is 1 again.
  for (const [version, flip] of [
    ["1", false],
    ["2", true],
    ["3", false],
  ] as const) {
    const { manifest, bytes } = await tinyModel(ID, version, flip);
    const res = await upload(ID, version, manifest, bytes, version === "1" ? "?activate=true" : "");
    expect(res.status, await res.clone().text()).toBe(201);
  }
});

interface TextAnswer {
  model: { id: string; version: string };
  predictions: { label: string; score: number }[];
}

describe("the assignment rule", () => {
  // The caller-to-version rule and its bound: test/rollout-callers.test.ts.
  it("shadows are sampled at their rate and never the serving version", () => {
    const shadows = [
      { version: "2", sample_rate: 0.25 },
      { version: "1", sample_rate: 1 },
    ];
    let picked = 0;
    let i = 0;
    const random = () => (i++ * 0.618034) % 1;
    for (let r = 0; r < 1000; r++) picked += sampledShadows(shadows, "1", random).length;
    expect(Math.abs(picked - 250)).toBeLessThan(30);
  });
});

describe("traffic split", () => {
  it("is set, read with the model, and cleared; 100 % promotes", async () => {
    const set = await put(`/api/v1/models/${ID}/split`, { split: { "2": 10, "1": 90 } });
    expect(set.status, await set.clone().text()).toBe(200);
    expect(await set.json()).toEqual({ id: ID, active_version: "1", split: { "1": 90, "2": 10 } });
    const detail = (await (await api(`/api/v1/models/${ID}`)).json()) as Record<string, unknown>;
    expect(detail).toMatchObject({ active_version: "1", split: { "1": 90, "2": 10 }, shadows: [] });
    const pointer = await (await env.MODELS.get(`models/${ID}/active.json`))?.json();
    expect(pointer).toEqual({ version: "1", split: { "1": 90, "2": 10 } });

    const cleared = await del(`/api/v1/models/${ID}/split`);
    expect(await cleared.json()).toEqual({ id: ID, active_version: "1", split: null });
    expect(((await (await api(`/api/v1/models/${ID}`)).json()) as { split: unknown }).split).toBeNull();

    const promoted = await put(`/api/v1/models/${ID}/split`, { split: { "3": 100 } });
    expect(await promoted.json()).toEqual({ id: ID, active_version: "3", split: null });
    expect(await (await env.MODELS.get(`models/${ID}/active.json`))?.json()).toEqual({ version: "3" });
    // Back to version 1 for the other tests.
    expect((await postJson(`/api/v1/models/${ID}/activate`, { version: "1" })).status).toBe(200);
  });

  it("refuses bad splits with problem+json: sum, integers, unknown versions, unknown model", async () => {
    const cases: [unknown, number, string, RegExp][] = [
      [{ split: { "1": 90, "2": 9 } }, 400, "invalid_split", /sum to 99, not 100/],
      [{ split: { "1": 89.5, "2": 10.5 } }, 400, "invalid_split", /integer percent/],
      [{ split: { "1": 100, "2": 0 } }, 400, "invalid_split", /leave a 0 % version out/],
      [{ split: {} }, 400, "invalid_split", /names no version/],
      [
        { split: { "1": 90, "9": 5, "8": 5 } },
        404,
        "model_version_not_found",
        /no ready version '9', '8'|'8', '9'/,
      ],
      [{ split: "1=90" }, 400, "invalid_request", /split/],
    ];
    for (const [body, status, code, detail] of cases) {
      const res = await put(`/api/v1/models/${ID}/split`, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      const p = await problem(res);
      expect(p.code).toBe(code);
      expect(p.detail).toMatch(detail);
      if (code === "model_version_not_found") {
        expect(p.versions).toEqual(["1", "2", "3"]);
        expect((p.unknown as string[]).sort()).toEqual(["8", "9"]);
      }
    }
    const unknown = await put("/api/v1/models/no-such-model/split", { split: { "1": 100 } });
    expect((await problem(unknown)).code).toBe("model_not_found");
    // Nothing changed.
    expect(await (await env.MODELS.get(`models/${ID}/active.json`))?.json()).toEqual({ version: "1" });
  });

  it("is sticky per caller on the native, OIP, compatibility and async paths; an explicit version overrides", async () => {
    expect((await put(`/api/v1/models/${ID}/split`, { split: { "1": 50, "2": 50 } })).status).toBe(200);
    const callers = Array.from({ length: 6 }, (_, i) => `rollout-caller-${i}`);
    // Each caller's version follows from its stored ordinal (order of first sight: its first
    // request below), read back from the model's RolloutCallers object after that request.
    const expected: string[] = [];
    for (const [i, caller] of callers.entries()) {
      const text = CALM[0];
      for (let round = 0; round < 2; round++) {
        const native = (await (
          await postJson("/api/v1/predict", { model: ID, text }, await as(caller))
        ).json()) as TextAnswer;
        if (round === 0) {
          const ordinal = await rolloutCallers(env, ID).ordinal(caller);
          expected[i] = versionAt({ "1": 50, "2": 50 }, ordinalPosition(ordinal as number));
        }
        expect(native.model.version, caller).toBe(expected[i]);
        // The versions answer oppositely, so the scores show which one ran.
        expect(native.predictions[0]?.label).toBe(expected[i] === "1" ? V1_CALM : "loud");
      }
      const want = expected[i] as string;
      const oip = (await (
        await postJson(
          `/v2/models/${ID}/infer`,
          { inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [text] }] },
          await as(caller),
        )
      ).json()) as { model_version: string };
      expect(oip.model_version, `oip ${caller}`).toBe(want);
      const compat = (await (
        await postJson("/prediction", { model_id: ID, text }, await as(caller))
      ).json()) as { version: string };
      expect(compat.version, `compat ${caller}`).toBe(want);
      const submitted = await postJson("/api/v1/predictions", { model: ID, text }, await as(caller));
      expect(submitted.status).toBe(202);
      const accepted = (await submitted.json()) as { model: { version: string }; status_url: string };
      expect(accepted.model.version, `async ${caller}`).toBe(want);
      if (i === 0) {
        const done = await waitForStatus<{ status: string; model: { version: string } }>(
          accepted.status_url,
          ["done", "failed"],
        );
        expect(done).toMatchObject({ status: "done", model: { version: want } });
      }
      const other = want === "1" ? "3" : "1";
      const pinned = (await (
        await postJson("/api/v1/predict", { model: ID, text, version: other }, await as(caller))
      ).json()) as TextAnswer;
      expect(pinned.model.version).toBe(other);
    }
    expect(new Set(expected).size).toBe(2); // both versions are exercised
    // The prediction log names the version that served each row.
    const { results } = await env.DB.prepare(
      "SELECT DISTINCT caller, model_version FROM prediction_log WHERE model_id = ? AND caller = ?",
    )
      .bind(ID, callers[0])
      .all<{ model_version: string }>();
    expect(results.map((r) => r.model_version)).toContain(expected[0]);

    // An isolate that drops its cached pointer reads the split back from R2.
    clearModelMetadataCache();
    const again = (await (
      await postJson("/api/v1/predict", { model: ID, text: CALM[1] }, await as(callers[1] as string))
    ).json()) as TextAnswer;
    expect(again.model.version).toBe(expected[1]);

    // Per-version traffic shows both versions' requests.
    const traffic = (await (await api(`/api/v1/models/${ID}/traffic`)).json()) as {
      split: unknown;
      versions: { version: string; share: number; last_hour: { requests: number } }[];
    };
    expect(traffic.split).toEqual({ "1": 50, "2": 50 });
    const byVersion = Object.fromEntries(traffic.versions.map((v) => [v.version, v]));
    expect(byVersion["1"]?.share).toBe(50);
    expect(byVersion["3"]?.share).toBe(0);
    expect(byVersion["1"]?.last_hour.requests).toBeGreaterThan(0);
    expect(byVersion["2"]?.last_hour.requests).toBeGreaterThan(0);

    expect((await del(`/api/v1/models/${ID}/split`)).status).toBe(200);
    for (const caller of callers.slice(0, 3)) {
      const back = (await (
        await postJson("/api/v1/predict", { model: ID, text: CALM[2] }, await as(caller))
      ).json()) as TextAnswer;
      expect(back.model.version).toBe("1");
    }
  });
});

describe("shadow versions", () => {
  it("refuses bad shadows: a serving version, sample_rate outside (0, 1], unknown versions, duplicates", async () => {
    const cases: [unknown, number, string, RegExp][] = [
      [{ shadows: [{ version: "1", sample_rate: 0.1 }] }, 400, "invalid_shadow", /already serves traffic/],
      [{ shadows: [{ version: "2", sample_rate: 0 }] }, 400, "invalid_shadow", /in \(0, 1\]/],
      [{ shadows: [{ version: "2", sample_rate: 1.5 }] }, 400, "invalid_shadow", /in \(0, 1\]/],
      [{ shadows: [{ version: "2", sample_rate: "0.1" }] }, 400, "invalid_shadow", /in \(0, 1\]/],
      [
        {
          shadows: [
            { version: "2", sample_rate: 0.1 },
            { version: "2", sample_rate: 0.2 },
          ],
        },
        400,
        "invalid_shadow",
        /named twice/,
      ],
      [
        { shadows: [{ version: "7", sample_rate: 0.1 }] },
        404,
        "model_version_not_found",
        /no ready version '7'/,
      ],
    ];
    for (const [body, status, code, detail] of cases) {
      const res = await put(`/api/v1/models/${ID}/shadow`, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      const p = await problem(res);
      expect(p.code).toBe(code);
      expect(p.detail).toMatch(detail);
    }
  });

  it("score a sampled request after the answer, never changing it nor counted as traffic; comparisons survive object restarts", async () => {
    const caller = () => as("shadow-caller");
    const body = { model: ID, texts: [CALM[0], CALM[1]] };
    const answer = async (res: Response) => {
      const { request_id: _id, ...rest } = (await res.json()) as Record<string, unknown>;
      return rest;
    };
    const before = await answer(await postJson("/api/v1/predict", body, await caller()));

    const set = await put(`/api/v1/models/${ID}/shadow`, { shadows: [{ version: "2", sample_rate: 1 }] });
    expect(await set.json()).toEqual({ id: ID, shadows: [{ version: "2", sample_rate: 1 }] });
    expect(((await (await api(`/api/v1/models/${ID}`)).json()) as { shadows: unknown }).shadows).toEqual([
      { version: "2", sample_rate: 1 },
    ]);
    const trafficOf = async (version: string) => {
      const t = (await (await api(`/api/v1/models/${ID}/traffic`)).json()) as {
        versions: { version: string; last_hour: { requests: number }; shadow_sample_rate: number | null }[];
      };
      return t.versions.find((v) => v.version === version);
    };
    const shadowTrafficBefore = (await trafficOf("2"))?.last_hour.requests ?? 0;
    type Report = { shadows: { version: string; comparisons: Record<string, unknown>[] }[] };
    const comparisonNow = async () =>
      ((await (await api(`/api/v1/models/${ID}/shadow`)).json()) as Report).shadows[0]?.comparisons[0];
    // Earlier tests' requests finish their after-the-answer work in the background: a request whose
    // hook reads the pointer after this PUT is shadowed too. Let them land, then count from here.
    // (Until two reads 400 ms apart agree: a loaded machine can take longer than one pause.)
    let base = (await comparisonNow()) ?? { requests: 0, items: 0 };
    for (let attempt = 0; attempt < 20; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      const now = (await comparisonNow()) ?? { requests: 0, items: 0 };
      if (now.requests === base.requests && attempt > 0) break;
      base = now;
    }

    // `vars: {}` runs the request on its own execution context and waits for its waitUntil work.
    const during = await postJson("/api/v1/predict", body, await caller(), { vars: {} });
    expect(await answer(during)).toEqual(before);
    const sent = await postJson("/api/v1/predict", { model: ID, text: CALM[2] }, await caller(), {
      vars: {},
    });
    expect(((await sent.json()) as TextAnswer).model.version).toBe("1");

    const report = (await (await api(`/api/v1/models/${ID}/shadow`)).json()) as Report;
    expect(report.shadows).toHaveLength(1);
    const [comparison] = report.shadows[0]?.comparisons ?? [];
    expect(comparison).toMatchObject({
      serving_version: "1",
      requests: (base.requests as number) + 2,
      items: (base.items as number) + 3,
      top1_agreement: 0, // version 2 is version 1 flipped (on every calm text)
      errors: 0,
    });
    const diff = (comparison?.mean_abs_diff ?? {}) as Record<string, number>;
    expect(Object.keys(diff).sort()).toEqual(["calm", "loud"]);
    expect(diff.calm).toBeGreaterThan(0.2);
    expect((comparison?.latency_ms as { mean: number }).mean).toBeGreaterThanOrEqual(0);
    // Not traffic of the shadow version (no request, no quota: it never went through admission).
    const shadowTraffic = await trafficOf("2");
    expect(shadowTraffic?.last_hour.requests).toBe(shadowTrafficBefore);
    expect(shadowTraffic?.shadow_sample_rate).toBe(1);

    // The comparisons are in the objects' storage: a restart keeps them; the shadows are in the pointer.
    await abortAllDurableObjects();
    clearModelMetadataCache();
    const after = (await (await api(`/api/v1/models/${ID}/shadow`)).json()) as Report;
    expect(after.shadows[0]?.comparisons[0]).toEqual(comparison);

    // A version that starts serving stops being a shadow; clearing keeps the comparisons.
    expect((await put(`/api/v1/models/${ID}/split`, { split: { "1": 90, "2": 10 } })).status).toBe(200);
    expect(((await (await api(`/api/v1/models/${ID}`)).json()) as { shadows: unknown }).shadows).toEqual([]);
    expect((await del(`/api/v1/models/${ID}/split`)).status).toBe(200);
    expect(
      (await put(`/api/v1/models/${ID}/shadow`, { shadows: [{ version: "3", sample_rate: 0.5 }] })).status,
    ).toBe(200);
    const cleared = await del(`/api/v1/models/${ID}/shadow`);
    expect(await cleared.json()).toEqual({ id: ID, shadows: [] });
    expect(await (await env.MODELS.get(`models/${ID}/active.json`))?.json()).toEqual({ version: "1" });
  });
});
