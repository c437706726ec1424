/**
 * Real answers of every documented route validate against the response schemas of the served
 * `/api/v1/openapi.json` (Ajv, JSON Schema 2020-12: Node only, workerd forbids compiled code), and
 * every documented success status of every operation is met at least once — so the document cannot
 * drift from what the handlers send. Against the deployable bundle in workerd, over a real socket.
 */

import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { encode } from "fast-png";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { putShippedModels } from "../../scripts/local-r2";
import { build, root, startWorker } from "../../scripts/local-worker";

interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}

let worker: { mf: Miniflare; url: string };
let token: () => Promise<string>;
let doc: Document;
const ajv = new Ajv2020({ strict: false, allErrors: true });
/** `METHOD /template STATUS` of every answer checked. */
const seen = new Set<string>();

beforeAll(async () => {
  const bundle = await build(path.join(root, "dist", "test-node-answers"));
  // A webhook destination nobody listens on: its delivery is recorded and retried, which is all
  // the delivery routes need to answer.
  worker = await startWorker(bundle, {
    LOG_LEVEL: "error",
    REQUEST_LOG: "off",
    WEBHOOK_DESTINATIONS: JSON.stringify({ "answers-tests": ["http://127.0.0.1:9/"] }),
    WEBHOOK_SECRETS: JSON.stringify({ "answers-tests": `whsec_${Buffer.alloc(32, 3).toString("base64")}` }),
  });
  const bucket = await worker.mf.getR2Bucket("MODELS");
  await putShippedModels(bucket);
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const kid = `answers-tests/${crypto.randomUUID()}`;
  await bucket.put(`asap-keys/${kid}`, await exportSPKI(publicKey));
  token = () =>
    new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid })
      .setIssuer("answers-tests")
      .setSubject("answers-tests")
      .setAudience("edge-inference")
      .setIssuedAt()
      .setExpirationTime("60s")
      .setJti(crypto.randomUUID())
      .sign(privateKey);
  doc = JSON.parse((await send("GET", "/api/v1/openapi.json")).text) as Document;
  ajv.addSchema(doc, "openapi");
}, 300_000);

afterAll(async () => {
  await worker?.mf.dispose();
});

interface Sent {
  status: number;
  text: string;
  headers: http.IncomingHttpHeaders;
}

/** `method path` over node:http (which allows a body on GET), with a fresh token unless `cookie`. */
async function send(
  method: string,
  urlPath: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Sent> {
  const url = new URL(urlPath, worker.url);
  const all: Record<string, string> = { ...headers };
  if (!all.cookie) all.authorization = `Bearer ${await token()}`;
  if (body !== undefined) {
    all["content-type"] ??= "application/json";
    all["content-length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      // A connection per request: a kept-alive socket the server closed meanwhile would hang up.
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers: all,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString("utf8"),
            headers: res.headers,
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const pointer = (s: string) => s.replaceAll("~", "~0").replaceAll("/", "~1");

/**
 * Sends the request and checks its answer against the document's operation `template`: a
 * documented success status, and the body valid against that status's schema for its media type.
 */
async function answer(
  method: string,
  template: string,
  urlPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Sent & { json: unknown }> {
  const raw =
    body === undefined || typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const res = await send(method, urlPath, raw as string | Buffer | undefined, headers);
  const operation = doc.paths[template]?.[method.toLowerCase()];
  expect(operation, `${method} ${template} is documented`).toBeDefined();
  const documented = operation?.responses[String(res.status)];
  expect(documented, `${method} ${urlPath} answered ${res.status} ${res.text.slice(0, 300)}`).toBeDefined();
  expect(res.status, `${method} ${urlPath}: ${res.text.slice(0, 300)}`).toBeLessThan(400);
  const mediaType = String(res.headers["content-type"] ?? "").split(";")[0] ?? "";
  let json: unknown;
  if (documented?.content) {
    expect(Object.keys(documented.content), `${method} ${urlPath} media type`).toContain(mediaType);
    if (mediaType === "application/json") {
      json = JSON.parse(res.text);
      const ref = `openapi#/paths/${pointer(template)}/${method.toLowerCase()}/responses/${res.status}/content/${pointer(mediaType)}/schema`;
      const validate = ajv.getSchema(ref);
      expect(validate, ref).toBeDefined();
      const valid = validate?.(json);
      expect(validate?.errors ?? [], `${method} ${urlPath} ${res.status}: ${res.text.slice(0, 500)}`).toEqual(
        [],
      );
      expect(valid).toBe(true);
    }
  } else {
    expect(res.text, `${method} ${urlPath}: no body documented`).toBe("");
  }
  seen.add(`${method} ${template} ${res.status}`);
  return { ...res, json };
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sample = (i: number) => ({
  CompanyId: "int:a055470",
  BankEntryDate: `2024-01-0${(i % 9) + 1}`,
  BankEntryText: i % 2 ? "str:rent" : "str:fuel",
  BankEntryAmount: String(100 + i),
  AccountName: i % 2 ? "Rent" : "Fuel",
  AccountNumber: i % 2 ? "1000" : "2000",
  AccountTypeName: "Expense",
});

describe("every route's real answers match /api/v1/openapi.json", () => {
  it("health, predict (text, batch, image), statistics, models, OIP, registry admin", async () => {
    await answer("GET", "/api/v1/health", "/api/v1/health");
    await answer("GET", "/api/v1/health/ready", "/api/v1/health/ready");
    await answer("GET", "/api/v1/openapi.json", "/api/v1/openapi.json");
    const text = await answer("POST", "/api/v1/predict", "/api/v1/predict", { text: "you are lovely" });
    expect((text.json as { kind: string }).kind).toBe("text");
    const batch = await answer("POST", "/api/v1/predict", "/api/v1/predict", {
      texts: ["a", "b"],
      model: "spam",
      language: "en",
    });
    expect((batch.json as { kind: string }).kind).toBe("batch");
    const image = await answer("POST", "/api/v1/predict", "/api/v1/predict", { image: imageBase64() });
    expect((image.json as { kind: string }).kind).toBe("image");
    // Explanations (docs/explanations.md): exact (linear) in a batch, leave-one-out (mlp).
    await answer("POST", "/api/v1/predict", "/api/v1/predict", {
      texts: ["a b", "you idiot"],
      explain: true,
    });
    await answer("POST", "/api/v1/predict", "/api/v1/predict", {
      text: "free prize",
      model: "spam-mlp",
      explain: true,
    });
    // Clients people already have (docs/clients.md).
    await answer("POST", "/v1/moderations", "/v1/moderations", { input: ["you are lovely", "hello"] });
    const hf = "/hf/models/{model}/pipeline";
    await answer("POST", `${hf}/text-classification`, "/hf/models/toxicity/pipeline/text-classification", {
      inputs: "you are lovely",
    });
    await answer(
      "POST",
      `${hf}/image-classification`,
      "/hf/models/moderation-image/pipeline/image-classification",
      {
        inputs: imageBase64(),
      },
    );
    await answer("GET", "/getStatus", "/getStatus");
    await answer("GET", "/api/v1/statistics", "/api/v1/statistics");
    await answer("GET", "/api/v1/statistics", "/api/v1/statistics?api=predict");
    await answer("GET", "/api/v1/models", "/api/v1/models");
    await answer("GET", "/api/v1/models/{id}", "/api/v1/models/spam");
    await answer("GET", "/api/v1/models/{id}/drift", "/api/v1/models/spam/drift?hours=2");
    // A baseline drift reference (docs/drift.md): moderation-image has no training profile, so its
    // drift is pending; 1,000 inputs placed two hours ago in its live profile (the DriftShard takes
    // the hour with the batch) make a window an admin can set it from.
    await answer("GET", "/api/v1/models/{id}/drift", "/api/v1/models/moderation-image/drift?hours=1");
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000;
    const shards = await worker.mf.getDurableObjectNamespace("DRIFT_SHARD");
    const shard = shards.get(shards.idFromName("moderation-image:0")) as unknown as {
      record(batch: unknown): Promise<boolean>;
    };
    const bins = (n: number, at: number) => Array.from({ length: n }, (_, i) => (i === at ? 1000 : 0));
    await shard.record({
      id: crypto.randomUUID(),
      profiles: [
        {
          version: "2",
          hour,
          count: 1000,
          signals: { pixels: bins(28, 16), brightness: bins(16, 8), "score:Neutral": bins(20, 19) },
        },
      ],
    });
    await answer(
      "PUT",
      "/api/v1/models/{id}/drift/reference",
      "/api/v1/models/moderation-image/drift/reference",
      {
        from: new Date(hour).toISOString(),
        to: new Date(hour + 3_600_000).toISOString(),
      },
    );
    await answer("GET", "/api/v1/models/{id}/drift", "/api/v1/models/moderation-image/drift?hours=3");

    // Open Inference Protocol v2.
    await answer("GET", "/v2", "/v2");
    await answer("GET", "/v2/health/live", "/v2/health/live");
    await answer("GET", "/v2/health/ready", "/v2/health/ready");
    for (const [template, base] of [
      ["/v2/models/{model}", "/v2/models/spam"],
      ["/v2/models/{model}/versions/{version}", "/v2/models/spam/versions/3"],
    ] as const) {
      await answer("GET", template, base);
      await answer("GET", `${template}/ready`, `${base}/ready`);
      await answer("POST", `${template}/infer`, `${base}/infer`, {
        id: "x",
        inputs: [{ name: "text", shape: [1], datatype: "BYTES", data: ["win cash now"] }],
      });
    }
    await answer("POST", "/v2/repository/index", "/v2/repository/index", {});

    // Registry: upload (201), identical re-upload (200), activate, delete.
    const manifest = JSON.parse(
      await readFile(path.join(root, "models/spam/manifest.json"), "utf8"),
    ) as Record<string, unknown>;
    for (const key of ["id", "version", "sha256", "size_bytes", "created_at"]) delete manifest[key];
    const onnx = await readFile(path.join(root, "models/spam/model.onnx"));
    const multipart = () => {
      const boundary = `----answers${crypto.randomUUID()}`;
      const head = (name: string, extra: string) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${extra}\r\n\r\n`;
      return {
        boundary,
        body: Buffer.concat([
          Buffer.from(`${head("manifest", "")}${JSON.stringify(manifest)}\r\n`),
          Buffer.from(head("model", '; filename="model.onnx"\r\nContent-Type: application/octet-stream')),
          onnx,
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]),
      };
    };
    const template = "/api/v1/models/{id}/versions/{version}";
    for (const expected of [201, 200]) {
      const { boundary, body } = multipart();
      const put = await answer("PUT", template, "/api/v1/models/oa-upload/versions/1?activate=true", body, {
        "content-type": `multipart/form-data; boundary=${boundary}`,
      });
      expect(put.status).toBe(expected);
    }
    await answer("POST", "/api/v1/models/{id}/activate", "/api/v1/models/oa-upload/activate", {
      version: "1",
    });
    // Rollout (docs/rollout.md): a second version, a split, shadows with a comparison, traffic.
    const second = multipart();
    const v2 = await answer("PUT", template, "/api/v1/models/oa-upload/versions/2", second.body, {
      "content-type": `multipart/form-data; boundary=${second.boundary}`,
    });
    expect(v2.status).toBe(201);
    await answer("PUT", "/api/v1/models/{id}/split", "/api/v1/models/oa-upload/split", {
      split: { "1": 90, "2": 10 },
    });
    await answer("GET", "/api/v1/models/{id}", "/api/v1/models/oa-upload");
    await answer("DELETE", "/api/v1/models/{id}/split", "/api/v1/models/oa-upload/split");
    await answer("PUT", "/api/v1/models/{id}/shadow", "/api/v1/models/oa-upload/shadow", {
      shadows: [{ version: "2", sample_rate: 1 }],
    });
    await answer("POST", "/api/v1/predict", "/api/v1/predict", { model: "oa-upload", text: "win cash now" });
    await until(async () => {
      const got = await answer("GET", "/api/v1/models/{id}/shadow", "/api/v1/models/oa-upload/shadow");
      const report = got.json as { shadows: { comparisons: unknown[] }[] };
      return (report.shadows[0]?.comparisons.length ?? 0) > 0 ? got : undefined;
    });
    await until(async () => {
      const got = await answer("GET", "/api/v1/models/{id}/traffic", "/api/v1/models/oa-upload/traffic");
      const traffic = got.json as { versions: { last_24h: { requests: number } }[] };
      return traffic.versions.some((v) => v.last_24h.requests > 0) ? got : undefined;
    });
    await answer("DELETE", "/api/v1/models/{id}/shadow", "/api/v1/models/oa-upload/shadow");
    await answer("DELETE", "/api/v1/models/{id}", "/api/v1/models/oa-upload");
  });

  it("training jobs, async predictions, the prediction log, datasets", async () => {
    const rows = Array.from({ length: 40 }, (_, i) => ({
      text: i % 2 ? `buy cheap pills now ${i}` : `see you at lunch ${i}`,
      label: i % 2 ? "loud" : "calm",
    }));
    const job = await answer("POST", "/api/v1/models", "/api/v1/models", {
      id: "oa-trained",
      task: "binary",
      dataset: { rows },
      text_field: "text",
      label_field: "label",
    });
    expect(job.status).toBe(202);
    const jobUrl = (job.json as { status_url: string }).status_url;
    await until(async () => {
      const got = await answer("GET", "/api/v1/jobs/{id}", jobUrl);
      return ["succeeded", "failed"].includes((got.json as { status: string }).status) ? got : undefined;
    });
    const online = await answer("POST", "/api/v1/models", "/api/v1/models", {
      id: "oa-online",
      task: "online",
    });
    expect(online.status).toBe(201);

    const accepted = await answer("POST", "/api/v1/predictions", "/api/v1/predictions", {
      texts: ["hello", "buy now"],
      request_id: "r-1",
      callback_url: "http://127.0.0.1:9/hook",
    });
    const statusUrl = (accepted.json as { status_url: string }).status_url;
    await until(async () => {
      const got = await answer("GET", "/api/v1/predictions/{id}", statusUrl);
      return (got.json as { status: string }).status === "done" ? got : undefined;
    });
    await answer("GET", "/api/v1/predictions", "/api/v1/predictions?limit=5");
    const predictionId = (accepted.json as { id: string }).id;
    await answer("GET", "/api/v1/webhooks/deliveries", `/api/v1/webhooks/deliveries?subject=${predictionId}`);
    await answer(
      "GET",
      "/api/v1/webhooks/deliveries/{id}",
      `/api/v1/webhooks/deliveries/msg_${predictionId}`,
    );

    // Feedback (docs/rollout.md): 201 recorded, 200 the same again; by prediction id and by X-Request-Id.
    const logged = async (body: Record<string, unknown>) =>
      // A label no model has: 404 while the log row is not written yet, then 400 (nothing recorded).
      until(async () =>
        (await send("POST", "/api/v1/feedback", JSON.stringify({ ...body, labels: ["?"] }))).status === 400
          ? true
          : undefined,
      );
    await logged({ prediction_id: predictionId, index: 0 });
    for (const expected of [201, 200]) {
      const fb = await answer(
        "POST",
        "/api/v1/predictions/{id}/feedback",
        `/api/v1/predictions/${predictionId}/feedback`,
        {
          index: 0,
          labels: ["toxic"],
        },
      );
      expect(fb.status).toBe(expected);
    }
    const sync = await send(
      "POST",
      "/api/v1/predict",
      JSON.stringify({ model: "spam", text: "win cash now" }),
    );
    const requestId = String(sync.headers["x-request-id"]);
    await logged({ request_id: requestId });
    for (const expected of [201, 200]) {
      const fb = await answer("POST", "/api/v1/feedback", "/api/v1/feedback", {
        request_id: requestId,
        labels: ["spam"],
      });
      expect(fb.status).toBe(expected);
    }
    await answer("GET", "/api/v1/models/{id}/quality", "/api/v1/models/spam/quality");

    const csv = "text,label\nhello there,calm\nbuy pills now,loud\n";
    for (const [tmpl, name] of [
      ["/api/v1/datasets/{id}", "oa-set.csv"],
      ["/api/v1/datasets/{folder}/{id}", "oa-folder/oa-set.csv"],
    ] as const) {
      await answer("PUT", tmpl, `/api/v1/datasets/${name}?columns=text,label`, csv, {
        "content-type": "text/csv",
      });
    }
    await answer("GET", "/api/v1/datasets", "/api/v1/datasets");
    await answer("DELETE", "/api/v1/datasets/{id}", "/api/v1/datasets/oa-set.csv");
    await answer("DELETE", "/api/v1/datasets/{folder}/{id}", "/api/v1/datasets/oa-folder/oa-set.csv");
  });

  it("online learning (native and compatibility), registry and image service compatibility, dashboard", async () => {
    const samples = Array.from({ length: 6 }, (_, i) => sample(i));
    await answer("POST", "/api/v1/models/{id}/samples", "/api/v1/models/oa-online/samples", samples);
    const header = Object.keys(samples[0] ?? {}).join(",");
    const csv = [header, ...samples.map((s) => Object.values(s).join(","))].join("\n");
    await answer("POST", "/api/v1/models/{id}/samples", "/api/v1/models/oa-online/samples", csv, {
      "content-type": "text/csv",
    });
    const input = sample(1);
    await answer(
      "POST",
      "/api/v1/models/{id}/predict",
      "/api/v1/models/oa-online/predict?source=learner",
      input,
    );
    await answer(
      "POST",
      "/api/v1/models/{id}/predict",
      "/api/v1/models/oa-online/predict?n_top=2&source=learner",
      input,
    );
    await answer("GET", "/api/v1/models/{id}/metrics", "/api/v1/models/oa-online/metrics");
    await answer("POST", "/api/v1/models/{id}/reset", "/api/v1/models/oa-online/reset");
    await answer("POST", "/sample", "/sample", samples);
    await answer("POST", "/predict", "/predict", input);
    await answer("POST", "/predict", "/predict?n_top=2", input);
    await answer("GET", "/metrics", "/metrics");

    // Registry service.
    const spacy = [
      ...[
        "book a flight to rome",
        "hotel near the beach",
        "train tickets for the holiday",
        "save for vacation",
      ].map((text) => ({ text, cats: { TRAVEL: 1, FOOD: 0 } })),
      ...[
        "pizza with extra cheese",
        "order sushi for dinner",
        "bake bread at home",
        "fresh pasta recipe",
      ].map((text) => ({ text, cats: { TRAVEL: 0, FOOD: 1 } })),
    ];
    await (await worker.mf.getR2Bucket("MODELS")).put("datasets/oa-cats/set.json", JSON.stringify(spacy));
    await answer("GET", "/models", "/models");
    const job = await answer("POST", "/models", "/models", {
      id: "oa-cats",
      s3bucket: "oa-cats",
      training_object: "set.json",
    });
    await until(async () => {
      const got = await answer("GET", "/api/v1/jobs/{id}", (job.json as { status_url: string }).status_url);
      const { status, error } = got.json as { status: string; error: string | null };
      expect(error).toBeNull();
      return status === "succeeded" ? got : undefined;
    });
    await answer("GET", "/prediction", "/prediction", { model_id: "oa-cats", text: "a flight to rome" });
    await answer("POST", "/prediction", "/prediction", { model_id: "oa-cats", text: "pasta", n_top: "1" });
    await answer("DELETE", "/models/{id}", "/models/oa-cats");

    // Image service: text/plain JSON, 202 while pending, 200 when done.
    const submitted = await answer(
      "POST",
      "/inference/image",
      "/inference/image",
      JSON.stringify({ name: "cat", data: imageBase64() }),
      {
        "content-type": "text/plain",
      },
    );
    const uuid = (submitted.json as { uuid: string }).uuid;
    const statuses = new Set<number>();
    await until(async () => {
      const got = await answer("GET", "/predictions/{uuid}", `/predictions/${uuid}`);
      statuses.add(got.status);
      return got.status === 200 ? got : undefined;
    });
    if (!statuses.has(202)) {
      // The queue was faster than the first poll: a prediction that cannot finish stays pending.
      const pending = await answer(
        "POST",
        "/inference/image",
        "/inference/image",
        JSON.stringify({ name: "p", data: imageBase64() }),
        {
          "content-type": "text/plain",
        },
      );
      await answer("GET", "/predictions/{uuid}", `/predictions/${(pending.json as { uuid: string }).uuid}`);
    }

    // Dashboard: login URL → 303 with the cookie → page, assets and data.
    const login = await answer("POST", "/api/v1/dashboard/login", "/api/v1/dashboard/login");
    const loginUrl = new URL((login.json as { url: string }).url);
    const exchanged = await answer("GET", "/dashboard/login", loginUrl.pathname + loginUrl.search);
    const cookie = String(exchanged.headers["set-cookie"]).split(";")[0] ?? "";
    for (const page of ["/dashboard", "/dashboard/app.js", "/dashboard/app.css"]) {
      await answer("GET", page, page, undefined, { cookie });
    }
    for (const data of ["statistics", "models", "online", "backlog", "drift"]) {
      await answer("GET", `/dashboard/api/${data}`, `/dashboard/api/${data}`, undefined, { cookie });
    }
    await answer("GET", "/dashboard/api/models/{id}", "/dashboard/api/models/spam", undefined, { cookie });
    await answer(
      "POST",
      "/dashboard/api/explain",
      "/dashboard/api/explain",
      { text: "you idiot" },
      {
        cookie,
        "content-type": "application/json",
      },
    );
  });

  it("met every documented success status of every operation", () => {
    const documented = Object.entries(doc.paths).flatMap(([template, ops]) =>
      Object.entries(ops).flatMap(([method, op]) =>
        Object.keys(op.responses)
          .filter((status) => Number(status) < 400)
          .map((status) => `${method.toUpperCase()} ${template} ${status}`),
      ),
    );
    expect(documented.filter((d) => !seen.has(d))).toEqual([]);
  });
});

/** A 28×28 grey-bars PNG (any PNG does: the image models resize). */
function imageBase64(): string {
  const data = new Uint8Array(28 * 28).map((_, i) => (i % 28 < 14 ? 0 : 255));
  return Buffer.from(encode({ width: 28, height: 28, data, channels: 1, depth: 8 })).toString("base64");
}
