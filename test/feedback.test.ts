/**
 * Issue 30 item 3: feedback on logged predictions (sync by X-Request-Id, async by id), once per
 * item and scoped to the caller, and live quality per version from it. Real Worker, D1, R2, ORT,
 * queues and signed tokens; the model is a tiny real binary model (`calm`/`loud`).
 */
import { createScheduledController, env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { isCorrect, predictedLabels, rocAuc, versionQuality } from "../src/feedback/quality";
import worker from "../src/index";
import { api, createTestKey, postJson, problem, type TestKey, tokenOf } from "./helpers";
import { CALM, LOUD, tinyModel, upload, waitFor, waitForStatus } from "./registry-helpers";

const MODEL = "fb-tiny";

interface Feedback {
  model: { id: string; version: string };
  prediction_id: string | null;
  request_id: string | null;
  items: { index: number; labels: string[]; predicted: string[]; correct: boolean; text_stored: boolean }[];
}
interface Quality {
  id: string;
  active_version: string | null;
  versions: {
    version: string;
    task: string;
    feedback: number;
    correct: number;
    accuracy: number | null;
    labels: {
      label: string;
      rule: string;
      threshold: number | null;
      positives: number;
      negatives: number;
      precision: number | null;
      recall: number | null;
      roc_auc: number | null;
    }[];
  }[];
}

beforeAll(async () => {
  const { manifest, bytes } = await tinyModel(MODEL, "1");
  expect((await upload(MODEL, "1", manifest, bytes, "?activate=true")).status).toBe(201);
});

/** Sync predict; the X-Request-Id of the answer. */
async function predictSync(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await postJson("/api/v1/predict", { model: MODEL, ...body }, headers);
  expect(res.status).toBe(200);
  return {
    requestId: res.headers.get("x-request-id") as string,
    answer: (await res.json()) as Record<string, unknown>,
  };
}

/** Posts feedback, polling while the log row is not written yet (it is written after the answer). */
async function feedbackOnceLogged(path: string, body: unknown, post = postJson): Promise<Response> {
  return waitFor(async () => {
    const res = await post(path, body);
    if (res.status !== 404) return res;
    const p = await problem(res.clone());
    if (p.code !== "prediction_not_found") return res;
    return undefined;
  });
}

describe("feedback on a sync prediction, by X-Request-Id", () => {
  it("records once: 201, the same again is 200 with the same answer, different labels 409", async () => {
    const { requestId } = await predictSync({ text: LOUD[0] });
    const first = await feedbackOnceLogged("/api/v1/feedback", { request_id: requestId, labels: ["loud"] });
    expect(first.status).toBe(201);
    const recorded = (await first.json()) as Feedback;
    expect(recorded).toMatchObject({
      model: { id: MODEL, version: "1" },
      prediction_id: null,
      request_id: requestId,
      items: [{ index: 0, labels: ["loud"], predicted: ["loud"], correct: true, text_stored: false }],
    });
    const again = await postJson("/api/v1/feedback", { request_id: requestId, labels: ["loud"] });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(recorded);
    const other = await postJson("/api/v1/feedback", { request_id: requestId, labels: ["calm"] });
    expect(other.status).toBe(409);
    const p = await problem(other);
    expect(p.code).toBe("feedback_conflict");
    expect(p.recorded_labels).toEqual(["loud"]);
    expect(p.detail).toMatch(/already has feedback \["loud"\]/);
  });

  it("a label the model does not have is 400 naming it; a binary item takes exactly one label", async () => {
    const { requestId } = await predictSync({ text: CALM[0] });
    const res = await feedbackOnceLogged("/api/v1/feedback", {
      request_id: requestId,
      labels: ["calm", "toxic", "spam"],
    });
    expect(res.status).toBe(400);
    const p = await problem(res);
    expect(p.code).toBe("unknown_label");
    expect(p.unknown_labels).toEqual(["toxic", "spam"]);
    expect(p.detail).toMatch(/no label 'toxic', 'spam'; its labels are calm, loud/);
    const two = await postJson("/api/v1/feedback", { request_id: requestId, labels: ["calm", "loud"] });
    expect(two.status).toBe(400);
    expect((await problem(two)).detail).toMatch(/exactly one true label/);
    // Nothing was recorded by the refusals: the right feedback still goes through.
    expect((await postJson("/api/v1/feedback", { request_id: requestId, labels: ["calm"] })).status).toBe(
      201,
    );
  });

  it("a batch needs the item's index; items label several at once; the text sent is kept for training", async () => {
    const texts = [CALM[1], LOUD[1], CALM[2]];
    const { requestId } = await predictSync({ texts });
    const res = await feedbackOnceLogged("/api/v1/feedback", { request_id: requestId, labels: ["calm"] });
    expect(res.status).toBe(400);
    expect((await problem(res)).detail).toMatch(/scored 3 items: say which one with 'index' \(0 to 2\)/);
    const out = await postJson("/api/v1/feedback", { request_id: requestId, index: 3, labels: ["calm"] });
    expect((await problem(out)).detail).toMatch(/item 3 is not one of the prediction's items/);
    const ok = await postJson("/api/v1/feedback", {
      request_id: requestId,
      items: [
        { index: 2, labels: ["calm"], text: texts[2] },
        { index: 1, labels: ["calm"] },
      ],
    });
    expect(ok.status).toBe(201);
    const body = (await ok.json()) as Feedback;
    expect(body.items.map((i) => [i.index, i.correct, i.text_stored])).toEqual([
      [2, true, true],
      [1, false, false],
    ]);
    // A request that relabels an item differently fails as a whole (item 0 is not recorded either).
    const mixed = await postJson("/api/v1/feedback", {
      request_id: requestId,
      items: [
        { index: 0, labels: ["calm"] },
        { index: 1, labels: ["loud"] },
      ],
    });
    expect(mixed.status).toBe(409);
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM feedback WHERE http_request_id = ?")
      .bind(requestId)
      .first<{ n: number }>();
    expect(row?.n).toBe(2);
  });

  it("bad bodies are 400 with the field named", async () => {
    for (const [body, path] of [
      [{ labels: ["calm"] }, "request_id"],
      [{ request_id: "x", prediction_id: "y", labels: ["calm"] }, "request_id"],
      [{ request_id: "x" }, "labels"],
      [{ request_id: "x", labels: ["calm"], items: [{ labels: ["calm"] }] }, "labels"],
      [{ request_id: "x", labels: ["calm"], colour: "red" }, "colour"],
    ] as const) {
      const res = await postJson("/api/v1/feedback", body);
      expect(res.status).toBe(400);
      const p = await problem(res);
      expect(p.code).toBe("invalid_request");
      expect((p.errors as { path: string }[]).map((e) => e.path)).toContain(path);
    }
    const unknown = await postJson("/api/v1/feedback", { request_id: "never-seen", labels: ["calm"] });
    expect(unknown.status).toBe(404);
    expect((await problem(unknown)).detail).toMatch(/X-Request-Id 'never-seen'.*PREDICTION_LOG/);
  });
});

describe("feedback on an async prediction", () => {
  it("by prediction id, per item; the stored input becomes the training text", async () => {
    const texts = [LOUD[2], CALM[0]];
    const submitted = await postJson("/api/v1/predictions", { model: MODEL, texts });
    expect(submitted.status).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    await waitForStatus(`/api/v1/predictions/${id}`, ["done"]);
    const path = `/api/v1/predictions/${id}/feedback`;
    const res = await feedbackOnceLogged(path, {
      items: [
        { index: 0, labels: ["loud"] },
        { index: 1, labels: ["calm"] },
      ],
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Feedback;
    expect(body).toMatchObject({ prediction_id: id, request_id: null, model: { id: MODEL, version: "1" } });
    expect(body.items.map((i) => [i.labels, i.correct, i.text_stored])).toEqual([
      [["loud"], true, true],
      [["calm"], true, true],
    ]);
    const stored = await env.DB.prepare("SELECT text FROM feedback WHERE prediction_id = ? ORDER BY item")
      .bind(id)
      .all<{ text: string }>();
    expect(stored.results.map((r) => r.text)).toEqual(texts);
    // The same through POST /api/v1/feedback with prediction_id: identical, so 200.
    const same = await postJson("/api/v1/feedback", { prediction_id: id, index: 1, labels: ["calm"] });
    expect(same.status).toBe(200);
    expect((await postJson(`/api/v1/predictions/nope/feedback`, { labels: ["calm"] })).status).toBe(404);
  });
});

describe("feedback is the caller's own, like the log", () => {
  const ALICE = "fb-alice";
  const BOB = "fb-bob";
  const policy = JSON.stringify({
    issuers: {
      [ALICE]: ["predict", "feedback", "predictions"],
      [BOB]: ["predict", "feedback", "predictions"],
    },
    default: [],
  });
  const keys: Record<string, TestKey> = {};
  beforeAll(async () => {
    for (const issuer of [ALICE, BOB]) keys[issuer] = await createTestKey(issuer);
  });
  async function as(issuer: string, path: string, body: unknown): Promise<Response> {
    const headers = { authorization: `Bearer ${await tokenOf(keys[issuer] as TestKey)}` };
    return postJson(path, body, headers, { vars: { ASAP_POLICY: policy }, wait: true });
  }

  it("another caller's prediction is 404, as an unknown one; the owner's feedback is recorded", async () => {
    const res = await as(ALICE, "/api/v1/predict", { model: MODEL, text: LOUD[1] });
    expect(res.status).toBe(200);
    const requestId = res.headers.get("x-request-id") as string;
    await waitFor(
      async () =>
        (await env.DB.prepare("SELECT 1 FROM prediction_log WHERE http_request_id = ?")
          .bind(requestId)
          .first()) ?? undefined,
    );
    const bob = await as(BOB, "/api/v1/feedback", { request_id: requestId, labels: ["loud"] });
    expect(bob.status).toBe(404);
    expect((await problem(bob)).code).toBe("prediction_not_found");
    expect((await as(ALICE, "/api/v1/feedback", { request_id: requestId, labels: ["loud"] })).status).toBe(
      201,
    );
  });
});

describe("live quality per version", () => {
  it("accuracy, precision/recall at the threshold and a rank-based ROC-AUC once 10 + 10 labels exist", async () => {
    const id = "fb-quality";
    for (const [version, flip] of [
      ["1", false],
      ["2", true],
    ] as const) {
      const { manifest, bytes } = await tinyModel(id, version, flip);
      expect(
        (await upload(id, version, manifest, bytes, version === "1" ? "?activate=true" : "")).status,
      ).toBe(201);
    }
    // 24 texts, half of each class, scored by version 1; their truth is the class they were written as.
    const texts = Array.from({ length: 12 }, (_, i) => [
      `${CALM[i % 3]} day ${i}`,
      `${LOUD[i % 3]} deal ${i}`,
    ]).flat();
    const truth = texts.map((_, i) => (i % 2 === 0 ? "calm" : "loud"));
    const res = await postJson("/api/v1/predict", { model: id, texts });
    const requestId = res.headers.get("x-request-id") as string;
    const { results } = (await res.json()) as {
      results: { sentiment: { sentiment_type: string; sentiment_score: number }[] }[];
    };
    const loudScores = results.map(
      (r) => r.sentiment.find((s) => s.sentiment_type === "loud")?.sentiment_score as number,
    );
    const fb = await feedbackOnceLogged("/api/v1/feedback", {
      request_id: requestId,
      items: truth.map((labels, index) => ({ index, labels: [labels] })),
    });
    expect(fb.status).toBe(201);
    // Version 2 (the flipped one) scores two texts when named explicitly.
    const v2 = await postJson("/api/v1/predict", { model: id, version: "2", texts: [CALM[0], LOUD[0]] });
    const v2Id = v2.headers.get("x-request-id") as string;
    expect(
      (
        await feedbackOnceLogged("/api/v1/feedback", {
          request_id: v2Id,
          items: [
            { index: 0, labels: ["calm"] },
            { index: 1, labels: ["loud"] },
          ],
        })
      ).status,
    ).toBe(201);

    const q = await api(`/api/v1/models/${id}/quality`);
    expect(q.status).toBe(200);
    const quality = (await q.json()) as Quality;
    expect(quality.active_version).toBe("1");
    const [one, two] = quality.versions;
    // The expected figures, computed here independently: threshold 0.5 on `loud`, pairwise AUC.
    const predicted = loudScores.map((s) => (s >= 0.5 ? "loud" : "calm"));
    const correct = predicted.filter((p, i) => p === truth[i]).length;
    let wins = 0;
    for (let i = 0; i < 24; i += 2)
      for (let j = 1; j < 24; j += 2) {
        const pos = loudScores[j] as number;
        const neg = loudScores[i] as number;
        wins += pos > neg ? 1 : pos === neg ? 0.5 : 0;
      }
    expect(one).toMatchObject({
      version: "1",
      task: "binary",
      feedback: 24,
      correct,
      accuracy: correct / 24,
    });
    const loud = one?.labels.find((l) => l.label === "loud");
    expect(loud).toMatchObject({ rule: "threshold", threshold: 0.5, positives: 12, negatives: 12 });
    expect(loud?.roc_auc).toBeCloseTo(wins / 144, 12);
    expect(loud?.roc_auc).toBeGreaterThan(0.9);
    expect(one?.labels.find((l) => l.label === "calm")).toMatchObject({
      rule: "complement",
      threshold: 0.5,
      roc_auc: null,
    });
    // Version 2 is wrong on both and has too few labels for an AUC.
    expect(two).toMatchObject({ version: "2", feedback: 2, correct: 0, accuracy: 0 });
    expect(two?.labels.find((l) => l.label === "loud")).toMatchObject({ recall: 0, roc_auc: null });

    const none = await api("/api/v1/models/fb-nothing-here/quality");
    expect(none.status).toBe(404);
    expect((await problem(none)).code).toBe("model_not_found");
  });

  it("the pure figures: ties count half, thresholds and argmax decide like answers", () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBe(0.75);
    expect(rocAuc([0.5, 0.5], [false, true])).toBe(0.5);
    expect(rocAuc([0.2, 0.3], [true, true])).toBeUndefined();
    const multilabel = { task: "multilabel" as const, labels: ["a", "b", "c"], thresholds: { a: 0.9 } };
    expect(predictedLabels(multilabel, { a: 0.8, b: 0.5, c: 0.1 })).toEqual(["b"]);
    expect(
      predictedLabels({ task: "multiclass", labels: ["x", "y", "z"] }, { x: 0.2, y: 0.5, z: 0.3 }),
    ).toEqual(["y"]);
    expect(
      predictedLabels({ task: "binary", labels: ["n", "p"], thresholds: { p: 0.3 } }, { n: 0.65, p: 0.35 }),
    ).toEqual(["p"]);
    expect(isCorrect([], [])).toBe(true);
    const q = versionQuality(multilabel, [
      { labels: ["b"], scores: { a: 0.1, b: 0.9, c: 0 } },
      { labels: ["a", "b"], scores: { a: 0.95, b: 0.2, c: 0 } },
    ]);
    expect(q).toMatchObject({ feedback: 2, correct: 1, accuracy: 0.5 });
    expect(q.labels.find((l) => l.label === "b")).toMatchObject({
      positives: 2,
      true_positives: 1,
      precision: 1,
      recall: 0.5,
    });
    expect(q.labels.find((l) => l.label === "c")).toMatchObject({ precision: null, recall: null });
  });
});

describe("retention", () => {
  it("the scheduled purge removes feedback (and its text) with the prediction it labels", async () => {
    const { requestId } = await predictSync({ text: CALM[2] });
    expect(
      (
        await feedbackOnceLogged("/api/v1/feedback", {
          request_id: requestId,
          labels: ["calm"],
          text: CALM[2],
        })
      ).status,
    ).toBe(201);
    await env.DB.prepare("UPDATE feedback SET predicted_at = ? WHERE http_request_id = ?")
      .bind(Date.now() - 31 * 86_400_000, requestId)
      .run();
    await worker.scheduled(createScheduledController({ cron: "17 * * * *" }), env);
    const left = await env.DB.prepare("SELECT COUNT(*) AS n FROM feedback WHERE http_request_id = ?")
      .bind(requestId)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });
});

describe("the dashboard's per-model view data", () => {
  /** A dashboard session cookie of the default test issuer under `vars`. */
  async function session(vars: Record<string, string> = {}): Promise<string> {
    const login = await api("/api/v1/dashboard/login", { method: "POST" }, { vars });
    const { url } = (await login.json()) as { url: string };
    const res = await api(url, { redirect: "manual" }, { auth: false, vars });
    expect(res.status).toBe(303);
    return (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  }

  it("is the model's API answers in one JSON; a view without a route or without the policy's grant is null", async () => {
    const cookie = await session();
    const res = await api(`/dashboard/api/models/${MODEL}`, { headers: { cookie } }, { auth: false });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const view = (await res.json()) as {
      model: unknown;
      quality: unknown;
      shadow: unknown;
      traffic: unknown;
    };
    expect(view.model).toEqual(await (await api(`/api/v1/models/${MODEL}`)).json());
    expect(view.quality).toEqual(await (await api(`/api/v1/models/${MODEL}/quality`)).json());
    // The rollout routes of issue 30 items 1-2: null while this deployment has none, else their answers.
    // (`as_of`, the time of the traffic answer, differs between the two reads.)
    const timeless = (v: unknown) => (v && typeof v === "object" ? { ...v, as_of: undefined } : v);
    for (const name of ["shadow", "traffic"] as const) {
      const direct = await api(`/api/v1/models/${MODEL}/${name}`);
      expect(timeless(view[name])).toEqual(timeless(direct.status === 200 ? await direct.json() : null));
    }
    expect(
      (await api("/dashboard/api/models/fb-no-such", { headers: { cookie } }, { auth: false })).status,
    ).toBe(404);
    expect((await api(`/dashboard/api/models/${MODEL}`)).status).toBe(401);
  });

  it("follows the policy: no models:GET is 403", async () => {
    const vars = { ASAP_POLICY: JSON.stringify({ default: ["dashboard", "statistics:GET"] }) };
    const cookie = await session(vars);
    const res = await api(`/dashboard/api/models/${MODEL}`, { headers: { cookie } }, { auth: false, vars });
    expect(res.status).toBe(403);
    expect((await problem(res)).code).toBe("forbidden");
  });
});
