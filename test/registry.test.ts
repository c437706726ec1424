/**
 * The model registry in workerd with real D1, R2, queues and ORT: shipped models in the registry,
 * upload → activate → predict, bad uploads (422, the old version keeps serving), immutability,
 * rollback, hot switch under concurrent requests (no failure, old session released), delete cascade.
 * ORT-using registry cases live in this one file (each ORT file costs ~15 s of startup).
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { r2Keys } from "../src/contracts/r2-keys";
import { sha256Hex } from "../src/hash";
import { sessionCache, withModel } from "../src/inference/engine";
import { api, postJson, problem, seedShippedModel } from "./helpers";
import { CALM, LOUD, tinyModel, upload, waitFor, waitForStatus } from "./registry-helpers";

interface Predicted {
  sentiment: { sentiment_type: string; sentiment_score: number }[];
  model: { id: string; version: string };
}

const config = loadConfig(env as unknown as Record<string, unknown>);

async function predict(model: string, text: string, version?: string): Promise<Predicted> {
  const res = await postJson("/api/v1/predict", { model, text, n_top: 1, ...(version ? { version } : {}) });
  if (res.status !== 200) throw new Error(`predict ${model}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Predicted;
}

async function r2Keys_(prefix: string): Promise<string[]> {
  return (await env.MODELS.list({ prefix })).objects.map((o) => o.key);
}

async function count(table: string, column: string, id: string): Promise<number> {
  const row = await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`)
    .bind(id)
    .first<{ n: number }>();
  return row?.n ?? -1;
}

/** Versions of the shipped models as seeded (their manifests' versions). */
const shipped: Record<string, string> = {};

beforeAll(async () => {
  for (const id of ["toxicity", "sentiment", "spam"]) shipped[id] = (await seedShippedModel(id)).version;
});

describe("shipped models are in the registry (lazy import from R2)", () => {
  it("GET /api/v1/models lists them with active version, task, labels, metrics and size", async () => {
    const res = await api("/api/v1/models");
    expect(res.status).toBe(200);
    const { models } = (await res.json()) as { models: Record<string, unknown>[] };
    const spam = models.find((m) => m.id === "spam");
    expect(spam).toMatchObject({
      active_version: shipped.spam,
      default: false,
      kind: "text",
      task: "binary",
      labels: ["ham", "spam"],
      versions: 1,
    });
    expect((spam?.metrics as Record<string, number>).test_accuracy).toBeGreaterThan(0.99);
    expect(spam?.size_bytes).toBeGreaterThan(1_000_000);
    expect(models.find((m) => m.id === "toxicity")).toMatchObject({ default: true, task: "multilabel" });
    const row = await env.DB.prepare(
      "SELECT source, state FROM model_versions WHERE model_id = 'sentiment'",
    ).first();
    expect(row).toEqual({ source: "import", state: "ready" });
  });

  it("GET /api/v1/models/:id shows every version; unknown ids are 404", async () => {
    const res = await api("/api/v1/models/toxicity");
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      active_version: string;
      versions: { version: string; labels: string[] }[];
    };
    expect(body.active_version).toBe(shipped.toxicity);
    expect(body.versions.map((v) => v.version)).toEqual([shipped.toxicity]);
    expect(body.versions[0]?.labels).toHaveLength(6);
    const missing = await api("/api/v1/models/no-such-model");
    expect(missing.status).toBe(404);
    expect((await problem(missing)).code).toBe("model_not_found");
  });
});

describe("upload → activate → predict", () => {
  it("serves an uploaded version, keeps it inactive until asked, switches and rolls back", async () => {
    const v1 = await tinyModel("demo", "1");
    const v2 = await tinyModel("demo", "2", true);
    const put1 = await upload("demo", "1", v1.manifest, v1.bytes, "?activate=true");
    expect(put1.status).toBe(201);
    expect(await put1.json()).toMatchObject({
      id: "demo",
      version: "1",
      active_version: "1",
      sha256: v1.manifest.sha256,
    });
    expect(await predict("demo", LOUD[0] as string)).toMatchObject({
      model: { version: "1" },
      sentiment: [{ sentiment_type: "loud" }],
    });

    const put2 = await upload("demo", "2", v2.manifest, v2.bytes);
    expect(put2.status).toBe(201);
    expect(await put2.json()).toMatchObject({ active_version: "1" });
    expect((await predict("demo", LOUD[0] as string)).model.version).toBe("1");
    // The explicit version serves at once; its classes are flipped.
    expect(await predict("demo", LOUD[0] as string, "2")).toMatchObject({
      model: { version: "2" },
      sentiment: [{ sentiment_type: "calm" }],
    });

    const act = await postJson("/api/v1/models/demo/activate", { version: "2" });
    expect(act.status).toBe(200);
    expect(await act.json()).toEqual({
      id: "demo",
      active_version: "2",
      previous_version: "1",
      effective_within_ms: config.ACTIVE_POINTER_TTL_MS,
    });
    expect(await predict("demo", LOUD[0] as string)).toMatchObject({
      model: { version: "2" },
      sentiment: [{ sentiment_type: "calm" }],
    });

    const back = await postJson("/api/v1/models/demo/activate", { version: "1" });
    expect(back.status).toBe(200);
    expect((await predict("demo", CALM[0] as string)).model.version).toBe("1");

    const shown = (await (await api("/api/v1/models/demo")).json()) as {
      active_version: string;
      versions: { version: string; state: string; source: string }[];
    };
    expect(shown.active_version).toBe("1");
    expect(shown.versions.map((v) => [v.version, v.state, v.source])).toEqual([
      ["1", "ready", "upload"],
      ["2", "ready", "upload"],
    ]);
  });

  it("versions are immutable: the same bytes again is 200, other bytes 409", async () => {
    const v1 = await tinyModel("immutable", "1");
    expect((await upload("immutable", "1", v1.manifest, v1.bytes)).status).toBe(201);
    expect((await upload("immutable", "1", v1.manifest, v1.bytes)).status).toBe(200);
    const other = await tinyModel("immutable", "1", true);
    const res = await upload("immutable", "1", other.manifest, other.bytes);
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe("model_version_exists");
  });

  it("activating an unknown version is 404 and changes nothing", async () => {
    const v1 = await tinyModel("act404", "1");
    await upload("act404", "1", v1.manifest, v1.bytes, "?activate=true");
    const res = await postJson("/api/v1/models/act404/activate", { version: "9" });
    expect(res.status).toBe(404);
    expect((await problem(res)).code).toBe("model_version_not_found");
    expect((await predict("act404", "hello")).model.version).toBe("1");
    const bad = await postJson("/api/v1/models/act404/activate", { version: "../x" });
    expect(bad.status).toBe(400);
  });
});

describe("bad uploads are refused (422) and the current version keeps serving", () => {
  let good: { manifest: Record<string, unknown>; bytes: Uint8Array };

  beforeAll(async () => {
    const v1 = await tinyModel("guarded", "1");
    expect((await upload("guarded", "1", v1.manifest, v1.bytes, "?activate=true")).status).toBe(201);
    const v2 = await tinyModel("guarded", "2", true);
    good = { manifest: v2.manifest as unknown as Record<string, unknown>, bytes: v2.bytes };
  });

  const cases: [string, () => Promise<{ manifest: unknown; bytes: Uint8Array }>, RegExp][] = [
    [
      "a sha256 that does not match",
      async () => ({ manifest: { ...good.manifest, sha256: "0".repeat(64) }, bytes: good.bytes }),
      /sha256/,
    ],
    [
      "bytes that are not ONNX",
      async () => {
        const bytes = new TextEncoder().encode("definitely not a protobuf ModelProto");
        return {
          manifest: { ...good.manifest, sha256: await sha256Hex(bytes), size_bytes: bytes.byteLength },
          bytes,
        };
      },
      /not a loadable ONNX model/,
    ],
    [
      "a size that does not match",
      async () => ({ manifest: { ...good.manifest, size_bytes: 12 }, bytes: good.bytes }),
      /size_bytes/,
    ],
    [
      "an output name the graph lacks",
      async () => ({ manifest: { ...good.manifest, output: "probs" }, bytes: good.bytes }),
      /outputs/,
    ],
    [
      "input names the graph lacks",
      async () => ({
        manifest: { ...good.manifest, inputs: { ids: "tokens", values: "values" } },
        bytes: good.bytes,
      }),
      /inputs/,
    ],
    [
      "more labels than the graph scores",
      async () => ({
        manifest: { ...good.manifest, task: "multilabel", labels: ["a", "b", "c"] },
        bytes: good.bytes,
      }),
      /shape \[2, 2\].*expected \[2, 3\]/,
    ],
    [
      "an invalid manifest",
      async () => ({ manifest: { ...good.manifest, task: "regression" }, bytes: good.bytes }),
      /manifest is invalid: task/,
    ],
    [
      "a manifest for another model",
      async () => ({ manifest: { ...good.manifest, id: "other" }, bytes: good.bytes }),
      /does not match the URL/,
    ],
  ];
  for (const [name, make, detail] of cases) {
    it(name, async () => {
      const { manifest, bytes } = await make();
      const res = await upload("guarded", "2", manifest, bytes, "?activate=true");
      expect(res.status).toBe(422);
      const body = await problem(res);
      expect(body.code).toBe("invalid_model");
      expect(body.detail).toMatch(detail);
      // Nothing was stored, nothing switched.
      expect(await r2Keys_("models/guarded/2/")).toEqual([]);
      expect(await count("model_versions", "model_id", "guarded")).toBe(1);
      expect(await predict("guarded", LOUD[0] as string)).toMatchObject({
        model: { version: "1" },
        sentiment: [{ sentiment_type: "loud" }],
      });
    });
  }

  it("a body that is not multipart is 415; a missing part is 400", async () => {
    const res = await api("/api/v1/models/guarded/versions/2", {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: good.bytes,
    });
    expect(res.status).toBe(415);
    const form = new FormData();
    form.append("manifest", JSON.stringify(good.manifest));
    const partial = await api("/api/v1/models/guarded/versions/2", { method: "PUT", body: form });
    expect(partial.status).toBe(400);
    expect((await problem(partial)).detail).toMatch(/'model'/);
    expect(await count("model_versions", "model_id", "guarded")).toBe(1);
  });
});

describe("hot switch", () => {
  it("no request fails while the active version switches under load; the old session is released", async () => {
    for (const [version, flip] of [
      ["1", false],
      ["2", true],
    ] as const) {
      const m = await tinyModel("hot", version, flip);
      expect(
        (await upload("hot", version, m.manifest, m.bytes, version === "1" ? "?activate=true" : "")).status,
      ).toBe(201);
    }
    // Version 1 is loaded and serving; count releases from here.
    expect((await withModel(env.MODELS, config, "hot", undefined, async (m) => m)).meta.version).toBe("1");
    const cache = sessionCache(config);
    const released = cache.releases;

    const burst = () =>
      Array.from({ length: 25 }, (_, i) => predict("hot", i % 2 ? (CALM[0] as string) : (LOUD[0] as string)));
    const before = burst();
    const switching = postJson("/api/v1/models/hot/activate", { version: "2" });
    const during = burst();
    const results = await Promise.all([...before, ...during]);
    expect((await switching).status).toBe(200);
    for (const r of results) expect(["1", "2"]).toContain(r.model.version);
    // Every answer is consistent with the version that gave it (v2 flips the classes).
    for (const [i, r] of results.entries()) {
      const loud = (i % 25) % 2 === 0;
      expect(r.sentiment[0]?.sentiment_type).toBe(loud === (r.model.version === "1") ? "loud" : "calm");
    }
    const after = await Promise.all(burst());
    for (const r of after) expect(r.model.version).toBe("2");
    // The switch dropped version 1's session and released it once its requests finished. (A
    // request that resolved version 1 just before the switch may have reloaded it: keys can hold
    // it again, and the LRU or the next switch releases that one.)
    expect(cache.releases).toBeGreaterThan(released);
  });

  it("another isolate's switch (the R2 pointer) is followed, and the previous session dropped", async () => {
    for (const [version, flip] of [
      ["1", false],
      ["2", true],
    ] as const) {
      const m = await tinyModel("remote", version, flip);
      expect(
        (await upload("remote", version, m.manifest, m.bytes, version === "1" ? "?activate=true" : ""))
          .status,
      ).toBe(201);
    }
    expect((await withModel(env.MODELS, config, "remote", undefined, async (m) => m)).meta.version).toBe("1");
    const cache = sessionCache(config);
    const released = cache.releases;
    // What an activation in another isolate leaves behind: the pointer, not this isolate's caches.
    await env.MODELS.put(r2Keys.active("remote"), JSON.stringify({ version: "2" }));
    expect((await predict("remote", "hello")).model.version).toBe("2");
    expect(cache.keys().some((k) => k.startsWith("remote/1@"))).toBe(false);
    expect(cache.keys().some((k) => k.startsWith("remote/2@"))).toBe(true);
    expect(cache.releases).toBe(released + 1);
  });
});

describe("delete", () => {
  it("refuses the default model (409) and unknown models (404)", async () => {
    const res = await api("/api/v1/models/toxicity", { method: "DELETE" });
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe("model_is_default");
    expect((await predict("toxicity", "hello")).model.id).toBe("toxicity");
    const missing = await api("/api/v1/models/never-was", { method: "DELETE" });
    expect(missing.status).toBe(404);
  });

  it("removes every related object: versions' bytes, metadata, jobs, predictions, log rows", async () => {
    const v1 = await tinyModel("doomed", "1");
    const v2 = await tinyModel("doomed", "2", true);
    await upload("doomed", "1", v1.manifest, v1.bytes, "?activate=true");
    await upload("doomed", "2", v2.manifest, v2.bytes);
    await predict("doomed", "hello");
    const submitted = await postJson("/api/v1/predictions", { model: "doomed", text: "hello" });
    expect(submitted.status).toBe(202);
    const { id: predictionId } = (await submitted.json()) as { id: string };
    await waitForStatus(`/api/v1/predictions/${predictionId}`, ["done"]);
    const job = await postJson("/api/v1/models", {
      id: "doomed",
      task: "binary",
      force_update: true,
      text_field: "t",
      label_field: "l",
      featurizer: { buckets: 1024 },
      dataset: {
        rows: [...CALM, ...LOUD].flatMap((t, i) =>
          [0, 1, 2].map((k) => ({ t: `${t} ${k}`, l: i < 3 ? "calm" : "loud" })),
        ),
      },
    });
    expect(job.status).toBe(202);
    const { job_id: jobId } = (await job.json()) as { job_id: string };
    await waitForStatus(`/api/v1/jobs/${jobId}`, ["succeeded"]);
    await waitFor(async () =>
      (await count("prediction_log", "model_id", "doomed")) >= 2 ? true : undefined,
    );
    // 3 versions × 2 + the trained version's reference profile (docs/drift.md) + active.json
    expect((await r2Keys_("models/doomed/")).length).toBe(8);

    const res = await api("/api/v1/models/doomed", { method: "DELETE" });
    expect(res.status).toBe(200);
    const { deleted } = (await res.json()) as { deleted: Record<string, number> };
    expect(deleted).toMatchObject({ id: "doomed", versions: 3, jobs: 1, predictions: 1, r2_objects: 9 });
    expect(deleted.log_rows).toBeGreaterThanOrEqual(2);

    expect(await r2Keys_("models/doomed/")).toEqual([]);
    expect(await env.MODELS.head(`inputs/${predictionId}`)).toBeNull();
    for (const [table, column] of [
      ["models", "id"],
      ["model_versions", "model_id"],
      ["jobs", "model_id"],
      ["predictions", "model_id"],
      ["prediction_log", "model_id"],
    ] as const) {
      expect(await count(table, column, "doomed"), table).toBe(0);
    }
    expect((await api("/api/v1/models/doomed")).status).toBe(404);
    expect((await api(`/api/v1/predictions/${predictionId}`)).status).toBe(404);
    expect((await api(`/api/v1/jobs/${jobId}`)).status).toBe(404);
    const gone = await postJson("/api/v1/predict", { model: "doomed", text: "hello" });
    expect(gone.status).toBe(404);
    expect((await problem(gone)).code).toBe("model_not_found");
    const pinned = await postJson("/api/v1/predict", { model: "doomed", version: "1", text: "hello" });
    expect(pinned.status).toBe(404);
    // Other models are untouched.
    expect((await predict("spam", "ok see you")).model.id).toBe("spam");
  });
});
