/**
 * ONNX backend node tests (Debian's `libonnx-testdata`: one single-operator model per folder, with
 * inputs and expected outputs as TensorProto files) run two ways:
 * 1. **directly** by onnxruntime-web in Node (optimization level `all`, ORT's default), and
 * 2. **through the service**: uploaded as a `tensor` model (`PUT /api/v1/models/{id}/versions/1`,
 *    manifest from the graph's inputs/outputs, the test's inputs as `examples` when they fit) and
 *    run with `POST /v2/models/{id}/infer`, inputs and outputs as binary tensor data (exact).
 * Outputs are compared as the ONNX backend tests do (floats within rtol 1e-3 / atol 1e-7, NaN = NaN;
 * everything else equal). Every test ORT passes directly must pass through the service.
 *
 *   npx tsx scripts/onnx-conformance.ts [--every N] [--filter REGEX] [--data DIR] [--json FILE]
 *
 * Needs `apt-get install libonnx-testdata` (data in /usr/share/libonnx-testdata/data/node);
 * test/node/onnx-conformance.test.ts runs a sample of it in `npm test`.
 */

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { exportSPKI, generateKeyPair, SignJWT } from "jose";
import type { Miniflare } from "miniflare";
import * as ort from "onnxruntime-web";
import { halfToFloat } from "../src/float16";
import { onnx } from "../src/onnx/generated/onnx.js";
import { build, root, startWorker } from "./local-worker";

/** Where Debian's libonnx-testdata puts the node tests. */
export const NODE_TESTS_DIR = "/usr/share/libonnx-testdata/data/node";

const RTOL = 1e-3;
const ATOL = 1e-7;
/** The manifest schema's limit on one example input's elements. */
const MAX_EXAMPLE_ELEMENTS = 65_536;

/** ONNX element type → Open Inference Protocol datatype, ORT type, bytes per element. */
const TYPES: Record<number, { datatype: string; ort: string; bytes: number } | undefined> = {
  1: { datatype: "FP32", ort: "float32", bytes: 4 },
  2: { datatype: "UINT8", ort: "uint8", bytes: 1 },
  3: { datatype: "INT8", ort: "int8", bytes: 1 },
  4: { datatype: "UINT16", ort: "uint16", bytes: 2 },
  5: { datatype: "INT16", ort: "int16", bytes: 2 },
  6: { datatype: "INT32", ort: "int32", bytes: 4 },
  7: { datatype: "INT64", ort: "int64", bytes: 8 },
  8: { datatype: "BYTES", ort: "string", bytes: 0 },
  9: { datatype: "BOOL", ort: "bool", bytes: 1 },
  10: { datatype: "FP16", ort: "float16", bytes: 2 },
  11: { datatype: "FP64", ort: "float64", bytes: 8 },
  12: { datatype: "UINT32", ort: "uint32", bytes: 4 },
  13: { datatype: "UINT64", ort: "uint64", bytes: 8 },
};

/** A tensor of a test: its type, dims and data (typed array, or strings for STRING). */
interface TestTensor {
  name: string;
  elemType: number;
  dims: number[];
  data: ArrayLike<number | bigint> | string[];
}

/** One node test: the model, its declared inputs/outputs, inputs and expected outputs. */
export interface ConformanceCase {
  name: string;
  bytes: Uint8Array;
  inputs: { name: string; elemType: number; shape: number[] }[];
  outputs: { name: string; elemType: number; shape: number[] }[];
  feeds: TestTensor[];
  expected: TestTensor[];
}

const toNumber = (v: number | { toNumber(): number }): number => (typeof v === "number" ? v : v.toNumber());

/** A TensorProto's elements as a typed array of its type (strings for STRING). */
function tensorData(t: onnx.TensorProto, elemType: number, count: number): TestTensor["data"] {
  if (elemType === 8) return t.stringData.map((b) => new TextDecoder().decode(b));
  const type = TYPES[elemType];
  if (!type) throw new Error(`element type ${elemType}`);
  // A copy: protobufjs hands out views into a pooled Node Buffer.
  const raw = t.rawData && t.rawData.byteLength > 0 ? new Uint8Array(t.rawData) : undefined;
  const arrays: Record<string, (buffer: ArrayBuffer) => ArrayLike<number | bigint>> = {
    float32: (b) => new Float32Array(b),
    uint8: (b) => new Uint8Array(b),
    int8: (b) => new Int8Array(b),
    uint16: (b) => new Uint16Array(b),
    int16: (b) => new Int16Array(b),
    int32: (b) => new Int32Array(b),
    int64: (b) => new BigInt64Array(b),
    bool: (b) => new Uint8Array(b),
    float16: (b) => new Uint16Array(b),
    float64: (b) => new Float64Array(b),
    uint32: (b) => new Uint32Array(b),
    uint64: (b) => new BigUint64Array(b),
  };
  const make = arrays[type.ort] as (buffer: ArrayBuffer) => ArrayLike<number | bigint>;
  if (raw) return make(raw.buffer as ArrayBuffer);
  // Typed fields: float_data (FLOAT), int64_data (INT64), int32_data (the narrow types, bits of FP16).
  const out = make(new ArrayBuffer(count * type.bytes)) as unknown as { [i: number]: number | bigint };
  for (let i = 0; i < count; i++) {
    if (elemType === 1) out[i] = t.floatData[i] as number;
    else if (elemType === 7) out[i] = BigInt(toNumber(t.int64Data[i] as number));
    else if (elemType === 13 || elemType === 12)
      out[i] =
        elemType === 13 ? BigInt(toNumber(t.int64Data[i] as number)) : toNumber(t.int64Data[i] as number);
    else out[i] = t.int32Data[i] as number;
  }
  return out as unknown as ArrayLike<number | bigint>;
}

function readTensor(file: string): TestTensor {
  const t = onnx.TensorProto.decode(readFileSync(file));
  const dims = t.dims.map((d) => toNumber(d as number));
  const count = dims.reduce((a, b) => a * b, 1);
  return { name: t.name, elemType: t.dataType, dims, data: tensorData(t, t.dataType, count) };
}

/** Loads a test folder; a string says why it cannot be a `tensor` model at all. */
export function loadCase(dir: string): ConformanceCase | string {
  const bytes = new Uint8Array(readFileSync(path.join(dir, "model.onnx")));
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) return "no graph";
  const initializers = new Set((graph.initializer ?? []).map((i) => i.name));
  const declare = (v: onnx.IValueInfoProto) => {
    const tensor = v.type?.tensorType;
    if (!tensor) return undefined;
    const shape = (tensor.shape?.dim ?? []).map((d) =>
      d.dimValue !== undefined && d.dimValue !== null && toNumber(d.dimValue as number) > 0
        ? toNumber(d.dimValue as number)
        : -1,
    );
    return {
      name: v.name ?? "",
      elemType: tensor.elemType ?? 0,
      shape,
      known: tensor.shape !== undefined && tensor.shape !== null,
    };
  };
  const inputs = (graph.input ?? []).filter((v) => !initializers.has(v.name ?? "")).map(declare);
  const outputs = (graph.output ?? []).map(declare);
  if (inputs.some((i) => !i) || outputs.some((o) => !o))
    return "a non-tensor input or output (sequence, map, optional)";
  const set = path.join(dir, "test_data_set_0");
  const files = (prefix: string) =>
    readdirSync(set)
      .filter((f) => f.startsWith(prefix) && f.endsWith(".pb"))
      .sort((a, b) => Number(a.replace(/\D/g, "")) - Number(b.replace(/\D/g, "")));
  let feeds: TestTensor[];
  let expected: TestTensor[];
  try {
    feeds = files("input_").map((f) => readTensor(path.join(set, f)));
    expected = files("output_").map((f) => readTensor(path.join(set, f)));
  } catch (error) {
    return `test data: ${(error as Error).message}`;
  }
  const ins = inputs as NonNullable<ReturnType<typeof declare>>[];
  const outs = outputs as NonNullable<ReturnType<typeof declare>>[];
  if (feeds.length !== ins.length || expected.length !== outs.length)
    return "test data does not match the graph";
  feeds.forEach((f, i) => {
    f.name = ins[i]?.name ?? f.name;
  });
  expected.forEach((e, i) => {
    e.name = outs[i]?.name ?? e.name;
  });
  // A graph without shape information: declare the test data's rank, every dimension dynamic.
  const shaped = (specs: typeof ins, data: TestTensor[]) =>
    specs.map((s, i) => ({
      name: s.name,
      elemType: s.elemType,
      shape: s.known ? s.shape : (data[i]?.dims ?? []).map(() => -1),
    }));
  return {
    name: path.basename(dir),
    bytes,
    inputs: shaped(ins, feeds),
    outputs: shaped(outs, expected),
    feeds,
    expected,
  };
}

/** Compares an output with the expected tensor; undefined when it matches. */
function mismatch(
  expected: TestTensor,
  dims: readonly number[],
  data: ArrayLike<unknown>,
): string | undefined {
  if (expected.dims.join(",") !== dims.join(","))
    return `'${expected.name}' shape [${dims}] ≠ [${expected.dims}]`;
  const want = expected.data as ArrayLike<unknown>;
  if (want.length !== data.length)
    return `'${expected.name}' has ${data.length} elements, expected ${want.length}`;
  const float = expected.elemType === 1 || expected.elemType === 10 || expected.elemType === 11;
  for (let i = 0; i < want.length; i++) {
    let a = want[i];
    let b = data[i];
    if (expected.elemType === 10) {
      a = halfToFloat(a as number);
      b = typeof b === "number" && data instanceof Uint16Array ? halfToFloat(b) : b;
    }
    if (float) {
      const x = a as number;
      const y = Number(b);
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      if (x === y) continue;
      if (!(Math.abs(x - y) <= ATOL + RTOL * Math.abs(x)))
        return `'${expected.name}'[${i}] = ${y}, expected ${x}`;
    } else if (expected.elemType === 9) {
      if (Boolean(a) !== Boolean(b)) return `'${expected.name}'[${i}] = ${String(b)}, expected ${String(a)}`;
    } else if (String(a) !== String(b)) {
      return `'${expected.name}'[${i}] = ${String(b)}, expected ${String(a)}`;
    }
  }
  return undefined;
}

let ortConfigured = false;

/** Runs the case with onnxruntime-web in Node; undefined when every output matches. */
export async function runDirect(c: ConformanceCase): Promise<string | undefined> {
  if (!ortConfigured) {
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = "fatal";
    ortConfigured = true;
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(c.bytes, { graphOptimizationLevel: "all" });
  } catch (error) {
    return `load: ${(error as Error).message.slice(0, 200)}`;
  }
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const f of c.feeds) {
      const type = TYPES[f.elemType];
      if (!type) return `input type ${f.elemType}`;
      feeds[f.name] = new ort.Tensor(type.ort as "float32", f.data as Float32Array, f.dims);
    }
    const out = await session.run(feeds);
    for (const e of c.expected) {
      const t = out[e.name];
      if (!t) return `no output '${e.name}'`;
      const problem = mismatch(e, t.dims, t.data as ArrayLike<unknown>);
      if (problem) return problem;
    }
    return undefined;
  } catch (error) {
    return `run: ${(error as Error).message.slice(0, 200)}`;
  } finally {
    await session.release();
  }
}

/** A running service: its URL and a token source. */
export interface Service {
  url: string;
  token: () => Promise<string>;
  mf: Miniflare;
}

/** Builds the bundle (into dist/`outdir`) and starts it in workerd with a signing key it trusts. */
export async function startService(outdir = "conformance"): Promise<Service> {
  const bundle = await build(path.join(root, "dist", outdir));
  const { mf, url } = await startWorker(bundle, { LOG_LEVEL: "error", REQUEST_LOG: "off" });
  const bucket = await mf.getR2Bucket("MODELS");
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const kid = `conformance/${crypto.randomUUID()}`;
  await bucket.put(`asap-keys/${kid}`, await exportSPKI(publicKey));
  const token = () =>
    new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid })
      .setIssuer("conformance")
      .setSubject("conformance")
      .setAudience("edge-inference")
      .setIssuedAt()
      .setExpirationTime("60s")
      .setJti(crypto.randomUUID())
      .sign(privateKey);
  return { url, token, mf };
}

/** A tensor's elements as manifest example JSON (NaN/±∞ and 64-bit integers as strings). */
function exampleData(t: TestTensor): unknown[] {
  if (t.elemType === 10) return Array.from(t.data as Uint16Array, (h) => jsonFloat(halfToFloat(h)));
  if (t.elemType === 9) return Array.from(t.data as Uint8Array, (v) => v !== 0);
  if (t.elemType === 1 || t.elemType === 11) return Array.from(t.data as Float32Array, jsonFloat);
  return Array.from(t.data as ArrayLike<unknown>, (v) => (typeof v === "bigint" ? String(v) : v));
}

function jsonFloat(v: number): number | string {
  return Number.isFinite(v) ? v : Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
}

/** A tensor's elements as the binary extension's bytes. */
function binaryOf(t: TestTensor): Uint8Array {
  if (t.elemType === 8) {
    const parts = (t.data as string[]).flatMap((s) => {
      const bytes = new TextEncoder().encode(s);
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, bytes.byteLength, true);
      return [prefix, bytes];
    });
    return Buffer.concat(parts);
  }
  const view = t.data as unknown as ArrayBufferView;
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** The output bytes of the binary extension → elements (FP16 as half bits, like the test data). */
function fromBinary(elemType: number, bytes: Uint8Array): ArrayLike<unknown> {
  const buffer = bytes.slice().buffer;
  switch (elemType) {
    case 8: {
      const out: string[] = [];
      const view = new DataView(buffer);
      for (let at = 0; at < bytes.byteLength; ) {
        const n = view.getUint32(at, true);
        out.push(new TextDecoder().decode(bytes.subarray(at + 4, at + 4 + n)));
        at += 4 + n;
      }
      return out;
    }
    case 1:
      return new Float32Array(buffer);
    case 2:
    case 9:
      return new Uint8Array(buffer);
    case 3:
      return new Int8Array(buffer);
    case 4:
    case 10:
      return new Uint16Array(buffer);
    case 5:
      return new Int16Array(buffer);
    case 6:
      return new Int32Array(buffer);
    case 7:
      return new BigInt64Array(buffer);
    case 11:
      return new Float64Array(buffer);
    case 12:
      return new Uint32Array(buffer);
    case 13:
      return new BigUint64Array(buffer);
    default:
      throw new Error(`element type ${elemType}`);
  }
}

/** The model id a case is uploaded as. */
function modelId(name: string, index: number): string {
  return `c${index}-${name.toLowerCase().replace(/[^a-z0-9_-]/g, "-")}`.slice(0, 64);
}

/** Uploads the case as a `tensor` model and runs its inputs through OIP infer; undefined on a match. */
export async function runService(
  c: ConformanceCase,
  service: Service,
  index: number,
): Promise<string | undefined> {
  const unsupported = [...c.inputs, ...c.outputs].find((t) => !TYPES[t.elemType]);
  if (unsupported)
    return `'${unsupported.name}' has element type ${unsupported.elemType}, which tensor models do not take`;
  const id = modelId(c.name, index);
  const spec = (t: { name: string; elemType: number; shape: number[] }) => ({
    name: t.name,
    datatype: TYPES[t.elemType]?.datatype,
    shape: t.shape,
  });
  const fits = c.feeds.every(
    (f) =>
      (f.data as ArrayLike<unknown>).length <= MAX_EXAMPLE_ELEMENTS &&
      (f.elemType !== 8 || (f.data as string[]).every((s) => s.length <= 4096)),
  );
  const manifest = {
    kind: "tensor",
    inputs: c.inputs.map(spec),
    outputs: c.outputs.map(spec),
    output: c.outputs[0]?.name,
    quantization: "none",
    // The node tests' sizes are small: bounds for graphs with data-dependent work (#26,
    // src/registry/graph-bounds.ts), which still refuses a size that comes from a graph input.
    work_bounds: { max_elements: 2 ** 24, max_iterations: 10_000 },
    ...(fits &&
      c.feeds.length > 0 && {
        examples: [{ inputs: c.feeds.map((f) => ({ name: f.name, shape: f.dims, data: exampleData(f) })) }],
      }),
  };
  const form = new FormData();
  form.append("manifest", JSON.stringify(manifest));
  form.append("model", new Blob([c.bytes.slice().buffer as ArrayBuffer]), "model.onnx");
  const uploaded = await fetch(`${service.url}/api/v1/models/${id}/versions/1?activate=true`, {
    method: "PUT",
    headers: { authorization: `Bearer ${await service.token()}` },
    body: form,
  });
  if (uploaded.status !== 201) return `upload ${uploaded.status}: ${(await uploaded.text()).slice(0, 300)}`;
  const parts = c.feeds.map(binaryOf);
  const header = new TextEncoder().encode(
    JSON.stringify({
      inputs: c.feeds.map((f, i) => ({
        name: f.name,
        datatype: TYPES[f.elemType]?.datatype,
        shape: f.dims,
        parameters: { binary_data_size: parts[i]?.byteLength },
      })),
      parameters: { binary_data_output: true },
    }),
  );
  const res = await fetch(`${service.url}/v2/models/${id}/infer`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${await service.token()}`,
      "content-type": "application/octet-stream",
      "inference-header-content-length": String(header.byteLength),
    },
    body: Buffer.concat([header, ...parts]),
  });
  const body = new Uint8Array(await res.arrayBuffer());
  if (res.status !== 200) return `infer ${res.status}: ${new TextDecoder().decode(body).slice(0, 300)}`;
  const jsonLength = Number(res.headers.get("inference-header-content-length") ?? body.byteLength);
  const head = JSON.parse(new TextDecoder().decode(body.subarray(0, jsonLength))) as {
    outputs: { name: string; shape: number[]; parameters?: { binary_data_size?: number } }[];
  };
  let at = jsonLength;
  const got = new Map<string, { shape: number[]; bytes: Uint8Array }>();
  for (const o of head.outputs) {
    const size = o.parameters?.binary_data_size ?? 0;
    got.set(o.name, { shape: o.shape, bytes: body.subarray(at, at + size) });
    at += size;
  }
  for (const e of c.expected) {
    const o = got.get(e.name);
    if (!o) return `no output '${e.name}'`;
    const problem = mismatch(e, o.shape, fromBinary(e.elemType, o.bytes));
    if (problem) return problem;
  }
  return undefined;
}

/** One test's outcome. */
export interface CaseResult {
  name: string;
  /** Why the case is not a tensor model at all (sequence inputs, …), if so. */
  skipped?: string;
  direct?: string | "pass";
  service?: string | "pass";
}

/** The node tests under `dir` (sorted), every `every`-th one, matching `filter`. */
export function caseDirs(dir = NODE_TESTS_DIR, every = 1, filter?: RegExp): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.startsWith("test_") && (!filter || filter.test(n)))
    .sort()
    .filter((_, i) => i % every === 0)
    .map((n) => path.join(dir, n));
}

/** Runs the cases in `dirs` directly and — the ones ORT passes directly — through `service`. */
export async function runConformance(
  dirs: readonly string[],
  service: Service,
  log = false,
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const [i, dir] of dirs.entries()) {
    const c = loadCase(dir);
    if (typeof c === "string") {
      results.push({ name: path.basename(dir), skipped: c });
      continue;
    }
    const direct = (await runDirect(c)) ?? "pass";
    const result: CaseResult = { name: c.name, direct };
    if (direct === "pass") result.service = (await runService(c, service, i)) ?? "pass";
    results.push(result);
    if (log && result.service !== undefined && result.service !== "pass")
      console.log(`${c.name}: ${result.service}`);
    if (log && (i + 1) % 100 === 0) console.log(`  ${i + 1}/${dirs.length}`);
  }
  return results;
}

/** Counts of a run. */
/** Whether a service failure is the upload's refusal of unbounded data-dependent work. */
function refusedUnbounded(service: string | undefined): boolean {
  return (
    service !== undefined &&
    /upload 422: .*(allocates or iterates as its input values say|its size is computed from the model's input)/.test(
      service,
    )
  );
}

export function summary(results: readonly CaseResult[]) {
  const directPass = results.filter((r) => r.direct === "pass");
  return {
    tests: results.length,
    not_tensor_models: results.filter((r) => r.skipped).length,
    direct_pass: directPass.length,
    direct_fail: results.filter((r) => r.direct !== undefined && r.direct !== "pass").length,
    service_pass: directPass.filter((r) => r.service === "pass").length,
    // Refused at upload by the work-bounds policy (#26): a size or trip count taken from a graph
    // input's values is unbounded by construction, whatever the manifest declares.
    refused_unbounded: directPass
      .filter((r) => r.service !== "pass" && refusedUnbounded(r.service))
      .map((r) => r.name),
    service_fail: directPass
      .filter((r) => r.service !== "pass" && !refusedUnbounded(r.service))
      .map((r) => `${r.name}: ${r.service}`),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      every: { type: "string", default: "1" },
      filter: { type: "string" },
      data: { type: "string", default: NODE_TESTS_DIR },
      json: { type: "string" },
    },
  });
  const dirs = caseDirs(
    values.data,
    Number(values.every),
    values.filter ? new RegExp(values.filter) : undefined,
  );
  if (dirs.length === 0) throw new Error(`no node tests in ${values.data}: apt-get install libonnx-testdata`);
  const started = Date.now();
  const service = await startService();
  try {
    const results = await runConformance(dirs, service, true);
    const s = summary(results);
    console.log(JSON.stringify({ ...s, seconds: Math.round((Date.now() - started) / 1000) }, null, 2));
    if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
  } finally {
    await service.mf.dispose();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
