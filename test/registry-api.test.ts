/**
 * Registry, job and async-prediction API edges that need no model run: admin-only mutations under
 * ASAP_POLICY, request validation (400/404/405/413/415/422), and the queue retry schedule.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_IMAGE_BYTES } from "../src/image/decode";
import { retryDelaySeconds } from "../src/queue/index";
import { api, postJson, problem, seedShippedModel } from "./helpers";

const JOB = { id: "api-model", task: "binary", text_field: "text", label_field: "label" };

beforeAll(async () => {
  await seedShippedModel("spam");
});

describe("mutating registry routes are admin-only (ASAP_POLICY api `models_admin`)", () => {
  /** Calls the Worker with `ASAP_POLICY` set to `policy` (every other var and binding as configured). */
  async function asPolicy(policy: unknown, path: string, init: RequestInit = {}): Promise<Response> {
    return api(path, init, { vars: { ASAP_POLICY: JSON.stringify(policy) }, wait: false });
  }
  const reader = {
    issuers: { "edge-inference-tests": ["models:GET", "jobs", "predict", "predictions"] },
    default: [],
  };
  const admin = { issuers: { "edge-inference-tests": ["models_admin"] }, default: [] };

  it("a reader may list and read models but not upload, train, activate or delete (403)", async () => {
    expect((await asPolicy(reader, "/api/v1/models")).status).toBe(200);
    expect((await asPolicy(reader, "/api/v1/models/spam")).status).toBe(200);
    const json = { method: "POST", headers: { "content-type": "application/json" } };
    for (const [path, init] of [
      ["/api/v1/models", { ...json, body: JSON.stringify({ ...JOB, dataset: { rows: [{}] } }) }],
      ["/api/v1/models/spam/activate", { ...json, body: '{"version":"1"}' }],
      ["/api/v1/models/spam/versions/9", { method: "PUT", body: new FormData() }],
      ["/api/v1/models/spam", { method: "DELETE" }],
    ] as const) {
      const res = await asPolicy(reader, path, init);
      expect(res.status, `${init.method} ${path}`).toBe(403);
      expect((await problem(res)).code).toBe("forbidden");
    }
    expect((await api("/api/v1/models/spam")).status).toBe(200);
  });

  it("an issuer granted models_admin reaches the handlers", async () => {
    const res = await asPolicy(admin, "/api/v1/models/spam/activate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"version":"9"}',
    });
    expect(res.status).toBe(404);
    expect((await problem(res)).code).toBe("model_version_not_found");
    // ... but not reads, which are the `models` API.
    expect((await asPolicy(admin, "/api/v1/models")).status).toBe(403);
  });
});

describe("training job requests are validated before anything is queued", () => {
  const cases: [string, unknown, number, string, RegExp?][] = [
    ["a missing dataset", { ...JOB }, 400, "invalid_request", /dataset/],
    [
      "empty inline rows",
      { ...JOB, dataset: { rows: [] } },
      400,
      "invalid_request",
      /rows must not be empty/,
    ],
    [
      "more than 5,000 inline rows",
      { ...JOB, dataset: { rows: Array.from({ length: 5001 }, () => ({ text: "a", label: "b" })) } },
      413,
      "dataset_too_large",
    ],
    [
      "an R2 key outside datasets/",
      { ...JOB, dataset: { r2_key: "models/spam/1/model.onnx" } },
      400,
      "invalid_request",
    ],
    [
      "a path-escaping R2 key",
      { ...JOB, dataset: { r2_key: "datasets/../asap-keys/x" } },
      400,
      "invalid_request",
    ],
    [
      "an R2 dataset that does not exist",
      { ...JOB, dataset: { r2_key: "datasets/none.csv" } },
      422,
      "invalid_dataset",
    ],
    [
      "multilabel without label_fields",
      { ...JOB, task: "multilabel", dataset: { rows: [{ text: "a" }] } },
      400,
      "invalid_request",
      /label_fields/,
    ],
    [
      "binary with three labels",
      { ...JOB, labels: ["a", "b", "c"], dataset: { rows: [{}] } },
      400,
      "invalid_request",
    ],
    [
      "a model too large for a Worker's memory",
      {
        ...JOB,
        task: "multilabel",
        label_field: undefined,
        label_fields: ["a", "b", "c", "d"],
        featurizer: { buckets: 2 ** 20 },
        dataset: { rows: [{}] },
      },
      400,
      "invalid_request",
      // The error names the value that fits (no L-BFGS memory or Adagrad fits 2^20 × 4 columns).
      /training budget of 96 MiB; these fit: featurizer\.buckets: 65536 \(or less\); or leave featurizer\.buckets out/,
    ],
    [
      "buckets that are not a power of two",
      { ...JOB, featurizer: { buckets: 1000 }, dataset: { rows: [{}] } },
      400,
      "invalid_request",
    ],
    ["an unknown field", { ...JOB, dataset: { rows: [{}] }, epochs: 3 }, 400, "invalid_request"],
    [
      "an existing model without force_update",
      { ...JOB, id: "spam", dataset: { rows: [{}] } },
      409,
      "model_exists",
    ],
  ];
  for (const [name, body, status, code, detail] of cases) {
    it(name, async () => {
      const res = await postJson("/api/v1/models", body);
      expect(res.status).toBe(status);
      const p = await problem(res);
      expect(p.code).toBe(code);
      if (detail) expect(p.detail).toMatch(detail);
      expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM jobs").first("n")).toBe(0);
    });
  }
});

describe("async prediction requests", () => {
  it("are validated like /predict, against the model's kind, and nothing is stored on refusal", async () => {
    const cases: [unknown, number, string][] = [
      [{ model: "spam" }, 400, "invalid_request"],
      [{ model: "spam", text: "   " }, 400, "invalid_request"],
      [{ model: "spam", text: "a", texts: ["b"] }, 400, "invalid_request"],
      [{ model: "spam", texts: Array.from({ length: 65 }, () => "x") }, 400, "batch_too_large"],
      [{ model: "nope", text: "a" }, 404, "model_not_found"],
      [{ model: "spam", version: "7", text: "a" }, 404, "model_version_not_found"],
      [{ model: "spam", image: "iVBORw0KGgo=" }, 400, "invalid_image"],
      [{ model: "spam", image: "a", text: "b" }, 400, "invalid_request"],
      [{ model: "spam", image: btoa("x".repeat(MAX_IMAGE_BYTES + 1)) }, 413, "image_too_large"],
    ];
    for (const [body, status, code] of cases) {
      const res = await postJson("/api/v1/predictions", body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      expect((await problem(res)).code).toBe(code);
    }
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM predictions").first("n")).toBe(0);
    expect((await env.MODELS.list({ prefix: "inputs/" })).objects).toEqual([]);
  });

  it("unknown predictions and jobs are 404; the log's query is validated", async () => {
    const id = crypto.randomUUID();
    expect((await problem(await api(`/api/v1/predictions/${id}`))).code).toBe("prediction_not_found");
    expect((await api("/api/v1/predictions/not-a-uuid")).status).toBe(404);
    expect((await problem(await api(`/api/v1/jobs/${id}`))).code).toBe("job_not_found");
    for (const query of ["limit=0", "limit=1001", "since=yesterday", "cursor=abc", "colour=red"]) {
      expect((await api(`/api/v1/predictions?${query}`)).status, query).toBe(400);
    }
    const empty = await api("/api/v1/predictions?model=spam&limit=5");
    expect(await empty.json()).toEqual({ items: [], next_cursor: null });
  });

  it("other methods on registry paths are 405 with Allow", async () => {
    const res = await api("/api/v1/models", { method: "PUT" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD, POST");
  });
});

describe("queue retries", () => {
  it("back off exponentially from 5 s (predictions) and 30 s (jobs), at most 10 minutes", () => {
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds("prediction", n))).toEqual([5, 10, 20, 40]);
    expect([1, 2, 3].map((n) => retryDelaySeconds("job", n))).toEqual([30, 60, 120]);
    expect(retryDelaySeconds("prediction", 30)).toBe(600);
  });
});
