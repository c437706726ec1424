/**
 * Protocol adapters over one classification core: strict input on the native API, and the Open
 * Inference Protocol v2 (KServe V2 REST). Real shipped models, real R2/D1, ORT in workerd, real
 * signed tokens. ORT-using protocol cases live in this one file (each ORT file costs ~15 s).
 */
import { env } from "cloudflare:test";
import { encode as encodePng } from "fast-png";
import { beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES } from "../src/errors";
import { openApiPath } from "../src/openapi";
import { ROUTES } from "../src/router";
import { api, postJson, problem, seedShippedModel } from "./helpers";
import { waitFor, waitForStatus } from "./registry-helpers";

const versions: Record<string, string> = {};

beforeAll(async () => {
  for (const id of ["toxicity", "toxicity-mlp", "sentiment", "spam", "digits", "moderation-image"]) {
    versions[id] = (await seedShippedModel(id)).version;
  }
});

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}
interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: Tensor[];
}

/** The native API's scores for `texts` with `model`, in label order. */
async function nativeScores(model: string, texts: string[]): Promise<number[][]> {
  const res = await postJson("/api/v1/predict", { model, texts });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { results: { sentiment: { sentiment_score: number }[] }[] };
  return body.results.map((r) => r.sentiment.map((s) => s.sentiment_score));
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** A 28×28 gray image: a bright vertical bar on black (digit-like). */
function barPixels(): Uint8Array {
  const data = new Uint8Array(28 * 28);
  for (let y = 4; y < 24; y++) for (let x = 12; x < 16; x++) data[y * 28 + x] = 255;
  return data;
}

describe("strict input", () => {
  it("an unknown field is a 400 naming it, never a default-model answer (model_id)", async () => {
    const res = await postJson("/api/v1/predict", { model_id: "spam", text: "I want to save for vacation!" });
    expect(res.status).toBe(400);
    const body = await problem(res);
    expect(body.code).toBe("invalid_request");
    expect(body.errors).toEqual([{ path: "model_id", message: "unknown field" }]);
  });

  it("lists every unknown field, and the seed-000 body stays valid", async () => {
    const res = await postJson("/api/v1/predict", { text: "hi", modle: "spam", n_best: 2 });
    expect((await problem(res)).errors).toEqual([
      { path: "modle", message: "unknown field" },
      { path: "n_best", message: "unknown field" },
    ]);
    const seed = await postJson("/api/v1/predict", {
      request_id: 1,
      text: "hello",
      network: "mlp",
      language: "en-US",
      encoding_type: "UTF-8",
    });
    expect(seed.status).toBe(200);
  });

  it("text answers carry `predictions` (best first) beside the seed's `sentiment`", async () => {
    const res = await postJson("/api/v1/predict", { model: "spam", text: "WIN a FREE prize now!!! call" });
    const body = (await res.json()) as {
      sentiment: { sentiment_type: string; sentiment_score: number }[];
      predictions: { label: string; score: number }[];
    };
    expect(body.predictions).toHaveLength(body.sentiment.length);
    const best = [...body.sentiment].sort((a, b) => b.sentiment_score - a.sentiment_score);
    expect(body.predictions).toEqual(
      best.map((s) => ({ label: s.sentiment_type, score: s.sentiment_score })),
    );
  });
});

describe("Open Inference Protocol v2", () => {
  it("server metadata, liveness and readiness", async () => {
    const meta = await api("/v2");
    expect(meta.status).toBe(200);
    expect(await meta.json()).toEqual({
      name: "edge-inference",
      version: expect.any(String),
      extensions: ["model_repository", "binary_tensor_data"],
    });
    const live = await api("/v2/health/live", {}, { auth: false });
    expect(live.status).toBe(200);
    expect(await live.text()).toBe("");
    expect((await api("/v2/health/ready", {}, { auth: false })).status).toBe(200);
  });

  it("model metadata: platform, versions, inputs and outputs with datatype and shape", async () => {
    const res = await api("/v2/models/toxicity");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      name: "toxicity",
      versions: [versions.toxicity],
      platform: "onnx_onnxv1",
      inputs: [{ name: "text", datatype: "BYTES", shape: [-1] }],
      outputs: [
        { name: "scores", datatype: "FP32", shape: [-1, 6] },
        { name: "labels", datatype: "BYTES", shape: [6] },
      ],
    });
    const v = await api(`/v2/models/toxicity/versions/${versions.toxicity}`);
    expect(v.status).toBe(200);
    expect((await api(`/v2/models/toxicity/versions/${versions.toxicity}/ready`)).status).toBe(200);
    expect((await api("/v2/models/toxicity/ready")).status).toBe(200);
  });

  it("builds a valid infer request from each model's metadata alone and matches the native API", async () => {
    const index = (await (await postJson("/v2/repository/index", {})).json()) as {
      name: string;
      state: string;
    }[];
    const textModels = ["toxicity", "sentiment", "spam"];
    for (const name of textModels)
      expect(index).toContainEqual(expect.objectContaining({ name, state: "READY" }));
    const texts = ["you are a wonderful person", "free entry: win a prize now, text WIN to 80086"];
    for (const name of textModels) {
      const meta = (await (await api(`/v2/models/${name}`)).json()) as {
        inputs: { name: string; datatype: string; shape: number[] }[];
        outputs: { name: string; datatype: string; shape: number[] }[];
      };
      const input = meta.inputs[0];
      if (!input) throw new Error("no input in metadata");
      // Only what the metadata says: one BYTES input whose -1 dimension is the batch.
      const shape = input.shape.map((d) => (d === -1 ? texts.length : d));
      const res = await postJson(`/v2/models/${name}/infer`, {
        inputs: [{ name: input.name, datatype: input.datatype, shape, data: texts }],
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as InferResponse;
      expect(body.model_name).toBe(name);
      expect(body.model_version).toBe(versions[name]);
      const scores = body.outputs.find((o) => o.name === "scores");
      const labels = body.outputs.find((o) => o.name === "labels");
      const k = meta.outputs.find((o) => o.name === "scores")?.shape[1] ?? -1;
      expect(scores?.shape).toEqual([texts.length, k]);
      expect(scores?.datatype).toBe("FP32");
      expect(labels?.shape).toEqual([k]);
      const native = await nativeScores(name, texts);
      const flat = scores?.data as number[];
      native.forEach((row, i) => {
        row.forEach((s, j) => {
          expect(flat[i * k + j]).toBeCloseTo(s, 6);
        });
      });
    }
  });

  it("the spec's request shape: id echoed, nested data of shape [n, 1], requested outputs only", async () => {
    const res = await postJson(`/v2/models/sentiment/versions/${versions.sentiment}/infer`, {
      id: "42",
      parameters: { priority: 1 },
      inputs: [
        {
          name: "text",
          datatype: "BYTES",
          shape: [2, 1],
          data: [["what a great day"], ["awful, just awful"]],
        },
      ],
      outputs: [{ name: "scores" }],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as InferResponse;
    expect(body.id).toBe("42");
    expect(body.outputs.map((o) => o.name)).toEqual(["scores"]);
    expect(body.outputs[0]?.shape).toEqual([2, 2]);
    // `"outputs": []` names none: every output, as Triton answers it.
    const all = await postJson("/v2/models/sentiment/infer", {
      inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["fine"] }],
      outputs: [],
    });
    expect(((await all.json()) as InferResponse).outputs.map((o) => o.name)).toEqual(["scores", "labels"]);
  });

  it("image models: base64 files (BYTES) and raw pixels (UINT8 NHWC) give the native API's scores", async () => {
    const pixels = barPixels();
    const png = base64(encodePng({ width: 28, height: 28, data: pixels, channels: 1, depth: 8 }));
    const native = await postJson("/api/v1/predict", { model: "digits", image: png });
    const nativeBody = (await native.json()) as { predictions: { label: string; score: number }[] };
    const meta = (await (await api("/v2/models/digits")).json()) as {
      inputs: { name: string; datatype: string }[];
    };
    expect(meta.inputs).toEqual([{ name: "image", datatype: "BYTES", shape: [-1] }]);
    const viaBytes = await postJson("/v2/models/digits/infer", {
      inputs: [{ name: "image", datatype: "BYTES", shape: [1], data: [png] }],
    });
    const viaPixels = await postJson("/v2/models/digits/infer", {
      inputs: [{ name: "image", datatype: "UINT8", shape: [1, 28, 28, 1], data: [...pixels] }],
    });
    for (const res of [viaBytes, viaPixels]) {
      expect(res.status).toBe(200);
      const body = (await res.json()) as InferResponse;
      const labels = body.outputs.find((o) => o.name === "labels")?.data as string[];
      const scores = body.outputs.find((o) => o.name === "scores")?.data as number[];
      for (const p of nativeBody.predictions) expect(scores[labels.indexOf(p.label)]).toBeCloseTo(p.score, 6);
    }
  });

  it("errors are {error} with 400/401/404, and nothing is scored by a model the request did not name", async () => {
    const cases: [string, unknown, number][] = [
      [
        "/v2/models/no-such-model/infer",
        { inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["x"] }] },
        404,
      ],
      [
        "/v2/models/toxicity/versions/999/infer",
        { inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["x"] }] },
        404,
      ],
      [
        "/v2/models/toxicity/infer",
        { inputs: [{ name: "text", datatype: "FP32", shape: [1], data: [1] }] },
        400,
      ],
      [
        "/v2/models/toxicity/infer",
        { inputs: [{ name: "text", datatype: "BYTES", shape: [3], data: ["a", "b"] }] },
        400,
      ],
      [
        "/v2/models/toxicity/infer",
        { inputs: [{ name: "words", datatype: "BYTES", shape: [1], data: ["a"] }] },
        400,
      ],
      [
        "/v2/models/toxicity/infer",
        { inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["a"] }], model: "x" },
        400,
      ],
      [
        "/v2/models/toxicity/infer",
        {
          inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["a"] }],
          outputs: [{ name: "probs" }],
        },
        400,
      ],
      [
        "/v2/models/digits/infer",
        { inputs: [{ name: "image", datatype: "BYTES", shape: [1], data: ["not an image"] }] },
        400,
      ],
      [
        "/v2/models/digits/infer",
        { inputs: [{ name: "image", datatype: "UINT8", shape: [1, 2, 2, 1], data: [1, 2, 3, 300] }] },
        400,
      ],
    ];
    for (const [path, body, status] of cases) {
      const res = await postJson(path, body);
      expect(res.status, path).toBe(status);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      const err = (await res.json()) as { error: string };
      expect(typeof err.error).toBe("string");
    }
    const unauthenticated = await postJson("/v2/models/toxicity/infer", {}, {}, { auth: false });
    expect(unauthenticated.status).toBe(401);
    expect((await unauthenticated.json()) as { error: string }).toMatchObject({
      error: expect.stringMatching(/token/i),
      code: "invalid_token",
      reason: "missing_token",
    });
    const unknownRoute = await api("/v2/nothing-here");
    expect(unknownRoute.status).toBe(404);
    expect(await unknownRoute.json()).toEqual(expect.objectContaining({ error: expect.any(String) }));
  });
});

/**
 * The registry service's `GET /prediction` carries a JSON body. workerd's `Request` constructor
 * refuses a GET with a body, so in workerd the same route is called with POST (which it also
 * accepts); the GET-with-body form is sent over a real socket in test/node/.
 */
async function getWithBody(path: string, body: unknown): Promise<Response> {
  return postJson(path, body);
}

interface Job {
  job_id: string;
  status_url: string;
  model: { id: string; version: string };
}

describe("registry service compatibility routes", () => {
  const spacyItems = [
    ...[
      "book a flight to rome",
      "hotel near the beach",
      "train tickets for the holiday",
      "save for vacation in spain",
    ].map((text) => ({ text, cats: { TRAVEL: 1.0, FOOD: 0.0 } })),
    ...["pizza with extra cheese", "order sushi for dinner", "bake bread at home", "fresh pasta recipe"].map(
      (text) => [text, { cats: { TRAVEL: 0.0, FOOD: 1.0 } }],
    ),
  ];

  it("POST /models trains from <s3bucket>/<training_object> (spaCy JSON), GET /prediction answers, force_update retrains, DELETE cascades", async () => {
    await env.MODELS.put("datasets/albert-textcats/trainingSet.json", JSON.stringify(spacyItems));
    await env.MODELS.put("datasets/albert-textcats-best/trainingSet.json", JSON.stringify(spacyItems));
    const res = await postJson("/models", {
      id: "tc-01",
      s3bucket: "albert-textcats",
      training_object: "trainingSet.json",
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const job = (await res.json()) as Job;
    const done = await waitForStatus<{ status: string; error: string | null }>(job.status_url, [
      "succeeded",
      "failed",
    ]);
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");

    const prediction = await getWithBody("/prediction", {
      model_id: "tc-01",
      text: "I want to save for vacation!",
    });
    expect(prediction.status).toBe(200);
    const body = (await prediction.json()) as {
      model_id: string;
      cats: Record<string, number>;
      predictions: { label: string }[];
    };
    expect(body.model_id).toBe("tc-01");
    expect(Object.keys(body.cats).sort()).toEqual(["FOOD", "TRAVEL"]);
    expect(body.predictions[0]?.label).toBe("TRAVEL");
    const top1 = await getWithBody("/prediction", {
      n_top: "1",
      model_id: "tc-01",
      text: "I want to save for vacation!",
    });
    expect(((await top1.json()) as { predictions: unknown[] }).predictions).toHaveLength(1);

    // Exists already: 409 without force_update; "True" as the service's clients send it.
    expect(
      (
        await postJson("/models", {
          id: "tc-01",
          s3bucket: "albert-textcats",
          training_object: "trainingSet.json",
        })
      ).status,
    ).toBe(409);
    const forced = await postJson("/models", {
      force_update: "True",
      id: "tc-01",
      s3bucket: "albert-textcats-best",
      training_object: "trainingSet.json",
    });
    expect(forced.status).toBe(202);
    const second = (await forced.json()) as Job;
    expect(second.model.version).not.toBe(job.model.version);
    await waitForStatus(second.status_url, ["succeeded"]);

    const list = (await (
      await api("/models", { headers: { "content-type": "application/json" } })
    ).json()) as {
      models: { id: string; active_version: string }[];
    };
    expect(list.models).toContainEqual(
      expect.objectContaining({ id: "tc-01", active_version: second.model.version }),
    );

    expect((await api("/models/tc-02", { method: "DELETE" })).status).toBe(404);
    expect((await api("/models/tc-01", { method: "DELETE" })).status).toBe(200);
    expect((await getWithBody("/prediction", { model_id: "tc-01", text: "x" })).status).toBe(404);
  });

  it("DELETE /models/<id> deletes an online model created through the API as the native delete does", async () => {
    expect((await postJson("/api/v1/models", { id: "compat-ledger", task: "online" })).status).toBe(201);
    expect((await api("/models/compat-ledger", { method: "DELETE" })).status).toBe(200);
    expect((await api("/api/v1/models/compat-ledger/metrics")).status).toBe(404);
  });

  it("refuses what it cannot honour: unknown fields, bad names, a model it was not asked for", async () => {
    const unknown = await getWithBody("/prediction", { model: "spam", text: "hi" });
    expect((await problem(unknown)).errors).toEqual(
      expect.arrayContaining([{ path: "model", message: "unknown field" }]),
    );
    const traversal = await postJson("/models", { id: "tc-03", s3bucket: "..", training_object: "x.json" });
    expect((await problem(traversal)).code).toBe("invalid_request");
    const missingDataset = await postJson("/models", {
      id: "tc-04",
      s3bucket: "nowhere",
      training_object: "x.json",
    });
    expect((await problem(missingDataset)).code).toBe("invalid_dataset");
    expect(
      (
        await postJson("/models", {
          id: "tc-05",
          s3bucket: "b",
          training_object: "t.json",
          force_update: "maybe",
        })
      ).status,
    ).toBe(400);
  });
});

describe("online-learning service compatibility routes", () => {
  const sample = (i: number) => ({
    CompanyId: `company-${i % 2}`,
    BankEntryDate: "2016-03-01",
    BankEntryText: i % 2 ? "coffee shop espresso" : "office rent march",
    BankEntryAmount: i % 2 ? "> -1000" : "< 10000",
    AccountName: i % 2 ? "Food" : "Rent",
    AccountNumber: i % 2 ? "4010" : "7300",
    AccountTypeName: "Profit and Loss",
  });

  it('POST /sample takes one object or an array, POST /predict answers {"AccountNumber"}, GET /metrics reports', async () => {
    const one = await postJson("/sample", sample(0));
    expect(one.status).toBe(200);
    const many = await postJson(
      "/sample",
      Array.from({ length: 40 }, (_, i) => sample(i + 1)),
    );
    expect(many.status).toBe(200);
    const { AccountName: _n, AccountNumber: _a, AccountTypeName: _t, ...input } = sample(1);
    const predicted = await postJson("/predict", input);
    expect(predicted.status).toBe(200);
    expect(await predicted.json()).toMatchObject({ AccountNumber: "4010" });
    const top = await postJson("/predict?n_top=2", input);
    const { predictions } = (await top.json()) as { predictions: { AccountNumber: string }[] };
    expect(predictions.map((p) => p.AccountNumber).sort()).toEqual(["4010", "7300"]);
    const metrics = await api("/metrics");
    expect(metrics.status).toBe(200);
    expect(await metrics.json()).toMatchObject({ samples_total: 41 });
  });
});

describe("compatibility routes can be switched off", () => {
  it("COMPAT_ROUTES=off → 404 on every compatibility path, native routes unaffected", async () => {
    const call = (method: string, path: string) =>
      api(
        path,
        { method, headers: { "content-type": "application/json" }, ...(method === "POST" && { body: "{}" }) },
        { vars: { COMPAT_ROUTES: "off" } },
      );
    for (const [method, path] of [
      ["GET", "/models"],
      ["POST", "/models"],
      ["PUT", "/models"],
      ["DELETE", "/models/tc-01"],
      ["GET", "/prediction"],
      ["POST", "/sample"],
      ["POST", "/predict"],
      ["GET", "/metrics"],
      ["POST", "/inference/image"],
      ["POST", "/inference/image/"],
      ["GET", `/predictions/${crypto.randomUUID()}/`],
    ] as const) {
      const res = await call(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect((await problem(res)).code).toBe("route_not_found");
    }
    expect((await call("GET", "/api/v1/models")).status).toBe(200);
  });
});

describe("OpenAPI 3.1", () => {
  it("is served without a token and lists exactly the router's routes, each with its summary and errors", async () => {
    const res = await api("/api/v1/openapi.json", {}, { auth: false });
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { summary: string; responses: Record<string, unknown>; security?: unknown[] }>
      >;
      components: { schemas: { Problem: { properties: { code: { enum: string[] } } } } };
    };
    expect(doc.openapi).toBe("3.1.0");
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    // Aliases (the image service's trailing-slash paths) are served but not documented twice.
    const routed = ROUTES.filter((r) => !r.doc.alias).map((r) => `${r.method} ${openApiPath(r.path)}`);
    expect(documented.sort()).toEqual([...new Set(routed)].sort());
    expect(doc.components.schemas.Problem.properties.code.enum.sort()).toEqual(
      Object.keys(ERROR_CODES).sort(),
    );
    const predict = doc.paths["/api/v1/predict"]?.post;
    expect(predict?.responses).toHaveProperty("401");
    expect(predict?.responses).toHaveProperty("413");
    expect(doc.paths["/api/v1/health"]?.get?.security).toEqual([]);
    // The request schema is the one the route validates with: strict, so no unknown fields.
    expect(JSON.stringify(predict)).toContain('"additionalProperties":false');
  });
});

describe("async image service compatibility routes", () => {
  const png = () => base64(encodePng({ width: 28, height: 28, data: barPixels(), channels: 1, depth: 8 }));

  it("POST /inference/image/ (text/plain {name, data}) → {uuid}; GET /predictions/<uuid>/ → {prediction}", async () => {
    for (const path of ["/inference/image/", "/inference/image"]) {
      const res = await api(path, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: JSON.stringify({ name: "dog", data: png() }),
      });
      expect(res.status).toBe(200);
      const { uuid } = (await res.json()) as { uuid: string };
      expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
      const done = await waitFor(async () => {
        const r = await api(`/predictions/${uuid}/`);
        if (r.status === 202) return undefined;
        return (await r.json()) as { prediction: string | null };
      });
      // The image service's model is DEFAULT_IMAGE_MODEL, as for an image sent without `model`.
      const native = await postJson("/api/v1/predict", { image: png() });
      const best = ((await native.json()) as { predictions: { label: string }[] }).predictions[0]?.label;
      expect(done.prediction).toBe(best);
      expect(await (await api(`/predictions/${uuid}`)).json()).toMatchObject({ prediction: best });
    }
  });

  it("bad images are refused before a uuid is given; unknown uuids are 404; the native route names the unknown fields", async () => {
    const bad = await api("/inference/image", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ name: "x", data: btoa("not an image at all") }),
    });
    expect((await problem(bad)).code).toBe("invalid_image");
    expect((await api(`/predictions/${crypto.randomUUID()}/`)).status).toBe(404);
    const native = await postJson("/api/v1/predictions", { name: "dog", data: png() });
    expect((await problem(native)).errors).toEqual(
      expect.arrayContaining([
        { path: "name", message: "unknown field" },
        { path: "data", message: "unknown field" },
      ]),
    );
  });
});
