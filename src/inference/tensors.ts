/**
 * Numeric tensors of `tensor` models: Open Inference Protocol datatypes ↔ ORT tensors. Input data
 * arrives as JSON numbers/booleans (flat, row-major) and is checked against the declared datatype
 * (integers in range, finite floats) before ORT sees it.
 */
import { ApiError } from "../errors";
import type { TENSOR_DATATYPES, TensorModelManifest, TensorSpec } from "./manifest";
import { ort } from "./ort";

/** An Open Inference Protocol datatype a `tensor` model may use. */
export type TensorDatatype = (typeof TENSOR_DATATYPES)[number];

/**
 * A tensor as the protocol carries it: flat row-major data. INT64 elements beyond ±2^53 are
 * bigints (parsed exactly from the JSON text with `exactIntegers`, written back with `wireJson`).
 */
export interface WireTensor {
  name: string;
  datatype: TensorDatatype;
  shape: number[];
  data: (number | boolean | bigint)[];
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INTEGER_LITERAL = /^-?\d+$/;

/**
 * A `JSON.parse` reviver keeping integers beyond ±2^53 exact: an integer literal (digits only) that
 * a double cannot hold becomes a bigint from its source text. Other numbers are left as parsed.
 */
export function exactIntegers(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== "number" || Number.isSafeInteger(value)) return value;
  const source = context?.source;
  return source !== undefined && INTEGER_LITERAL.test(source) ? BigInt(source) : value;
}

/** A `JSON.stringify` replacer writing bigints as exact JSON integers (`JSON.rawJSON`). */
export function wireJson(_key: string, value: unknown): unknown {
  if (typeof value !== "bigint") return value;
  return (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON(value.toString());
}

const ORT_TYPES = {
  FP32: "float32",
  FP64: "float64",
  INT8: "int8",
  UINT8: "uint8",
  INT32: "int32",
  INT64: "int64",
  BOOL: "bool",
} as const satisfies Record<TensorDatatype, string>;

const INT_RANGES: Partial<Record<TensorDatatype, [number, number]>> = {
  INT8: [-128, 127],
  UINT8: [0, 255],
  INT32: [-(2 ** 31), 2 ** 31 - 1],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** The protocol datatype of an ORT tensor type, or undefined when a `tensor` model cannot use it. */
export function datatypeOf(ortType: string): TensorDatatype | undefined {
  return (Object.keys(ORT_TYPES) as TensorDatatype[]).find((d) => ORT_TYPES[d] === ortType);
}

function bad(detail: string): ApiError {
  return new ApiError("invalid_request", detail);
}

/** Builds the ORT tensor of `input` (400 `invalid_request` naming the element at fault). */
export function toOrtTensor(input: WireTensor): ort.Tensor {
  const { name, datatype, shape, data } = input;
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) {
    throw bad(`input '${name}': shape [${shape.join(", ")}] holds ${size} elements, data has ${data.length}`);
  }
  if (datatype === "BOOL") {
    if (!data.every((v) => typeof v === "boolean"))
      throw bad(`input '${name}': BOOL elements must be booleans`);
    return new ort.Tensor(
      "bool",
      Uint8Array.from(data as boolean[], (v) => (v ? 1 : 0)),
      shape,
    );
  }
  if (datatype === "INT64") {
    const values = data.map((v, i) => {
      const exact = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v as number) : undefined;
      if (exact === undefined || exact < INT64_MIN || exact > INT64_MAX) {
        const hint =
          typeof v === "number" && Number.isInteger(v)
            ? " (write integers beyond ±2^53 as plain digits, not in exponent form)"
            : "";
        throw bad(`input '${name}': element ${i} (${String(v)}) is not a valid INT64${hint}`);
      }
      return exact;
    });
    return new ort.Tensor("int64", BigInt64Array.from(values), shape);
  }
  const range = INT_RANGES[datatype];
  // A float tensor may be written with long integer literals: they are doubles like any number.
  const numbers = data.map((v) => (typeof v === "bigint" && !range ? Number(v) : v));
  numbers.forEach((v, i) => {
    const ok =
      typeof v === "number" &&
      Number.isFinite(v) &&
      (!range || (Number.isInteger(v) && v >= range[0] && v <= range[1]));
    if (!ok) throw bad(`input '${name}': element ${i} (${String(v)}) is not a valid ${datatype}`);
  });
  switch (datatype) {
    case "FP32":
      return new ort.Tensor("float32", Float32Array.from(numbers as number[]), shape);
    case "FP64":
      return new ort.Tensor("float64", Float64Array.from(numbers as number[]), shape);
    case "INT8":
      return new ort.Tensor("int8", Int8Array.from(numbers as number[]), shape);
    case "UINT8":
      return new ort.Tensor("uint8", Uint8Array.from(numbers as number[]), shape);
    case "INT32":
      return new ort.Tensor("int32", Int32Array.from(numbers as number[]), shape);
  }
}

/** Reads an ORT output tensor back into the protocol's shape (int64 beyond ±2^53 as bigints). */
export function fromOrtTensor(name: string, tensor: ort.Tensor): WireTensor {
  const datatype = datatypeOf(tensor.type);
  if (!datatype)
    throw new ApiError("model_unavailable", `output '${name}' has unsupported type ${tensor.type}`);
  const raw = tensor.data as ArrayLike<number | bigint>;
  const exact = (v: number | bigint) => {
    const n = Number(v);
    return typeof v === "bigint" && !Number.isSafeInteger(n) ? v : n;
  };
  const data = datatype === "BOOL" ? Array.from(raw, (v) => v !== 0) : Array.from(raw, exact);
  return { name, datatype, shape: [...tensor.dims], data };
}

/** Whether a concrete shape fits a declared one (`-1` matches any size). */
export function shapeFits(declared: readonly number[], actual: readonly number[]): boolean {
  return declared.length === actual.length && declared.every((d, i) => d === -1 || d === actual[i]);
}

/** A zero tensor of a declared input (dynamic dimensions 1): the default upload probe. */
export function zeroInput(spec: TensorSpec): WireTensor {
  const shape = spec.shape.map((d) => (d === -1 ? 1 : d));
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    name: spec.name,
    datatype: spec.datatype,
    shape,
    data: new Array<number | boolean>(size).fill(spec.datatype === "BOOL" ? false : 0),
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
