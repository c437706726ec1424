/**
 * How the Open Inference Protocol adapter carries tensor data, beyond plain JSON arrays:
 * - **Exact integers.** The request body is parsed losslessly: an integer literal beyond 2^53 becomes
 *   a `bigint` instead of a rounded double (so INT64/UINT64 arrive exact); outputs write INT64/UINT64
 *   elements as exact JSON numbers (`JSON.rawJSON`), whatever their size.
 * - **Non-finite floats.** JSON has no NaN or ±∞: outputs write them as the strings `"NaN"`,
 *   `"Infinity"`, `"-Infinity"`, and inputs accept the same strings.
 * - **The binary tensor data extension** (KServe v2 / Triton): with an `Inference-Header-Content-Length: n`
 *   header the body is `n` bytes of JSON followed by the raw data of each input that has
 *   `parameters.binary_data_size`, in order (little-endian; BOOL one byte; BYTES each a 4-byte
 *   little-endian length then the bytes). Outputs asked for with `parameters.binary_data: true` (or
 *   every output with the request's `parameters.binary_data_output: true`) come back the same way.
 */

import { concatBytes } from "../bytes";
import { ApiError } from "../errors";
import { floatToHalf, halfToFloat } from "../float16";
import { type JsonReviver, parseJsonBytes } from "../http";
import { ELEMENT_BYTES, type TensorDatatype } from "../inference/tensors";

/** The header naming the JSON part's length in a binary tensor body (request and response). */
export const BINARY_HEADER = "inference-header-content-length";

function invalid(detail: string): ApiError {
  return new ApiError("invalid_request", detail);
}

/** `JSON.rawJSON` (workerd has it; TypeScript's lib does not declare it yet). */
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/**
 * Parses UTF-8 JSON bytes, keeping integer literals beyond 2^53 exact as bigints (the reviver sees
 * each number's source text). 400 `invalid_json` when empty, not UTF-8 or not JSON.
 */
export function parseJsonLossless(bytes: Uint8Array): unknown {
  return parseJsonBytes(bytes, exactIntegers);
}

/** A `JSON.parse` reviver: an integer literal a double cannot hold becomes a bigint from its source. */
const exactIntegers: JsonReviver = (_key, value, context) =>
  typeof value === "number" &&
  !Number.isSafeInteger(value) &&
  context?.source !== undefined &&
  /^-?\d+$/.test(context.source)
    ? BigInt(context.source)
    : value;

/**
 * Splits a binary-extension body at `header` (the `Inference-Header-Content-Length` value): the
 * JSON part and the binary data after it.
 */
export function splitBinaryBody(body: Uint8Array, header: string): { json: Uint8Array; binary: Uint8Array } {
  if (!/^\d{1,12}$/.test(header.trim()) || Number(header) > body.byteLength) {
    throw invalid(
      `Inference-Header-Content-Length '${header.slice(0, 40)}' must be the byte length of the JSON part (the body has ${body.byteLength} bytes)`,
    );
  }
  const n = Number(header);
  return { json: body.subarray(0, n), binary: body.subarray(n) };
}

/** A request tensor as the schema reads it: `data`, or `parameters.binary_data_size`. */
interface BinaryCapable {
  name: string;
  datatype: string;
  parameters?: Record<string, unknown> | undefined;
  data?: unknown[] | undefined;
}

/**
 * Gives each input with `parameters.binary_data_size` its data from `binary` (in input order); the
 * sizes must add up to the binary part exactly. Fixed-size datatypes become typed arrays, BYTES a
 * list of byte arrays.
 */
export function attachBinaryInputs<T extends BinaryCapable>(inputs: T[], binary: Uint8Array): void {
  let offset = 0;
  for (const input of inputs) {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) continue;
    if (
      typeof size !== "number" ||
      !Number.isInteger(size) ||
      size < 0 ||
      offset + size > binary.byteLength
    ) {
      throw invalid(
        `input '${input.name}': parameters.binary_data_size ${String(size)} does not fit the ${binary.byteLength - offset} bytes of binary data left`,
      );
    }
    if (input.data !== undefined)
      throw invalid(`input '${input.name}': give either data or binary_data_size`);
    // A typed array where the schema says array: flatData and the core read both.
    input.data = decodeBinary(input.name, input.datatype, binary.slice(offset, offset + size)) as unknown[];
    offset += size;
  }
  if (offset !== binary.byteLength) {
    throw invalid(
      `the body has ${binary.byteLength} bytes of binary tensor data; the inputs' binary_data_size add up to ${offset}`,
    );
  }
}

/** Raw little-endian bytes (an aligned copy) → the datatype's elements. */
function decodeBinary(name: string, datatype: string, bytes: Uint8Array): unknown[] | ArrayLike<unknown> {
  if (datatype === "BYTES") {
    const out: Uint8Array[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    while (at < bytes.byteLength) {
      if (at + 4 > bytes.byteLength) throw invalid(`input '${name}': BYTES data ends inside a length prefix`);
      const n = view.getUint32(at, true);
      if (at + 4 + n > bytes.byteLength) throw invalid(`input '${name}': BYTES element runs past its data`);
      out.push(bytes.slice(at + 4, at + 4 + n));
      at += 4 + n;
    }
    return out;
  }
  const width = ELEMENT_BYTES[datatype as Exclude<TensorDatatype, "BYTES">];
  if (width === undefined) throw invalid(`input '${name}': datatype ${datatype} has no binary form here`);
  if (bytes.byteLength % width !== 0) {
    throw invalid(
      `input '${name}': ${bytes.byteLength} bytes of binary data is not a whole number of ${datatype} elements`,
    );
  }
  const buffer = bytes.buffer as ArrayBuffer;
  switch (datatype as Exclude<TensorDatatype, "BYTES">) {
    case "FP32":
      return new Float32Array(buffer);
    case "FP64":
      return new Float64Array(buffer);
    case "FP16":
      return Array.from(new Uint16Array(buffer), halfToFloat);
    case "INT8":
      return new Int8Array(buffer);
    case "UINT8":
      return new Uint8Array(buffer);
    case "INT16":
      return new Int16Array(buffer);
    case "UINT16":
      return new Uint16Array(buffer);
    case "INT32":
      return new Int32Array(buffer);
    case "UINT32":
      return new Uint32Array(buffer);
    case "INT64":
      return new BigInt64Array(buffer);
    case "UINT64":
      return new BigUint64Array(buffer);
    case "BOOL":
      return Array.from(new Uint8Array(buffer), (v) => v !== 0);
  }
}

/** An output to write: its datatype and flat data. */
export interface OutgoingTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: ArrayLike<unknown>;
}

/** An output's data as JSON values: NaN/±∞ as strings, 64-bit integers exact. */
export function jsonData(tensor: OutgoingTensor): unknown[] {
  const { datatype, data } = tensor;
  if (datatype === "FP32" || datatype === "FP64" || datatype === "FP16") {
    return Array.from(data as ArrayLike<number>, (v) =>
      Number.isFinite(v) ? v : Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity",
    );
  }
  if (datatype === "INT64" || datatype === "UINT64") {
    return Array.from(data as ArrayLike<bigint | number>, (v) => {
      const n = Number(v);
      return Number.isSafeInteger(n) ? n : rawJSON(String(v));
    });
  }
  return Array.from(data);
}

/** An output's data as the binary extension's bytes (little-endian). */
export function binaryData(tensor: OutgoingTensor): Uint8Array {
  const { datatype, data } = tensor;
  if (datatype === "BYTES") {
    const encoder = new TextEncoder();
    const parts: Uint8Array[] = [];
    for (const v of Array.from(data)) {
      const bytes = v instanceof Uint8Array ? v : encoder.encode(String(v));
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, bytes.byteLength, true);
      parts.push(prefix, bytes);
    }
    return concatBytes(parts);
  }
  const values = Array.from(data);
  switch (datatype) {
    case "BOOL":
      return Uint8Array.from(values, (v) => (v ? 1 : 0));
    case "FP16": // held widened to float32: back to half bits
      return new Uint8Array(Uint16Array.from(values as number[], floatToHalf).buffer);
    case "FP32":
      return new Uint8Array(Float32Array.from(values as number[]).buffer);
    case "FP64":
      return new Uint8Array(Float64Array.from(values as number[]).buffer);
    case "INT8":
      return new Uint8Array(Int8Array.from(values as number[]).buffer);
    case "UINT8":
      return Uint8Array.from(values as number[]);
    case "INT16":
      return new Uint8Array(Int16Array.from(values as number[]).buffer);
    case "UINT16":
      return new Uint8Array(Uint16Array.from(values as number[]).buffer);
    case "INT32":
      return new Uint8Array(Int32Array.from(values as number[]).buffer);
    case "UINT32":
      return new Uint8Array(Uint32Array.from(values as number[]).buffer);
    case "INT64":
      return new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v as bigint)).buffer);
    case "UINT64":
      return new Uint8Array(BigUint64Array.from(values, (v) => BigInt(v as bigint)).buffer);
    default:
      throw new ApiError("internal_error", `no binary form for ${datatype}`);
  }
}

/**
 * The answer to an infer request: plain JSON, or — when any output is asked for as binary — the
 * JSON part (those outputs with `parameters.binary_data_size` instead of `data`) followed by their
 * bytes, with `Inference-Header-Content-Length`.
 */
export function inferResponse(
  head: Record<string, unknown>,
  outputs: readonly OutgoingTensor[],
  binary: (name: string) => boolean,
): Response {
  const parts: Uint8Array[] = [];
  const described = outputs.map((o) => {
    const { name, datatype, shape } = o;
    if (!binary(name)) return { name, datatype, shape, data: jsonData(o) };
    const bytes = binaryData(o);
    parts.push(bytes);
    return { name, datatype, shape, parameters: { binary_data_size: bytes.byteLength } };
  });
  const json = JSON.stringify({ ...head, outputs: described });
  if (parts.length === 0) {
    return new Response(json, { headers: { "content-type": "application/json; charset=utf-8" } });
  }
  const jsonBytes = new TextEncoder().encode(json);
  return new Response(concatBytes([jsonBytes, ...parts]), {
    headers: {
      "content-type": "application/octet-stream",
      [BINARY_HEADER]: String(jsonBytes.byteLength),
    },
  });
}
