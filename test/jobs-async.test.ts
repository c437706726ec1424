/**
 * Training jobs and async predictions end to end in workerd: real queues (the producer's messages
 * are delivered to the Worker's `queue` handler by the pool), real D1/R2/ORT. Redelivery, duplicate
 * delivery, retries and the dead-letter queue are driven with `createMessageBatch` (`deliver` of
 * test/queue-helpers.ts). Also the prediction log and the retention purge. ORT-using job/async cases live in this one file.
 */
import { createScheduledController, env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { r2Keys } from "../src/contracts/r2-keys";
import worker from "../src/index";
import { api, fixtureBytes, postJson, problem, seedShippedModel } from "./helpers";
import { deliver } from "./queue-helpers";
import { labelledRows, tinyModel, upload, waitFor, waitForStatus } from "./registry-helpers";

interface Job {
  id: string;
  status: string;
  stage: string;
  progress: number;
  model: { id: string; version: string };
  metrics: Record<string, number> | null;
  error: string | null;
  activate: boolean;
}
interface Prediction {
  id: string;
  status: string;
  result?: { results?: { sentiment: unknown[] }[]; sentiment?: unknown[]; predictions?: { label: string }[] };
  error?: string;
  model: { id: string; version: string };
  request_id?: unknown;
  attempts: number;
  created_at: string;
  finished_at: string | null;
}

const DAY = 86_400_000;

async function startJob(
  body: Record<string, unknown>,
): Promise<{ job_id: string; model: { version: string } }> {
  const res = await postJson("/api/v1/models", body);
  if (res.status !== 202) throw new Error(`job: ${res.status} ${await res.text()}`);
  return (await res.json()) as { job_id: string; model: { version: string } };
}

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function predictionRow(id: string): Promise<Record<string, unknown> | null> {
  return env.DB.prepare("SELECT * FROM predictions WHERE id = ?").bind(id).first();
}

/** Versions of the shipped models as seeded (from their manifests). */
const shipped: Record<string, string> = {};

beforeAll(async () => {
  for (const id of ["spam", "digits"]) shipped[id] = (await seedShippedModel(id)).version;
});

describe("training jobs", () => {
  it("inline rows: 202 → queued → succeeded with held-out metrics; the new model serves", async () => {
    const res = await postJson("/api/v1/models", {
      id: "job-inline",
      task: "binary",
      text_field: "text",
      label_field: "label",
      featurizer: { buckets: 4096 },
      dataset: { rows: labelledRows(40) },
    });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as {
      job_id: string;
      status_url: string;
      model: unknown;
      activate: boolean;
    };
    expect(accepted).toMatchObject({
      status: "queued",
      model: { id: "job-inline", version: "1" },
      activate: true,
    });
    expect(res.headers.get("location")).toBe(accepted.status_url);
    const job = await waitForStatus<Job>(accepted.status_url, ["succeeded", "failed"]);
    expect(job).toMatchObject({ status: "succeeded", stage: "done", progress: 1, error: null });
    // Split rule i % 5 == 4: 16 of 80 rows are held out.
    expect(job.metrics).toMatchObject({ test_rows: 16, train_rows: 64, test_accuracy: 1 });
    // The validation fold (i % 5 == 3, 16 rows) is measured and calibrates the model; its threshold
    // for the positive label goes into the manifest, and predictions carry `flagged`.
    expect(job.metrics).toMatchObject({ validation_rows: 16, validation_accuracy: 1 });
    const predicted = await postJson("/api/v1/predict", {
      model: "job-inline",
      text: "win cash prize now",
      n_top: 1,
    });
    expect(await predicted.json()).toMatchObject({
      model: { id: "job-inline", version: "1" },
      sentiment: [{ sentiment_type: "loud" }],
      flagged: ["loud"],
    });
    const shown = (await (await api("/api/v1/models/job-inline")).json()) as {
      active_version: string;
      versions: { source: string; metrics: Record<string, number> }[];
    };
    expect(shown.active_version).toBe("1");
    expect(shown.versions[0]?.source).toBe("training");
    expect(shown.versions[0]?.metrics.test_accuracy).toBe(1);
    // The inline rows were only needed by the job.
    expect(await env.MODELS.head(`jobs/${accepted.job_id}/rows.json`)).toBeNull();
    // The reference profile for drift (docs/drift.md): the 64 train rows and the model's scores.
    const drift = (await (await api("/api/v1/models/job-inline/drift?hours=1")).json()) as {
      reference: { count: number; source: string } | null;
    };
    expect(drift.reference).toMatchObject({ count: 64 });
    expect(drift.reference?.source).toMatch(/^train split of job /);
  });

  it('featurizer norm "l2-blocks": the job trains on word and character halves apart, the manifest records it, the model serves', async () => {
    const job = (id: string, norm: string) =>
      postJson("/api/v1/models", {
        id,
        task: "binary",
        text_field: "text",
        label_field: "label",
        featurizer: { buckets: 4096, norm },
        dataset: { rows: labelledRows(40) },
      });
    const res = await job("job-blocks", "l2-blocks");
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { status_url: string };
    const done = await waitForStatus<Job>(accepted.status_url, ["succeeded", "failed"]);
    expect(done).toMatchObject({ status: "succeeded", error: null });
    const manifest = (await (await env.MODELS.get(r2Keys.manifest("job-blocks", "1")))?.json()) as {
      featurizer: { norm: string; buckets: number };
    };
    expect(manifest.featurizer).toMatchObject({ norm: "l2-blocks", buckets: 4096 });
    const predicted = await postJson("/api/v1/predict", {
      model: "job-blocks",
      text: "win cash prize now",
      n_top: 1,
    });
    expect(await predicted.json()).toMatchObject({ sentiment: [{ sentiment_type: "loud" }] });
    const bad = await job("job-blocks-bad", "l3");
    expect(bad.status).toBe(400);
  });

  it("validation_folds 4: calibration and thresholds from 4-fold CV's out-of-fold scores, validation figures as fold means ± sd", async () => {
    const body = {
      task: "binary",
      text_field: "text",
      label_field: "label",
      featurizer: { buckets: 4096 },
      dataset: { rows: labelledRows(40) },
    };
    const cv = await startJob({ ...body, id: "job-cv4", validation_folds: 4 });
    const fixed = await startJob({ ...body, id: "job-cv1" });
    const [a, b] = [
      await waitForStatus<Job>(`/api/v1/jobs/${cv.job_id}`, ["succeeded", "failed"]),
      await waitForStatus<Job>(`/api/v1/jobs/${fixed.job_id}`, ["succeeded", "failed"]),
    ];
    expect(a).toMatchObject({ status: "succeeded", error: null });
    expect(b).toMatchObject({ status: "succeeded", error: null });
    // Every train row (64 of 80) is scored out of fold once; the fixed fold holds 16.
    expect(a.metrics).toMatchObject({
      validation_folds: 4,
      validation_rows: 64,
      train_rows: 64,
      test_rows: 16,
    });
    expect(a.metrics?.validation_accuracy_sd).toBeGreaterThanOrEqual(0);
    expect(b.metrics).toMatchObject({ validation_rows: 16, train_rows: 64 });
    expect(b.metrics?.validation_folds).toBeUndefined();
    expect(b.metrics?.validation_accuracy_sd).toBeUndefined();
    // The same final fit, calibrated on different scores: both flag the loud text; an ambiguous one
    // (a word of each class) gets different, unsaturated scores.
    const predict = async (model: string, text: string) =>
      (await (await postJson("/api/v1/predict", { model, text, n_top: 2 })).json()) as {
        sentiment: { sentiment_type: string; sentiment_score: number }[];
        flagged: string[];
      };
    for (const model of ["job-cv4", "job-cv1"]) {
      expect((await predict(model, "win cash prize now")).flagged).toEqual(["loud"]);
    }
    const loudness = async (model: string) =>
      (await predict(model, "number offer")).sentiment.find((x) => x.sentiment_type === "loud")
        ?.sentiment_score as number;
    const [p4, p1] = [await loudness("job-cv4"), await loudness("job-cv1")];
    expect(p4).toBeGreaterThan(0.001);
    expect(p4).toBeLessThan(0.999);
    expect(Math.abs(p4 - p1)).toBeGreaterThan(1e-4);
    const bad = await postJson("/api/v1/models", { ...body, id: "job-cv3", validation_folds: 3 });
    expect(bad.status).toBe(400);
    expect((await problem(bad)).detail).toMatch(/validation_folds must be 1 .* or 4/);
  });

  it("an existing id is 409 without force_update; with it, a new version, activated only when asked", async () => {
    const body = {
      id: "job-update",
      task: "binary",
      text_field: "text",
      label_field: "label",
      featurizer: { buckets: 1024 },
    };
    const first = await startJob({ ...body, dataset: { rows: labelledRows(10) } });
    await waitForStatus(`/api/v1/jobs/${first.job_id}`, ["succeeded"]);
    const again = await postJson("/api/v1/models", { ...body, dataset: { rows: labelledRows(10) } });
    expect(again.status).toBe(409);
    expect((await problem(again)).code).toBe("model_exists");

    const update = await startJob({ ...body, force_update: true, dataset: { rows: labelledRows(12) } });
    expect(update.model.version).toBe("2");
    const job = await waitForStatus<Job>(`/api/v1/jobs/${update.job_id}`, ["succeeded"]);
    expect(job.activate).toBe(false);
    const model = (await (await api("/api/v1/models/job-update")).json()) as {
      active_version: string;
      versions: unknown[];
    };
    expect(model.active_version).toBe("1");
    expect(model.versions).toHaveLength(2);

    const third = await startJob({
      ...body,
      force_update: true,
      activate: true,
      version: "v3",
      dataset: { rows: labelledRows(12) },
    });
    await waitForStatus(`/api/v1/jobs/${third.job_id}`, ["succeeded"]);
    expect(
      ((await (await api("/api/v1/models/job-update")).json()) as { active_version: string }).active_version,
    ).toBe("v3");
  });

  it("one job per model at a time: 409 job_in_progress while one is queued or running", async () => {
    await env.DB.prepare(
      "INSERT INTO jobs (id, model_id, version, status, stage, spec, created_at) VALUES (?, 'job-busy', '1', 'running', 'training', '{}', ?)",
    )
      .bind(crypto.randomUUID(), Date.now())
      .run();
    const res = await postJson("/api/v1/models", {
      id: "job-busy",
      task: "binary",
      text_field: "text",
      label_field: "label",
      dataset: { rows: labelledRows(5) },
    });
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe("job_in_progress");
  });

  it("R2 datasets: CSV (multiclass, default settings: buckets sized from the task), gzipped JSON lines (multilabel)", async () => {
    const csv = [
      "id,comment,topic",
      ...Array.from({ length: 60 }, (_, i) => {
        const topic = ["sport", "food", "travel"][i % 3] as string;
        const text = {
          sport: "the match and the goal",
          food: "a tasty soup recipe",
          travel: "a train to the coast",
        }[topic as "sport"];
        return `${i},"${text}, part ${i}",${topic}`;
      }),
    ].join("\n");
    await env.MODELS.put("datasets/topics.csv", csv);
    const multi = await startJob({
      id: "job-topics",
      task: "multiclass",
      text_field: "comment",
      label_field: "topic",
      dataset: { r2_key: "datasets/topics.csv" },
    });
    const done = await waitForStatus<Job>(`/api/v1/jobs/${multi.job_id}`, ["succeeded", "failed"]);
    expect(done.error).toBeNull();
    expect(done.metrics?.test_accuracy).toBe(1);
    const topics = (await (await api("/api/v1/models/job-topics")).json()) as {
      versions: { labels: string[] }[];
    };
    expect(topics.versions[0]?.labels).toEqual(["food", "sport", "travel"]);
    // Three classes with L-BFGS (memory 10): 2^18 buckets would need 157 MiB; 2^17 fit 96 MiB.
    const manifest = (await (
      await env.MODELS.get(r2Keys.manifest("job-topics", multi.model.version))
    )?.json()) as { featurizer: { buckets: number } };
    expect(manifest.featurizer.buckets).toBe(2 ** 17);

    const jsonl = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({
        text: i % 2 ? `you idiot ${i}` : `kind words ${i}`,
        insult: i % 2,
        rude: i % 2 ? "true" : "false",
      }),
    ).join("\n");
    await env.MODELS.put("datasets/tags.jsonl.gz", await gzip(jsonl));
    const tags = await startJob({
      id: "job-tags",
      task: "multilabel",
      text_field: "text",
      label_fields: ["insult", "rude"],
      featurizer: { buckets: 1024 },
      dataset: { r2_key: "datasets/tags.jsonl.gz" },
    });
    const tagged = await waitForStatus<Job>(`/api/v1/jobs/${tags.job_id}`, ["succeeded", "failed"]);
    expect(tagged.error).toBeNull();
    expect(tagged.metrics?.test_roc_auc_mean).toBe(1);
  });

  const badDatasets: [string, string, Record<string, unknown>, RegExp][] = [
    ["a missing column", "id,body,label\n1,hello,a\n", {}, /no field 'text'/],
    [
      "one class only",
      `text,label\n${Array.from({ length: 20 }, (_, i) => `t${i},same`).join("\n")}\n`,
      {},
      /only one class/,
    ],
    ["three classes for a binary task", "text,label\na,x\nb,y\nc,z\nd,x\ne,y\n", {}, /exactly two classes/],
    ["no rows", "text,label\n", {}, /no rows/],
    [
      "a label outside `labels`",
      "text,label\na,yes\nb,no\nc,maybe\n",
      { labels: ["no", "yes"] },
      /row 3: label 'maybe'/,
    ],
    ["a CSV syntax error", 'text,label\n"unterminated,yes\n', {}, /CSV could not be parsed/],
    ["too many rows", `text,label\n${"a,x\nb,y\n".repeat(25_001)}`, {}, /limit is 50000/],
  ];
  for (const [name, csv, extra, error] of badDatasets) {
    it(`a bad dataset fails the job clearly: ${name}; nothing is published`, async () => {
      const id = `bad-${name.replace(/[^a-z]+/g, "-").replace(/^-|-$/g, "")}`.slice(0, 60);
      await env.MODELS.put(`datasets/${id}.csv`, csv);
      const job = await startJob({
        id,
        task: "binary",
        text_field: "text",
        label_field: "label",
        dataset: { r2_key: `datasets/${id}.csv` },
        ...extra,
      });
      const failed = await waitForStatus<Job>(`/api/v1/jobs/${job.job_id}`, ["succeeded", "failed"]);
      expect(failed.status).toBe("failed");
      expect(failed.error).toMatch(error);
      expect((await api(`/api/v1/models/${id}`)).status).toBe(404);
      expect((await env.MODELS.list({ prefix: `models/${id}/` })).objects).toEqual([]);
    });
  }

  it("npm run train's spam data through a job reaches the shipped model's quality bar", async (ctx) => {
    const res = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(
      "http://fixtures/raw-datasets/spam/sms_spam.csv.gz",
    );
    if (res.status === 404) {
      ctx.skip(true, "../shared/datasets/spam is absent");
      return;
    }
    await env.MODELS.put("datasets/spam/sms_spam.csv.gz", await res.arrayBuffer());
    const started = Date.now();
    const job = await startJob({
      id: "spam-job",
      task: "binary",
      text_field: "SMS",
      label_field: "Label",
      labels: ["ham", "spam"],
      hyperparameters: { c: 1, class_weight: "balanced", idf_penalty: true },
      dataset: { r2_key: "datasets/spam/sms_spam.csv.gz" },
    });
    const done = await waitForStatus<Job>(`/api/v1/jobs/${job.job_id}`, ["succeeded", "failed"]);
    expect(done.error).toBeNull();
    // The spine's spam bar (scikit-learn TF-IDF + LogisticRegression): accuracy 0.9909 on the same split.
    expect(done.metrics?.test_accuracy).toBeGreaterThanOrEqual(0.9909);
    expect(done.metrics?.test_rows).toBe(994);
    console.log(
      `spam job: ${done.metrics?.train_rows} train rows, training ${done.metrics?.training_ms} ms, ` +
        `submit → succeeded ${Date.now() - started} ms, accuracy ${done.metrics?.test_accuracy}`,
    );
  });
});

describe("async predictions", () => {
  it("202 {id, status_url} → done, with the sync API's result; the input is in R2 and the message carries id + key", async () => {
    const texts = ["WINNER!! claim your free prize now", "ok see you at lunch"];
    const res = await postJson("/api/v1/predictions", { model: "spam", texts, request_id: 7, n_top: 1 });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { id: string; status_url: string };
    expect(accepted).toMatchObject({ status: "queued", model: { id: "spam", version: shipped.spam } });
    expect(accepted.status_url).toBe(`/api/v1/predictions/${accepted.id}`);
    expect(JSON.parse((await (await env.MODELS.get(`inputs/${accepted.id}`))?.text()) ?? "")).toEqual({
      texts,
    });

    const done = await waitForStatus<Prediction>(accepted.status_url, ["done", "failed"]);
    expect(done).toMatchObject({
      status: "done",
      model: { id: "spam", version: shipped.spam },
      request_id: 7,
      attempts: 1,
    });
    expect(done.finished_at).not.toBeNull();
    const sync = (await (await postJson("/api/v1/predict", { model: "spam", texts, n_top: 1 })).json()) as {
      results: unknown;
    };
    expect(done.result?.results).toEqual(sync.results);
  });

  it("an image prediction runs the image model", async () => {
    const { probes } = JSON.parse(
      new TextDecoder().decode(await fixtureBytes("models/digits/reference.json")),
    ) as {
      probes: { image: string; digit: string }[];
    };
    const probe = probes[0] as { image: string; digit: string };
    const res = await postJson("/api/v1/predictions", { model: "digits", image: probe.image, n_top: 3 });
    expect(res.status).toBe(202);
    const { status_url } = (await res.json()) as { status_url: string };
    const done = await waitForStatus<Prediction>(status_url, ["done", "failed"]);
    expect(done.error).toBeUndefined();
    expect(done.result?.predictions).toHaveLength(3);
    expect(done.result?.predictions?.[0]?.label).toBe(probe.digit);
  });

  it("redelivery never produces a second or a different result", async () => {
    const res = await postJson("/api/v1/predictions", { model: "spam", text: "free entry to win a car" });
    const { id } = (await res.json()) as { id: string };
    await waitForStatus(`/api/v1/predictions/${id}`, ["done"]);
    await waitFor(async () =>
      (await env.DB.prepare("SELECT 1 FROM prediction_log WHERE prediction_id = ?").bind(id).first())
        ? true
        : undefined,
    );
    const before = await predictionRow(id);
    const message = { kind: "prediction", id, key: `inputs/${id}` };
    for (const attempts of [1, 2, 5]) {
      const result = await deliver("edge-inference-predictions", message, attempts);
      expect(result.explicitAcks).toHaveLength(1);
      expect(result.retryMessages).toEqual([]);
    }
    expect(await predictionRow(id)).toEqual(before);
    const logged = await env.DB.prepare("SELECT COUNT(*) AS n FROM prediction_log WHERE prediction_id = ?")
      .bind(id)
      .first<{ n: number }>();
    expect(logged?.n).toBe(1);
  });

  it("a duplicate delivery leaves a running prediction alone; a redelivery (its run died) takes over once", async () => {
    const id = crypto.randomUUID();
    await env.MODELS.put(`inputs/${id}`, JSON.stringify({ text: "call now to claim" }));
    await env.DB.prepare(
      `INSERT INTO predictions (id, model_id, model_version, status, input_key, attempts, created_at, started_at)
       VALUES (?, 'spam', ?, 'running', ?, 1, ?, ?)`,
    )
      .bind(id, shipped.spam, `inputs/${id}`, Date.now(), Date.now())
      .run();
    const message = { kind: "prediction", id, key: `inputs/${id}` };
    // Another delivery of the first attempt while it runs: dropped.
    expect((await deliver("edge-inference-predictions", message, 1)).explicitAcks).toHaveLength(1);
    expect(await predictionRow(id)).toMatchObject({ status: "running", attempts: 1, result: null });
    // The queue redelivers (attempt 2) because the first run died: this one runs it, once.
    await deliver("edge-inference-predictions", message, 2);
    const done = await predictionRow(id);
    expect(done).toMatchObject({ status: "done", attempts: 2 });
    await deliver("edge-inference-predictions", message, 3);
    expect(await predictionRow(id)).toEqual(done);
  });

  it("a failing prediction is retried with backoff, then failed by the dead-letter consumer with its last error", async () => {
    const m = await tinyModel("fragile", "1");
    expect((await upload("fragile", "1", m.manifest, m.bytes)).status).toBe(201);
    // Corrupt the stored bytes (never loaded in this isolate): every attempt fails its sha256 check.
    await env.MODELS.put(r2Keys.model("fragile", "1"), new Uint8Array(m.bytes.byteLength));
    await env.MODELS.put(r2Keys.active("fragile"), JSON.stringify({ version: "1" }));
    const res = await postJson("/api/v1/predictions", { model: "fragile", text: "hello" });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const message = { kind: "prediction", id, key: `inputs/${id}` };
    const retried = await deliver("edge-inference-predictions", message, 3);
    // Retried (with backoff: see `retryDelaySeconds`), not acknowledged.
    expect(retried.retryMessages).toHaveLength(1);
    expect(retried.explicitAcks).toEqual([]);
    const pending = (await (await api(`/api/v1/predictions/${id}`)).json()) as Prediction;
    expect(pending.status).toBe("queued");
    expect(pending.error).toMatch(/will retry.*sha256/);

    const dead = await deliver("edge-inference-dlq", message, 1);
    expect(dead.explicitAcks).toHaveLength(1);
    const failed = (await (await api(`/api/v1/predictions/${id}`)).json()) as Prediction;
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(
      /gave up after the queue's retries.*last error: attempt \d failed: .*sha256/,
    );
    expect(failed.finished_at).not.toBeNull();
    // A late delivery does not revive it.
    await deliver("edge-inference-predictions", message, 4);
    expect((await predictionRow(id))?.status).toBe("failed");
  });

  it("a prediction that cannot succeed fails at once (pinned version gone), without retries", async () => {
    const id = crypto.randomUUID();
    await env.MODELS.put(`inputs/${id}`, JSON.stringify({ text: "hello" }));
    await env.DB.prepare(
      "INSERT INTO predictions (id, model_id, model_version, status, input_key, created_at) VALUES (?, 'spam', '99', 'queued', ?, ?)",
    )
      .bind(id, `inputs/${id}`, Date.now())
      .run();
    const result = await deliver("edge-inference-predictions", {
      kind: "prediction",
      id,
      key: `inputs/${id}`,
    });
    expect(result.explicitAcks).toHaveLength(1);
    expect(await predictionRow(id)).toMatchObject({
      status: "failed",
      error: expect.stringMatching(/no version '99'/),
    });
  });

  it("a failed job is marked failed by the dead-letter consumer too", async () => {
    const id = crypto.randomUUID();
    await env.DB.prepare(
      "INSERT INTO jobs (id, model_id, version, status, stage, spec, error, created_at) VALUES (?, 'dl-job', '1', 'queued', 'retrying', '{}', 'attempt 3 failed (will retry): R2 timeout', ?)",
    )
      .bind(id, Date.now())
      .run();
    await deliver("edge-inference-dlq", { kind: "job", id });
    const job = (await (await api(`/api/v1/jobs/${id}`)).json()) as Job;
    expect(job.status).toBe("failed");
    expect(job.error).toMatch(/last error: attempt 3 failed: R2 timeout/);
  });
});

describe("prediction log and retention", () => {
  it("records sync and async predictions (top label, scores, no input text) and pages with a cursor", async () => {
    const since = new Date(Date.now() - 1000).toISOString();
    const texts = ["URGENT call now to claim your prize", "see you at home", "are we still on for tonight"];
    for (const text of texts)
      expect(
        (await postJson("/api/v1/predict", { model: "spam", text, request_id: text.length })).status,
      ).toBe(200);
    const seen = await waitFor(async () => {
      const items: Record<string, unknown>[] = [];
      let cursor: string | null = "";
      while (cursor !== null) {
        const page = (await (
          await api(
            `/api/v1/predictions?model=spam&since=${since}&limit=2${cursor ? `&cursor=${cursor}` : ""}`,
          )
        ).json()) as { items: Record<string, unknown>[]; next_cursor: string | null };
        expect(page.items.length).toBeLessThanOrEqual(2);
        items.push(...page.items);
        cursor = page.next_cursor;
      }
      const sync = items.filter((i) => i.kind === "sync" && texts.some((t) => t.length === i.request_id));
      return sync.length === texts.length ? sync : undefined;
    });
    expect(seen[0]).toMatchObject({
      kind: "sync",
      caller: "edge-inference-tests",
      model: { id: "spam", version: shipped.spam },
      top_label: "spam",
      item: 0,
    });
    expect(Object.keys(seen[0]?.scores as object)).toEqual(["ham", "spam"]);
    expect(seen[0]).not.toHaveProperty("input");
    const bad = await api("/api/v1/predictions?limit=0");
    expect(bad.status).toBe(400);
  });

  it("a batch predict logs one row per text, in order (rows are written several per INSERT)", async () => {
    const requestId = `log-batch-${crypto.randomUUID()}`;
    const texts = Array.from({ length: 20 }, (_, i) => `message number ${i} for the log`);
    const res = await postJson("/api/v1/predict", { model: "spam", texts, request_id: requestId });
    expect(res.status).toBe(200);
    const items = await waitFor(async () => {
      const rows = await env.DB.prepare("SELECT item FROM prediction_log WHERE request_id = ? ORDER BY item")
        .bind(JSON.stringify(requestId))
        .all<{ item: number }>();
      return rows.results.length === texts.length ? rows.results.map((r) => r.item) : undefined;
    });
    expect(items).toEqual(texts.map((_, i) => i));
  });

  it("with PREDICTION_LOG_INPUTS on, a batch of large inputs is logged whole, over several INSERTs", async () => {
    // 40 texts of 60,000 characters: ~2.4 MB of row JSON, more than one statement's share.
    const requestId = `log-inputs-${crypto.randomUUID()}`;
    const texts = Array.from({ length: 40 }, (_, i) =>
      `${i} ${"é see you at home ".repeat(4_000)}`.slice(0, 60_000),
    );
    const res = await postJson(
      "/api/v1/predict",
      { model: "spam", texts, request_id: requestId },
      {},
      {
        vars: {
          PREDICTION_LOG_INPUTS: "on",
          MAX_BODY_BYTES: String(4 * 1024 * 1024),
          MAX_REQUEST_TEXT_BYTES: String(4 * 1024 * 1024),
        },
      },
    );
    expect(res.status).toBe(200);
    // The rows may ride on a batch another request opened: wait for all of them.
    const rows = await waitFor(async () => {
      const found = await env.DB.prepare(
        "SELECT item, input, top_label FROM prediction_log WHERE request_id = ? ORDER BY item",
      )
        .bind(JSON.stringify(requestId))
        .all<{ item: number; input: string; top_label: string }>();
      return found.results.length === texts.length ? found : undefined;
    });
    expect(rows.results.map((r) => r.item)).toEqual(texts.map((_, i) => i));
    expect(rows.results.map((r) => r.input)).toEqual(texts);
    expect(new Set(rows.results.map((r) => r.top_label))).toEqual(new Set(["ham"]));
  });

  it("the scheduled purge removes predictions, inputs, log rows and finished jobs older than RETENTION_DAYS", async () => {
    const make = async () => {
      const res = await postJson("/api/v1/predictions", { model: "spam", text: "purge me" });
      const { id } = (await res.json()) as { id: string };
      await waitForStatus(`/api/v1/predictions/${id}`, ["done"]);
      return id;
    };
    const old = await make();
    const fresh = await make();
    const job = crypto.randomUUID();
    await env.DB.batch([
      env.DB.prepare("UPDATE predictions SET created_at = ? WHERE id = ?").bind(Date.now() - 31 * DAY, old),
      env.DB.prepare("UPDATE prediction_log SET at = ? WHERE prediction_id = ?").bind(
        Date.now() - 31 * DAY,
        old,
      ),
      env.DB.prepare(
        "INSERT INTO jobs (id, model_id, version, status, stage, spec, created_at) VALUES (?, 'purged', '1', 'succeeded', 'done', '{}', ?)",
      ).bind(job, Date.now() - 40 * DAY),
    ]);
    await worker.scheduled(createScheduledController({ cron: "17 * * * *" }), env);
    expect(await predictionRow(old)).toBeNull();
    expect(await env.MODELS.head(`inputs/${old}`)).toBeNull();
    expect(
      await env.DB.prepare("SELECT 1 FROM prediction_log WHERE prediction_id = ?").bind(old).first(),
    ).toBeNull();
    expect((await api(`/api/v1/jobs/${job}`)).status).toBe(404);
    expect(await predictionRow(fresh)).toMatchObject({ status: "done" });
    expect(await env.MODELS.head(`inputs/${fresh}`)).not.toBeNull();
  });
});
