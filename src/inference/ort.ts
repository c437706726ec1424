/**
 * onnxruntime-web inside workerd.
 *
 * Workers refuse to compile WebAssembly from bytes at run time ("Wasm code generation disallowed by
 * embedder"), so ORT's usual `WebAssembly.instantiate(bytes, imports)` cannot work. Instead:
 * - ORT is imported as `onnxruntime-web/wasm` (the bundle with the Emscripten glue embedded, so no
 *   dynamic `import()` of the glue);
 * - the `.wasm` is imported as a module: wrangler (and the vitest pool) turn `*.wasm` imports into a
 *   precompiled `WebAssembly.Module`;
 * - ORT is given a placeholder `wasmBinary`, one thread and no proxy worker;
 * - a narrow shim makes `WebAssembly.instantiate(placeholder, imports)` instantiate the imported
 *   module instead. Any other argument goes to the real function untouched. The shim is installed
 *   once, before ORT's first use, and never removed: save/restore around concurrent first session
 *   creations would race, and the shim is inert for every other caller.
 */

import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import * as ort from "onnxruntime-web/wasm";
import { DEFAULT_OPTIMIZATION_LEVEL, type OptimizationLevel } from "../contracts/manifest";

/**
 * Bytes ORT is told are its binary. ORT copies them (`new Uint8Array(wasmBinary)`) before calling
 * `WebAssembly.instantiate`, so the shim recognises them by content: a marker no real module has
 * (it is not even valid WebAssembly).
 */
export const ORT_WASM_PLACEHOLDER = new TextEncoder().encode("edge-inference:ort-wasm-placeholder");

function isPlaceholder(source: unknown): boolean {
  const bytes =
    source instanceof ArrayBuffer
      ? new Uint8Array(source)
      : ArrayBuffer.isView(source)
        ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
        : undefined;
  if (!bytes || bytes.byteLength !== ORT_WASM_PLACEHOLDER.byteLength) return false;
  return bytes.every((b, i) => b === ORT_WASM_PLACEHOLDER[i]);
}

let shimInstalled = false;
let ortMemory: WebAssembly.Memory | undefined;

/** ORT's linear memory: exported by the module, or imported (the threaded build imports it). */
function findMemory(
  instance: WebAssembly.Instance,
  imports?: WebAssembly.Imports,
): WebAssembly.Memory | undefined {
  const candidates = [
    ...Object.values(instance.exports),
    ...Object.values(imports ?? {}).flatMap((ns) => Object.values(ns as Record<string, unknown>)),
  ];
  return candidates.find((v): v is WebAssembly.Memory => v instanceof WebAssembly.Memory);
}

/**
 * Bytes of ORT's WebAssembly heap in this isolate (undefined before ORT's first use). The heap grows
 * as sessions need memory and never shrinks, so its growth while a model loads and runs is what that
 * model added to the isolate.
 */
export function wasmHeapBytes(): number | undefined {
  return ortMemory?.buffer.byteLength;
}

/**
 * Installs the shim (idempotent): `WebAssembly.instantiate(ORT_WASM_PLACEHOLDER, imports)` resolves
 * to `{ instance, module }` built from `module`; every other call is delegated unchanged.
 */
export function installWasmShim(module: WebAssembly.Module): void {
  if (shimInstalled) return;
  const original = WebAssembly.instantiate.bind(WebAssembly) as (
    source: unknown,
    imports?: WebAssembly.Imports,
  ) => Promise<unknown>;
  WebAssembly.instantiate = ((source: unknown, imports?: WebAssembly.Imports) => {
    if (isPlaceholder(source)) {
      return WebAssembly.instantiate(module, imports).then((instance) => {
        ortMemory = findMemory(instance, imports);
        return { instance, module };
      });
    }
    return original(source, imports);
  }) as typeof WebAssembly.instantiate;
  shimInstalled = true;
}

/** Configures ORT for workerd; called once before the first session is created. */
function configureOrt(): void {
  installWasmShim(ortWasm);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = ORT_WASM_PLACEHOLDER;
  ort.env.logLevel = "error";
}

let configured = false;

/**
 * Creates an ORT inference session (WASM backend) from model bytes, its graph optimized at `level`
 * (the manifest's `graph_optimization_level`; see src/inference/optimization.ts).
 */
export async function createSession(
  bytes: Uint8Array,
  level: OptimizationLevel = DEFAULT_OPTIMIZATION_LEVEL,
): Promise<ort.InferenceSession> {
  if (!configured) {
    configureOrt();
    configured = true;
  }
  return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: level });
}

export { ort };
