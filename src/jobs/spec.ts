/**
 * The body of `POST /api/v1/models` (a training job) and its translation into the trainer's
 * options, plus the memory estimate that keeps a job within a Worker isolate.
 */
import * as z from "zod";
import { MODEL_ID_RE, MODEL_VERSION_RE } from "../contracts/manifest";
import { FEATURIZER_NAME, FEATURIZER_VERSION, type TextFeaturizerSpec } from "../featurizer/text";
import { DEFAULT_HYPERPARAMETERS, type TrainHyperparameters } from "../training/trainer";

/** Most inline rows a job request may carry (larger datasets go to R2 under `datasets/`). */
export const MAX_INLINE_ROWS = 5000;
/** Memory a job's trainer may use (optimizer state + featurized rows); a Worker isolate has 128 MB. */
export const TRAINING_MEMORY_BUDGET = 96 * 1024 * 1024;
/** Featurizer of jobs unless overridden: the shipped models' n-grams with 2^18 buckets (see docs/models.md). */
export const JOB_FEATURIZER_DEFAULTS = {
  buckets: 2 ** 18,
  word_ngrams: [1, 2] as [number, number],
  char_ngrams: [2, 5] as [number, number],
  tf: "sublinear" as const,
  norm: "l2" as const,
};
/** Fixed seed of job training (deterministic: a retried job produces the same bytes). */
export const JOB_SEED = 20240601;

const field = z.string().min(1).max(128);
const ngrams = z
  .tuple([z.number().int().min(1).max(8), z.number().int().min(1).max(8)])
  .refine(([lo, hi]) => lo <= hi, "n-gram range must be [min, max] with min <= max")
  .nullable();

/** R2 keys of datasets: under `datasets/`, path-safe. */
export const DATASET_KEY_RE = /^datasets\/(?!(.*\/)?\.\.?(\/|$))[\w.\-/]{1,500}$/;

/** Schema of the job request. */
export const jobRequestSchema = z
  .strictObject({
    id: z.string().regex(MODEL_ID_RE, "id must be a model id (lowercase letters, digits, '-', '_')"),
    task: z.enum(["binary", "multiclass", "multilabel"]),
    dataset: z.union([
      z.strictObject({
        r2_key: z.string().regex(DATASET_KEY_RE, "r2_key must be a path under datasets/"),
        format: z.enum(["csv", "jsonl", "json"]).optional(),
      }),
      z.strictObject({ rows: z.array(z.record(z.string(), z.unknown())).min(1, "rows must not be empty") }),
    ]),
    text_field: field,
    label_field: field.optional(),
    label_fields: z.array(field).min(1).max(64).optional(),
    labels: z.array(z.string().min(1).max(128)).min(1).max(256).optional(),
    hyperparameters: z
      .strictObject({
        c: z.number().positive().max(1e6),
        optimizer: z.enum(["lbfgs", "adagrad"]),
        max_iterations: z.number().int().min(1).max(1000),
        memory: z.number().int().min(1).max(20),
        tolerance: z.number().positive().max(1),
        epochs: z.number().int().min(1).max(100),
        learning_rate: z.number().positive().max(100),
        class_weight: z.enum(["none", "balanced"]),
        idf_penalty: z.boolean(),
      })
      .partial()
      .optional(),
    featurizer: z
      .strictObject({
        buckets: z
          .number()
          .int()
          .min(2 ** 8)
          .max(2 ** 20)
          .refine((n) => (n & (n - 1)) === 0, "buckets must be a power of two"),
        word_ngrams: ngrams,
        char_ngrams: ngrams,
        tf: z.enum(["binary", "sublinear"]),
        norm: z.enum(["l2", "l2-blocks", "none"]),
      })
      .partial()
      .optional(),
    /** 1: calibrate on the fixed validation fold (data rows i % 5 == 3); 4: on 4-fold CV's out-of-fold scores. */
    validation_folds: z
      .literal([1, 4], { error: "validation_folds must be 1 (the fixed fold i % 5 == 3) or 4 (4-fold CV)" })
      .optional(),
    version: z.string().regex(MODEL_VERSION_RE, "version must be a model version").optional(),
    activate: z.boolean().optional(),
    force_update: z.boolean().default(false),
    /** Signed webhook when the job finishes (docs/webhooks.md); checked against WEBHOOK_DESTINATIONS. */
    callback_url: z.string().max(2048).optional(),
    description: z.string().max(2000).optional(),
    /**
     * Add the model's labelled feedback (docs/rollout.md) to the dataset: every feedback item with
     * a stored text, as rows of `text_field` and the label field(s); the metrics say how many.
     */
    feedback: z.boolean().optional(),
  })
  .superRefine((body, ctx) => {
    if (body.task === "multilabel") {
      if (!body.label_fields)
        ctx.addIssue({ code: "custom", path: ["label_fields"], message: "multilabel needs label_fields" });
      if (body.label_field)
        ctx.addIssue({ code: "custom", path: ["label_field"], message: "multilabel takes label_fields" });
      if (body.labels && body.label_fields && body.labels.length !== body.label_fields.length) {
        ctx.addIssue({ code: "custom", path: ["labels"], message: "labels must name each of label_fields" });
      }
    } else {
      if (!body.label_field)
        ctx.addIssue({ code: "custom", path: ["label_field"], message: `${body.task} needs label_field` });
      if (body.label_fields)
        ctx.addIssue({ code: "custom", path: ["label_fields"], message: `${body.task} takes label_field` });
      if (body.task === "binary" && body.labels && body.labels.length !== 2) {
        ctx.addIssue({
          code: "custom",
          path: ["labels"],
          message: "binary takes exactly two labels (the last is positive)",
        });
      }
      if (body.task === "multiclass" && body.labels && body.labels.length < 2) {
        ctx.addIssue({ code: "custom", path: ["labels"], message: "multiclass needs at least two labels" });
      }
    }
    for (const [name, list] of [
      ["labels", body.labels],
      ["label_fields", body.label_fields],
    ] as const) {
      if (list && new Set(list).size !== list.length)
        ctx.addIssue({ code: "custom", path: [name], message: `${name} must be distinct` });
    }
    const f = { ...JOB_FEATURIZER_DEFAULTS, ...body.featurizer };
    if (f.word_ngrams === null && f.char_ngrams === null) {
      ctx.addIssue({
        code: "custom",
        path: ["featurizer"],
        message: "word_ngrams and char_ngrams cannot both be null",
      });
    }
  });

/** A validated job request. */
export type JobRequest = z.infer<typeof jobRequestSchema>;

/** What a job stores in D1 (`jobs.spec`): the request without inline rows. */
export type StoredJobSpec = Omit<JobRequest, "dataset"> & {
  dataset: { r2_key: string; format?: "csv" | "jsonl" | "json" | undefined } | { inline_rows: number };
  activate: boolean;
};

/** Fewest hash buckets a job may use (the request schema's minimum). */
export const MIN_BUCKETS = 2 ** 8;

/**
 * The featurizer spec of a job. Without an explicit `featurizer.buckets`, the buckets are sized
 * from the task: the largest power of two up to the default 2^18 whose optimizer state for
 * `columns` logit columns fits `available` bytes (never below 2^8). A binary task keeps 2^18;
 * three classes with L-BFGS get 2^17, ten get 2^15.
 */
export function jobFeaturizer(
  spec: Pick<JobRequest, "featurizer" | "hyperparameters">,
  columns = 1,
  available = TRAINING_MEMORY_BUDGET,
): TextFeaturizerSpec {
  const buckets =
    spec.featurizer?.buckets ??
    fittingBuckets(columns, jobHyperparameters(spec), available, JOB_FEATURIZER_DEFAULTS.buckets) ??
    MIN_BUCKETS;
  return {
    name: FEATURIZER_NAME,
    version: FEATURIZER_VERSION,
    seed: 0,
    ...JOB_FEATURIZER_DEFAULTS,
    ...spec.featurizer,
    buckets,
  };
}

/**
 * The largest power-of-two bucket count in [2^8, `max`] whose optimizer state fits `available`
 * bytes; undefined when even 2^8 does not.
 */
export function fittingBuckets(
  columns: number,
  hp: TrainHyperparameters,
  available: number,
  max = 2 ** 20,
): number | undefined {
  for (let b = max; b >= MIN_BUCKETS; b /= 2) if (optimizerStateBytes(b, columns, hp) <= available) return b;
  return undefined;
}

/** The largest L-BFGS `memory` (1–20) whose optimizer state fits `available` bytes; undefined when none. */
export function fittingMemory(
  buckets: number,
  columns: number,
  hp: TrainHyperparameters,
  available: number,
): number | undefined {
  for (let m = 20; m >= 1; m--)
    if (optimizerStateBytes(buckets, columns, { ...hp, optimizer: "lbfgs", memory: m }) <= available)
      return m;
  return undefined;
}

/**
 * What fits when a job's optimizer state does not, each named with its value (for the error's
 * hint): the largest buckets; at these buckets, the largest L-BFGS memory, or Adagrad.
 */
export function whatFits(
  buckets: number,
  columns: number,
  hp: TrainHyperparameters,
  available: number,
): string[] {
  const fixes: string[] = [];
  const b = fittingBuckets(columns, hp, available);
  if (b !== undefined) fixes.push(`featurizer.buckets: ${b} (or less)`);
  if (hp.optimizer === "lbfgs") {
    const m = fittingMemory(buckets, columns, hp, available);
    if (m !== undefined) fixes.push(`hyperparameters.memory: ${m} (or less)`);
    if (optimizerStateBytes(buckets, columns, { ...hp, optimizer: "adagrad" }) <= available)
      fixes.push(`hyperparameters.optimizer: "adagrad"`);
  }
  return fixes;
}

/** The trainer's hyperparameters of a job (snake_case request names → `TrainHyperparameters`). */
export function jobHyperparameters(spec: Pick<JobRequest, "hyperparameters">): TrainHyperparameters {
  const h = spec.hyperparameters ?? {};
  return {
    ...DEFAULT_HYPERPARAMETERS,
    ...(h.c === undefined ? {} : { c: h.c }),
    ...(h.optimizer === undefined ? {} : { optimizer: h.optimizer }),
    ...(h.max_iterations === undefined ? {} : { maxIterations: h.max_iterations }),
    ...(h.memory === undefined ? {} : { memory: h.memory }),
    ...(h.tolerance === undefined ? {} : { tolerance: h.tolerance }),
    ...(h.epochs === undefined ? {} : { epochs: h.epochs }),
    ...(h.learning_rate === undefined ? {} : { learningRate: h.learning_rate }),
    ...(h.class_weight === undefined ? {} : { classWeight: h.class_weight }),
    ...(h.idf_penalty === undefined ? {} : { idfPenalty: h.idf_penalty }),
  };
}

/** Logit columns of a task with `labels` labels (binary: one). */
export function columnsOf(task: JobRequest["task"], labels: number): number {
  return task === "binary" ? 1 : labels;
}

/**
 * Estimated bytes of the optimizer's state: parameters P = buckets × columns (+ bias), stored as
 * float64; L-BFGS keeps 2·memory correction vectors plus about 6 working vectors (gradients,
 * direction, trial point, IDF penalty), Adagrad about 5.
 */
export function optimizerStateBytes(buckets: number, columns: number, hp: TrainHyperparameters): number {
  const vectors = hp.optimizer === "lbfgs" ? 2 * hp.memory + 6 : 5;
  return 8 * (buckets * columns + columns) * vectors;
}

/**
 * Estimated bytes of the featurized rows (CSR: int32 id + float32 value per non-zero): each
 * character yields up to one n-gram per character n-gram length, each word one per word n-gram
 * order.
 */
export function featureBytes(texts: readonly string[], spec: TextFeaturizerSpec): number {
  const charOrders = spec.char_ngrams ? spec.char_ngrams[1] - spec.char_ngrams[0] + 1 : 0;
  const wordOrders = spec.word_ngrams ? spec.word_ngrams[1] - spec.word_ngrams[0] + 1 : 0;
  let nnz = 0;
  for (const t of texts) nnz += t.length * charOrders + (t.length / 4) * wordOrders;
  return nnz * 8;
}
