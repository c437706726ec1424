/**
 * A scikit-learn-style text pipeline — `TfidfVectorizer(ngram_range=(1, 2))` followed by
 * `LogisticRegression` — trained with the project's own trainer, plus its reference forward pass.
 * Runtime-agnostic (Node and workerd). It exists to build "bring your own model" fixtures in the
 * graph shape skl2onnx exports (see `buildTfidfPipelineOnnx` in test/support/sklearn-onnx.ts) and to check that
 * the Worker's scores equal this reference.
 *
 * Semantics follow scikit-learn's defaults:
 *   lowercase → tokens = matches of `\b\w\w+\b` (ASCII word characters, as RE2 and a JS regex
 *   without the `u` flag) → word n-grams (space-joined) → term counts → × idf, with the smoothed
 *   idf = ln((1 + n) / (1 + df)) + 1 → L2 normalisation (an all-zero row stays zero) → linear
 *   model → sigmoid (binary: [1 − p, p]) or softmax (multiclass).
 * The vocabulary is sorted (scikit-learn's column order).
 */

import type { TextFeaturizerSpec } from "../featurizer/text";
import { sigmoid } from "./linear-model";
import { type SparseMatrix, sparseFromRows } from "./sparse";
import { DEFAULT_HYPERPARAMETERS, encodeTargets, type TrainingRow, trainLinear } from "./trainer";

/** scikit-learn's default `token_pattern` without its `(?u)` flag, in RE2 syntax. */
export const TFIDF_TOKEN_PATTERN = "\\b\\w\\w+\\b";

/** A fitted TF-IDF + logistic regression pipeline. */
export interface TfidfPipeline {
  task: "binary" | "multiclass";
  /** Label names in output order; binary has exactly two (the last is the positive class). */
  labels: string[];
  /** Word n-gram range `[min, max]`. */
  ngramRange: [number, number];
  /** Column order of the features: n-grams, words joined by one space, sorted. */
  vocabulary: string[];
  /** Smoothed idf per column. */
  idf: Float32Array;
  /** `[columns, features]` row-major; binary has one column (the positive class). */
  coefficients: Float32Array;
  /** `[columns]`. */
  intercepts: Float32Array;
}

/** Lowercased tokens of `text` (scikit-learn's default analyzer before n-grams). */
export function tfidfTokens(text: string): string[] {
  return text.toLowerCase().match(/\b\w\w+\b/g) ?? [];
}

/** Word n-grams of `tokens` for `range`, shortest first (scikit-learn's order). */
export function wordNgrams(tokens: readonly string[], [lo, hi]: readonly [number, number]): string[] {
  const grams: string[] = [];
  for (let n = lo; n <= hi; n++) {
    for (let i = 0; i + n <= tokens.length; i++) grams.push(tokens.slice(i, i + n).join(" "));
  }
  return grams;
}

/** The TF-IDF row of `text`: column ids and L2-normalised tf·idf values (float64 reference). */
export function tfidfFeatures(
  pipeline: Pick<TfidfPipeline, "vocabulary" | "idf" | "ngramRange">,
  text: string,
  index: ReadonlyMap<string, number> = vocabularyIndex(pipeline.vocabulary),
): { ids: number[]; values: number[] } {
  const counts = new Map<number, number>();
  for (const gram of wordNgrams(tfidfTokens(text), pipeline.ngramRange)) {
    const j = index.get(gram);
    if (j !== undefined) counts.set(j, (counts.get(j) ?? 0) + 1);
  }
  const ids = [...counts.keys()].sort((a, b) => a - b);
  const values = ids.map((j) => (counts.get(j) as number) * (pipeline.idf[j] as number));
  const norm = Math.hypot(...values);
  return { ids, values: norm > 0 ? values.map((v) => v / norm) : values };
}

const indexes = new WeakMap<readonly string[], Map<string, number>>();

/** n-gram → column of a vocabulary (built once per vocabulary array). */
function vocabularyIndex(vocabulary: readonly string[]): Map<string, number> {
  let index = indexes.get(vocabulary);
  if (!index) {
    index = new Map(vocabulary.map((g, j) => [g, j]));
    indexes.set(vocabulary, index);
  }
  return index;
}

/**
 * Fits the vectorizer on `rows` (n-grams with document frequency ≥ `minDf`) and the logistic
 * regression with the project's trainer (`trainLinear`, L-BFGS, scikit-learn's `C`).
 */
export function trainTfidfPipeline(options: {
  rows: readonly TrainingRow[];
  task: "binary" | "multiclass";
  labels: readonly string[];
  ngramRange?: [number, number];
  minDf?: number;
  c?: number;
}): TfidfPipeline {
  const ngramRange = options.ngramRange ?? [1, 2];
  const minDf = options.minDf ?? 1;
  if (options.task === "binary" && options.labels.length !== 2) throw new Error("binary needs two labels");
  const df = new Map<string, number>();
  for (const row of options.rows) {
    for (const gram of new Set(wordNgrams(tfidfTokens(row.text), ngramRange))) {
      df.set(gram, (df.get(gram) ?? 0) + 1);
    }
  }
  const vocabulary = [...df.keys()].filter((g) => (df.get(g) as number) >= minDf).sort();
  const n = options.rows.length;
  const idf = Float32Array.from(vocabulary, (g) => Math.log((1 + n) / (1 + (df.get(g) as number))) + 1);
  const partial = { vocabulary, idf, ngramRange };
  const index = vocabularyIndex(vocabulary);
  const features = options.rows.map((r) => {
    const f = tfidfFeatures(partial, r.text, index);
    return { ids: Int32Array.from(f.ids), values: Float32Array.from(f.values) };
  });
  const X: SparseMatrix = sparseFromRows(features, vocabulary.length);
  const targets = encodeTargets(
    options.task,
    options.labels.length,
    options.rows.map((r) => r.target),
  );
  // trainLinear is written for hashed features; here a "bucket" is a vocabulary column.
  const spec = { buckets: vocabulary.length } as TextFeaturizerSpec;
  const { model } = trainLinear({
    X,
    targets,
    task: options.task,
    labels: options.labels,
    spec,
    hyperparameters: { ...DEFAULT_HYPERPARAMETERS, c: options.c ?? 10 },
    seed: 0,
  });
  // trainLinear stores [features, columns]; skl2onnx's LinearClassifier wants [columns, features].
  const C = model.columns;
  const coefficients = new Float32Array(C * vocabulary.length);
  for (let j = 0; j < vocabulary.length; j++) {
    for (let k = 0; k < C; k++) coefficients[k * vocabulary.length + j] = model.weights[j * C + k] as number;
  }
  return {
    task: options.task,
    labels: [...options.labels],
    ngramRange,
    vocabulary,
    idf,
    coefficients,
    intercepts: Float32Array.from(model.bias),
  };
}

/** Reference probabilities of `text` (label order), computed in float64. */
export function scoreTfidfPipeline(pipeline: TfidfPipeline, text: string): number[] {
  const { ids, values } = tfidfFeatures(pipeline, text);
  const F = pipeline.vocabulary.length;
  const logits = Array.from(pipeline.intercepts, (b, k) => {
    let z = b;
    ids.forEach((j, i) => {
      z += (pipeline.coefficients[k * F + j] as number) * (values[i] as number);
    });
    return z;
  });
  if (pipeline.task === "binary") {
    const p = sigmoid(logits[0] as number);
    return [1 - p, p];
  }
  const max = Math.max(...logits);
  const exps = logits.map((z) => Math.exp(z - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
