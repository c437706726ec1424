import { describe, expect, it } from "vitest";
import { createSession, ORT_WASM_PLACEHOLDER, ort, wasmHeapBytes } from "../src/inference/ort";
import { fixtureBytes } from "./helpers";

describe("ORT wasm shim", () => {
  it("initialises the WASM backend in workerd: a real model loads and runs", async () => {
    // Without the shim, ORT's first session fails ("Wasm code generation disallowed by embedder"),
    // and the heap is only known once the shim has instantiated ORT's module.
    const session = await createSession(await fixtureBytes("models/digits/model.onnx"));
    expect(wasmHeapBytes()).toBeGreaterThan(0);
    const input = session.inputNames[0] as string;
    const outputs = await session.run({
      [input]: new ort.Tensor("float32", new Float32Array(28 * 28), [1, 1, 28, 28]),
    });
    const scores = Array.from(outputs[session.outputNames[0] as string]?.data as Float32Array);
    expect(scores).toHaveLength(10);
    expect(scores.every(Number.isFinite)).toBe(true);
    expect(scores.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
    await session.release();
  });
  it("rejects a non-ONNX model with ORT's own error (the backend is up, the bytes are wrong)", async () => {
    await expect(createSession(new Uint8Array([1, 2, 3, 4]))).rejects.toThrow(/protobuf|parse|load model/i);
  });
  it("leaves WebAssembly.instantiate working for other callers", async () => {
    await expect(WebAssembly.instantiate(new Uint8Array([1, 2, 3]))).rejects.toThrow(
      WebAssembly.CompileError,
    );
    expect(ORT_WASM_PLACEHOLDER.byteLength).toBeGreaterThan(8);
  });
});
