/**
 * Text graph families: the linear text models (`src/training/linear-model.ts`) and the embedding-bag
 * network (`src/training/embedbag.ts`), both with one contract (what the Worker feeds and reads):
 *   inputs  `ids`    int64   [batch, n]  bucket ids, rows padded with id 0
 *           `values` float32 [batch, n]  feature values, rows padded with 0
 *   output  `scores` float32 [batch, K]  per-label probabilities, K = labels.length
 *
 * Linear int8 graph (C = logit columns, see `columnsFor`):
 *   Gather(W int8 [buckets, C], ids)                   → int8  [batch, n, C]
 *   DequantizeLinear(·, W_scale [C], W_zero_point [C] = 0, axis = 2) → float [batch, n, C]
 *   Mul(·, Unsqueeze(values, axes = [2]))              → float [batch, n, C]
 *   ReduceSum(·, axes = [1], keepdims = 0)             → float [batch, C]
 *   Add(·, bias [C])                                   → logits
 *   Sigmoid (multilabel, binary) | Softmax(axis = −1) (multiclass)
 *   binary with two labels: p = Sigmoid(logit) [batch, 1] → Concat(1 − p, p, axis = 1) → [batch, 2]
 *   multilabel with gates (issue #28, `Gate`): p = Sigmoid(logits) → p · (Gather(p, gate_by, axis = 1)
 *   · gate_mask + gate_keep): a gated column is multiplied by its gate column's probability, the
 *   others by exactly 1 (`gate_by` [C] int64, `gate_mask` [C] 1 on gated columns, `gate_keep` = 1 − mask)
 * Only the gathered rows are dequantized, never the whole matrix. The float graph is the same
 * without DequantizeLinear. Opset 17, IR version 8.
 */

import { type TextModelManifest, textManifestSchema } from "../contracts/manifest";
import type { TextFeaturizerSpec } from "../featurizer/text";
import type { EmbedBagModel } from "../training/embedbag";
import type { LinearTextModel } from "../training/linear-model";
import {
  commonManifestFields,
  DT,
  type ExportMetadata,
  float32Bytes,
  GRAPH_NAMES,
  int64Bytes,
  intAttr,
  type ManifestMetadata,
  modelProto,
  node,
  type onnx,
  tensor,
  tensorValue,
} from "./proto";

/**
 * Serialises `model` as an ONNX ModelProto following the graph contract above. Deterministic: the
 * same model and metadata give the same bytes (no timestamps inside).
 */
export function buildOnnxModel(model: LinearTextModel, meta: ExportMetadata): Uint8Array {
  const C = model.columns;
  const K = model.labels.length;
  const buckets = model.spec.buckets;
  if (model.weights.length !== buckets * C) throw new Error("weights must be [buckets * columns]");
  if (model.bias.length !== C) throw new Error("bias must be [columns]");
  if (model.task === "binary" ? C !== 1 || K > 2 : C !== K) throw new Error("columns do not fit the task");

  const initializer: onnx.ITensorProto[] = [];
  const nodes: onnx.INodeProto[] = [];
  if (model.quantization === "int8") {
    const w = model.weights;
    initializer.push(
      tensor("W", DT.INT8, [buckets, C], new Uint8Array(w.buffer, w.byteOffset, w.byteLength)),
      tensor("W_scale", DT.FLOAT, [C], float32Bytes(model.scales)),
      tensor("W_zero_point", DT.INT8, [C], new Uint8Array(C)),
    );
    nodes.push(
      node("Gather", ["W", GRAPH_NAMES.ids], ["w_q"], [intAttr("axis", 0)]),
      node("DequantizeLinear", ["w_q", "W_scale", "W_zero_point"], ["w_rows"], [intAttr("axis", 2)]),
    );
  } else {
    initializer.push(tensor("W", DT.FLOAT, [buckets, C], float32Bytes(model.weights)));
    nodes.push(node("Gather", ["W", GRAPH_NAMES.ids], ["w_rows"], [intAttr("axis", 0)]));
  }
  initializer.push(
    tensor("bias", DT.FLOAT, [C], float32Bytes(model.bias)),
    tensor("unsqueeze_axes", DT.INT64, [1], int64Bytes([2])),
    tensor("reduce_axes", DT.INT64, [1], int64Bytes([1])),
  );
  nodes.push(
    node("Unsqueeze", [GRAPH_NAMES.values, "unsqueeze_axes"], ["values_3d"]),
    node("Mul", ["w_rows", "values_3d"], ["weighted"]),
    node("ReduceSum", ["weighted", "reduce_axes"], ["logits_nobias"], [intAttr("keepdims", 0)]),
    node("Add", ["logits_nobias", "bias"], ["logits"]),
  );
  if (model.gates?.length) gatedScores(model, initializer, nodes);
  else scoresFromLogits(model.task, K, initializer, nodes);

  const extra = model.gates?.length ? [{ key: "gates", value: JSON.stringify(model.gates) }] : [];
  return textModelProto(meta, model, model.quantization, extra, nodes, initializer);
}

/** The multilabel output tail with gates (see the module comment). */
function gatedScores(
  model: LinearTextModel,
  initializer: onnx.ITensorProto[],
  nodes: onnx.INodeProto[],
): void {
  const C = model.columns;
  const gates = model.gates ?? [];
  if (model.task !== "multilabel") throw new Error("gates are for multilabel models");
  const by = Array.from({ length: C }, (_, k) => k);
  const mask = new Array<number>(C).fill(0);
  for (const g of gates) {
    if (!(g.column >= 0 && g.column < C && g.by >= 0 && g.by < C) || g.column === g.by)
      throw new Error("a gate names two different columns of the model");
    if (gates.some((o) => o.column === g.by)) throw new Error("a gate's column cannot itself be gated");
    by[g.column] = g.by;
    mask[g.column] = 1;
  }
  initializer.push(
    tensor("gate_by", DT.INT64, [C], int64Bytes(by)),
    tensor("gate_mask", DT.FLOAT, [C], float32Bytes(mask)),
    tensor("gate_keep", DT.FLOAT, [C], float32Bytes(mask.map((m) => 1 - m))),
  );
  nodes.push(
    node("Sigmoid", ["logits"], ["p_all"]),
    node("Gather", ["p_all", "gate_by"], ["p_by"], [intAttr("axis", 1)]),
    node("Mul", ["p_by", "gate_mask"], ["p_by_masked"]),
    node("Add", ["p_by_masked", "gate_keep"], ["gate_factor"]),
    node("Mul", ["p_all", "gate_factor"], [GRAPH_NAMES.scores]),
  );
}

/**
 * The ONNX model of a text graph over our featurizer: inputs `ids` (int64) and `values` (float32),
 * both `[batch, n]`, output `scores` `[batch, labels]`; metadata task, labels, quantization and
 * featurizer spec, then `extra`.
 */
function textModelProto(
  meta: ManifestMetadata,
  model: { task: string; labels: readonly string[]; spec: TextFeaturizerSpec },
  quantization: string,
  extra: onnx.IStringStringEntryProto[],
  nodes: onnx.INodeProto[],
  initializer: onnx.ITensorProto[],
): Uint8Array {
  return modelProto(
    meta,
    [
      { key: "task", value: model.task },
      { key: "labels", value: JSON.stringify(model.labels) },
      { key: "quantization", value: quantization },
      { key: "featurizer", value: JSON.stringify(model.spec) },
      ...extra,
    ],
    {
      node: nodes,
      initializer,
      input: [
        tensorValue(GRAPH_NAMES.ids, DT.INT64, ["batch", "n"]),
        tensorValue(GRAPH_NAMES.values, DT.FLOAT, ["batch", "n"]),
      ],
      output: [tensorValue(GRAPH_NAMES.scores, DT.FLOAT, ["batch", model.labels.length])],
    },
  );
}

/**
 * Exports `model` as ONNX bytes plus its validated manifest (`textManifestSchema`). `metrics` go into
 * the manifest as-is (non-finite values are dropped); `createdAt` defaults to now.
 */
export async function exportModel(
  model: LinearTextModel,
  meta: ManifestMetadata,
): Promise<{ onnx: Uint8Array; manifest: TextModelManifest }> {
  const bytes = buildOnnxModel(model, meta);
  const manifest = textManifestSchema.parse({
    task: model.task,
    labels: [...model.labels],
    featurizer: { ...model.spec },
    inputs: { ids: GRAPH_NAMES.ids, values: GRAPH_NAMES.values },
    ...(await commonManifestFields(model, meta, bytes)),
  });
  return { onnx: bytes, manifest };
}

/** The output tail shared by text graphs: `logits` → `scores` according to the task. */
function scoresFromLogits(
  task: string,
  K: number,
  initializer: onnx.ITensorProto[],
  nodes: onnx.INodeProto[],
): void {
  if (task === "multiclass") {
    nodes.push(node("Softmax", ["logits"], [GRAPH_NAMES.scores], [intAttr("axis", -1)]));
  } else if (task === "binary" && K === 2) {
    initializer.push(tensor("one", DT.FLOAT, [1], float32Bytes([1])));
    nodes.push(
      node("Sigmoid", ["logits"], ["p_last"]),
      node("Sub", ["one", "p_last"], ["p_first"]),
      node("Concat", ["p_first", "p_last"], [GRAPH_NAMES.scores], [intAttr("axis", 1)]),
    );
  } else {
    nodes.push(node("Sigmoid", ["logits"], [GRAPH_NAMES.scores]));
  }
}

/**
 * Serialises the embedding-bag network (`src/training/embedbag.ts`) with the text graph contract
 * (same inputs and output as the linear graph, so the Worker runs it unchanged):
 *   Gather(E int8 [buckets, dim], ids) → DequantizeLinear(axis = 2) → × values → ReduceSum(axis 1)
 *   → Gemm(W1 [hidden, dim] int8 → DequantizeLinear(axis = 0), b1, transB) → Relu
 *   → Gemm(W2 [columns, hidden], b2, transB) → logits → Sigmoid (binary with two labels: [1 − p, p]).
 */
export function buildEmbedBagOnnxModel(model: EmbedBagModel, meta: ExportMetadata): Uint8Array {
  const q = model.quantized;
  if (model.quantization !== "int8" || !q) throw new Error("export the int8 network (quantizeEmbedBag)");
  const { dim: d, hidden: H, columns: C } = model;
  const B = model.spec.buckets;
  const K = model.labels.length;
  const bytes = (a: Int8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const initializer: onnx.ITensorProto[] = [
    tensor("E", DT.INT8, [B, d], bytes(q.embedding.values)),
    tensor("E_scale", DT.FLOAT, [d], float32Bytes(q.embedding.scales)),
    tensor("E_zero_point", DT.INT8, [d], new Uint8Array(d)),
    tensor("W1_q", DT.INT8, [H, d], bytes(q.w1.values)),
    tensor("W1_scale", DT.FLOAT, [H], float32Bytes(q.w1.scales)),
    tensor("W1_zero_point", DT.INT8, [H], new Uint8Array(H)),
    tensor("B1", DT.FLOAT, [H], float32Bytes(model.b1)),
    tensor("W2_q", DT.INT8, [C, H], bytes(q.w2.values)),
    tensor("W2_scale", DT.FLOAT, [C], float32Bytes(q.w2.scales)),
    tensor("W2_zero_point", DT.INT8, [C], new Uint8Array(C)),
    tensor("B2", DT.FLOAT, [C], float32Bytes(model.b2)),
    tensor("unsqueeze_axes", DT.INT64, [1], int64Bytes([2])),
    tensor("reduce_axes", DT.INT64, [1], int64Bytes([1])),
  ];
  const nodes: onnx.INodeProto[] = [
    node("Gather", ["E", GRAPH_NAMES.ids], ["e_q"], [intAttr("axis", 0)]),
    node("DequantizeLinear", ["e_q", "E_scale", "E_zero_point"], ["e_rows"], [intAttr("axis", 2)]),
    node("Unsqueeze", [GRAPH_NAMES.values, "unsqueeze_axes"], ["values_3d"]),
    node("Mul", ["e_rows", "values_3d"], ["e_weighted"]),
    node("ReduceSum", ["e_weighted", "reduce_axes"], ["bag"], [intAttr("keepdims", 0)]),
    node("DequantizeLinear", ["W1_q", "W1_scale", "W1_zero_point"], ["W1"], [intAttr("axis", 0)]),
    node("Gemm", ["bag", "W1", "B1"], ["hidden_pre"], [intAttr("transB", 1)]),
    node("Relu", ["hidden_pre"], ["hidden"]),
    node("DequantizeLinear", ["W2_q", "W2_scale", "W2_zero_point"], ["W2"], [intAttr("axis", 0)]),
    node("Gemm", ["hidden", "W2", "B2"], ["logits"], [intAttr("transB", 1)]),
  ];
  scoresFromLogits(model.task, K, initializer, nodes);
  return textModelProto(meta, model, "int8", [{ key: "network", value: "mlp" }], nodes, initializer);
}

/** Exports the int8 embedding-bag network as ONNX bytes plus its validated text manifest. */
export async function exportEmbedBagModel(
  model: EmbedBagModel,
  meta: ManifestMetadata,
): Promise<{ onnx: Uint8Array; manifest: TextModelManifest }> {
  const bytes = buildEmbedBagOnnxModel(model, meta);
  const manifest = textManifestSchema.parse({
    task: model.task,
    labels: [...model.labels],
    featurizer: { ...model.spec },
    inputs: { ids: GRAPH_NAMES.ids, values: GRAPH_NAMES.values },
    network: "mlp",
    ...(await commonManifestFields({ quantization: "int8" }, meta, bytes)),
  });
  return { onnx: bytes, manifest };
}
