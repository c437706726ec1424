/**
 * Test support (also used by `bench/byom-time.ts`): ONNX graphs shaped as scikit-learn exporters
 * write them, built from our own weights with the project's protobuf helpers, so the repository
 * needs no downloaded model. Not part of the Worker.
 */
import {
  AT,
  DT,
  type ExportMetadata,
  float32Bytes,
  int64Bytes,
  intAttr,
  intsAttr,
  modelProto,
  node,
  ONNX_OPSET,
  type onnx,
  tensor,
  tensorValue,
} from "../../src/onnx/proto";

/*
 * "Bring your own model" shapes: graphs as scikit-learn exporters write them, built from our own
 * weights so the repository needs no downloaded model.
 *
 * TF-IDF + logistic regression, as skl2onnx converts `Pipeline([TfidfVectorizer, LogisticRegression])`
 * with a `StringTensorType([None, 1])` input and `zipmap=False`:
 *   input  `input` string [batch, 1]
 *   Reshape(·, [-1])                                           → string [batch]
 *   StringNormalizer(case_change_action = LOWER)               → string [batch]
 *   Tokenizer (com.microsoft; tokenexp, mark = 0, pad "#")     → string [batch, tokens]
 *   TfIdfVectorizer(mode = TF, word n-grams, pool_strings)     → float [batch, features]
 *   Mul(·, idf)                                                → tf·idf
 *   Normalizer (ai.onnx.ml, norm = L2)                         → float [batch, features]
 *   LinearClassifier (ai.onnx.ml; binary: coefficients [−w, w], post_transform LOGISTIC;
 *                     multiclass: SOFTMAX)                     → `output_label` string [batch],
 *                                                                `output_probability` float [batch, K]
 * With `zipmap: true` a ZipMap turns the probabilities into a sequence of maps, as skl2onnx does by
 * default — the shape the registry refuses.
 *
 * MLP over a numeric tensor (`tensor` kind): `features` float [batch, D] → Gemm → Relu → Gemm →
 * Softmax → `probabilities` float [batch, K], plus the `logits`.
 */

/** Opsets of the scikit-learn-shaped graphs (skl2onnx's usual choice for these operators). */
const SKLEARN_OPSETS: onnx.IOperatorSetIdProto[] = [
  { domain: "", version: ONNX_OPSET },
  { domain: "ai.onnx.ml", version: 1 },
  { domain: "com.microsoft", version: 1 },
];

/** Graph names of the scikit-learn-shaped text pipeline (skl2onnx's defaults). */
export const SKLEARN_NAMES = {
  input: "input",
  label: "output_label",
  probabilities: "output_probability",
} as const;

const utf8 = new TextEncoder();

function stringAttr(name: string, s: string): onnx.IAttributeProto {
  return { name, type: AT.STRING, s: utf8.encode(s) };
}

function stringsAttr(name: string, strings: readonly string[]): onnx.IAttributeProto {
  return { name, type: AT.STRINGS, strings: strings.map((s) => utf8.encode(s)) };
}

function floatsAttr(name: string, floats: ArrayLike<number>): onnx.IAttributeProto {
  return { name, type: AT.FLOATS, floats: Array.from(floats) };
}

function domainNode(
  domain: string,
  opType: string,
  input: string[],
  output: string[],
  attribute: onnx.IAttributeProto[] = [],
): onnx.INodeProto {
  return { ...node(opType, input, output, attribute), domain };
}

/** What the scikit-learn-shaped text exporter needs (see `TfidfPipeline` in src/training/tfidf.ts). */
export interface TfidfPipelineWeights {
  task: "binary" | "multiclass";
  labels: readonly string[];
  ngramRange: readonly [number, number];
  vocabulary: readonly string[];
  idf: Float32Array;
  coefficients: Float32Array;
  intercepts: Float32Array;
}

/**
 * Serialises a TF-IDF + logistic regression pipeline in the graph shape skl2onnx produces (see
 * above). `tokenPattern` is the RE2 pattern of the Tokenizer; `zipmap` adds skl2onnx's default
 * ZipMap output (for testing the refusal); `flatInput` declares the input `[batch]`
 * (`StringTensorType([None])`) instead of `[batch, 1]`.
 */
export function buildTfidfPipelineOnnx(
  pipeline: TfidfPipelineWeights,
  meta: ExportMetadata & { tokenPattern: string; zipmap?: boolean; flatInput?: boolean },
): Uint8Array {
  const F = pipeline.vocabulary.length;
  const K = pipeline.labels.length;
  const [lo, hi] = pipeline.ngramRange;
  // TfIdfVectorizer's pool: all 1-grams, then all 2-grams, … (each n-gram as n strings); ngram_counts
  // holds where each length starts, ngram_indexes the output column of each pool entry.
  const pool: string[] = [];
  const counts: number[] = [];
  const indexes: number[] = [];
  for (let n = 1; n <= hi; n++) {
    counts.push(indexes.length);
    pipeline.vocabulary.forEach((gram, j) => {
      const words = gram.split(" ");
      if (words.length !== n) return;
      pool.push(...words);
      indexes.push(j);
    });
  }
  let coefficients = pipeline.coefficients;
  let intercepts = pipeline.intercepts;
  if (pipeline.task === "binary") {
    if (coefficients.length !== F || intercepts.length !== 1) throw new Error("binary: one column");
    coefficients = Float32Array.from([...coefficients.map((w) => -w), ...coefficients]);
    intercepts = Float32Array.from([-(intercepts[0] as number), intercepts[0] as number]);
  } else if (coefficients.length !== F * K || intercepts.length !== K) {
    throw new Error("multiclass: one column per label");
  }
  const probabilities = meta.zipmap ? "probabilities" : SKLEARN_NAMES.probabilities;
  const nodes: onnx.INodeProto[] = [
    node("Reshape", [SKLEARN_NAMES.input, "flat_shape"], ["flattened"]),
    node(
      "StringNormalizer",
      ["flattened"],
      ["normalized"],
      [stringAttr("case_change_action", "LOWER"), intAttr("is_case_sensitive", 0)],
    ),
    domainNode(
      "com.microsoft",
      "Tokenizer",
      ["normalized"],
      ["tokenized"],
      [
        intAttr("mark", 0),
        intAttr("mincharnum", 1),
        stringAttr("pad_value", "#"),
        stringAttr("tokenexp", meta.tokenPattern),
      ],
    ),
    node(
      "TfIdfVectorizer",
      ["tokenized"],
      ["tf"],
      [
        intAttr("min_gram_length", lo),
        intAttr("max_gram_length", hi),
        intAttr("max_skip_count", 0),
        stringAttr("mode", "TF"),
        intsAttr("ngram_counts", counts),
        intsAttr("ngram_indexes", indexes),
        stringsAttr("pool_strings", pool),
      ],
    ),
    node("Mul", ["tf", "idf"], ["tfidf"]),
    domainNode("ai.onnx.ml", "Normalizer", ["tfidf"], ["variable"], [stringAttr("norm", "L2")]),
    domainNode(
      "ai.onnx.ml",
      "LinearClassifier",
      ["variable"],
      [SKLEARN_NAMES.label, probabilities],
      [
        stringsAttr("classlabels_strings", pipeline.labels),
        floatsAttr("coefficients", coefficients),
        floatsAttr("intercepts", intercepts),
        intAttr("multi_class", 0),
        stringAttr("post_transform", pipeline.task === "binary" ? "LOGISTIC" : "SOFTMAX"),
      ],
    ),
  ];
  const output: onnx.IValueInfoProto[] = [tensorValue(SKLEARN_NAMES.label, DT.STRING, ["batch"])];
  if (meta.zipmap) {
    nodes.push(
      domainNode(
        "ai.onnx.ml",
        "ZipMap",
        [probabilities],
        [SKLEARN_NAMES.probabilities],
        [stringsAttr("classlabels_strings", pipeline.labels)],
      ),
    );
    output.push({
      name: SKLEARN_NAMES.probabilities,
      type: {
        sequenceType: {
          elemType: { mapType: { keyType: DT.STRING, valueType: { tensorType: { elemType: DT.FLOAT } } } },
        },
      },
    });
  } else {
    output.push(tensorValue(SKLEARN_NAMES.probabilities, DT.FLOAT, ["batch", K]));
  }
  return modelProto(
    meta,
    [],
    {
      node: nodes,
      initializer: [
        tensor("flat_shape", DT.INT64, [1], int64Bytes([-1])),
        tensor("idf", DT.FLOAT, [F], float32Bytes(pipeline.idf)),
      ],
      input: [tensorValue(SKLEARN_NAMES.input, DT.STRING, meta.flatInput ? ["batch"] : ["batch", 1])],
      output,
    },
    SKLEARN_OPSETS,
  );
}

/** A two-layer perceptron over a numeric feature vector (row-major `[out, in]` weights). */
export interface MlpWeights {
  inputs: number;
  hidden: number;
  outputs: number;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

/** Serialises an MLP as `features` [batch, D] → `logits`, `probabilities` [batch, K] (see above). */
export function buildMlpOnnx(mlp: MlpWeights, meta: ExportMetadata): Uint8Array {
  const { inputs: D, hidden: H, outputs: K } = mlp;
  if (mlp.w1.length !== H * D || mlp.b1.length !== H || mlp.w2.length !== K * H || mlp.b2.length !== K) {
    throw new Error("MLP weights do not match its sizes");
  }
  return modelProto(meta, [], {
    node: [
      node("Gemm", ["features", "W1", "B1"], ["hidden"], [intAttr("transB", 1)]),
      node("Relu", ["hidden"], ["hidden_relu"]),
      node("Gemm", ["hidden_relu", "W2", "B2"], ["logits"], [intAttr("transB", 1)]),
      node("Softmax", ["logits"], ["probabilities"], [intAttr("axis", -1)]),
    ],
    initializer: [
      tensor("W1", DT.FLOAT, [H, D], float32Bytes(mlp.w1)),
      tensor("B1", DT.FLOAT, [H], float32Bytes(mlp.b1)),
      tensor("W2", DT.FLOAT, [K, H], float32Bytes(mlp.w2)),
      tensor("B2", DT.FLOAT, [K], float32Bytes(mlp.b2)),
    ],
    input: [tensorValue("features", DT.FLOAT, ["batch", D])],
    output: [
      tensorValue("probabilities", DT.FLOAT, ["batch", K]),
      tensorValue("logits", DT.FLOAT, ["batch", K]),
    ],
  });
}
