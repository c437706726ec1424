/**
 * Uploaded graphs with data-dependent allocation or iteration (#26): refused unless the manifest's
 * `work_bounds` cover their constant sizes (src/registry/graph-bounds.ts), before ORT loads them; a
 * refused upload leaves nothing in the registry; outputs are checked against declared shapes.
 */
import $protobuf from "protobufjs/minimal.js";
import { describe, expect, it } from "vitest";
import { onnx } from "../src/onnx/generated/onnx.js";
import { api, postJson, problem } from "./helpers";
import { upload } from "./registry-helpers";

const int64 = (values: number[]) => {
  const out = new Uint8Array(values.length * 8);
  values.forEach((v, i) => {
    new DataView(out.buffer).setBigInt64(i * 8, BigInt(v), true);
  });
  return out;
};
const value = (name: string, dims: (number | string)[], elemType = 1) => ({
  name,
  type: {
    tensorType: {
      elemType,
      shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
    },
  },
});

function graph(
  nodes: onnx.INodeProto[],
  initializer: onnx.ITensorProto[],
  inputs: unknown[],
  outputs: unknown[],
) {
  return onnx.ModelProto.encode(
    {
      irVersion: 8,
      opsetImport: [{ domain: "", version: 17 }],
      graph: { name: "g", node: nodes, initializer, input: inputs, output: outputs } as onnx.IGraphProto,
    },
    new $protobuf.Writer(),
  ).finish();
}

/** x [1] → y = ReduceSum(ConstantOfShape(shape)) + x; `shape` a constant, or the input's values. */
function constantOfShape(elements: number, fromInput = false): Uint8Array {
  return graph(
    [
      { opType: "ConstantOfShape", input: [fromInput ? "n" : "shape"], output: ["big"], name: "fill" },
      { opType: "ReduceSum", input: ["big"], output: ["s"], name: "sum" },
      { opType: "Add", input: ["s", "x"], output: ["y"], name: "add" },
    ],
    fromInput ? [] : [{ name: "shape", dataType: 7, dims: [1], rawData: int64([elements]) }],
    fromInput ? [value("x", [1]), value("n", [1], 7)] : [value("x", [1])],
    [value("y", [1])],
  );
}

const tensorManifest = (
  extra: Record<string, unknown> = {},
  inputs = [{ name: "x", datatype: "FP32", shape: [1] }],
) => ({
  kind: "tensor",
  inputs,
  outputs: [{ name: "y", datatype: "FP32", shape: [1] }],
  output: "y",
  quantization: "none",
  ...extra,
});

async function refused(res: Response): Promise<{ detail: string; operator?: string }> {
  expect(res.status, await res.clone().text()).toBe(422);
  const body = await problem(res);
  expect(body.code).toBe("invalid_model");
  return body as { detail: string; operator?: string };
}

async function notListed(id: string): Promise<void> {
  const list = (await (await api("/api/v1/models")).json()) as { models: { id: string }[] };
  expect(list.models.map((m) => m.id)).not.toContain(id);
  expect((await api(`/api/v1/models/${id}`)).status).toBe(404);
}

describe("data-dependent work of uploaded graphs", () => {
  it("ConstantOfShape(2.5e8) without work_bounds → 422 naming the operator; nothing in the registry", async () => {
    const body = await refused(
      await upload("bounds-cos", "1", tensorManifest(), constantOfShape(250_000_000)),
    );
    expect(body.operator).toBe("ConstantOfShape");
    expect(body.detail).toMatch(/declare work_bounds/);
    await notListed("bounds-cos");
  });

  it("declared bounds are verified: 2.5e8 elements over max_elements 1e6 → 422; within them the model is accepted", async () => {
    const bounds = { work_bounds: { max_elements: 1_000_000 } };
    const over = await refused(
      await upload("bounds-cos2", "1", tensorManifest(bounds), constantOfShape(250_000_000)),
    );
    expect(over.detail).toMatch(/produces 250000000 elements; work_bounds.max_elements is 1000000/);
    await notListed("bounds-cos2");
    const ok = await upload(
      "bounds-cos3",
      "1",
      tensorManifest(bounds),
      constantOfShape(1000),
      "?activate=true",
    );
    expect(ok.status, await ok.clone().text()).toBe(201);
    const infer = await postJson("/v2/models/bounds-cos3/infer", {
      inputs: [{ name: "x", datatype: "FP32", shape: [1], data: [0.5] }],
    });
    expect(infer.status).toBe(200);
  });

  it("a size computed from the model's inputs cannot be verified → 422", async () => {
    const body = await refused(
      await upload(
        "bounds-cos4",
        "1",
        tensorManifest({ work_bounds: { max_elements: 1000 } }, [
          { name: "x", datatype: "FP32", shape: [1] },
          { name: "n", datatype: "INT64", shape: [1] },
        ]),
        constantOfShape(0, true),
      ),
    );
    expect(body.detail).toMatch(/computed from the model's inputs/);
    await notListed("bounds-cos4");
  });

  it("a Loop of 3e6 iterations over max_iterations, or without a trip count, → 422", async () => {
    const loop = (tripCount: string) =>
      graph(
        [{ opType: "Loop", input: [tripCount, "", "x"], output: ["y"], name: "loop" }],
        [{ name: "m", dataType: 7, dims: [], rawData: int64([3_000_000]) }],
        [value("x", [1])],
        [value("y", [1])],
      );
    const over = await refused(
      await upload(
        "bounds-loop",
        "1",
        tensorManifest({ work_bounds: { max_elements: 1, max_iterations: 1000 } }),
        loop("m"),
      ),
    );
    expect(over.detail).toMatch(/runs 3000000 iterations; work_bounds.max_iterations is 1000/);
    const unbounded = await refused(
      await upload("bounds-loop2", "1", tensorManifest({ work_bounds: { max_elements: 1 } }), loop("")),
    );
    expect(unbounded.detail).toMatch(/trip count is computed from the model's inputs/);
    await notListed("bounds-loop");
    await notListed("bounds-loop2");
  });
});

describe("outputs against declared shapes at inference", () => {
  it("an output larger than its declared shape is refused, not copied into the answer", async () => {
    // y = x (any length), declared [-1] in and [2] out: the probe's example fits; [5] does not.
    const bytes = graph(
      [{ opType: "Identity", input: ["x"], output: ["y"], name: "id" }],
      [],
      [value("x", ["n"])],
      [value("y", ["n"])],
    );
    const manifest = {
      ...tensorManifest({}, [{ name: "x", datatype: "FP32", shape: [-1] }]),
      outputs: [{ name: "y", datatype: "FP32", shape: [2] }],
      examples: [{ inputs: [{ name: "x", datatype: "FP32", shape: [2], data: [1, 2] }] }],
    };
    const res = await upload("bounds-out", "1", manifest, bytes, "?activate=true");
    expect(res.status, await res.clone().text()).toBe(201);
    const fits = await postJson("/v2/models/bounds-out/infer", {
      inputs: [{ name: "x", datatype: "FP32", shape: [2], data: [1, 2] }],
    });
    expect(fits.status).toBe(200);
    const over = await postJson("/v2/models/bounds-out/infer", {
      inputs: [{ name: "x", datatype: "FP32", shape: [5], data: [1, 2, 3, 4, 5] }],
    });
    expect(over.status).toBe(503);
    expect(((await over.json()) as { error: string }).error).toMatch(/declares \[2\]/);
  });
});

describe("nothing of a refused or dead upload in the registry", () => {
  it("a publish's reservation left by a process that died mid-upload is not listed as a model", async () => {
    const { env } = await import("cloudflare:test");
    const now = Date.now();
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO models (id, active_version, created_at, updated_at) VALUES ('bounds-dead', NULL, ?, ?)",
      ).bind(now, now),
    ]);
    await notListed("bounds-dead-never");
    const list = (await (await api("/api/v1/models")).json()) as { models: { id: string }[] };
    expect(list.models.map((m) => m.id)).not.toContain("bounds-dead");
  });
});
