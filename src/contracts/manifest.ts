import * as z from "zod";
import { FEATURIZER_NAME, FEATURIZER_VERSION, type TextFeaturizerSpec } from "../featurizer/text";
import { storedShadowSchema, storedSplitSchema } from "./rollout";

/** The levels a manifest may record, highest first; `disabled` is the reference. */
export const OPTIMIZATION_LEVELS = ["all", "extended", "basic", "disabled"] as const;

/** A graph optimization level of ORT. */
export type OptimizationLevel = (typeof OPTIMIZATION_LEVELS)[number];

/** The level the Worker uses unless a model's manifest records a lower one. */
export const DEFAULT_OPTIMIZATION_LEVEL: OptimizationLevel = "all";

/** Model ids and versions are path segments in R2 keys and URLs: keep them boring. */
export const MODEL_ID_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Network names (`"network"` in a predict request). */
export const NETWORK_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
export const MODEL_VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const ngramRange = z
  .tuple([z.number().int().min(1).max(8), z.number().int().min(1).max(8)])
  .refine(([lo, hi]) => lo <= hi, "n-gram range must be [min, max] with min <= max");

/** The featurizer spec as stored in a manifest (see `src/featurizer/text.ts`). */
export const featurizerSpecSchema = z.object({
  name: z.literal(FEATURIZER_NAME),
  version: z.literal(FEATURIZER_VERSION),
  buckets: z
    .number()
    .int()
    .min(2)
    .max(2 ** 24)
    .refine((n) => (n & (n - 1)) === 0, "buckets must be a power of two"),
  word_ngrams: ngramRange.nullable(),
  char_ngrams: ngramRange.nullable(),
  seed: z.number().int().min(0).max(0xffffffff),
  tf: z.enum(["binary", "sublinear"]),
  norm: z.enum(["l2", "l2-blocks", "none"]),
});

/** The fields every manifest has, whatever the model's input. */
const manifestBaseSchema = z.object({
  id: z.string().regex(MODEL_ID_RE),
  version: z.string().regex(MODEL_VERSION_RE),
  output: z.string().min(1),
  quantization: z.enum(["int8", "none"]),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size_bytes: z.number().int().positive(),
  metrics: z.record(z.string(), z.number()),
  created_at: z.string().datetime(),
  description: z.string().max(2000).optional(),
  /**
   * ORT graph optimization level the Worker creates this model's sessions at (default `all`).
   * Set by the upload validation: the highest level whose outputs on the probe inputs agree with
   * optimizations disabled (src/inference/optimization.ts). A manifest may ask for a lower one.
   */
  graph_optimization_level: z.enum(OPTIMIZATION_LEVELS).optional(),
  /** Why higher levels were not used: each level's disagreement with `disabled` (set at upload). */
  optimization_disagreements: z
    .array(z.object({ level: z.enum(OPTIMIZATION_LEVELS), output: z.string(), detail: z.string() }))
    .max(4)
    .optional(),
  /**
   * Bounds of the graph's data-dependent work (src/registry/graph-bounds.ts, docs/byom.md): needed
   * by a graph with ConstantOfShape, Expand, Tile, Range, Resize, Upsample, OneHot or Loop, whose
   * size-deciding inputs the upload then checks against them.
   */
  /**
   * Where the version came from, written by the registry's publish (never taken from an upload's
   * manifest): `upload` (bring your own model) runs in the isolated BYOM Worker
   * (src/inference/isolation.ts); trained and shipped models (`training`, `import`, or absent) run in
   * the main Worker.
   */
  source: z.enum(["upload", "training", "import"]).optional(),
  work_bounds: z
    .strictObject({
      /** Most elements one such node may produce (or multiply its input by). */
      max_elements: z
        .number()
        .int()
        .min(1)
        .max(2 ** 28),
      /** Most iterations of one Loop. */
      max_iterations: z.number().int().min(1).max(1_000_000).default(1),
    })
    .optional(),
});

/**
 * `manifest.json` of a text model, stored beside `model.onnx` at `models/<id>/<version>/` in R2 and in
 * `models/<id>/` in the repository. The graph contract: inputs `ids` (int64 [batch, n]) and `values`
 * (float32 [batch, n]), padded with id 0 / value 0; output `scores` (float32 [batch, labels]) holding
 * probabilities (sigmoid per label for multilabel/binary, softmax for multiclass). `kind` is optional
 * ("text" when absent), so manifests written before image models existed stay valid.
 */
export const textManifestSchema = manifestBaseSchema.extend({
  kind: z.literal("text").optional(),
  task: z.enum(["multilabel", "multiclass", "binary"]),
  labels: z.array(z.string().min(1).max(128)).min(1).max(4096),
  featurizer: featurizerSpecSchema,
  inputs: z.object({ ids: z.string().min(1), values: z.string().min(1) }),
  /** The architecture of this graph (e.g. `linear`, `mlp`); see docs/models.md. */
  network: z.string().regex(NETWORK_RE).optional(),
  /**
   * The variants a request may pick with `network`: network name → model id (this model or a
   * sibling). The default (no `network`) is always this model.
   */
  networks: z.record(z.string().regex(NETWORK_RE), z.string().regex(MODEL_ID_RE)).optional(),
  /** Flagging threshold per label (labels without one are never flagged), chosen on validation data. */
  thresholds: z.record(z.string().min(1).max(128), z.number().min(0).max(1)).optional(),
});

/**
 * One gated column of a multilabel text graph (issue #28): `scores[column] = σ(z[column]) · σ(z[by])`,
 * `by` itself not gated. Written by the trainer (`LinearTextModel.gates`), exported as the graph's
 * gated tail (src/onnx/text.ts), read back by explanations (src/inference/explain.ts).
 */
export interface Gate {
  column: number;
  by: number;
}

/**
 * Resampling methods (`resize.filter`), named after what they compute, so a model is fed as its origin
 * fed it: `triangle` antialiased (Pillow's BILINEAR), `bilinear_align_corners` (TF.js
 * `resizeBilinear(alignCorners)`), `bilinear_half_pixel` (OpenCV INTER_LINEAR, TF2 without antialias).
 */
export const RESIZE_FILTERS = ["triangle", "bilinear_align_corners", "bilinear_half_pixel"] as const;

/**
 * How an image becomes the model's input (see `src/image/preprocess.ts`): `channels` 1 = gray (BT.601
 * luma) or 3 = RGB, alpha composited over black; resized to `height × width` with `filter`,
 * `fit` `contain` (whole image, letterboxed with black), `stretch` (both axes scaled to fit, aspect
 * ratio not kept) or `cover` (shorter side to fit, centre crop); then `(v / 255 − mean[c]) / std[c]`
 * per channel (`mean 0, std 1` = [0, 1]; `mean 0.5, std 0.5` = [−1, 1]), laid out `NCHW` or `NHWC`.
 */
export const imagePreprocessSchema = z
  .object({
    height: z.number().int().min(1).max(1024),
    width: z.number().int().min(1).max(1024),
    channels: z.union([z.literal(1), z.literal(3)]),
    layout: z.enum(["NCHW", "NHWC"]),
    /** Alpha: composited over black (default), or ignored (the stored colour, as TF.js's fromPixels). */
    alpha: z.enum(["black", "ignore"]).optional(),
    resize: z.object({
      filter: z.enum(RESIZE_FILTERS),
      fit: z.enum(["contain", "stretch", "cover"]),
    }),
    normalize: z.object({
      mean: z.array(z.number().finite()).min(1).max(3),
      std: z.array(z.number().finite().positive()).min(1).max(3),
    }),
  })
  .refine((p) => p.normalize.mean.length === p.channels && p.normalize.std.length === p.channels, {
    message: "normalize.mean and normalize.std need one value per channel",
    path: ["normalize"],
  })
  .refine((p) => p.height * p.width * p.channels <= 1024 * 1024, {
    message: "height × width × channels must be at most 1,048,576",
    path: ["height"],
  });

/** An image model's preprocessing spec. */
export type ImagePreprocessSpec = z.infer<typeof imagePreprocessSchema>;

/** The graph input's dims for `batch` images: `[batch, C, H, W]` (NCHW) or `[batch, H, W, C]` (NHWC). */
export function imageInputDims(spec: ImagePreprocessSpec, batch: number): number[] {
  const { channels, height, width } = spec;
  return spec.layout === "NHWC" ? [batch, height, width, channels] : [batch, channels, height, width];
}

/**
 * `manifest.json` of an image classifier. The graph contract: input `image` (float32
 * `imageInputDims(preprocess, batch)`, preprocessed as `preprocess` says); output `scores` (float32
 * [batch, labels], softmax probabilities).
 */
export const imageManifestSchema = manifestBaseSchema.extend({
  kind: z.literal("image"),
  task: z.literal("multiclass"),
  labels: z.array(z.string().min(1).max(128)).min(2).max(4096),
  preprocess: imagePreprocessSchema,
  inputs: z.object({ image: z.string().min(1) }),
});

/**
 * `manifest.json` of a `raw-text` model (bring your own model, e.g. a scikit-learn pipeline exported
 * with skl2onnx): the graph does its own text processing. Graph contract: one input, `inputs.text`,
 * a STRING tensor `[batch]` or `[batch, 1]` receiving the texts as sent; output `output` (float32
 * `[batch, labels]`) holding probabilities in `labels` order; optionally `label_output`, a label
 * tensor `[batch]` (checked at upload, not served). `examples` are run at upload (default: two
 * probe texts).
 */
export const rawTextManifestSchema = manifestBaseSchema.extend({
  kind: z.literal("raw-text"),
  task: z.enum(["multilabel", "multiclass", "binary"]),
  labels: z.array(z.string().min(1).max(128)).min(1).max(4096),
  inputs: z.object({ text: z.string().min(1) }),
  label_output: z.string().min(1).optional(),
  examples: z.array(z.string().min(1).max(4096)).min(1).max(32).optional(),
  /** Flagging threshold per label, as for hashed n-gram text models. */
  thresholds: z.record(z.string().min(1).max(128), z.number().min(0).max(1)).optional(),
});

/** Tensor datatypes a `tensor` model may declare (Open Inference Protocol names; BYTES = strings). */
export const TENSOR_DATATYPES = [
  "FP32",
  "FP64",
  "FP16",
  "INT8",
  "UINT8",
  "INT16",
  "UINT16",
  "INT32",
  "UINT32",
  "INT64",
  "UINT64",
  "BOOL",
  "BYTES",
] as const;

/**
 * A declared graph input or output of a `tensor` model; `-1` marks a dynamic dimension, `[]` a
 * scalar (rank 0). A dynamic dimension 0 is a batch dimension (`MAX_BATCH` applies to it).
 */
export const tensorSpecSchema = z.object({
  name: z.string().min(1).max(128),
  datatype: z.enum(TENSOR_DATATYPES),
  shape: z
    .array(
      z
        .number()
        .int()
        .min(-1)
        .max(2 ** 31),
    )
    .max(8),
});

/** One example input of a `tensor` model: a tensor per graph input, data flat in row-major order. */
export const tensorExampleSchema = z.object({
  inputs: z
    .array(
      z.object({
        name: z.string().min(1).max(128),
        shape: z
          .array(
            z
              .number()
              .int()
              .min(0)
              .max(2 ** 16),
          )
          .max(8),
        /** Numbers, booleans, or strings (BYTES; INT64/UINT64 as decimal strings; "NaN", "Infinity", "-Infinity"). */
        data: z.array(z.union([z.number(), z.boolean(), z.string().max(4096)])).max(65_536),
      }),
    )
    .min(1)
    .max(8),
});

/**
 * `manifest.json` of a `tensor` model: any numeric inputs, served only through the Open Inference
 * Protocol `infer` route, with no featurizer or preprocessing. `inputs`/`outputs` declare the graph's
 * tensors (checked against the session at upload); `output` names the main one. `labels` and `task`
 * are descriptive (metadata, registry listing). `examples` are run at upload (default: zeros, one
 * row, dynamic dimensions 1).
 */
export const tensorManifestSchema = manifestBaseSchema.extend({
  kind: z.literal("tensor"),
  task: z.enum(["multilabel", "multiclass", "binary", "regression", "other"]).default("other"),
  labels: z.array(z.string().min(1).max(128)).max(4096).default([]),
  inputs: z.array(tensorSpecSchema).max(8),
  outputs: z.array(tensorSpecSchema).min(1).max(8),
  examples: z.array(tensorExampleSchema).min(1).max(8).optional(),
});

/** Any model's manifest: an image manifest has `kind: "image"`, anything else is a text manifest. */
export const manifestSchema = z.union([
  imageManifestSchema,
  rawTextManifestSchema,
  tensorManifestSchema,
  textManifestSchema,
]);

/** A validated text model manifest. */
export type TextModelManifest = z.infer<typeof textManifestSchema>;
/** A validated image model manifest. */
export type ImageModelManifest = z.infer<typeof imageManifestSchema>;
/** A validated `raw-text` model manifest. */
export type RawTextModelManifest = z.infer<typeof rawTextManifestSchema>;
/** A validated `tensor` model manifest. */
export type TensorModelManifest = z.infer<typeof tensorManifestSchema>;
/** A declared tensor of a `tensor` model. */
export type TensorSpec = z.infer<typeof tensorSpecSchema>;
/** A model that classifies text: hashed n-grams (`kind` absent or "text") or `raw-text`. */
export type TextInputManifest = TextModelManifest | RawTextModelManifest;
/** A validated model manifest of any kind (narrow with `kind`). */
export type ModelManifest =
  | TextModelManifest
  | ImageModelManifest
  | RawTextModelManifest
  | TensorModelManifest;

/**
 * The per-model active-version pointer, `models/<id>/active.json` in R2: the active version and,
 * when set, the traffic split and the shadow versions (src/contracts/rollout.ts, docs/rollout.md).
 */
export const activePointerSchema = z.object({
  version: z.string().regex(MODEL_VERSION_RE),
  split: storedSplitSchema.optional(),
  shadows: z.array(storedShadowSchema).optional(),
});

/** A parsed active pointer. */
export type ActivePointer = z.infer<typeof activePointerSchema>;

/** Which model version a request resolved to. */
export interface ModelRef {
  id: string;
  version: string;
}

/** Featurizer spec of online bank models (what snapshots record in their manifest). */
export const BANK_FEATURIZER: TextFeaturizerSpec = {
  name: FEATURIZER_NAME,
  version: FEATURIZER_VERSION,
  buckets: 4096,
  word_ngrams: [1, 1],
  char_ngrams: null,
  seed: 0,
  tf: "binary",
  norm: "l2",
};

/** Datatypes of the Open Inference Protocol (only some are accepted as inputs; see src/protocols/oip.ts). */
export const OIP_DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
] as const;
