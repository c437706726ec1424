/**
 * Bring your own model (docs/byom.md), in workerd with real R2/D1/queues and ORT: graphs in the
 * shape skl2onnx exports for `TfidfVectorizer(ngram_range=(1, 2)) + LogisticRegression` (built by
 * our exporter from weights our trainer fits), uploaded as `raw-text` models and served through every
 * text route with scores equal to the TypeScript reference; an MLP uploaded as a `tensor` model and
 * served through the Open Inference Protocol; graphs the Worker cannot serve refused at upload.
 * ORT-using BYOM cases live in this one file (each ORT file costs ~15 s of startup).
 */

import $protobuf from "protobufjs/minimal.js";
import { beforeAll, describe, expect, it } from "vitest";
import { onnx } from "../src/onnx/generated/onnx.js";
import { parseManifest, validateModel } from "../src/registry/validate";
import { createRng } from "../src/training/prng";
import {
  scoreTfidfPipeline,
  TFIDF_TOKEN_PATTERN,
  type TfidfPipeline,
  trainTfidfPipeline,
} from "../src/training/tfidf";
import { api, fixtureBytes, postJson, problem } from "./helpers";
import { tinyModel, upload, waitForStatus } from "./registry-helpers";
import { buildMlpOnnx, buildTfidfPipelineOnnx, type MlpWeights, SKLEARN_NAMES } from "./support/sklearn-onnx";

const TOLERANCE = 1e-5;

/** The models shipped in models/<id>/. */
const SHIPPED_MODELS = [
  "digits",
  "moderation-image",
  "sentiment",
  "sentiment-mlp",
  "spam",
  "spam-mlp",
  "toxicity",
  "toxicity-mlp",
];

/** Hand-written training texts (no dataset rows): two classes for binary, three for multiclass. */
const CALM = [
  "what a lovely quiet morning",
  "thanks for the tea and the chat",
  "see you at the park later",
  "the garden looks lovely today",
  "a quiet walk by the river",
  "thanks for a lovely evening",
];
const LOUD = [
  "buy cheap pills now",
  "win cash prize click here",
  "free money offer call now",
  "click here to win free cash",
  "cheap offer buy now",
  "call now to claim your prize",
];
const TRAVEL = [
  "book a flight to rome",
  "hotel near the beach",
  "train tickets for the holiday",
  "save for a holiday in spain",
  "cheap flight and hotel deals",
];
const FOOD = [
  "pizza with extra cheese",
  "order sushi for dinner",
  "bake bread at home",
  "fresh pasta recipe for dinner",
  "cheese and bread for lunch",
];
const SPORT = [
  "the match ended in a draw",
  "great goal in the second half",
  "tennis final on sunday",
  "the team won the league",
  "a late goal won the match",
];

/** Texts scored in the parity checks: seen, unseen, mixed case, punctuation, no known token at all. */
const PROBE = [
  "Buy CHEAP pills now, thanks!",
  "a lovely quiet evening by the river",
  "Win a free holiday: click here",
  "zzz qqq",
  "!",
  "the park, the tea and the CHAT",
];

let binary: TfidfPipeline;
let multiclass: TfidfPipeline;

function pipelineModel(
  pipeline: TfidfPipeline,
  id: string,
  options: { zipmap?: boolean; flatInput?: boolean } = {},
): Uint8Array {
  return buildTfidfPipelineOnnx(pipeline, {
    id,
    version: "1",
    tokenPattern: TFIDF_TOKEN_PATTERN,
    ...options,
  });
}

function rawTextManifest(pipeline: TfidfPipeline, extra: Record<string, unknown> = {}) {
  return {
    kind: "raw-text",
    task: pipeline.task,
    labels: pipeline.labels,
    inputs: { text: SKLEARN_NAMES.input },
    output: SKLEARN_NAMES.probabilities,
    label_output: SKLEARN_NAMES.label,
    quantization: "none",
    examples: ["an example text for the upload probe"],
    ...extra,
  };
}

function expectClose(actual: readonly number[], expected: readonly number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => {
    expect(Math.abs(v - (expected[i] as number)), `score ${i}: ${v} vs ${expected[i]}`).toBeLessThan(
      TOLERANCE,
    );
  });
}

beforeAll(() => {
  binary = trainTfidfPipeline({
    rows: [...CALM.map((text) => ({ text, target: 0 })), ...LOUD.map((text) => ({ text, target: 1 }))],
    task: "binary",
    labels: ["calm", "loud"],
  });
  multiclass = trainTfidfPipeline({
    rows: [TRAVEL, FOOD, SPORT].flatMap((texts, target) => texts.map((text) => ({ text, target }))),
    task: "multiclass",
    labels: ["travel", "food", "sport"],
  });
});

describe("the TF-IDF pipeline fixture", () => {
  it("is word unigrams + bigrams with a trained, non-trivial classifier", () => {
    expect(binary.vocabulary).toContain("cheap");
    expect(binary.vocabulary).toContain("click here");
    expect(multiclass.vocabulary).toContain("goal");
    expect(multiclass.vocabulary).toContain("for dinner");
    const [calm, loud] = scoreTfidfPipeline(binary, "buy cheap pills now") as [number, number];
    expect(loud).toBeGreaterThan(calm);
    const sport = scoreTfidfPipeline(multiclass, "a goal in the final");
    expect(sport.indexOf(Math.max(...sport))).toBe(2);
  });
});

describe("raw-text models (skl2onnx shape) serve through every text route", () => {
  it("binary: upload → activate → /api/v1/predict, async predictions, GET /prediction compat, /v2 infer equal the reference", async () => {
    const bytes = pipelineModel(binary, "byom-binary");
    const manifest = rawTextManifest(binary, { thresholds: { loud: 0.5 } });
    const res = await upload("byom-binary", "1", manifest, bytes, "?activate=true");
    expect(res.status, await res.clone().text()).toBe(201);
    const uploaded = (await res.json()) as {
      kind: string;
      active_version: string;
      memory: { wasm_heap_bytes: number; session_memory_bytes: number };
    };
    expect(uploaded).toMatchObject({ kind: "raw-text", active_version: "1" });
    expect(uploaded.memory.wasm_heap_bytes).toBeGreaterThan(0);
    expect(uploaded.memory.session_memory_bytes).toBeGreaterThanOrEqual(0);
    const reference = PROBE.map((t) => scoreTfidfPipeline(binary, t));

    // /api/v1/predict, one text and a batch.
    const one = await postJson("/api/v1/predict", { model: "byom-binary", text: PROBE[0] });
    expect(one.status, await one.clone().text()).toBe(200);
    const oneBody = (await one.json()) as {
      sentiment: { sentiment_type: string; sentiment_score: number }[];
      flagged: string[];
    };
    // The manifest's thresholds flag labels as for models trained here.
    expect(reference[0]?.[1]).toBeGreaterThan(0.5);
    expect(oneBody.flagged).toEqual(["loud"]);
    expect(oneBody.sentiment.map((s) => s.sentiment_type)).toEqual(["calm", "loud"]);
    expectClose(
      oneBody.sentiment.map((s) => s.sentiment_score),
      reference[0] as number[],
    );
    const batch = await postJson("/api/v1/predict", { model: "byom-binary", texts: PROBE });
    expect(batch.status).toBe(200);
    const batchBody = (await batch.json()) as { results: { sentiment: { sentiment_score: number }[] }[] };
    batchBody.results.forEach((r, i) => {
      expectClose(
        r.sentiment.map((s) => s.sentiment_score),
        reference[i] as number[],
      );
    });

    // Async: POST /api/v1/predictions → queue → GET its result.
    const submitted = await postJson("/api/v1/predictions", { model: "byom-binary", texts: PROBE });
    expect(submitted.status, await submitted.clone().text()).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    const done = await waitForStatus<{
      status: string;
      result: { results: { sentiment: { sentiment_score: number }[] }[] };
    }>(`/api/v1/predictions/${id}`, ["done", "failed"]);
    expect(done.status).toBe("done");
    done.result.results.forEach((r, i) => {
      expectClose(
        r.sentiment.map((s) => s.sentiment_score),
        reference[i] as number[],
      );
    });

    // The registry service's GET /prediction (POST in workerd, see test/protocols.test.ts).
    const compat = await postJson("/prediction", { model_id: "byom-binary", text: PROBE[1] });
    expect(compat.status, await compat.clone().text()).toBe(200);
    const cats = ((await compat.json()) as { cats: Record<string, number> }).cats;
    expectClose([cats.calm as number, cats.loud as number], reference[1] as number[]);

    // Open Inference Protocol: BYTES [n, 1].
    const infer = await postJson("/v2/models/byom-binary/infer", {
      inputs: [{ name: "text", datatype: "BYTES", shape: [PROBE.length, 1], data: PROBE }],
    });
    expect(infer.status, await infer.clone().text()).toBe(200);
    const outputs = ((await infer.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] })
      .outputs;
    const scores = outputs.find((o) => o.name === "scores");
    expect(scores?.shape).toEqual([PROBE.length, 2]);
    expectClose(scores?.data ?? [], reference.flat());
  });

  it("multiclass (softmax): /api/v1/predict and /v2 infer equal the reference; metadata and registry show the kind", async () => {
    const bytes = pipelineModel(multiclass, "byom-multi");
    const res = await upload("byom-multi", "1", rawTextManifest(multiclass), bytes, "?activate=true");
    expect(res.status, await res.clone().text()).toBe(201);
    const texts = [...PROBE, "dinner at the beach hotel", "a goal in the tennis final"];
    const reference = texts.map((t) => scoreTfidfPipeline(multiclass, t));
    const batch = await postJson("/api/v1/predict", { model: "byom-multi", texts });
    expect(batch.status).toBe(200);
    const body = (await batch.json()) as { results: { sentiment: { sentiment_score: number }[] }[] };
    body.results.forEach((r, i) => {
      expectClose(
        r.sentiment.map((s) => s.sentiment_score),
        reference[i] as number[],
      );
    });
    const infer = await postJson("/v2/models/byom-multi/versions/1/infer", {
      inputs: [{ name: "text", datatype: "BYTES", shape: [texts.length], data: texts }],
      outputs: [{ name: "scores" }],
    });
    expect(infer.status).toBe(200);
    const [scores] = ((await infer.json()) as { outputs: { data: number[] }[] }).outputs;
    expectClose(scores?.data ?? [], reference.flat());

    const model = (await (await api("/api/v1/models/byom-multi")).json()) as { versions: { kind: string }[] };
    expect(model.versions[0]?.kind).toBe("raw-text");
    const metadata = (await (await api("/v2/models/byom-multi")).json()) as { inputs: unknown[] };
    expect(metadata.inputs).toEqual([{ name: "text", datatype: "BYTES", shape: [-1] }]);
  });

  it("a [batch] string input (not [batch, 1]) is served too", async () => {
    // skl2onnx's StringTensorType([None]): the engine feeds [n].
    const bytes = pipelineModel(binary, "byom-flat", { flatInput: true });
    const manifest = rawTextManifest(binary, { examples: undefined });
    const res = await upload("byom-flat", "1", manifest, bytes, "?activate=true");
    expect(res.status, await res.clone().text()).toBe(201);
    const answer = await postJson("/api/v1/predict", { model: "byom-flat", texts: PROBE });
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { results: { sentiment: { sentiment_score: number }[] }[] };
    body.results.forEach((r, i) => {
      expectClose(
        r.sentiment.map((s) => s.sentiment_score),
        scoreTfidfPipeline(binary, PROBE[i] as string),
      );
    });
  });
});

/** A small MLP with fixed pseudo-random weights, and its float64 reference forward pass. */
function mlp(): MlpWeights {
  const rng = createRng(7);
  const D = 4;
  const H = 8;
  const K = 3;
  const r = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  return { inputs: D, hidden: H, outputs: K, w1: r(H * D), b1: r(H), w2: r(K * H), b2: r(K) };
}

function mlpReference(m: MlpWeights, x: readonly number[]): number[] {
  const h = Array.from({ length: m.hidden }, (_, j) => {
    let z = m.b1[j] as number;
    for (let i = 0; i < m.inputs; i++) z += (m.w1[j * m.inputs + i] as number) * (x[i] as number);
    return Math.max(0, z);
  });
  const logits = Array.from({ length: m.outputs }, (_, k) => {
    let z = m.b2[k] as number;
    for (let j = 0; j < m.hidden; j++) z += (m.w2[k * m.hidden + j] as number) * (h[j] as number);
    return z;
  });
  const max = Math.max(...logits);
  const e = logits.map((z) => Math.exp(z - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

const MLP_MANIFEST = {
  kind: "tensor",
  task: "multiclass",
  labels: ["a", "b", "c"],
  inputs: [{ name: "features", datatype: "FP32", shape: [-1, 4] }],
  outputs: [
    { name: "probabilities", datatype: "FP32", shape: [-1, 3] },
    { name: "logits", datatype: "FP32", shape: [-1, 3] },
  ],
  output: "probabilities",
  quantization: "none",
  examples: [{ inputs: [{ name: "features", shape: [2, 4], data: [0, 1, 2, 3, -1, -2, -3, -4] }] }],
};

describe("hashed-ngrams is the name of the kind models trained here have", () => {
  it("a manifest saying kind hashed-ngrams uploads and is stored as a text model", async () => {
    const { manifest, bytes } = await tinyModel("byom-hashed", "1");
    const res = await upload(
      "byom-hashed",
      "1",
      { ...manifest, kind: "hashed-ngrams" },
      bytes,
      "?activate=true",
    );
    expect(res.status, await res.clone().text()).toBe(201);
    expect(((await res.json()) as { kind: string }).kind).toBe("text");
    expect((await postJson("/api/v1/predict", { model: "byom-hashed", text: "free cash now" })).status).toBe(
      200,
    );
  });
});

describe("tensor models serve through the Open Inference Protocol", () => {
  it("an MLP: metadata shows its real tensors, infer equals the reference, text routes refuse it", async () => {
    const weights = mlp();
    const res = await upload(
      "byom-mlp",
      "1",
      MLP_MANIFEST,
      buildMlpOnnx(weights, { id: "byom-mlp", version: "1" }),
      "?activate=true",
    );
    expect(res.status, await res.clone().text()).toBe(201);
    expect(((await res.json()) as { kind: string }).kind).toBe("tensor");

    const metadata = await api("/v2/models/byom-mlp");
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({
      name: "byom-mlp",
      inputs: MLP_MANIFEST.inputs,
      outputs: MLP_MANIFEST.outputs,
    });
    expect((await api("/v2/models/byom-mlp/ready")).status).toBe(200);

    const x = [
      [0.5, -1, 2, 0],
      [1, 1, 1, 1],
      [-3, 0.25, 0, 7],
    ];
    const infer = await postJson("/v2/models/byom-mlp/infer", {
      id: "r1",
      inputs: [{ name: "features", datatype: "FP32", shape: [3, 4], data: x }],
    });
    expect(infer.status, await infer.clone().text()).toBe(200);
    const body = (await infer.json()) as {
      id: string;
      outputs: { name: string; datatype: string; shape: number[]; data: number[] }[];
    };
    expect(body.id).toBe("r1");
    expect(body.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([
      ["probabilities", "FP32", [3, 3]],
      ["logits", "FP32", [3, 3]],
    ]);
    expectClose(
      body.outputs[0]?.data ?? [],
      x.flatMap((row) => mlpReference(weights, row)),
    );

    const wrongType = await postJson("/v2/models/byom-mlp/infer", {
      inputs: [{ name: "features", datatype: "INT64", shape: [1, 4], data: [1, 2, 3, 4] }],
    });
    expect(wrongType.status).toBe(400);
    expect(((await wrongType.json()) as { error: string }).error).toContain("FP32 [-1, 4]");
    const wrongShape = await postJson("/v2/models/byom-mlp/infer", {
      inputs: [{ name: "features", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }],
    });
    expect(wrongShape.status).toBe(400);

    const text = await postJson("/api/v1/predict", { model: "byom-mlp", text: "hello" });
    expect(text.status).toBe(400);
    expect((await problem(text)).code).toBe("model_input_mismatch");
    for (const [path, body] of [
      ["/api/v1/predictions", { model: "byom-mlp", text: "hello" }],
      ["/prediction", { model_id: "byom-mlp", text: "hello" }],
    ] as const) {
      const refused = await postJson(path, body);
      expect(refused.status, path).toBe(400);
      expect((await problem(refused)).detail).toContain("takes tensors: call POST /v2/models/byom-mlp/infer");
    }
  });
});

/** A graph of `nodes` over typed inputs/outputs (`elemType` ONNX codes; `dims` -1 = dynamic). */
function tensorGraph(
  name: string,
  io: { inputs: [string, number, number[]][]; outputs: [string, number, number[]][] },
  nodes: { opType: string; input: string[]; output: string[]; attribute?: unknown[] }[],
): Uint8Array {
  const value = ([n, elemType, dims]: [string, number, number[]]) => ({
    name: n,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d, i) => (d === -1 ? { dimParam: `d${i}` } : { dimValue: d })) },
      },
    },
  });
  return onnx.ModelProto.encode(
    {
      irVersion: 8,
      opsetImport: [{ domain: "", version: 17 }],
      graph: {
        name,
        node: nodes.map((n, i) => ({ ...n, name: `n${i}` })) as onnx.INodeProto[],
        input: io.inputs.map(value),
        output: io.outputs.map(value),
      },
    },
    new $protobuf.Writer(),
  ).finish();
}

const FLOAT = 1;
const INT64 = 7;
const UINT64 = 13;

/**
 * Identities over a scalar, INT64, UINT64 and float vectors, and the sum of a fixed [100, 3] input
 * (a scalar output).
 */
const TENSOR_KINDS = {
  bytes: () =>
    tensorGraph(
      "kinds",
      {
        inputs: [
          ["s", FLOAT, []],
          ["big", INT64, [-1]],
          ["u", UINT64, [-1]],
          ["f", FLOAT, [-1]],
          ["fixed", FLOAT, [100, 3]],
        ],
        outputs: [
          ["s_out", FLOAT, []],
          ["big_out", INT64, [-1]],
          ["u_out", UINT64, [-1]],
          ["f_out", FLOAT, [-1]],
          ["total", FLOAT, []],
        ],
      },
      [
        { opType: "Identity", input: ["s"], output: ["s_out"] },
        { opType: "Identity", input: ["big"], output: ["big_out"] },
        { opType: "Identity", input: ["u"], output: ["u_out"] },
        { opType: "Identity", input: ["f"], output: ["f_out"] },
        {
          opType: "ReduceSum",
          input: ["fixed"],
          output: ["total"],
          attribute: [{ name: "keepdims", type: 2, i: 0 }],
        },
      ],
    ),
  manifest: {
    kind: "tensor",
    inputs: [
      { name: "s", datatype: "FP32", shape: [] },
      { name: "big", datatype: "INT64", shape: [-1] },
      { name: "u", datatype: "UINT64", shape: [-1] },
      { name: "f", datatype: "FP32", shape: [-1] },
      { name: "fixed", datatype: "FP32", shape: [100, 3] },
    ],
    outputs: [
      { name: "s_out", datatype: "FP32", shape: [] },
      { name: "big_out", datatype: "INT64", shape: [-1] },
      { name: "u_out", datatype: "UINT64", shape: [-1] },
      { name: "f_out", datatype: "FP32", shape: [-1] },
      { name: "total", datatype: "FP32", shape: [] },
    ],
    output: "f_out",
    quantization: "none",
  },
};

describe("tensor models as ONNX defines them", () => {
  beforeAll(async () => {
    const res = await upload(
      "byom-kinds",
      "1",
      TENSOR_KINDS.manifest,
      TENSOR_KINDS.bytes(),
      "?activate=true",
    );
    expect(res.status, await res.clone().text()).toBe(201);
  });
  const fixed = Array.from({ length: 300 }, (_, i) => i % 7);

  it("scalars, INT64/UINT64 beyond 2^53 exact both ways, NaN/±∞ as strings, MAX_BATCH only on batch dimensions", async () => {
    // Raw JSON: 2^53 + 1 and the 64-bit extremes as number literals (JSON.stringify cannot write them).
    const body = `{"inputs": [
      {"name": "s", "datatype": "FP32", "shape": [], "data": [2.5]},
      {"name": "big", "datatype": "INT64", "shape": [4], "data": [9007199254740993, -9223372036854775808, "9223372036854775807", 5]},
      {"name": "u", "datatype": "UINT64", "shape": [2], "data": [18446744073709551615, "18446744073709551614"]},
      {"name": "f", "datatype": "FP32", "shape": [4], "data": ["NaN", "Infinity", "-Infinity", 1.5]},
      {"name": "fixed", "datatype": "FP32", "shape": [100, 3], "data": ${JSON.stringify(fixed)}}
    ]}`;
    const res = await postJson("/v2/models/byom-kinds/infer", body);
    const text = await res.text();
    expect(res.status, text).toBe(200);
    // Exact digits in the answer: JSON numbers, never rounded to the nearest double.
    expect(text).toContain(
      '"name":"big_out","datatype":"INT64","shape":[4],"data":[9007199254740993,-9223372036854775808,9223372036854775807,5]',
    );
    expect(text).toContain(
      '"name":"u_out","datatype":"UINT64","shape":[2],"data":[18446744073709551615,18446744073709551614]',
    );
    const parsed = JSON.parse(text) as { outputs: { name: string; shape: number[]; data: unknown[] }[] };
    const out = (name: string) => parsed.outputs.find((o) => o.name === name);
    expect(out("s_out")).toMatchObject({ shape: [], data: [2.5] });
    expect(out("f_out")?.data).toEqual(["NaN", "Infinity", "-Infinity", 1.5]);
    expect(out("total")).toMatchObject({ shape: [], data: [fixed.reduce((a, b) => a + b, 0)] });

    // A declared batch dimension over MAX_BATCH (64) is refused; the fixed [100, 3] above was not.
    const rows = Array.from({ length: 65 }, () => 1);
    const tooMany = await postJson("/v2/models/byom-kinds/infer", {
      inputs: [
        { name: "s", datatype: "FP32", shape: [], data: [0] },
        { name: "big", datatype: "INT64", shape: [65], data: rows },
        { name: "u", datatype: "UINT64", shape: [1], data: [1] },
        { name: "f", datatype: "FP32", shape: [1], data: [1] },
        { name: "fixed", datatype: "FP32", shape: [100, 3], data: fixed },
      ],
    });
    expect(tooMany.status, await tooMany.clone().text()).toBe(400);
    expect(((await tooMany.json()) as { code: string }).code).toBe("batch_too_large");
    // Out of range: named, with the exact value.
    const outOfRange = await postJson(
      "/v2/models/byom-kinds/infer",
      body.replace('"9223372036854775807"', "9223372036854775808"),
    );
    expect(outOfRange.status).toBe(400);
    expect(((await outOfRange.json()) as { error: string }).error).toContain(
      "element 2 (9223372036854775808) is not a valid INT64",
    );
  });

  it("the binary tensor data extension, for inputs and outputs", async () => {
    const f = new Float32Array([1.25, Number.NaN, -2, 1e30]);
    const big = new BigInt64Array([2n ** 62n + 1n, -3n]);
    const header = new TextEncoder().encode(
      JSON.stringify({
        inputs: [
          { name: "s", datatype: "FP32", shape: [], data: [1] },
          { name: "big", datatype: "INT64", shape: [2], parameters: { binary_data_size: 16 } },
          { name: "u", datatype: "UINT64", shape: [1], data: [7] },
          { name: "f", datatype: "FP32", shape: [4], parameters: { binary_data_size: 16 } },
          { name: "fixed", datatype: "FP32", shape: [100, 3], data: fixed },
        ],
        outputs: [
          { name: "f_out", parameters: { binary_data: true } },
          { name: "big_out", parameters: { binary_data: true } },
          { name: "s_out" },
        ],
      }),
    );
    const body = new Uint8Array(header.byteLength + 32);
    body.set(header);
    body.set(new Uint8Array(big.buffer), header.byteLength);
    body.set(new Uint8Array(f.buffer), header.byteLength + 16);
    const res = await api("/v2/models/byom-kinds/infer", {
      method: "POST",
      headers: {
        "content-type": "application/octet-stream",
        "inference-header-content-length": String(header.byteLength),
      },
      body,
    });
    expect(res.status, res.status === 200 ? "" : await res.clone().text()).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    const bytes = new Uint8Array(await res.arrayBuffer());
    const jsonLength = Number(res.headers.get("inference-header-content-length"));
    const head = JSON.parse(new TextDecoder().decode(bytes.subarray(0, jsonLength))) as {
      outputs: { name: string; data?: unknown[]; parameters?: { binary_data_size: number } }[];
    };
    // In the model's output order; the binary parts in the same order.
    expect(head.outputs.map((o) => [o.name, o.parameters?.binary_data_size, o.data])).toEqual([
      ["s_out", undefined, [1]],
      ["big_out", 16, undefined],
      ["f_out", 16, undefined],
    ]);
    const rest = bytes.slice(jsonLength);
    expect(rest.byteLength).toBe(32);
    expect(Array.from(new BigInt64Array(rest.buffer, 0, 2))).toEqual(Array.from(big));
    expect(Array.from(new Float32Array(rest.buffer, 16, 4))).toEqual(Array.from(f));

    // A binary_data_size that does not match the bytes sent is a 400 naming it.
    const short = await api("/v2/models/byom-kinds/infer", {
      method: "POST",
      headers: { "inference-header-content-length": String(header.byteLength) },
      body: body.subarray(0, body.byteLength - 4),
    });
    expect(short.status).toBe(400);
    expect(((await short.json()) as { error: string }).error).toContain("binary_data_size");
  });

  it("an upload without examples whose zero probe fails says so and suggests adding examples", async () => {
    // Reshape to a shape given as an input: all zeros ([0, 0]) cannot reshape one element.
    const bytes = tensorGraph(
      "reshape",
      {
        inputs: [
          ["x", FLOAT, [-1]],
          ["shape", INT64, [2]],
        ],
        outputs: [["y", FLOAT, [-1, -1]]],
      },
      [{ opType: "Reshape", input: ["x", "shape"], output: ["y"] }],
    );
    const manifest = {
      kind: "tensor",
      inputs: [
        { name: "x", datatype: "FP32", shape: [-1] },
        { name: "shape", datatype: "INT64", shape: [2] },
      ],
      outputs: [{ name: "y", datatype: "FP32", shape: [-1, -1] }],
      output: "y",
      quantization: "none",
    };
    const res = await upload("byom-reshape", "1", manifest, bytes);
    expect(res.status).toBe(422);
    const { detail } = await problem(res);
    expect(detail).toContain(
      "the probe inference on the default probe (all-zero inputs, dynamic dimensions 1: the manifest has no `examples`) failed",
    );
    expect(detail).toContain("add `examples` to the manifest");
    const withExamples = await upload(
      "byom-reshape",
      "1",
      {
        ...manifest,
        examples: [
          {
            inputs: [
              { name: "x", shape: [6], data: [1, 2, 3, 4, 5, 6] },
              { name: "shape", shape: [2], data: [2, 3] },
            ],
          },
        ],
      },
      bytes,
    );
    expect(withExamples.status, await withExamples.clone().text()).toBe(201);
  });
});

describe("graphs the Worker cannot serve are refused at upload with the reason", () => {
  async function refused(res: Response): Promise<{ code: string; detail: string } & Record<string, unknown>> {
    expect(res.status).toBe(422);
    return problem(res);
  }

  it("a ZipMap output (sequence of maps): export with zipmap disabled", async () => {
    const bytes = pipelineModel(binary, "byom-zipmap", { zipmap: true });
    const body = await refused(await upload("byom-zipmap", "1", rawTextManifest(binary), bytes));
    expect(body.code).toBe("invalid_model");
    expect(body.detail).toContain("'output_probability' is not a tensor");
    expect(body.detail).toContain("zipmap disabled");
    expect((await api("/api/v1/models/byom-zipmap")).status).toBe(404);
  });

  it("an operator ORT does not have (an onnxruntime-extensions custom op) is named", async () => {
    const bytes = pipelineModel(binary, "byom-customop");
    // The Tokenizer as onnxruntime-extensions' custom op, as a pipeline exported with its string
    // ops would have it.
    const patched = moveToDomain(bytes, "Tokenizer", "ai.onnx.contrib");
    const body = await refused(await upload("byom-customop", "1", rawTextManifest(binary), patched));
    expect(body.operator).toBe("ai.onnx.contrib:Tokenizer");
    expect(body.detail).toContain("operator ai.onnx.contrib:Tokenizer is not supported");
  });

  it("a declared input or shape that is not the graph's", async () => {
    // A hashed-ngrams graph declared as raw-text.
    const { bytes } = await tinyModel("byom-wrongkind", "1");
    const asRawText = await refused(
      await upload("byom-wrongkind", "1", { ...rawTextManifest(binary), inputs: { text: "ids" } }, bytes),
    );
    expect(asRawText.detail).toContain("do not match the manifest's inputs [ids]");
    // The MLP declared with the wrong width.
    const mlpBytes = buildMlpOnnx(mlp(), { id: "byom-badshape", version: "1" });
    const badShape = await refused(
      await upload(
        "byom-badshape",
        "1",
        {
          ...MLP_MANIFEST,
          inputs: [{ name: "features", datatype: "FP32", shape: [-1, 5] }],
          examples: undefined,
        },
        mlpBytes,
      ),
    );
    expect(badShape.detail).toBe(
      "input 'features' is float32 [?, 4] in the graph; the manifest declares FP32 [-1, 5]",
    );
    // The MLP's probabilities declared as raw-text scores: its input is not a string tensor.
    const notText = await refused(
      await upload(
        "byom-nottext",
        "1",
        {
          ...rawTextManifest(binary),
          inputs: { text: "features" },
          output: "probabilities",
          label_output: undefined,
        },
        mlpBytes,
      ),
    );
    expect(notText.detail).toContain("a raw-text model takes one string tensor [batch] or [batch, 1]");
    // A raw-text model whose labels do not match its probability columns.
    const badLabels = await refused(
      await upload(
        "byom-badlabels",
        "1",
        rawTextManifest(binary, { labels: ["a", "b", "c"] }),
        pipelineModel(binary, "byom-badlabels"),
      ),
    );
    expect(badLabels.detail).toContain("expected [1, 3] (one score per label)");
  });
});

/** `bytes` with the nodes of type `op` moved to operator domain `domain` (imported at version 1). */
function moveToDomain(bytes: Uint8Array, op: string, domain: string): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  for (const n of model.graph?.node ?? []) if (n.opType === op) n.domain = domain;
  model.opsetImport.push({ domain, version: 1 });
  return onnx.ModelProto.encode(model, new $protobuf.Writer()).finish();
}

/** A float tensor's ValueInfo. */
function floatValue(name: string, dims: number[]) {
  return {
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  };
}

/**
 * Keras's ZeroPadding2D → MaxPooling2D as ONNX: x [1, 1, 4, 4] → Pad (zeros, one row/column on
 * each side) → MaxPool 3×3, stride 1 → y [1, 1, 4, 4]. ORT's optimizer (basic level and up) fuses
 * the Pad into the MaxPool, which pads with −∞: the border outputs of a negative input change.
 */
function zeroPadMaxPool(): Uint8Array {
  const pads = new Uint8Array(8 * 8);
  [0, 0, 1, 1, 0, 0, 1, 1].forEach((v, i) => {
    new DataView(pads.buffer).setBigInt64(i * 8, BigInt(v), true);
  });
  return onnx.ModelProto.encode(
    {
      irVersion: 8,
      opsetImport: [{ domain: "", version: 17 }],
      graph: {
        name: "zeropad_maxpool",
        node: [
          { opType: "Pad", input: ["x", "pads"], output: ["padded"], name: "zero_padding2d" },
          {
            opType: "MaxPool",
            input: ["padded"],
            output: ["y"],
            name: "max_pooling2d",
            attribute: [
              { name: "kernel_shape", type: 7, ints: [3, 3] },
              { name: "strides", type: 7, ints: [1, 1] },
            ],
          },
        ],
        initializer: [{ name: "pads", dataType: 7, dims: [8], rawData: pads }],
        input: [floatValue("x", [1, 1, 4, 4])],
        output: [floatValue("y", [1, 1, 4, 4])],
      },
    },
    new $protobuf.Writer(),
  ).finish();
}

/** The ZeroPad → MaxPool reference: 3×3 maxima over x padded with zeros. */
function zeroPadMaxPoolReference(x: readonly number[]): number[] {
  const at = (r: number, c: number) => (r < 0 || r > 3 || c < 0 || c > 3 ? 0 : (x[r * 4 + c] as number));
  return Array.from({ length: 16 }, (_, i) => {
    const r = Math.floor(i / 4);
    const c = i % 4;
    let max = Number.NEGATIVE_INFINITY;
    for (let dr = -1; dr <= 1; dr++) for (let dc = -1; dc <= 1; dc++) max = Math.max(max, at(r + dr, c + dc));
    return max;
  });
}

describe("ORT's graph optimizer never changes a model's answers silently", () => {
  it("a ZeroPad → MaxPool graph, whose pad ORT fuses wrongly, is served with optimizations disabled", async () => {
    const x = Array.from({ length: 16 }, (_, i) => -1 - i);
    const manifest = {
      kind: "tensor",
      task: "other",
      inputs: [{ name: "x", datatype: "FP32", shape: [1, 1, 4, 4] }],
      outputs: [{ name: "y", datatype: "FP32", shape: [1, 1, 4, 4] }],
      output: "y",
      quantization: "none",
      examples: [{ inputs: [{ name: "x", shape: [1, 1, 4, 4], data: x }] }],
    };
    const res = await upload("byom-zeropad", "1", manifest, zeroPadMaxPool(), "?activate=true");
    expect(res.status, await res.clone().text()).toBe(201);
    expect(((await res.json()) as { graph_optimization_level: string }).graph_optimization_level).toBe(
      "disabled",
    );
    const detail = (await (await api("/api/v1/models/byom-zeropad")).json()) as {
      versions: { graph_optimization_level: string; optimization_disagreements: { level: string }[] }[];
    };
    expect(detail.versions[0]?.graph_optimization_level).toBe("disabled");
    expect(detail.versions[0]?.optimization_disagreements.map((d) => d.level)).toEqual([
      "all",
      "extended",
      "basic",
    ]);
    const probe = Array.from({ length: 16 }, (_, i) => -((i * 7) % 11) - 0.5);
    const infer = await postJson("/v2/models/byom-zeropad/infer", {
      inputs: [{ name: "x", datatype: "FP32", shape: [1, 1, 4, 4], data: probe }],
    });
    expect(infer.status, await infer.clone().text()).toBe(200);
    const body = (await infer.json()) as { outputs: { data: number[] }[] };
    expect(body.outputs[0]?.data).toEqual(zeroPadMaxPoolReference(probe));
  });

  it("a graph the optimizer computes correctly keeps the Worker's level (all)", async () => {
    const res = await upload(
      "byom-mlp-level",
      "1",
      MLP_MANIFEST,
      buildMlpOnnx(mlp(), { id: "byom-mlp-level", version: "1" }),
    );
    expect(res.status, await res.clone().text()).toBe(201);
    expect(((await res.json()) as { graph_optimization_level: string }).graph_optimization_level).toBe("all");
  });

  it("every shipped model computes the same at the level its manifest records as with optimizations disabled", async () => {
    for (const id of SHIPPED_MODELS) {
      const raw = JSON.parse(new TextDecoder().decode(await fixtureBytes(`models/${id}/manifest.json`)));
      const manifest = parseManifest(raw);
      const bytes = await fixtureBytes(`models/${id}/model.onnx`);
      const { optimization } = await validateModel(manifest, bytes, 16 * 1024 * 1024);
      expect(optimization, id).toEqual({
        level: manifest.graph_optimization_level ?? "all",
        disagreements: [],
      });
    }
  });
});

describe("limits", () => {
  it("a model whose load + probe grows the WASM heap past MAX_WASM_HEAP_BYTES is refused with 413", async () => {
    // Expand a scalar to 100 MiB of float32 during the probe, then sum it: the heap must grow past
    // the 96 MiB budget of wrangler.toml. Last in this file: the heap never shrinks afterwards.
    const elements = 100 * 1024 * 256;
    const int64 = (values: number[]) => {
      const out = new Uint8Array(values.length * 8);
      values.forEach((v, i) => {
        new DataView(out.buffer).setBigInt64(i * 8, BigInt(v), true);
      });
      return out;
    };
    const value = (name: string, dims: number[]) => ({
      name,
      type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
    });
    const bytes = onnx.ModelProto.encode(
      {
        irVersion: 8,
        opsetImport: [{ domain: "", version: 17 }],
        graph: {
          name: "hungry",
          node: [
            { opType: "Expand", input: ["x", "big_shape"], output: ["big"], name: "expand" },
            { opType: "ReduceSum", input: ["big"], output: ["y"], name: "sum" },
          ],
          initializer: [{ name: "big_shape", dataType: 7, dims: [1], rawData: int64([elements]) }],
          input: [value("x", [1])],
          output: [value("y", [1])],
        },
      },
      new $protobuf.Writer(),
    ).finish();
    const manifest = {
      kind: "tensor",
      inputs: [{ name: "x", datatype: "FP32", shape: [1] }],
      outputs: [{ name: "y", datatype: "FP32", shape: [1] }],
      output: "y",
      quantization: "none",
      // Expand's constant size must be declared (src/registry/graph-bounds.ts) to reach the probe.
      work_bounds: { max_elements: elements },
    };
    const res = await upload("byom-hungry", "1", manifest, bytes);
    expect(res.status, await res.clone().text()).toBe(413);
    const body = await problem(res);
    expect(body.code).toBe("model_too_large");
    expect(body.detail).toContain("MAX_WASM_HEAP_BYTES");
    expect(body.wasm_heap_bytes).toBeGreaterThan(96 * 1024 * 1024);
    expect((await api("/api/v1/models/byom-hungry")).status).toBe(404);
  });
});
