import { describe, expect, it } from "vitest";
import { createSession, ORT_WASM_PLACEHOLDER } from "../src/inference/ort";

describe("ORT wasm shim", () => {
  it("initialises the WASM backend in workerd and rejects a non-ONNX model with ORT's own error", async () => {
    await expect(createSession(new Uint8Array([1, 2, 3, 4]))).rejects.toThrow(/protobuf|parse|load model/i);
  });
  it("leaves WebAssembly.instantiate working for other callers", async () => {
    await expect(WebAssembly.instantiate(new Uint8Array([1, 2, 3]))).rejects.toThrow();
    expect(ORT_WASM_PLACEHOLDER.byteLength).toBeGreaterThan(8);
  });
});
