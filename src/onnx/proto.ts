/**
 * What every ONNX exporter of this project shares: opset and IR version, the graph input/output
 * names the Worker reads, protobuf building helpers, the ModelProto wrapper and the manifest fields
 * every exporter writes. Runtime-agnostic: runs in Node and in workerd (no `fs`, no `eval`; the
 * protobuf code is the static module in `./generated`). The graph families are `text.ts` (linear
 * and embedding-bag text graphs), `cnn.ts` (the trainer's CNNs) and `image-graph.ts` (imported
 * image graphs, e.g. Keras).
 */

import $protobuf from "protobufjs/minimal.js";
import { sha256Hex } from "../hash";
import { onnx } from "./generated/onnx.js";

export { onnx };

/** ONNX opset (default domain) the exported graphs use. */
export const ONNX_OPSET = 17;
/** ONNX IR version written into exported models. */
export const ONNX_IR_VERSION = 8;
/** Graph input/output names (recorded in the manifest). */
export const GRAPH_NAMES = { ids: "ids", values: "values", image: "image", scores: "scores" } as const;

export const DT = onnx.TensorProto.DataType;
export const AT = onnx.AttributeProto.AttributeType;

export function float32Bytes(data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i] as number, true);
  return out;
}

export function int64Bytes(data: readonly number[]): Uint8Array {
  const out = new Uint8Array(data.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setBigInt64(i * 8, BigInt(data[i] as number), true);
  return out;
}

export function tensor(
  name: string,
  dataType: number,
  dims: number[],
  rawData: Uint8Array,
): onnx.ITensorProto {
  return { name, dataType, dims, rawData };
}

export function tensorValue(name: string, elemType: number, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export function intAttr(name: string, i: number): onnx.IAttributeProto {
  return { name, type: AT.INT, i };
}

export function intsAttr(name: string, ints: number[]): onnx.IAttributeProto {
  return { name, type: AT.INTS, ints };
}

export function node(
  opType: string,
  input: string[],
  output: string[],
  attribute: onnx.IAttributeProto[] = [],
): onnx.INodeProto {
  return { opType, input, output, name: `${opType}_${output[0]}`, attribute };
}

/** Identification written into the model's `metadata_props` (and the manifest). */
export interface ExportMetadata {
  /** Model id (`MODEL_ID_RE`). */
  id: string;
  /** Model version (`MODEL_VERSION_RE`). */
  version: string;
  /** Free text for the manifest / ONNX doc string. */
  description?: string;
}

/** What an exporter knows about a model beyond its graph: id, version, metrics, dates. */
export type ManifestMetadata = ExportMetadata & { metrics?: Record<string, number>; createdAt?: Date };

/**
 * The manifest fields every exporter writes the same way: identity, output name, quantization,
 * checksum and size of `bytes`, finite metrics (others dropped), `created_at` (default now).
 */
export async function commonManifestFields(
  model: { quantization: "int8" | "none" },
  meta: ManifestMetadata,
  bytes: Uint8Array,
) {
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(meta.metrics ?? {})) if (Number.isFinite(v)) metrics[k] = v;
  return {
    id: meta.id,
    version: meta.version,
    output: GRAPH_NAMES.scores,
    quantization: model.quantization,
    sha256: await sha256Hex(bytes),
    size_bytes: bytes.byteLength,
    metrics,
    created_at: (meta.createdAt ?? new Date()).toISOString(),
    ...(meta.description === undefined ? {} : { description: meta.description }),
  };
}

export function modelProto(
  meta: ExportMetadata,
  metadataProps: onnx.IStringStringEntryProto[],
  graph: Omit<onnx.IGraphProto, "name">,
  opsets: onnx.IOperatorSetIdProto[] = [{ domain: "", version: ONNX_OPSET }],
): Uint8Array {
  const message: onnx.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    producerName: "edge-inference",
    producerVersion: "1",
    domain: "",
    modelVersion: 1,
    docString: meta.description ?? "",
    opsetImport: opsets,
    metadataProps: [
      { key: "model_id", value: meta.id },
      { key: "model_version", value: meta.version },
      ...metadataProps,
    ],
    graph: { name: `${meta.id}_${meta.version}`.replace(/[^\w]/g, "_"), ...graph },
  };
  // The plain Uint8Array writer, not protobufjs's default Node `Buffer` writer: workerd's `Buffer`
  // (nodejs_compat) rejects the `utf8Write` call that writer makes.
  return onnx.ModelProto.encode(message, new $protobuf.Writer()).finish();
}

/**
 * Adds an int8 weight with one scale per output row (`<name>_q`, `<name>_scale`, zero points 0) and
 * the `DequantizeLinear` (axis 0) that gives the graph the float value `name`.
 */
export function pushInt8Weight(
  initializer: onnx.ITensorProto[],
  nodes: onnx.INodeProto[],
  name: string,
  dims: number[],
  q: { values: Int8Array; scales: Float32Array },
): void {
  const outs = dims[0] as number;
  initializer.push(
    tensor(
      `${name}_q`,
      DT.INT8,
      dims,
      new Uint8Array(q.values.buffer, q.values.byteOffset, q.values.byteLength),
    ),
    tensor(`${name}_scale`, DT.FLOAT, [outs], float32Bytes(q.scales)),
    tensor(`${name}_zero_point`, DT.INT8, [outs], new Uint8Array(outs)),
  );
  nodes.push(
    node(
      "DequantizeLinear",
      [`${name}_q`, `${name}_scale`, `${name}_zero_point`],
      [name],
      [intAttr("axis", 0)],
    ),
  );
}
