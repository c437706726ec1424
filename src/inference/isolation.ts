/**
 * Where a model runs, and how the main Worker reaches the isolated one.
 *
 * Uploaded (bring-your-own) models — manifest `source: "upload"`, written by the registry's publish —
 * are loaded, probed and run in their own Worker (`workers/byom/`, the `BYOM` service binding), with
 * its own isolate, ORT instance, WASM heap and CPU limit; shipped and trained models run here.
 * `runsIsolated` is the one decision; the engine (./engine.ts) and the registry's publish ask it.
 *
 * The binding is a narrow RPC (`IsolatedRunner`): `open` a model version (its graph's metadata), `run`
 * it on tensors, `validate` an upload. Both directions are checked here: tensors and
 * metadata coming back are validated before they become ORT tensors, a refusal is re-thrown as the
 * `ApiError` it was (codes allowed below), and a call that fails outright — the isolated Worker ran
 * out of CPU time or memory, or died — is a 503 `model_resource_limit`, without touching this
 * isolate's models.
 */
import * as z from "zod";
import type { ModelManifest, OptimizationLevel } from "../contracts/manifest";
import { OPTIMIZATION_LEVELS } from "../contracts/manifest";
import { ApiError, type ErrorCode } from "../errors";
import { ort } from "./ort";
import type { ModelSession } from "./session-cache";

let insideRunner = false;

/** Called once by the isolated Worker's entry: there, every model runs in its own isolate. */
export function markIsolatedRunner(): void {
  insideRunner = true;
}

/** Does this manifest's model run in the isolated BYOM Worker? (Uploaded models, seen from the main Worker.) */
export function runsIsolated(manifest: Pick<ModelManifest, "source">): boolean {
  return !insideRunner && manifest.source === "upload";
}

/** Which model version a call is about; `sha256` pins the bytes the main Worker verified. */
export interface ModelKey {
  id: string;
  version: string;
  sha256: string;
}

/** A tensor as it crosses the binding. */
export interface BoundTensor {
  name: string;
  type: ort.Tensor.Type;
  dims: number[];
  data: ort.Tensor.DataType;
}

/** A graph's inputs and outputs, as `open` answers them. */
export interface SessionShape {
  inputNames: string[];
  outputNames: string[];
  inputMetadata: ort.InferenceSession.ValueMetadata[];
  outputMetadata: ort.InferenceSession.ValueMetadata[];
}

/** What an upload's validation found (src/registry/validate.ts's `Validation`). */
export interface IsolatedValidation {
  memory: { wasm_heap_bytes: number; session_memory_bytes: number };
  optimization: {
    level: OptimizationLevel;
    disagreements: { level: OptimizationLevel; output: string; detail: string }[];
  };
}

/** A refusal as it crosses the binding (an `ApiError`'s parts). */
export interface BoundProblem {
  code: string;
  detail: string;
  extensions: Record<string, unknown>;
  headers: Record<string, string>;
}

/** Every RPC answers this: errors cross as data, since thrown errors lose their code on the way. */
export type RunnerAnswer<T> = { ok: true; value: T } | { ok: false; problem: BoundProblem };

/** The isolated Worker's RPC surface (`workers/byom/index.ts`). */
export interface IsolatedRunner {
  open(key: ModelKey): Promise<RunnerAnswer<SessionShape>>;
  run(key: ModelKey, feeds: BoundTensor[]): Promise<RunnerAnswer<BoundTensor[]>>;
  validate(
    manifest: ModelManifest,
    bytes: Uint8Array,
    limits: { max_model_bytes: number; max_heap_bytes: number },
  ): Promise<RunnerAnswer<IsolatedValidation>>;
}

/** Codes the isolated Worker may answer with; anything else is its failure (503). */
const PASSED_CODES = new Set<ErrorCode>([
  "invalid_request",
  "invalid_model",
  "model_too_large",
  "model_unavailable",
  "model_resource_limit",
  "model_not_found",
  "model_version_not_found",
]);

/** Members of a problem+json body that a refusal's extensions may not set. */
const RESERVED_MEMBERS = new Set(["type", "title", "status", "code", "detail", "instance", "request_id"]);

/** The typed-array class each ORT tensor type's data has (float16: Uint16Array or Float16Array). */
const DATA_CLASSES: Partial<Record<ort.Tensor.Type, readonly (abstract new (...a: never[]) => unknown)[]>> = {
  float32: [Float32Array],
  float64: [Float64Array],
  int8: [Int8Array],
  uint8: [Uint8Array],
  bool: [Uint8Array],
  int16: [Int16Array],
  uint16: [Uint16Array],
  int32: [Int32Array],
  uint32: [Uint32Array],
  int64: [BigInt64Array],
  uint64: [BigUint64Array],
  float16: [
    Uint16Array,
    ...("Float16Array" in globalThis
      ? [(globalThis as unknown as { Float16Array: abstract new () => unknown }).Float16Array]
      : []),
  ],
};

/** Most tensors one call carries (inputs or outputs), and the largest rank. */
const MAX_TENSORS = 64;
/** Most bytes of tensor data one call carries, either way (Workers RPC messages are ≤ 32 MiB). */
export const MAX_BOUND_TENSOR_BYTES = 16 * 1024 * 1024;
const MAX_RANK = 16;

/**
 * Checks tensors that crossed the binding (either way): at most 64, each a known type whose data is
 * the right typed array (strings: an array of strings) with as many elements as its dims say, and
 * at most `maxBytes` of data in all. Throws `fail(reason)`.
 */
export function checkBoundTensors(
  value: unknown,
  maxBytes: number,
  fail: (reason: string) => Error,
): BoundTensor[] {
  if (!Array.isArray(value) || value.length > MAX_TENSORS)
    throw fail(`not a list of at most ${MAX_TENSORS} tensors`);
  let bytes = 0;
  return value.map((item: unknown, i) => {
    const t = item as Partial<BoundTensor> | null;
    if (typeof t !== "object" || t === null || typeof t.name !== "string" || t.name.length > 1024) {
      throw fail(`tensor ${i} has no name`);
    }
    const { name, type, dims, data } = t;
    if (
      !Array.isArray(dims) ||
      dims.length > MAX_RANK ||
      !dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
    ) {
      throw fail(`tensor '${name}' has invalid dims`);
    }
    const elements = dims.reduce((a: number, d: number) => a * d, 1);
    if (type === "string") {
      if (!Array.isArray(data) || !data.every((s) => typeof s === "string"))
        throw fail(`tensor '${name}' is not strings`);
      bytes += data.reduce((a: number, s: string) => a + s.length * 2, 0);
    } else {
      const classes =
        typeof type === "string" && Object.hasOwn(DATA_CLASSES, type) ? DATA_CLASSES[type] : undefined;
      if (!classes?.some((c) => data instanceof c))
        throw fail(`tensor '${name}' has type ${String(type)} with other data`);
      bytes += (data as ArrayBufferView).byteLength;
    }
    if ((data as ArrayLike<unknown>).length !== elements) {
      throw fail(
        `tensor '${name}' has ${(data as ArrayLike<unknown>).length} elements; its dims [${dims.join(", ")}] say ${elements}`,
      );
    }
    if (bytes > maxBytes) throw fail(`tensors of more than ${maxBytes} bytes`);
    return { name, type: type as ort.Tensor.Type, dims: [...dims], data: data as ort.Tensor.DataType };
  });
}

const metadataSchema = z.array(
  z.union([
    z.object({
      name: z.string().max(1024),
      isTensor: z.literal(true),
      type: z.string().max(32),
      shape: z.array(z.union([z.number().int(), z.string().max(256)])).max(MAX_RANK),
    }),
    z.object({ name: z.string().max(1024), isTensor: z.literal(false) }),
  ]),
);

const shapeSchema = z.object({
  inputNames: z.array(z.string().max(1024)).max(MAX_TENSORS),
  outputNames: z.array(z.string().max(1024)).max(MAX_TENSORS),
  inputMetadata: metadataSchema.max(MAX_TENSORS),
  outputMetadata: metadataSchema.max(MAX_TENSORS),
});

const validationSchema = z.object({
  memory: z.object({
    wasm_heap_bytes: z.number().int().min(0),
    session_memory_bytes: z.number().int(),
  }),
  optimization: z.object({
    level: z.enum(OPTIMIZATION_LEVELS),
    disagreements: z
      .array(z.object({ level: z.enum(OPTIMIZATION_LEVELS), output: z.string(), detail: z.string() }))
      .max(4),
  }),
});

/**
 * The bound runner (the Worker's `BYOM` binding, read from `cloudflare:workers`' env, imported when
 * first needed so that Node-side tools importing the route table never load it), or a 503 when this
 * Worker has none: uploaded models never run here instead.
 */
async function runner(id: string): Promise<IsolatedRunner> {
  const { env } = await import("cloudflare:workers");
  const bound = (env as unknown as { BYOM?: IsolatedRunner }).BYOM;
  if (!bound) {
    throw new ApiError(
      "model_unavailable",
      `model '${id}' is an uploaded model, which runs in the BYOM Worker; this Worker has no BYOM service binding (wrangler.toml [[services]], docs/byom.md)`,
    );
  }
  return bound;
}

/** Why a call to the isolated Worker failed outright, in a client's words. */
function resourceLimit(key: Pick<ModelKey, "id" | "version">, cause: unknown): ApiError {
  const message = cause instanceof Error ? cause.message : String(cause);
  const what = /cpu/i.test(message)
    ? "its CPU time limit"
    : /memory|alloc/i.test(message)
      ? "its memory limit"
      : "its limits, or it failed";
  return new ApiError(
    "model_resource_limit",
    `uploaded model '${key.id}' version '${key.version}' stopped the isolated BYOM Worker it runs in (${what}: ${message.slice(0, 200)}); ` +
      "send fewer or smaller inputs, or re-export the model with less work per input (docs/byom.md#limits). Shipped models are not affected.",
    { cause, extensions: { resource: "byom_worker" }, headers: { "retry-after": "1" } },
  );
}

/** Runs one RPC: a refusal becomes its `ApiError` again, a failed call `model_resource_limit`. */
async function call<T>(
  key: Pick<ModelKey, "id" | "version">,
  rpc: () => Promise<RunnerAnswer<T>>,
): Promise<T> {
  let answer: RunnerAnswer<T>;
  try {
    answer = await rpc();
  } catch (cause) {
    if (cause instanceof ApiError) throw cause;
    throw resourceLimit(key, cause);
  }
  if (typeof answer !== "object" || answer === null) throw resourceLimit(key, "no answer");
  if (answer.ok) return answer.value;
  const { problem } = answer;
  const code = PASSED_CODES.has(problem?.code as ErrorCode)
    ? (problem.code as ErrorCode)
    : "model_unavailable";
  const plain = (v: unknown): Record<string, never> =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, never>) : {};
  // Extensions never replace the problem's own members.
  const extensions = Object.fromEntries(
    Object.entries(plain(problem?.extensions)).filter(([k]) => !RESERVED_MEMBERS.has(k)),
  );
  throw new ApiError(code, String(problem?.detail ?? "the BYOM Worker refused").slice(0, 4000), {
    extensions,
    headers: Object.fromEntries(
      Object.entries(plain(problem?.headers)).filter(([, v]) => typeof v === "string"),
    ),
  });
}

/** Fails a check of what the isolated Worker sent back: that Worker misbehaved (503). */
const badAnswer = (key: ModelKey) => (reason: string) =>
  new ApiError(
    "model_unavailable",
    `model '${key.id}' version '${key.version}': the BYOM Worker answered ${reason}`,
  );

/** A handle to a session in the isolated Worker; `run` goes over the binding. */
class IsolatedSession implements ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly ort.InferenceSession.ValueMetadata[];

  constructor(
    private readonly key: ModelKey,
    shape: SessionShape,
  ) {
    this.inputNames = shape.inputNames;
    this.outputNames = shape.outputNames;
    this.inputMetadata = shape.inputMetadata;
    this.outputMetadata = shape.outputMetadata;
  }

  async run(feeds: ort.InferenceSession.FeedsType): Promise<ort.InferenceSession.ReturnType> {
    const bound: BoundTensor[] = Object.entries(feeds).map(([name, t]) => ({
      name,
      type: t.type,
      dims: [...t.dims],
      data: t.data,
    }));
    const outputs = await call(this.key, () => runner(this.key.id).then((r) => r.run(this.key, bound)));
    const checked = checkBoundTensors(outputs, MAX_BOUND_TENSOR_BYTES, badAnswer(this.key));
    const result: Record<string, ort.Tensor> = {};
    for (const t of checked) {
      if (!this.outputNames.includes(t.name))
        throw badAnswer(this.key)(`an output '${t.name}' the graph does not have`);
      result[t.name] = new ort.Tensor(t.type, t.data, t.dims);
    }
    return result;
  }

  /**
   * Nothing crosses the binding: the BYOM Worker's own session cache (bounded by its
   * MODEL_CACHE_BYTES, least recently used first) lets go of a version no request uses. A release
   * call here would be sent from whichever request dropped the session, without being awaited
   * (`SessionCache.drop`), and such a call left pending when its request ended made the binding's
   * later calls hang in workerd (test/byom-isolation.test.ts, "activating versions back and forth").
   */
  async release(): Promise<void> {}
}

/** Opens model `key` in the isolated Worker: a session handle the engine uses like a local one. */
export async function openIsolatedSession(key: ModelKey): Promise<ModelSession> {
  const answer = await call(key, () => runner(key.id).then((r) => r.open(key)));
  const shape = shapeSchema.safeParse(answer);
  if (!shape.success) throw badAnswer(key)("a graph description that is not one");
  return new IsolatedSession(key, shape.data as SessionShape);
}

/** Validates an upload in the isolated Worker (src/registry/validate.ts's checks, run there). */
export async function validateIsolated(
  manifest: ModelManifest,
  bytes: Uint8Array,
  limits: { max_model_bytes: number; max_heap_bytes: number },
): Promise<IsolatedValidation> {
  const key = { id: manifest.id, version: manifest.version, sha256: manifest.sha256 };
  const answer = await call(key, () => runner(key.id).then((r) => r.validate(manifest, bytes, limits)));
  const parsed = validationSchema.safeParse(answer);
  if (!parsed.success) throw badAnswer(key)("a validation result that is not one");
  return parsed.data;
}
