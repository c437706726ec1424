/**
 * The isolated BYOM Worker's core (its entry is `workers/byom/index.ts`): uploaded models' sessions
 * in this isolate's own ORT instance, opened from the same R2 bucket as the main Worker, and run on
 * tensors the main Worker sends (src/inference/isolation.ts is the other side).
 *
 * Bounds here, beyond the Worker's `[limits] cpu_ms`: the tensors in and out (count, types, sizes
 * ≤ 16 MiB), and the WASM heap — a load or run that grows ORT's heap past `MAX_WASM_HEAP_BYTES`
 * drops every session of this isolate (the allocator reuses that memory; the heap itself never
 * shrinks) and is refused with 503 `model_resource_limit`.
 */
import * as z from "zod";
import { ApiError } from "../errors";
import { type EngineConfig, sessionCache, withModel } from "../inference/engine";
import {
  type BoundProblem,
  type BoundTensor,
  checkBoundTensors,
  type IsolatedValidation,
  MAX_BOUND_TENSOR_BYTES,
  type ModelKey,
  type RunnerAnswer,
  type SessionShape,
} from "../inference/isolation";
import { ort, wasmHeapBytes } from "../inference/ort";
import type { ModelSession } from "../inference/session-cache";
import { parseManifest, validateModel } from "../registry/validate";

const intVar = (min: number, max: number) =>
  z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(max));

const runnerConfigSchema = z.object({
  MAX_MODEL_BYTES: intVar(1024, 1024 * 1024 * 1024),
  MODEL_CACHE_BYTES: intVar(1024, 4 * 1024 * 1024 * 1024),
  MAX_WASM_HEAP_BYTES: intVar(16 * 1024 * 1024, 4 * 1024 * 1024 * 1024),
  ACTIVE_POINTER_TTL_MS: intVar(0, 3_600_000).prefault("5000"),
});

/** The isolated Worker's settings (its wrangler.toml `[vars]`). */
export type RunnerConfig = EngineConfig & { MAX_WASM_HEAP_BYTES: number };

/** Parses the isolated Worker's vars (throws naming each bad one). */
export function loadRunnerConfig(env: Record<string, unknown>): RunnerConfig {
  const parsed = runnerConfigSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(
      `invalid configuration in workers/byom/wrangler.toml [vars]: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  }
  return parsed.data;
}

const keySchema = z.object({
  id: z.string().max(64),
  version: z.string().max(64),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

function checkKey(key: unknown): ModelKey {
  const parsed = keySchema.safeParse(key);
  if (!parsed.success) throw new ApiError("invalid_request", "the model key is invalid");
  return parsed.data;
}

/** The answer of one RPC: its value, or the `ApiError` it threw as data (others: see `failure`). */
export async function answer<T>(work: () => Promise<T>): Promise<RunnerAnswer<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    const api = error instanceof ApiError ? error : failure(error);
    const problem: BoundProblem = {
      code: api.code,
      detail: api.message,
      extensions: api.extensions,
      headers: api.headers,
    };
    return { ok: false, problem };
  }
}

/** What ORT's WASM module says when an allocation fails. */
const OUT_OF_MEMORY = /alloc|out of memory|memory access out of bounds|bad_alloc/i;

/** An unexpected error in ORT: out of memory is a resource limit, anything else a 503. */
function failure(error: unknown): ApiError {
  const message = error instanceof Error ? error.message : String(error);
  if (OUT_OF_MEMORY.test(message)) {
    return new ApiError(
      "model_resource_limit",
      `the model ran out of memory in the isolated BYOM Worker (${message.slice(0, 200)}); send fewer or smaller inputs`,
      { extensions: { resource: "wasm_heap" } },
    );
  }
  return new ApiError("model_unavailable", `the isolated BYOM Worker failed: ${message.slice(0, 200)}`);
}

/**
 * Runs `work` and refuses it afterwards when it grew ORT's WASM heap past the bound: every session of
 * this isolate is dropped (released), so the next request starts from an empty cache.
 */
async function withinHeap<T>(config: RunnerConfig, what: string, work: () => Promise<T>): Promise<T> {
  const before = wasmHeapBytes() ?? 0;
  let result: T;
  try {
    result = await work();
  } catch (error) {
    // ORT ran out of memory: what this isolate holds goes, so the next request starts afresh.
    if (!(error instanceof ApiError) && OUT_OF_MEMORY.test(String(error)))
      sessionCache(config).drop(() => true);
    throw error;
  }
  const heap = wasmHeapBytes() ?? 0;
  if (heap > before && heap > config.MAX_WASM_HEAP_BYTES) {
    sessionCache(config).drop(() => true);
    throw new ApiError(
      "model_resource_limit",
      `${what} grew the isolated BYOM Worker's WASM heap to ${heap} bytes, past its bound MAX_WASM_HEAP_BYTES (${config.MAX_WASM_HEAP_BYTES}); send fewer or smaller inputs. Its sessions were dropped; shipped models are not affected.`,
      {
        extensions: { resource: "wasm_heap", wasm_heap_bytes: heap, limit_bytes: config.MAX_WASM_HEAP_BYTES },
      },
    );
  }
  return result;
}

/** Loads `key` (its manifest's sha256 must be the one the main Worker verified) and runs `fn`. */
function withKey<T>(
  bucket: R2Bucket,
  config: RunnerConfig,
  key: ModelKey,
  fn: (session: ModelSession) => Promise<T>,
): Promise<T> {
  return withModel(bucket, config, key.id, key.version, async (m) => {
    if (m.meta.sha256 !== key.sha256) {
      throw new ApiError(
        "model_unavailable",
        `model '${key.id}' version '${key.version}' changed in R2 (sha256 ${m.meta.sha256}, expected ${key.sha256})`,
      );
    }
    return fn(m.session);
  });
}

/** `open`: loads the model and describes its graph. */
export function openModel(bucket: R2Bucket, config: RunnerConfig, rawKey: unknown): Promise<SessionShape> {
  const key = checkKey(rawKey);
  return withinHeap(config, `loading model '${key.id}'`, () =>
    withKey(bucket, config, key, async (session) => ({
      inputNames: [...session.inputNames],
      outputNames: [...session.outputNames],
      inputMetadata: session.inputMetadata.map((m) => ({ ...m })),
      outputMetadata: session.outputMetadata.map((m) => ({ ...m })),
    })),
  );
}

/** `run`: the model on checked tensors; its outputs, at most 16 MiB of them. */
export function runModel(
  bucket: R2Bucket,
  config: RunnerConfig,
  rawKey: unknown,
  rawFeeds: unknown,
): Promise<BoundTensor[]> {
  const key = checkKey(rawKey);
  const bad = (reason: string) => new ApiError("invalid_request", `inputs of model '${key.id}': ${reason}`);
  const feeds = checkBoundTensors(rawFeeds, MAX_BOUND_TENSOR_BYTES, bad);
  return withinHeap(config, `running model '${key.id}'`, () =>
    withKey(bucket, config, key, async (session) => {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const t of feeds) {
        if (!session.inputNames.includes(t.name)) throw bad(`the graph has no input '${t.name}'`);
        try {
          ortFeeds[t.name] = new ort.Tensor(t.type, t.data as never, t.dims);
        } catch (cause) {
          throw bad(`'${t.name}': ${cause instanceof Error ? cause.message : String(cause)}`);
        }
      }
      const outputs = await session.run(ortFeeds);
      try {
        let bytes = 0;
        return Object.entries(outputs).map(([name, t]) => {
          const data = t.data;
          bytes += Array.isArray(data)
            ? data.reduce((a: number, s: string) => a + s.length * 2, 0)
            : (data as ArrayBufferView).byteLength;
          if (bytes > MAX_BOUND_TENSOR_BYTES) {
            throw new ApiError(
              "model_resource_limit",
              `model '${key.id}' returned more than ${MAX_BOUND_TENSOR_BYTES} bytes of outputs`,
              { extensions: { resource: "outputs", limit_bytes: MAX_BOUND_TENSOR_BYTES } },
            );
          }
          return { name, type: t.type, dims: [...t.dims], data };
        });
      } finally {
        for (const t of Object.values(outputs)) t.dispose();
      }
    }),
  );
}

const limitsSchema = z.object({
  max_model_bytes: z.number().int().positive(),
  max_heap_bytes: z.number().int().positive(),
});

/** `validate`: an upload's checks (src/registry/validate.ts) in this isolate. */
export async function validateUpload(
  config: RunnerConfig,
  rawManifest: unknown,
  bytes: unknown,
  rawLimits: unknown,
): Promise<IsolatedValidation> {
  const manifest = parseManifest(rawManifest);
  if (!(bytes instanceof Uint8Array)) throw new ApiError("invalid_request", "the model bytes are missing");
  const limits = limitsSchema.parse(rawLimits);
  return validateModel(
    manifest,
    bytes,
    Math.min(limits.max_model_bytes, config.MAX_MODEL_BYTES),
    Math.min(limits.max_heap_bytes, config.MAX_WASM_HEAP_BYTES),
  );
}
