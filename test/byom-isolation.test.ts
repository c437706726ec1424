/**
 * Uploaded models run in their own Worker (#26 item 2): the isolated BYOM Worker (workers/byom/,
 * an auxiliary Worker of this suite, vitest.config.ts) loads, probes and runs them behind the BYOM
 * service binding; this isolate — the main Worker's — keeps its ORT heap and keeps serving shipped
 * models when an uploaded model blows its limits.
 */

import { env } from "cloudflare:workers";
import $protobuf from "protobufjs/minimal.js";
import { beforeAll, describe, expect, it } from "vitest";
import { r2Keys } from "../src/contracts/r2-keys";
import { wasmHeapBytes } from "../src/inference/ort";
import { onnx } from "../src/onnx/generated/onnx.js";
import { postJson, problem, seedShippedModel } from "./helpers";
import { tinyModel, upload } from "./registry-helpers";

const value = (name: string, dims: (number | string)[]) => ({
  name,
  type: {
    tensorType: {
      elemType: 1,
      shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
    },
  },
});

/**
 * x FP32 [1, n] → y = sum(xᵀ · x), a scalar: the outer product is n² floats. No data-dependent
 * operator (the upload's work bounds pass it), a small probe, and 144 MB of ORT heap at n = 6000.
 */
function outerProduct(): Uint8Array {
  return onnx.ModelProto.encode(
    {
      irVersion: 8,
      opsetImport: [{ domain: "", version: 17 }],
      graph: {
        name: "outer",
        node: [
          { opType: "Transpose", input: ["x"], output: ["xt"], name: "t" },
          { opType: "Mul", input: ["xt", "x"], output: ["p"], name: "outer" },
          {
            opType: "ReduceSum",
            input: ["p"],
            output: ["y"],
            name: "sum",
            attribute: [{ name: "keepdims", type: 2, i: 0 }],
          },
        ],
        input: [value("x", [1, "n"])],
        output: [value("y", [])],
      } as onnx.IGraphProto,
    },
    new $protobuf.Writer(),
  ).finish();
}

const manifest = {
  kind: "tensor",
  inputs: [{ name: "x", datatype: "FP32", shape: [1, -1] }],
  outputs: [{ name: "y", datatype: "FP32", shape: [] }],
  output: "y",
  quantization: "none",
  examples: [{ inputs: [{ name: "x", shape: [1, 3], data: [1, 2, 3] }] }],
};

const infer = (n: number) =>
  postJson("/v2/models/byom-outer/infer", {
    inputs: [{ name: "x", datatype: "FP32", shape: [1, n], data: Array.from({ length: n }, () => 1) }],
  });

beforeAll(async () => {
  await seedShippedModel("toxicity");
  // A manifest may not say where its model runs: `source` is the registry's.
  const res = await upload(
    "byom-outer",
    "1",
    { ...manifest, source: "training" },
    outerProduct(),
    "?activate=true",
  );
  expect(res.status, await res.clone().text()).toBe(201);
});

describe("uploaded models run in the BYOM Worker", () => {
  it("activating versions back and forth: each request opens its session over the binding and none hangs", async () => {
    // A session dropped by an activation used to send a release call from that request without
    // awaiting it; left pending when the request ended, it made the binding's next calls hang.
    const id = "byom-flip";
    for (const version of ["1", "2", "3"]) {
      const { manifest, bytes } = await tinyModel(id, version, version === "2");
      const res = await upload(id, version, manifest, bytes, version === "1" ? "?activate=true" : "");
      expect(res.status, await res.clone().text()).toBe(201);
    }
    for (const version of ["3", "1", "2", "3", "1"]) {
      const res = await postJson(`/api/v1/models/${id}/activate`, { version });
      expect(res.status, await res.clone().text()).toBe(200);
      const predicted = await postJson("/api/v1/predict", { text: "hello there", model: id });
      expect(((await predicted.json()) as { model: { version: string } }).model.version).toBe(version);
    }
  }, 30_000);

  it("the stored manifest says `upload` whatever the upload claimed, and the model answers through the binding", async () => {
    const stored = await env.MODELS.get(r2Keys.manifest("byom-outer", "1"));
    expect(((await stored?.json()) as { source: string }).source).toBe("upload");
    const res = await infer(3);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
    expect(body.outputs).toEqual([{ name: "y", datatype: "FP32", shape: [], data: [9] }]);
  });

  it("a heavy uploaded model fails with 503 model_resource_limit; this isolate's heap is untouched and a shipped model answers right after", async () => {
    // This isolate's ORT is in use (the shipped model); its heap is what a model run here would grow.
    expect((await postJson("/api/v1/predict", { text: "hello" })).status).toBe(200);
    const heap = wasmHeapBytes();
    expect(heap).toBeGreaterThan(0);

    const res = await infer(6000);
    expect(res.status, await res.clone().text()).toBe(503);
    const body = (await res.json()) as { code: string; error: string };
    expect(body.code).toBe("model_resource_limit");
    expect(body.error).toContain("MAX_WASM_HEAP_BYTES");

    // 36 M floats (144 MB) were allocated in the BYOM Worker's heap, not in this one.
    expect(wasmHeapBytes()).toBe(heap);
    const shipped = await postJson("/api/v1/predict", { text: "you are wonderful" });
    expect(shipped.status).toBe(200);
    expect(((await shipped.json()) as { model: { id: string } }).model.id).toBe("toxicity");
    // The BYOM Worker dropped its sessions and serves the uploaded model again on a small input.
    expect((await infer(4)).status).toBe(200);
  });

  it("the native predict route refuses a tensor model as before (the answer shapes do not change)", async () => {
    const res = await postJson("/api/v1/predict", { model: "byom-outer", text: "hello" });
    expect(res.status).toBe(400);
    expect((await problem(res)).code).toBe("model_input_mismatch");
  });
});
