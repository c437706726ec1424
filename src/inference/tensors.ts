/**
 * Tensors of `tensor` models: Open Inference Protocol datatypes ↔ ORT tensors, protocol-agnostic.
 * Input data arrives either as a list of elements (from JSON: numbers, booleans, strings, bigints)
 * or as a typed array (from binary tensor data) and is checked against the declared datatype
 * before ORT sees it:
 * - integers must be integers in the datatype's range; INT64/UINT64 elements may be JSON numbers
 *   (exact when the protocol parsed them losslessly: bigints above 2^53), bigints or decimal
 *   strings ("18446744073709551615"), and are never rounded;
 * - floats are numbers, or the strings "NaN", "Infinity", "-Infinity";
 * - BOOL elements are booleans, BYTES elements strings (or bytes).
 * Outputs come back as typed arrays (`bigint` elements for INT64/UINT64); how they are written
 * (JSON numbers, strings for NaN/±∞, raw bytes) is the protocol's business (src/protocols/).
 */

import type { TENSOR_DATATYPES, TensorModelManifest, TensorSpec } from "../contracts/manifest";
import { ApiError } from "../errors";
import { floatToHalf, halfToFloat } from "../float16";
import { ort } from "./ort";

/** An Open Inference Protocol datatype a `tensor` model may use. */
export type TensorDatatype = (typeof TENSOR_DATATYPES)[number];

/** Element data: a list of JSON-ish elements, or a typed array (binary tensor data). */
export type TensorValues =
  | readonly unknown[]
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A tensor as a protocol carries it: flat row-major data. */
export interface WireTensor {
  name: string;
  datatype: TensorDatatype;
  shape: number[];
  data: TensorValues;
}

const ORT_TYPES = {
  FP16: "float16",
  FP32: "float32",
  FP64: "float64",
  INT8: "int8",
  UINT8: "uint8",
  INT16: "int16",
  UINT16: "uint16",
  INT32: "int32",
  UINT32: "uint32",
  INT64: "int64",
  UINT64: "uint64",
  BOOL: "bool",
  BYTES: "string",
} as const satisfies Record<TensorDatatype, string>;

/** Ranges of the integer datatypes (bigint, so INT64/UINT64 are exact). */
const INT_RANGES: Partial<Record<TensorDatatype, [bigint, bigint]>> = {
  INT8: [-128n, 127n],
  UINT8: [0n, 255n],
  INT16: [-32768n, 32767n],
  UINT16: [0n, 65535n],
  INT32: [-(2n ** 31n), 2n ** 31n - 1n],
  UINT32: [0n, 2n ** 32n - 1n],
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
  UINT64: [0n, 2n ** 64n - 1n],
};

/** Bytes per element of the fixed-size datatypes (BYTES has none). */
export const ELEMENT_BYTES: Record<Exclude<TensorDatatype, "BYTES">, number> = {
  FP16: 2,
  FP32: 4,
  FP64: 8,
  INT8: 1,
  UINT8: 1,
  INT16: 2,
  UINT16: 2,
  INT32: 4,
  UINT32: 4,
  INT64: 8,
  UINT64: 8,
  BOOL: 1,
};

/** Strings that stand for non-finite floats (in JSON, which has no NaN or ±∞). */
export const NON_FINITE = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  "-Infinity": Number.NEGATIVE_INFINITY,
} as const;

/** The protocol datatype of an ORT tensor type, or undefined when a `tensor` model cannot use it. */
export function datatypeOf(ortType: string): TensorDatatype | undefined {
  return (Object.keys(ORT_TYPES) as TensorDatatype[]).find((d) => ORT_TYPES[d] === ortType);
}

/** Number of elements of a shape (1 for a scalar, shape `[]`). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function bad(detail: string): ApiError {
  return new ApiError("invalid_request", detail);
}

function describe(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v.slice(0, 40)) : String(v).slice(0, 40);
}

/** An integer element as a bigint, or undefined when it is not an integer. */
function integerOf(v: unknown, wide: boolean): bigint | undefined {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") {
    // A JSON number above 2^53 that was not parsed losslessly has already lost its digits.
    return Number.isInteger(v) && (Number.isSafeInteger(v) || !wide) ? BigInt(v) : undefined;
  }
  if (wide && typeof v === "string" && /^-?\d{1,20}$/.test(v)) return BigInt(v);
  return undefined;
}

/** A float element: a number or one of the non-finite strings. */
function floatOf(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && Object.hasOwn(NON_FINITE, v)) return NON_FINITE[v as keyof typeof NON_FINITE];
  return undefined;
}

/** Builds the ORT tensor of `input` (400 `invalid_request` naming the element at fault). */
export function toOrtTensor(input: WireTensor): ort.Tensor {
  const { name, datatype, shape, data } = input;
  const size = elementCount(shape);
  if (data.length !== size) {
    throw bad(`input '${name}': shape [${shape.join(", ")}] holds ${size} elements, data has ${data.length}`);
  }
  const type = ORT_TYPES[datatype];
  if (!Array.isArray(data)) {
    // Binary tensor data: already of the datatype's element type (checked by the protocol).
    if (datatype === "BOOL")
      return new ort.Tensor(
        "bool",
        Uint8Array.from(data as Uint8Array, (v) => (v ? 1 : 0)),
        shape,
      );
    return new ort.Tensor(type as "float32", data as Float32Array, shape);
  }
  const list = data as readonly unknown[];
  const fail = (i: number): never => {
    const hint =
      datatype === "INT64" || datatype === "UINT64"
        ? " (an integer in range; above 2^53 send it as a JSON number or a decimal string)"
        : datatype.startsWith("FP")
          ? ' (a number, or "NaN", "Infinity", "-Infinity")'
          : "";
    throw bad(`input '${name}': element ${i} (${describe(list[i])}) is not a valid ${datatype}${hint}`);
  };
  switch (datatype) {
    case "BOOL":
      return new ort.Tensor(
        "bool",
        Uint8Array.from(list, (v, i) => (typeof v === "boolean" ? (v ? 1 : 0) : fail(i))),
        shape,
      );
    case "BYTES":
      return new ort.Tensor(
        "string",
        list.map((v, i) =>
          typeof v === "string" ? v : v instanceof Uint8Array ? new TextDecoder().decode(v) : fail(i),
        ),
        shape,
      );
    case "FP16":
    case "FP32":
    case "FP64": {
      const values = list.map((v, i) => floatOf(v) ?? fail(i));
      if (datatype === "FP32") return new ort.Tensor("float32", Float32Array.from(values), shape);
      if (datatype === "FP64") return new ort.Tensor("float64", Float64Array.from(values), shape);
      return new ort.Tensor("float16", Uint16Array.from(values, floatToHalf), shape);
    }
    default: {
      const [lo, hi] = INT_RANGES[datatype] as [bigint, bigint];
      const wide = datatype === "INT64" || datatype === "UINT64";
      const values = list.map((v, i) => {
        const n = integerOf(v, wide);
        return n !== undefined && n >= lo && n <= hi ? n : fail(i);
      });
      switch (datatype) {
        case "INT64":
          return new ort.Tensor("int64", BigInt64Array.from(values), shape);
        case "UINT64":
          return new ort.Tensor("uint64", BigUint64Array.from(values), shape);
        default: {
          const numbers = values.map(Number);
          const arrays = {
            INT8: Int8Array,
            UINT8: Uint8Array,
            INT16: Int16Array,
            UINT16: Uint16Array,
            INT32: Int32Array,
            UINT32: Uint32Array,
          } as const;
          return new ort.Tensor(type as "int32", arrays[datatype].from(numbers) as Int32Array, shape);
        }
      }
    }
  }
}

/** An output read back from ORT: typed data (floats as numbers, FP16 widened; INT64/UINT64 bigint). */
export interface OutputTensor {
  name: string;
  datatype: TensorDatatype;
  shape: number[];
  data: Exclude<TensorValues, readonly unknown[]> | readonly string[] | readonly boolean[];
}

/** Reads an ORT output tensor back (copied: the ORT tensor may be disposed afterwards). */
export function fromOrtTensor(name: string, tensor: ort.Tensor): OutputTensor {
  const datatype = datatypeOf(tensor.type);
  if (!datatype)
    throw new ApiError("model_unavailable", `output '${name}' has unsupported type ${tensor.type}`);
  const raw = tensor.data as unknown;
  let data: OutputTensor["data"];
  if (datatype === "BOOL") data = Array.from(raw as Uint8Array, (v) => v !== 0);
  else if (datatype === "BYTES") data = [...(raw as string[])];
  else if (datatype === "FP16")
    data =
      raw instanceof Uint16Array
        ? Float32Array.from(raw, halfToFloat)
        : Float32Array.from(raw as ArrayLike<number>);
  else data = (raw as Float32Array).slice();
  return { name, datatype, shape: [...tensor.dims], data };
}

/** Whether a concrete shape fits a declared one (`-1` matches any size). */
export function shapeFits(declared: readonly number[], actual: readonly number[]): boolean {
  return declared.length === actual.length && declared.every((d, i) => d === -1 || d === actual[i]);
}

/**
 * The batch size of a request: the largest size given to a declared batch dimension — dimension 0
 * of an input declared dynamic there (`[-1, …]`). Inputs of fixed or rank-0 shape have none (0).
 */
export function batchRows(specs: readonly TensorSpec[], inputs: readonly WireTensor[]): number {
  let rows = 0;
  for (const spec of specs) {
    if (spec.shape[0] !== -1) continue;
    const given = inputs.find((t) => t.name === spec.name)?.shape[0] ?? 0;
    rows = Math.max(rows, given);
  }
  return rows;
}

/** A zero tensor of a declared input (dynamic dimensions 1): the default upload probe. */
export function zeroInput(spec: TensorSpec): WireTensor {
  const shape = spec.shape.map((d) => (d === -1 ? 1 : d));
  const zero = spec.datatype === "BOOL" ? false : spec.datatype === "BYTES" ? "" : 0;
  return {
    name: spec.name,
    datatype: spec.datatype,
    shape,
    data: new Array<unknown>(elementCount(shape)).fill(zero),
  };
}

/** Probe inputs of a `tensor` model: each manifest example (zeros when it has none). */
export function exampleInputs(manifest: TensorModelManifest): WireTensor[][] {
  if (!manifest.examples) return [manifest.inputs.map(zeroInput)];
  return manifest.examples.map((example) =>
    example.inputs.map((input) => ({
      ...input,
      datatype: manifest.inputs.find((t) => t.name === input.name)?.datatype ?? "FP32",
    })),
  );
}
