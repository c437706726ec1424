/**
 * Nothing left stuck, Idempotency-Key, who sees what (issue 14): the cron sweep of stuck async
 * predictions and training jobs over the real queues, the dead-letter final state, idempotent
 * submits against the real D1 unique index, and per-caller visibility under a real ASAP_POLICY with
 * real signed tokens of several issuers.
 */
import { createScheduledController, env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../src/index";
import {
  api,
  createTestKey,
  postJson,
  problem,
  seedShippedModel,
  TEST_ISSUER,
  type TestKey,
  tokenOf,
} from "./helpers";
import { deliver } from "./queue-helpers";
import { labelledRows, waitFor } from "./registry-helpers";

const HOUR = 3_600_000;

type Row = Record<string, unknown>;

const predictionRow = (id: string): Promise<Row | null> =>
  env.DB.prepare("SELECT * FROM predictions WHERE id = ?").bind(id).first();
const jobRow = (id: string): Promise<Row | null> =>
  env.DB.prepare("SELECT * FROM jobs WHERE id = ?").bind(id).first();

/** Runs the Worker's cron handler (retention purge + stuck-work sweeps) once. */
async function runCron(): Promise<void> {
  await worker.scheduled(createScheduledController({ cron: "17 * * * *" }), env);
}

/** Inserts an async prediction row of the spam model as a crashed runtime would leave it. */
async function stuckPrediction(fields: {
  status: "queued" | "running";
  attempts: number;
  ageMs: number;
  sweeps?: number;
  error?: string | null;
}): Promise<string> {
  const id = crypto.randomUUID();
  const at = Date.now() - fields.ageMs;
  await env.MODELS.put(`inputs/${id}`, JSON.stringify({ text: "WINNER claim your free prize now" }));
  await env.DB.prepare(
    `INSERT INTO predictions (id, model_id, model_version, status, input_key, attempts, caller, created_at,
       started_at, updated_at, sweeps, error)
     VALUES (?1, 'spam', ?9, ?2, ?3, ?4, ?5, ?6, ?6, ?6, ?7, ?8)`,
  )
    .bind(
      id,
      fields.status,
      `inputs/${id}`,
      fields.attempts,
      TEST_ISSUER,
      at,
      fields.sweeps ?? 0,
      fields.error ?? null,
      spamVersion,
    )
    .run();
  return id;
}

/** Inserts a training job (tiny inline dataset in R2) as a crashed runtime would leave it. */
async function stuckJob(
  modelId: string,
  fields: { status: "queued" | "running"; attempts: number; ageMs: number; sweeps?: number; error?: string },
): Promise<string> {
  const id = crypto.randomUUID();
  const rows = labelledRows(10);
  await env.MODELS.put(`jobs/${id}/rows.json`, JSON.stringify(rows));
  const spec = {
    id: modelId,
    task: "binary",
    text_field: "text",
    label_field: "label",
    featurizer: { buckets: 1024 },
    activate: true,
    dataset: { inline_rows: rows.length },
  };
  const at = Date.now() - fields.ageMs;
  await env.DB.prepare(
    `INSERT INTO jobs (id, model_id, version, status, stage, spec, attempts, caller, created_at, started_at,
       updated_at, sweeps, error)
     VALUES (?1, ?2, '1', ?3, 'training', ?4, ?5, ?6, ?7, ?7, ?7, ?8, ?9)`,
  )
    .bind(
      id,
      modelId,
      fields.status,
      JSON.stringify(spec),
      fields.attempts,
      TEST_ISSUER,
      at,
      fields.sweeps ?? 0,
      fields.error ?? null,
    )
    .run();
  return id;
}

/** The shipped spam model's version, as seeded. */
let spamVersion = "";

beforeAll(async () => {
  spamVersion = (await seedShippedModel("spam")).version;
});

describe("the stuck-work sweep (cron)", () => {
  it("re-enqueues a prediction left queued with attempts 4 (its message lost); it then completes", async () => {
    const stuck = await stuckPrediction({
      status: "queued",
      attempts: 4,
      ageMs: 2 * HOUR,
      error: "attempt 4 failed (will retry): R2 timeout",
    });
    // Not past the deadline (STUCK_PREDICTION_SECONDS = 900): left alone.
    const recent = await stuckPrediction({ status: "queued", attempts: 1, ageMs: 60_000 });
    await runCron();
    expect(await predictionRow(stuck)).toMatchObject({ sweeps: 1 });
    const done = await waitFor(async () => {
      const row = await predictionRow(stuck);
      return row?.status === "done" ? row : undefined;
    }, 20_000);
    expect(done).toMatchObject({ attempts: 5, sweeps: 1, error: null, error_code: null });
    expect(await predictionRow(recent)).toMatchObject({ status: "queued", sweeps: 0, attempts: 1 });
  });

  it("re-enqueues a prediction left running by a killed consumer", async () => {
    const stuck = await stuckPrediction({ status: "running", attempts: 2, ageMs: HOUR });
    await runCron();
    const done = await waitFor(async () => {
      const row = await predictionRow(stuck);
      return row?.status === "done" ? row : undefined;
    }, 20_000);
    expect(done).toMatchObject({ attempts: 3, sweeps: 1 });
  });

  it("fails a prediction still stuck after STUCK_MAX_REQUEUES re-enqueues: error_code stuck, last error kept", async () => {
    const stuck = await stuckPrediction({
      status: "queued",
      attempts: 4,
      ageMs: 2 * HOUR,
      sweeps: 2,
      error: "attempt 4 failed (will retry): R2 timeout",
    });
    await runCron();
    const res = await api(`/api/v1/predictions/${stuck}`);
    const view = (await res.json()) as Row;
    expect(view).toMatchObject({ status: "failed", error_code: "stuck", attempts: 4 });
    expect(view.error).toMatch(
      /^stuck: no progress for 900 s after 2 re-enqueue\(s\) by the sweep; last error: attempt 4 failed: R2 timeout$/,
    );
    expect(view.finished_at).not.toBeNull();
    // Final: the next sweep leaves it as it is.
    const before = await predictionRow(stuck);
    await runCron();
    expect(await predictionRow(stuck)).toEqual(before);
  });

  it("re-enqueues a training job left running by a killed consumer; it then succeeds", async () => {
    const id = await stuckJob("sweep-job", { status: "running", attempts: 3, ageMs: 2 * HOUR });
    await runCron();
    const job = await waitFor(async () => {
      const res = await api(`/api/v1/jobs/${id}`);
      const body = (await res.json()) as Row;
      return body.status === "succeeded" || body.status === "failed" ? body : undefined;
    }, 30_000);
    expect(job).toMatchObject({ status: "succeeded", attempts: 4, error: null });
    expect(await jobRow(id)).toMatchObject({ sweeps: 1 });
    expect((await api("/api/v1/models/sweep-job")).status).toBe(200);
  });

  it("fails a job still stuck after the re-enqueues and drops its inline rows", async () => {
    const id = await stuckJob("sweep-job-dead", {
      status: "queued",
      attempts: 3,
      ageMs: 2 * HOUR,
      sweeps: 2,
      error: "attempt 3 failed (will retry): D1 overloaded",
    });
    // Young enough for predictions' deadline, not for jobs' (STUCK_JOB_SECONDS = 1800).
    const young = await stuckJob("sweep-job-young", { status: "queued", attempts: 1, ageMs: 20 * 60_000 });
    await runCron();
    const job = (await (await api(`/api/v1/jobs/${id}`)).json()) as Row;
    expect(job).toMatchObject({ status: "failed", stage: "failed", error_code: "stuck" });
    expect(job.error).toMatch(
      /^stuck: no progress for 1800 s after 2 .*last error: attempt 3 failed: D1 overloaded$/,
    );
    expect(await env.MODELS.head(`jobs/${id}/rows.json`)).toBeNull();
    expect(await jobRow(young)).toMatchObject({ status: "queued", sweeps: 0 });
  });
});

describe("the dead-letter consumer records the final state", () => {
  it("fails a prediction whose last delivery died with error_code retries_exhausted; a final row is a no-op", async () => {
    const dead = await stuckPrediction({
      status: "running",
      attempts: 5,
      ageMs: 0,
      error: "attempt 4 failed (will retry): R2 timeout",
    });
    const message = { kind: "prediction", id: dead, key: `inputs/${dead}` };
    expect((await deliver("edge-inference-dlq", message)).explicitAcks).toHaveLength(1);
    const view = (await (await api(`/api/v1/predictions/${dead}`)).json()) as Row;
    expect(view).toMatchObject({ status: "failed", error_code: "retries_exhausted" });
    expect(view.error).toMatch(/gave up after the queue's retries.*last error: attempt 4 failed: R2 timeout/);
    const failed = await predictionRow(dead);
    // Delivered again (the DLQ is at-least-once), and for a finished prediction: nothing changes.
    await deliver("edge-inference-dlq", message, 2);
    expect(await predictionRow(dead)).toEqual(failed);
    const done = await stuckPrediction({ status: "queued", attempts: 0, ageMs: 0 });
    await deliver("edge-inference-predictions", { kind: "prediction", id: done, key: `inputs/${done}` });
    const finished = await predictionRow(done);
    expect(finished).toMatchObject({ status: "done" });
    await deliver("edge-inference-dlq", { kind: "prediction", id: done, key: `inputs/${done}` });
    expect(await predictionRow(done)).toEqual(finished);
  });

  it("fails a job with error_code retries_exhausted; a finished job and its objects are untouched", async () => {
    const id = await stuckJob("dlq-job", {
      status: "queued",
      attempts: 3,
      ageMs: 0,
      error: "attempt 3 failed (will retry): x",
    });
    await deliver("edge-inference-dlq", { kind: "job", id });
    expect(await jobRow(id)).toMatchObject({ status: "failed", error_code: "retries_exhausted" });
    const finished = await stuckJob("dlq-job-done", { status: "queued", attempts: 0, ageMs: 0 });
    await env.DB.prepare("UPDATE jobs SET status = 'succeeded', stage = 'done' WHERE id = ?")
      .bind(finished)
      .run();
    const before = await jobRow(finished);
    await deliver("edge-inference-dlq", { kind: "job", id: finished });
    expect(await jobRow(finished)).toEqual(before);
    expect(await env.MODELS.head(`jobs/${finished}/rows.json`)).not.toBeNull();
  });
});

/** A second real issuer (its own key in local R2), for scoping tests. */
let other: TestKey;

describe("Idempotency-Key", () => {
  beforeAll(async () => {
    other = await createTestKey("edge-inference-other");
  });

  const submit = (body: unknown, key?: string, headers: Record<string, string> = {}) =>
    postJson(
      "/api/v1/predictions",
      body,
      key === undefined ? headers : { "idempotency-key": key, ...headers },
    );

  it("10 concurrent identical submits with one key make one prediction (the unique index decides); all get its id", async () => {
    const key = `concurrent-${crypto.randomUUID()}`;
    const body = { model: "spam", text: "free prize, call now", request_id: key };
    // Straight to the handler (no auth, no metering: dev/test only): through admission the caller's
    // guard lets the first request ahead, and the others find its row with the early lookup; this
    // way all ten pass that lookup together and only the unique (issuer, key) index decides.
    const direct = () =>
      postJson(
        "/api/v1/predictions",
        body,
        { "idempotency-key": key },
        { auth: false, vars: { ASAP_AUTH: "off", METERING: "off" }, wait: false },
      );
    const responses = await Promise.all(Array.from({ length: 10 }, direct));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(202));
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Row[];
    const ids = new Set(bodies.map((b) => b.id));
    expect(ids.size).toBe(1);
    for (const b of bodies) expect(b).toEqual(bodies[0]);
    expect(responses.filter((r) => r.headers.get("idempotent-replayed") === "true")).toHaveLength(9);
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM predictions WHERE request_id = ?")
      .bind(JSON.stringify(key))
      .first<{ n: number }>();
    expect(count?.n).toBe(1);
    // Later, once done, the same request still answers with the same 202 body.
    const id = [...ids][0] as string;
    await waitFor(async () => ((await predictionRow(id))?.status === "done" ? true : undefined));
    const again = await direct();
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual(bodies[0]);
  });

  it("the same key with a different body is 422 idempotency_key_reused; nothing is created", async () => {
    const key = `reused-${crypto.randomUUID()}`;
    expect((await submit({ model: "spam", text: "first" }, key)).status).toBe(202);
    const res = await submit({ model: "spam", text: "second" }, key);
    expect(res.status).toBe(422);
    expect((await problem(res)).code).toBe("idempotency_key_reused");
    const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM predictions WHERE idempotency_key = ?")
      .bind(key)
      .first<{ n: number }>();
    expect(rows?.n).toBe(1);
  });

  it("keys are per issuer: another issuer's same key is independent", async () => {
    const key = `shared-${crypto.randomUUID()}`;
    const body = { model: "spam", text: "hello there" };
    const asOther = async () => submit(body, key, { authorization: `Bearer ${await tokenOf(other)}` });
    const mine = (await (await submit(body, key)).json()) as Row;
    const theirs = await asOther();
    expect(theirs.status).toBe(202);
    expect(theirs.headers.get("idempotent-replayed")).toBeNull();
    const theirId = ((await theirs.json()) as Row).id;
    expect(theirId).not.toBe(mine.id);
    // Each issuer's key keeps answering with its own prediction.
    expect(((await (await submit(body, key)).json()) as Row).id).toBe(mine.id);
    expect(((await (await asOther()).json()) as Row).id).toBe(theirId);
  });

  it("a quoted key (structured-field string, as in the draft) is the same key as the bare one", async () => {
    const key = `quoted-${crypto.randomUUID()}`;
    const body = { model: "spam", text: "quoted or not" };
    const bare = (await (await submit(body, key)).json()) as Row;
    const quoted = await submit(body, `"${key}"`);
    expect(quoted.status).toBe(202);
    expect(((await quoted.json()) as Row).id).toBe(bare.id);
  });

  for (const [name, key] of [
    ["empty", ""],
    ["256 characters", "k".repeat(256)],
    ["a space", "two words"],
    ["two keys", "a, b"],
    ["a broken quoted string", '"unterminated'],
  ] as const) {
    it(`an invalid key (${name}) is 400 invalid_idempotency_key`, async () => {
      const res = await submit({ model: "spam", text: "x" }, key);
      expect(res.status).toBe(400);
      expect((await problem(res)).code).toBe("invalid_idempotency_key");
    });
  }

  it("training jobs: concurrent creates with one key make one job; a retry after it finished replays it", async () => {
    const key = `job-${crypto.randomUUID()}`;
    const rows = labelledRows(10);
    const body = {
      id: "idem-job",
      task: "binary",
      text_field: "text",
      label_field: "label",
      featurizer: { buckets: 1024 },
      dataset: { rows },
    };
    const create = () => postJson("/api/v1/models", body, { "idempotency-key": key });
    const responses = await Promise.all(Array.from({ length: 5 }, create));
    expect(responses.map((r) => r.status)).toEqual(Array(5).fill(202));
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as { job_id: string }[];
    expect(new Set(bodies.map((b) => b.job_id)).size).toBe(1);
    const jobId = bodies[0]?.job_id as string;
    await waitFor(async () => ((await jobRow(jobId))?.status === "succeeded" ? true : undefined), 30_000);
    // The model exists now; the retried request is still answered with its job, not 409 model_exists.
    const retried = await create();
    expect(retried.status).toBe(202);
    expect(await retried.json()).toEqual(bodies[0]);
    const changed = await postJson(
      "/api/v1/models",
      { ...body, force_update: true },
      { "idempotency-key": key },
    );
    expect(changed.status).toBe(422);
    expect((await problem(changed)).code).toBe("idempotency_key_reused");
    const jobs = await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs WHERE model_id = 'idem-job'").first<{
      n: number;
    }>();
    expect(jobs?.n).toBe(1);
  });
});

describe("callers see only their own jobs, predictions and log rows, unless admin", () => {
  const ADMIN = "scope-admin";
  const ALICE = "scope-alice";
  const BOB = "scope-bob";
  /** May call every GET route, but is no admin: it changes nothing. */
  const READER = "scope-reader";
  const user = ["predict", "predictions", "prediction_log", "jobs", "models"];
  const policy = JSON.stringify({
    issuers: { [ADMIN]: ["*"], [ALICE]: user, [BOB]: user, [READER]: ["*:GET"] },
    default: [],
  });
  const keys: Record<string, TestKey> = {};

  beforeAll(async () => {
    for (const issuer of [ADMIN, ALICE, BOB, READER]) keys[issuer] = await createTestKey(issuer);
  });

  /** Calls the Worker as `issuer` under `policy`. */
  async function as(issuer: string, path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${await tokenOf(keys[issuer] as TestKey)}`);
    if (init.body !== undefined) headers.set("content-type", "application/json");
    return api(path, { ...init, headers }, { vars: { ASAP_POLICY: policy }, wait: false });
  }

  it("the prediction log shows a caller its own rows; an admin sees everyone's", async () => {
    const tag = crypto.randomUUID();
    for (const issuer of [ALICE, BOB]) {
      const res = await as(issuer, "/api/v1/predict", {
        method: "POST",
        body: JSON.stringify({ model: "spam", text: "see you soon", request_id: `${tag}-${issuer}` }),
      });
      expect(res.status).toBe(200);
    }
    const callersSeenBy = async (issuer: string): Promise<string[]> => {
      const res = await as(issuer, "/api/v1/predictions?model=spam&limit=1000");
      expect(res.status).toBe(200);
      const { items } = (await res.json()) as { items: { caller: string; request_id: unknown }[] };
      return items
        .filter((i) => typeof i.request_id === "string" && i.request_id.startsWith(tag))
        .map((i) => i.caller)
        .sort();
    };
    await waitFor(async () => ((await callersSeenBy(ADMIN)).length === 2 ? true : undefined));
    expect(await callersSeenBy(ADMIN)).toEqual([ALICE, BOB]);
    expect(await callersSeenBy(ALICE)).toEqual([ALICE]);
    expect(await callersSeenBy(BOB)).toEqual([BOB]);
    expect(await callersSeenBy(READER)).toEqual([]);
  });

  it("an async prediction is its submitter's and admins'; a job is its creator's and admins'", async () => {
    const submitted = await as(ALICE, "/api/v1/predictions", {
      method: "POST",
      body: JSON.stringify({ model: "spam", text: "mine only" }),
    });
    expect(submitted.status).toBe(202);
    const { status_url } = (await submitted.json()) as { status_url: string };
    expect((await as(ALICE, status_url)).status).toBe(200);
    expect((await as(ADMIN, status_url)).status).toBe(200);
    const hidden = await as(BOB, status_url);
    expect(hidden.status).toBe(404);
    expect((await problem(hidden)).code).toBe("prediction_not_found");

    const jobId = await stuckJob("scope-job", { status: "queued", attempts: 0, ageMs: 0 });
    await env.DB.prepare("UPDATE jobs SET caller = ?, status = 'failed' WHERE id = ?")
      .bind(ADMIN, jobId)
      .run();
    expect((await as(ADMIN, `/api/v1/jobs/${jobId}`)).status).toBe(200);
    const job = await as(ALICE, `/api/v1/jobs/${jobId}`);
    expect(job.status).toBe(404);
    expect((await problem(job)).code).toBe("job_not_found");
    // The model's job list follows the same rule.
    const jobsOf = async (issuer: string) =>
      ((await (await as(issuer, "/api/v1/models/scope-job")).json()) as { jobs?: { id: string }[] }).jobs;
    await env.DB.prepare(
      "INSERT OR IGNORE INTO models (id, active_version, created_at, updated_at) VALUES ('scope-job', NULL, 0, 0)",
    ).run();
    expect((await jobsOf(ADMIN))?.map((j) => j.id)).toEqual([jobId]);
    expect(await jobsOf(ALICE)).toEqual([]);
  });
});
