/**
 * Explanations of text scores (issue #31, docs/explanations.md): per label, the n-grams that moved
 * the label's logit most, with their contributions and where they are in the input text.
 *
 * - `exact-linear`: the model's graph is the linear text graph of `src/onnx/text.ts` (checked node by
 *   node). Its logit is `bias + Σ_b W[b]·x_b` over the text's buckets b, with `x` the featurizer's
 *   values after the tf transform and L2 normalisation (a scaling of the whole vector or of each
 *   half: still a per-bucket value, so the logit stays a sum of per-bucket terms). The weights are
 *   read from the graph's own initializers (int8 `W` × `W_scale`, as DequantizeLinear computes it in
 *   float32), once per loaded session, and kept beside it. A bucket's term is shared equally by the
 *   n-gram occurrences of this text that hash into it (several n-grams can collide in a bucket, and
 *   an n-gram repeated k times is k occurrences); an n-gram's contribution is the sum over its
 *   occurrences. So `bias + Σ contributions = logit` exactly (up to float32 rounding of the graph).
 * - `leave-one-out` (any other hashed n-gram text graph, e.g. the `mlp` networks): approximate. Each
 *   distinct word (at most `LOO_MAX_WORDS`, first ones first) is removed from the text (all its
 *   occurrences, replaced by a space); its contribution is `logit(text) − logit(text without it)`,
 *   all variants scored in one batched run. The "logit" is ln(p / (1 − p)) of the score
 *   (ln p for softmax models).
 *
 * Spans are `[start, end)` UTF-16 code-unit offsets into the input text (`src/featurizer/spans.ts`).
 * The cost is counted in the request's work budget: leave-one-out scores `1 + words` texts per text.
 */
import type { Gate, TextModelManifest } from "../contracts/manifest";
import { ApiError } from "../errors";
import { ngramOf, occurrencesOf, sameNgram, wordOccurrences } from "../featurizer/spans";
import { featurize, type SparseFeatures } from "../featurizer/text";
import { onnx } from "../onnx/generated/onnx.js";
import type { WorkBudget } from "./budget";

/** N-grams per label when the caller does not say (`explain_top`). */
export const EXPLAIN_TOP_DEFAULT = 10;
/** Largest `explain_top`. */
export const EXPLAIN_TOP_MAX = 200;
/** Leave-one-out removes at most this many distinct words per text (the first ones). */
export const LOO_MAX_WORDS = 64;

/** One n-gram (or, for leave-one-out, one word) and what it adds to a label's logit. */
export interface NgramContribution {
  ngram: string;
  kind: "word" | "char";
  contribution: number;
  /** Every occurrence in the input: `[start, end)` UTF-16 offsets. */
  spans: [number, number][];
}

/** One label's explanation. */
export interface LabelExplanation {
  label: string;
  /** The label's logit for this text. */
  logit: number;
  /** `exact-linear` only: the graph's bias for the label. */
  bias?: number;
  /** `exact-linear` only: the sum of the contributions not in `top` (bias + Σ top + other = logit). */
  other?: number;
  /** The n-grams with the largest |contribution|, largest first. */
  top: NgramContribution[];
  /**
   * A gated label (issue #28): its score is σ(`logit`) × the score of this label, so `logit` and
   * `top` explain the conditional factor; the gate label's own entry explains the other.
   */
  gated_by?: string;
}

/** One text's explanation. */
export interface TextExplanation {
  method: "exact-linear" | "linearized" | "leave-one-out";
  approximate: boolean;
  labels: LabelExplanation[];
}

/** Options of an explanation. */
export interface ExplainOptions {
  /** N-grams per label (1..`EXPLAIN_TOP_MAX`, default `EXPLAIN_TOP_DEFAULT`). */
  top?: number | undefined;
  /**
   * Names the models that can explain, for the refusal of a model that cannot (the request level
   * lists the registry's text models; the core has no registry).
   */
  explainable?: (() => Promise<string[]>) | undefined;
}

/** 400 `explain_unsupported` for a model that takes no hashed n-gram text. */
export async function explainUnsupported(
  id: string,
  kind: string,
  options: ExplainOptions,
): Promise<ApiError> {
  const names = (await options.explainable?.().catch(() => undefined)) ?? [];
  const which = names.length > 0 ? `: ${names.map((n) => `'${n}'`).join(", ")}` : "";
  return new ApiError(
    "explain_unsupported",
    `model '${id}' is a${kind === "image" ? "n" : ""} ${kind} model; explanations are for text models over hashed n-grams${which}. Drop 'explain' or name one of them in 'model'`,
    { extensions: { explainable_models: names } },
  );
}

/** The weights of a linear text graph, as its initializers hold them. */
export interface LinearGraph {
  kind: "linear";
  columns: number;
  /** `[buckets, columns]` row-major: int8 (× `scales` per column) or float32. */
  weights: Int8Array | Float32Array;
  scales: Float32Array | undefined;
  bias: Float32Array;
  /** Gated columns (issue #28): column `column`'s score is σ(its logit) × column `by`'s score. */
  gates?: Gate[];
}

function dimsOf(t: onnx.ITensorProto): number[] {
  return (t.dims ?? []).map((d) => Number(d));
}

/** A copy of `raw` at offset 0 of its own buffer (`slice` of a Node Buffer would be a view). */
function copyOf(raw: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(raw);
}

function float32s(raw: Uint8Array): Float32Array {
  const copy = copyOf(raw);
  return new Float32Array(copy.buffer, 0, copy.byteLength >>> 2);
}

/** A decoded graph with its initializers by name and its nodes as `Op(inputs)->outputs`. */
interface GraphParts {
  graph: onnx.IGraphProto;
  init: Map<string, onnx.ITensorProto>;
  nodes: string[];
}

/**
 * The weights an exact or linearized explanation reads from a text model's bytes (decoded once):
 * the linear graph's, else the network graph's, else `null` (explained by leave-one-out).
 */
export function readExplainGraph(
  bytes: Uint8Array,
  manifest: TextModelManifest,
): LinearGraph | NetworkGraph | null {
  const graph = onnx.ModelProto.decode(bytes).graph;
  if (!graph) return null;
  const parts: GraphParts = {
    graph,
    init: new Map((graph.initializer ?? []).map((t) => [t.name ?? "", t])),
    nodes: (graph.node ?? []).map(
      (n) => `${n.opType}(${(n.input ?? []).join(",")})->${(n.output ?? []).join(",")}`,
    ),
  };
  return readLinearGraph(parts, manifest) ?? readNetworkGraph(parts, manifest);
}

/**
 * The linear text graph's weights, or `null` for any other graph. The node list must be
 * exactly the one `buildOnnxModel` (src/onnx/text.ts) writes, so the weights read are the logit the
 * graph computes.
 */
function readLinearGraph({ init, nodes }: GraphParts, manifest: TextModelManifest): LinearGraph | null {
  const { ids, values } = manifest.inputs;
  const int8 = init.has("W_scale");
  const head = [
    ...(int8
      ? [`Gather(W,${ids})->w_q`, "DequantizeLinear(w_q,W_scale,W_zero_point)->w_rows"]
      : [`Gather(W,${ids})->w_rows`]),
    `Unsqueeze(${values},unsqueeze_axes)->values_3d`,
    "Mul(w_rows,values_3d)->weighted",
    "ReduceSum(weighted,reduce_axes)->logits_nobias",
    "Add(logits_nobias,bias)->logits",
  ];
  const out = manifest.output;
  const gatedTail = [
    "Sigmoid(logits)->p_all",
    "Gather(p_all,gate_by)->p_by",
    "Mul(p_by,gate_mask)->p_by_masked",
    "Add(p_by_masked,gate_keep)->gate_factor",
    `Mul(p_all,gate_factor)->${out}`,
  ];
  const tails = [
    [`Softmax(logits)->${out}`],
    [`Sigmoid(logits)->${out}`],
    ["Sigmoid(logits)->p_last", "Sub(one,p_last)->p_first", `Concat(p_first,p_last)->${out}`],
    gatedTail,
  ];
  const tail = nodes.slice(head.length);
  if (nodes.slice(0, head.length).join(";") !== head.join(";")) return null;
  if (!tails.some((t) => t.join(";") === tail.join(";"))) return null;
  const W = init.get("W");
  const bias = init.get("bias");
  if (!W?.rawData || !bias?.rawData) return null;
  const [rows, columns] = dimsOf(W);
  if (rows !== manifest.featurizer.buckets || columns === undefined) return null;
  const biasValues = float32s(bias.rawData);
  if (biasValues.length !== columns) return null;
  let gates: Gate[] | undefined;
  if (tail.join(";") === gatedTail.join(";")) {
    const read = readGates(init, columns);
    if (!read) return null;
    gates = read;
  }
  if (int8) {
    const scale = init.get("W_scale");
    const zero = init.get("W_zero_point");
    if (!scale?.rawData || !zero?.rawData || zero.rawData.some((z) => z !== 0)) return null;
    const scales = float32s(scale.rawData);
    if (W.rawData.byteLength !== rows * columns || scales.length !== columns) return null;
    const w = copyOf(W.rawData);
    return {
      kind: "linear",
      columns,
      weights: new Int8Array(w.buffer, 0, w.byteLength),
      scales,
      bias: biasValues,
      ...(gates && { gates }),
    };
  }
  const weights = float32s(W.rawData);
  if (weights.length !== rows * columns) return null;
  return { kind: "linear", columns, weights, scales: undefined, bias: biasValues, ...(gates && { gates }) };
}

/**
 * The gates of a gated linear graph (`gate_by` int64 [C], `gate_mask` 0/1 and `gate_keep` = 1 − mask,
 * float [C]), or `null` if the initializers are not exactly that.
 */
function readGates(init: Map<string, onnx.ITensorProto>, columns: number): Gate[] | null {
  const by = init.get("gate_by")?.rawData;
  const mask = init.get("gate_mask")?.rawData;
  const keep = init.get("gate_keep")?.rawData;
  if (!by || !mask || !keep || by.byteLength !== 8 * columns) return null;
  const byCopy = copyOf(by);
  const byValues = new BigInt64Array(byCopy.buffer, 0, columns);
  const m = float32s(mask);
  const kp = float32s(keep);
  if (m.length !== columns || kp.length !== columns) return null;
  const gates: Gate[] = [];
  for (let c = 0; c < columns; c++) {
    const b = Number(byValues[c]);
    if (m[c] === 0 && kp[c] === 1) continue;
    if (m[c] !== 1 || kp[c] !== 0 || !(b >= 0 && b < columns) || b === c) return null;
    gates.push({ column: c, by: b });
  }
  return gates;
}

/** Which logit column label `k` reads, and its sign (a two-label binary graph has one logit). */
function columnOf(meta: TextModelManifest, columns: number, k: number): { column: number; sign: number } {
  if (columns === 1 && meta.labels.length === 2) return { column: 0, sign: k === 1 ? 1 : -1 };
  return { column: k, sign: 1 };
}

/** Cuts contributions to the `top` largest by magnitude (ties: input order). */
function topOf(all: NgramContribution[], top: number): { top: NgramContribution[]; other: number } {
  const sorted = [...all].sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
  let other = 0;
  for (const c of sorted.slice(top)) other += c.contribution;
  return { top: sorted.slice(0, top), other };
}

/**
 * Scratch buffers of the explanation's hot path, reused across texts (it is synchronous: nothing
 * awaits while one is in use, so concurrent requests in one isolate cannot share one mid-way).
 * One slot per use, named below; `growF64`/`growI32` return a slot's buffer with at least `size`
 * elements, contents not cleared.
 */
const scratch: { top: Int32Array; f64: Float64Array[]; i32: Int32Array[] } = {
  top: new Int32Array(16),
  f64: Array.from({ length: 5 }, () => new Float64Array(1024)),
  i32: Array.from({ length: 9 }, () => new Int32Array(1024)),
};
const F64_ROWS = 0;
const F64_M = 1;
const F64_TERMS = 2;
const F64_CONTRIBUTIONS = 3;
const F64_LOGITS = 4;
const I32_SHARES = 0;
const I32_HEAD = 1;
const I32_GROUP_OF = 2;
const I32_SHOWN = 3;
const I32_GROUP_FEATURE = 4;
const I32_GROUP_COUNT = 5;
const I32_GROUP_FIRST = 6;
const I32_GROUP_NEXT = 7;
const I32_TABLE = 8;

/**
 * Largest scratch buffer kept between texts, in elements (256 KiB of float64: a text of ~1,000
 * buckets with a 32-wide embedding). A longer text gets buffers of its own, as garbage after it,
 * so one long text never pins megabytes in the isolate.
 */
const SCRATCH_KEEP = 1 << 15;

function growF64(slot: number, size: number): Float64Array {
  let a = scratch.f64[slot] as Float64Array;
  if (a.length < size) {
    if (size > SCRATCH_KEEP) return new Float64Array(size);
    a = new Float64Array(Math.min(SCRATCH_KEEP, Math.max(size, a.length * 2)));
    scratch.f64[slot] = a;
  }
  return a;
}

function growI32(slot: number, size: number): Int32Array {
  let a = scratch.i32[slot] as Int32Array;
  if (a.length < size) {
    if (size > SCRATCH_KEEP) return new Int32Array(size);
    a = new Int32Array(Math.min(SCRATCH_KEEP, Math.max(size, a.length * 2)));
    scratch.i32[slot] = a;
  }
  return a;
}

/**
 * Indices of the `k` largest `|values[i]|` among the first `count`, largest first (ties: lower
 * index first).
 */
function topIndices(values: Float64Array, count: number, k: number): number[] {
  if (scratch.top.length < k + 1) scratch.top = new Int32Array(k + 1);
  const best = scratch.top;
  let size = 0;
  let floor = -1; // |value| of the k-th best once there are k
  for (let i = 0; i < count; i++) {
    const v = Math.abs(values[i] as number);
    if (v <= floor) continue;
    // Insertion: shift the smaller ones down one place.
    let at = size;
    while (at > 0 && Math.abs(values[best[at - 1] as number] as number) < v) {
      best[at] = best[at - 1] as number;
      at--;
    }
    best[at] = i;
    size++;
    if (size > k) size--;
    if (size === k) floor = Math.abs(values[best[k - 1] as number] as number);
  }
  const out: number[] = [];
  for (let i = 0; i < size; i++) out.push(best[i] as number);
  return out;
}

/** The exact explanation of one text by a linear graph. */
export function explainLinear(
  meta: TextModelManifest,
  graph: LinearGraph,
  text: string,
  features: SparseFeatures,
  top: number,
): TextExplanation {
  const { columns, weights, scales, bias } = graph;
  const ids = features.ids;
  const nFeatures = ids.length;
  // terms[j * columns + c]: bucket j's term in logit column c, as the graph computes it in float32.
  const terms = growF64(F64_TERMS, nFeatures * columns);
  for (let j = 0; j < nFeatures; j++) {
    const row = (ids[j] as number) * columns;
    const v = features.values[j] as number;
    for (let c = 0; c < columns; c++) {
      const q = weights[row + c] as number;
      terms[j * columns + c] = Math.fround((scales ? Math.fround(q * (scales[c] as number)) : q) * v);
    }
  }
  return explainAdditive(meta, columns, terms, bias, text, features, top, "exact-linear", graph.gates);
}

/**
 * Explains a logit that is `bias + Σ_j terms[j]` over the text's buckets j: each bucket's term
 * shared equally by the n-gram occurrences of this text in it, the `top` n-grams per label.
 * `terms[j * columns + c]` is bucket j's term in logit column c.
 */
function explainAdditive(
  meta: TextModelManifest,
  columns: number,
  terms: Float64Array,
  bias: ArrayLike<number>,
  text: string,
  features: SparseFeatures,
  top: number,
  method: "exact-linear" | "linearized",
  gates?: readonly Gate[],
): TextExplanation {
  const occ = occurrencesOf(text, meta.featurizer);
  const ids = features.ids;
  const nFeatures = ids.length;
  const nOcc = occ.count;
  // Per feature: occurrences in it, and the first of its chain of groups (-1: none).
  const shares = growI32(I32_SHARES, nFeatures).fill(0, 0, nFeatures);
  const head = growI32(I32_HEAD, nFeatures).fill(-1, 0, nFeatures);
  // Per occurrence: its group (-1: its bucket is not a feature, which featurize rules out).
  const groupOf = growI32(I32_GROUP_OF, nOcc);
  // Groups of occurrences of one n-gram, chained per feature (a bucket almost always holds one):
  // feature, occurrence count, first occurrence, next group of the feature.
  const groupFeature = growI32(I32_GROUP_FEATURE, nOcc);
  const groupCount = growI32(I32_GROUP_COUNT, nOcc);
  const groupFirst = growI32(I32_GROUP_FIRST, nOcc);
  const groupNext = growI32(I32_GROUP_NEXT, nOcc);
  // Each feature by its bucket: an open-addressing table at most half full (a bucket's slot is
  // its multiplicative hash; a collision takes the next free slot).
  let bits = 1;
  while (1 << bits < 2 * nFeatures) bits++;
  const tableMask = (1 << bits) - 1;
  const table = growI32(I32_TABLE, tableMask + 1).fill(-1, 0, tableMask + 1);
  for (let j = 0; j < nFeatures; j++) {
    let at = Math.imul(ids[j] as number, 0x9e3779b1) >>> (32 - bits);
    while ((table[at] as number) >= 0) at = (at + 1) & tableMask;
    table[at] = j;
  }
  let nGroups = 0;
  for (let i = 0; i < nOcc; i++) {
    // The occurrence's feature.
    const bucket = occ.bucket[i] as number;
    let at = Math.imul(bucket, 0x9e3779b1) >>> (32 - bits);
    let j = table[at] as number;
    while (j >= 0 && ids[j] !== bucket) {
      at = (at + 1) & tableMask;
      j = table[at] as number;
    }
    groupOf[i] = -1;
    if (j < 0) continue;
    shares[j] = (shares[j] as number) + 1;
    let g = head[j] as number;
    while (g >= 0 && !sameNgram(occ, groupFirst[g] as number, i)) g = groupNext[g] as number;
    if (g < 0) {
      g = nGroups++;
      groupFeature[g] = j;
      groupCount[g] = 0;
      groupFirst[g] = i;
      groupNext[g] = head[j] as number;
      head[j] = g;
    }
    groupCount[g] = (groupCount[g] as number) + 1;
    groupOf[i] = g;
  }
  // Per logit column (a two-label binary graph's labels share its one column, with opposite
  // signs: negation is exact, so the column's sums and top serve both): the logit, the terms of
  // buckets no occurrence maps to, each group's contribution, their total and the top ones.
  const logits = growF64(F64_LOGITS, 2 * columns);
  for (let c = 0; c < columns; c++) {
    logits[c] = bias[c] as number;
    logits[columns + c] = 0;
  }
  for (let j = 0; j < nFeatures; j++) {
    const at = j * columns;
    const none = shares[j] === 0;
    for (let c = 0; c < columns; c++) {
      const t = terms[at + c] as number;
      logits[c] = (logits[c] as number) + t;
      if (none) logits[columns + c] = (logits[columns + c] as number) + t;
    }
  }
  const contributions = growF64(F64_CONTRIBUTIONS, nGroups);
  // Per group shown in some label's top: its index in `shownSpans` (-1: not shown).
  const shownSlot = growI32(I32_SHOWN, nGroups).fill(-1, 0, nGroups);
  const shownSpans: [number, number][][] = [];
  const perColumn: { total: number; shown: number; best: number[]; values: number[] }[] = [];
  for (let c = 0; c < columns; c++) {
    let total = 0;
    for (let g = 0; g < nGroups; g++) {
      const j = groupFeature[g] as number;
      const x = ((terms[j * columns + c] as number) * (groupCount[g] as number)) / (shares[j] as number);
      contributions[g] = x;
      total += x;
    }
    const best = topIndices(contributions, nGroups, top);
    let shown = 0;
    const values: number[] = [];
    for (const g of best) {
      shown += contributions[g] as number;
      values.push(contributions[g] as number);
    }
    perColumn.push({ total, shown, best, values });
  }
  const labels: LabelExplanation[] = [];
  for (let k = 0; k < meta.labels.length; k++) {
    const { column, sign } = columnOf(meta, columns, k);
    const { total, shown, best, values } = perColumn[column] as (typeof perColumn)[number];
    // The contributions not shown, so that bias + Σ top + other = logit.
    const other = sign * total - sign * shown + sign * (logits[columns + column] as number);
    const entries: NgramContribution[] = [];
    best.forEach((g, r) => {
      if (shownSlot[g] === -1) {
        shownSlot[g] = shownSpans.length;
        shownSpans.push([]);
      }
      const first = groupFirst[g] as number;
      entries.push({
        ngram: ngramOf(occ, first),
        kind: occ.kind[first] === 0 ? "word" : "char",
        contribution: sign * (values[r] as number),
        spans: shownSpans[shownSlot[g] as number] as [number, number][],
      });
    });
    const gate = gates?.find((g) => g.column === column);
    labels.push({
      label: meta.labels[k] as string,
      logit: sign * (logits[column] as number),
      bias: sign * (bias[column] as number),
      other,
      top: entries,
      ...(gate && { gated_by: meta.labels[gate.by] as string }),
    });
  }
  // Spans only for the groups shown.
  for (let i = 0; i < nOcc; i++) {
    const g = groupOf[i] as number;
    if (g < 0) continue;
    const slot = shownSlot[g] as number;
    if (slot >= 0)
      (shownSpans[slot] as [number, number][]).push([occ.start[i] as number, occ.end[i] as number]);
  }
  return { method, approximate: method !== "exact-linear", labels };
}

/** The weights of the embedding-bag network graph (src/onnx/text.ts `buildEmbedBagOnnxModel`), dequantized. */
export interface NetworkGraph {
  kind: "network";
  dim: number;
  hidden: number;
  columns: number;
  /** int8 embedding `[buckets, dim]` and its per-dimension scales. */
  embedding: Int8Array;
  embeddingScales: Float32Array;
  /** `[hidden, dim]` and `[columns, hidden]`, dequantized as DequantizeLinear does (float32). */
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
  /**
   * Per hidden unit h, what it adds to M = W2·diag(a)·W1 and to the bias when active, precomputed
   * (the same float64 products the per-text sums would form): `outer[h][c][k] = W2[c,h]·W1[h,k]`
   * (`[hidden, columns, dim]`) and `unitBias[h][c] = W2[c,h]·b1[h]` (`[hidden, columns]`).
   */
  outer: Float64Array;
  unitBias: Float64Array;
}

/** The network graph's weights, or `null` for another graph. */
function readNetworkGraph(
  { graph, init, nodes }: GraphParts,
  manifest: TextModelManifest,
): NetworkGraph | null {
  const { ids, values } = manifest.inputs;
  const out = manifest.output;
  const head = [
    `Gather(E,${ids})->e_q`,
    "DequantizeLinear(e_q,E_scale,E_zero_point)->e_rows",
    `Unsqueeze(${values},unsqueeze_axes)->values_3d`,
    "Mul(e_rows,values_3d)->e_weighted",
    "ReduceSum(e_weighted,reduce_axes)->bag",
    "DequantizeLinear(W1_q,W1_scale,W1_zero_point)->W1",
    "Gemm(bag,W1,B1)->hidden_pre",
    "Relu(hidden_pre)->hidden",
    "DequantizeLinear(W2_q,W2_scale,W2_zero_point)->W2",
    "Gemm(hidden,W2,B2)->logits",
  ];
  const tails = [
    [`Sigmoid(logits)->${out}`],
    ["Sigmoid(logits)->p_last", "Sub(one,p_last)->p_first", `Concat(p_first,p_last)->${out}`],
  ];
  if (nodes.slice(0, head.length).join(";") !== head.join(";")) return null;
  if (!tails.some((t) => t.join(";") === nodes.slice(head.length).join(";"))) return null;
  // Both Gemms multiply by the transposed weight and nothing else (the exporter's only attribute).
  for (const n of graph.node ?? []) {
    if (n.opType !== "Gemm") continue;
    const attrs = (n.attribute ?? []).map((a) => `${a.name}=${Number(a.i ?? 0)}`);
    if (attrs.join(",") !== "transB=1") return null;
  }
  const raw = (name: string) => init.get(name)?.rawData ?? undefined;
  const need = [
    "E",
    "E_scale",
    "E_zero_point",
    "W1_q",
    "W1_scale",
    "W1_zero_point",
    "B1",
    "W2_q",
    "W2_scale",
  ];
  if (![...need, "W2_zero_point", "B2"].every((n) => raw(n) !== undefined)) return null;
  for (const z of ["E_zero_point", "W1_zero_point", "W2_zero_point"]) {
    if ((raw(z) as Uint8Array).some((b) => b !== 0)) return null;
  }
  const [buckets, dim] = dimsOf(init.get("E") as onnx.ITensorProto);
  const [hidden, dim1] = dimsOf(init.get("W1_q") as onnx.ITensorProto);
  const [columns, hidden2] = dimsOf(init.get("W2_q") as onnx.ITensorProto);
  if (buckets !== manifest.featurizer.buckets || !dim || dim1 !== dim || !hidden || hidden2 !== hidden)
    return null;
  if (!columns) return null;
  const int8 = (name: string) => {
    const c = copyOf(raw(name) as Uint8Array);
    return new Int8Array(c.buffer, 0, c.byteLength);
  };
  const dequantRows = (q: Int8Array, scales: Float32Array, rows: number, cols: number) => {
    const w = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) w[r * cols + c] = (q[r * cols + c] as number) * (scales[r] as number);
    return w;
  };
  const embedding = int8("E");
  const embeddingScales = float32s(raw("E_scale") as Uint8Array);
  const b1 = float32s(raw("B1") as Uint8Array);
  const b2 = float32s(raw("B2") as Uint8Array);
  const s1 = float32s(raw("W1_scale") as Uint8Array);
  const s2 = float32s(raw("W2_scale") as Uint8Array);
  if (embedding.length !== buckets * dim || embeddingScales.length !== dim) return null;
  if (b1.length !== hidden || s1.length !== hidden || b2.length !== columns || s2.length !== columns)
    return null;
  const w1 = dequantRows(int8("W1_q"), s1, hidden, dim);
  const w2 = dequantRows(int8("W2_q"), s2, columns, hidden);
  const outer = new Float64Array(hidden * columns * dim);
  const unitBias = new Float64Array(hidden * columns);
  for (let h = 0; h < hidden; h++) {
    for (let c = 0; c < columns; c++) {
      const w = w2[c * hidden + h] as number;
      unitBias[h * columns + c] = w * (b1[h] as number);
      const at = (h * columns + c) * dim;
      for (let k = 0; k < dim; k++) outer[at + k] = w * (w1[h * dim + k] as number);
    }
  }
  return {
    kind: "network",
    dim,
    hidden,
    columns,
    embedding,
    embeddingScales,
    w1,
    b1,
    w2,
    b2,
    outer,
    unitBias,
  };
}

/**
 * The network's explanation of one text, linearized at the text's own ReLU pattern: with
 * `a = [W1·bag + b1 > 0]`, the logit is exactly `W2·diag(a)·W1·bag + (W2·diag(a)·b1 + b2)`, and
 * `bag = Σ_j v_j E[id_j]`, so each bucket's term is `W2·diag(a)·W1·(v_j E[id_j])` and the bias is
 * `W2·diag(a)·b1 + b2` (it depends on the text through `a`). The sum is the logit; a term is what
 * the bucket adds with the pattern held fixed (approximate: removing it could switch units).
 */
export function explainNetwork(
  meta: TextModelManifest,
  net: NetworkGraph,
  text: string,
  features: SparseFeatures,
  top: number,
): TextExplanation {
  const { dim, hidden, columns, embedding, embeddingScales, w1, b1, b2, outer, unitBias } = net;
  const { ids, values } = features;
  const n = ids.length;
  // Each bucket's weighted embedding row, as the graph computes it (float32), and the bag.
  const rows = growF64(F64_ROWS, n * dim + dim);
  const bag = rows.subarray(n * dim, n * dim + dim).fill(0);
  const s = embeddingScales;
  for (let j = 0; j < n; j++) {
    const base = (ids[j] as number) * dim;
    const v = values[j] as number;
    const at = j * dim;
    let k = 0;
    // Four dimensions per step (the same operations per value, a quarter of the loop overhead).
    for (; k + 3 < dim; k += 4) {
      const e0 = Math.fround(Math.fround((embedding[base + k] as number) * (s[k] as number)) * v);
      const e1 = Math.fround(Math.fround((embedding[base + k + 1] as number) * (s[k + 1] as number)) * v);
      const e2 = Math.fround(Math.fround((embedding[base + k + 2] as number) * (s[k + 2] as number)) * v);
      const e3 = Math.fround(Math.fround((embedding[base + k + 3] as number) * (s[k + 3] as number)) * v);
      rows[at + k] = e0;
      rows[at + k + 1] = e1;
      rows[at + k + 2] = e2;
      rows[at + k + 3] = e3;
      bag[k] = (bag[k] as number) + e0;
      bag[k + 1] = (bag[k + 1] as number) + e1;
      bag[k + 2] = (bag[k + 2] as number) + e2;
      bag[k + 3] = (bag[k + 3] as number) + e3;
    }
    for (; k < dim; k++) {
      const e = Math.fround(Math.fround((embedding[base + k] as number) * (s[k] as number)) * v);
      rows[at + k] = e;
      bag[k] = (bag[k] as number) + e;
    }
  }
  // M = W2·diag(a)·W1 ([columns, dim]) over the active units a, and the text's bias: each sum
  // over the units in unit order.
  const size = columns * dim;
  const m = growF64(F64_M, size + columns).fill(0, 0, size);
  const bias = m.subarray(size, size + columns);
  for (let c = 0; c < columns; c++) bias[c] = b2[c] as number;
  for (let h = 0; h < hidden; h++) {
    const wh = h * dim;
    let pre = b1[h] as number;
    for (let k = 0; k < dim; k++) pre += (w1[wh + k] as number) * (bag[k] as number);
    if (!(pre > 0)) continue;
    const ub = h * columns;
    for (let c = 0; c < columns; c++) bias[c] = (bias[c] as number) + (unitBias[ub + c] as number);
    const at = h * size;
    for (let i = 0; i < size; i++) m[i] = (m[i] as number) + (outer[at + i] as number);
  }
  // Each bucket's term per column: M·row. Six columns per pass over the row (then three, then
  // one): independent sums that share the row's loads; each sum still runs in dimension order.
  const terms = growF64(F64_TERMS, n * columns);
  for (let j = 0; j < n; j++) {
    const at = j * dim;
    const out = j * columns;
    let c = 0;
    for (; c + 5 < columns; c += 6) {
      const m0 = c * dim;
      const m1 = m0 + dim;
      const m2 = m1 + dim;
      const m3 = m2 + dim;
      const m4 = m3 + dim;
      const m5 = m4 + dim;
      let t0 = 0;
      let t1 = 0;
      let t2 = 0;
      let t3 = 0;
      let t4 = 0;
      let t5 = 0;
      for (let k = 0; k < dim; k++) {
        const x = rows[at + k] as number;
        t0 += (m[m0 + k] as number) * x;
        t1 += (m[m1 + k] as number) * x;
        t2 += (m[m2 + k] as number) * x;
        t3 += (m[m3 + k] as number) * x;
        t4 += (m[m4 + k] as number) * x;
        t5 += (m[m5 + k] as number) * x;
      }
      terms[out + c] = t0;
      terms[out + c + 1] = t1;
      terms[out + c + 2] = t2;
      terms[out + c + 3] = t3;
      terms[out + c + 4] = t4;
      terms[out + c + 5] = t5;
    }
    for (; c + 2 < columns; c += 3) {
      const m0 = c * dim;
      const m1 = m0 + dim;
      const m2 = m1 + dim;
      let t0 = 0;
      let t1 = 0;
      let t2 = 0;
      for (let k = 0; k < dim; k++) {
        const x = rows[at + k] as number;
        t0 += (m[m0 + k] as number) * x;
        t1 += (m[m1 + k] as number) * x;
        t2 += (m[m2 + k] as number) * x;
      }
      terms[out + c] = t0;
      terms[out + c + 1] = t1;
      terms[out + c + 2] = t2;
    }
    for (; c < columns; c++) {
      const m0 = c * dim;
      let t0 = 0;
      for (let k = 0; k < dim; k++) t0 += (m[m0 + k] as number) * (rows[at + k] as number);
      terms[out + c] = t0;
    }
  }
  return explainAdditive(meta, columns, terms, bias, text, features, top, "linearized");
}

/** Logit of a probability as the graph's output tail inverts it (clamped away from 0 and 1). */
function logitOf(task: string, p: number): number {
  const q = Math.min(1 - 1e-7, Math.max(1e-7, p));
  return task === "multiclass" ? Math.log(q) : Math.log(q) - Math.log1p(-q);
}

/** The texts leave-one-out scores for `text`: the distinct words and the text without each. */
function looVariants(text: string): {
  words: { word: string; spans: [number, number][] }[];
  texts: string[];
} {
  const byWord = new Map<string, [number, number][]>();
  for (const w of wordOccurrences(text)) {
    const spans = byWord.get(w.word);
    if (spans) spans.push([w.start, w.end]);
    else if (byWord.size < LOO_MAX_WORDS) byWord.set(w.word, [[w.start, w.end]]);
  }
  const words = [...byWord].map(([word, spans]) => ({ word, spans }));
  const texts = words.map(({ spans }) => {
    let out = "";
    let at = 0;
    // Spans of one word never overlap and come in order.
    for (const [s, e] of spans) {
      out += `${text.slice(at, s)} `;
      at = e;
    }
    return out + text.slice(at);
  });
  return { words, texts };
}

/** Refuses a leave-one-out explanation whose scored text exceeds the request's work budget. */
function checkLooBudget(budget: WorkBudget, texts: readonly string[]): void {
  const encoder = new TextEncoder();
  let work = 0;
  for (const t of texts) {
    const words = new Set(wordOccurrences(t).map((w) => w.word)).size;
    work += encoder.encode(t).byteLength * (1 + Math.min(words, LOO_MAX_WORDS));
  }
  if (work > budget.MAX_REQUEST_TEXT_BYTES) {
    throw new ApiError(
      "work_budget_exceeded",
      `explaining these texts by leave-one-out scores ${work} bytes of text (each text once more per distinct word, up to ${LOO_MAX_WORDS}); the limit is ${budget.MAX_REQUEST_TEXT_BYTES} per request (MAX_REQUEST_TEXT_BYTES): explain fewer or shorter texts, or use the linear network (exact, no extra runs)`,
      { extensions: { limit_bytes: budget.MAX_REQUEST_TEXT_BYTES } },
    );
  }
}

/**
 * Explains `texts` (their `features` and `scores` already computed by the one scoring run) with a
 * hashed n-gram text model: exact for the linear graph, leave-one-out otherwise (`score` runs the
 * model on featurized rows: one batched run for all the variants of all the texts).
 */
export async function explainTexts(
  budget: WorkBudget,
  meta: TextModelManifest,
  graph: LinearGraph | NetworkGraph | null,
  texts: readonly string[],
  features: readonly SparseFeatures[],
  scores: readonly Float32Array[],
  options: ExplainOptions,
  score: (rows: readonly SparseFeatures[]) => Promise<Float32Array[]>,
): Promise<TextExplanation[]> {
  const top = options.top ?? EXPLAIN_TOP_DEFAULT;
  if (graph?.kind === "network") {
    return texts.map((t, i) => explainNetwork(meta, graph, t, features[i] as SparseFeatures, top));
  }
  if (graph) return texts.map((t, i) => explainLinear(meta, graph, t, features[i] as SparseFeatures, top));
  checkLooBudget(budget, texts);
  const variants = texts.map(looVariants);
  const rows = variants.flatMap((v) => v.texts.map((t) => featurize(t, meta.featurizer)));
  const variantScores = rows.length > 0 ? await score(rows) : [];
  let next = 0;
  return variants.map((v, i) => {
    const full = scores[i] as Float32Array;
    const own = variantScores.slice(next, next + v.texts.length);
    next += v.texts.length;
    const labels = meta.labels.map((label, k) => {
      const logit = logitOf(meta.task, full[k] as number);
      const all = v.words.map((w, u) => ({
        ngram: w.word,
        kind: "word" as const,
        contribution: logit - logitOf(meta.task, (own[u] as Float32Array)[k] as number),
        spans: w.spans,
      }));
      return { label, logit, top: topOf(all, top).top };
    });
    return { method: "leave-one-out", approximate: true, labels };
  });
}
