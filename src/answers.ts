/**
 * The answer (success response) schemas of every route. They are what `/api/v1/openapi.json`
 * documents and what handlers are checked against, so the document cannot drift from the code:
 *
 * - a handler builds its answer with `reply(Schema, body, status?, headers?)` (src/http.ts): `body`
 *   must be `z.input<typeof Schema>`, so `tsc` refuses an answer the schema does not describe;
 * - the route's `RouteDoc` (src/router.ts) names the same schema under that status
 *   (`responses: { 200: Schema }`), and src/openapi.ts renders it with `z.toJSONSchema`;
 * - objects are `z.object` (rendered with `additionalProperties: false`), so a field a handler adds
 *   without adding it here fails test/node/openapi-answers.test.ts, which validates real answers of
 *   every route against the served document.
 *
 * Adding a route: declare its answer here (or beside its core, if only that core builds it), reply
 * with it in the handler, and list it in the route's `responses`. A non-JSON answer is a
 * `{ mediaType, description }` entry instead. Schemas with `.meta({ id })` become named
 * `components.schemas` entries (and named types in the SDK, sdk/).
 *
 * Leaf module: imports nothing of the service, so core modules may type their views with it.
 */

import * as z from "zod";
import { OIP_DATATYPES, OPTIMIZATION_LEVELS } from "./contracts/manifest";

const isoTime = z.string().describe("ISO 8601 date-time (UTC)");

/** Which model version served a request. */
export const ModelRefSchema = z.object({ id: z.string(), version: z.string() }).meta({ id: "ModelRef" });

/** A label and its probability. */
export const LabelScoreSchema = z.object({ label: z.string(), score: z.number() }).meta({ id: "LabelScore" });

/** One n-gram's (or word's) contribution to a label's logit, with its spans in the input. */
export const NgramContributionSchema = z
  .object({
    ngram: z.string().describe("the n-gram as hashed (normalised words, or padded characters)"),
    kind: z.enum(["word", "char"]),
    contribution: z.number().describe("what it adds to the label's logit"),
    spans: z
      .array(z.array(z.number().int()).length(2))
      .describe("every occurrence as [start, end) UTF-16 code-unit offsets into the input text"),
  })
  .meta({ id: "NgramContribution" });

/** Why a text model scored a text so (`explain: true`, docs/explanations.md). */
export const TextExplanationSchema = z
  .object({
    method: z.enum(["exact-linear", "linearized", "leave-one-out"]),
    approximate: z.boolean(),
    labels: z.array(
      z.object({
        label: z.string(),
        logit: z.number(),
        bias: z
          .number()
          .optional()
          .describe(
            "exact-linear, linearized: the label's bias (linearized: at this text's activation pattern)",
          ),
        other: z
          .number()
          .optional()
          .describe(
            "exact-linear, linearized: the sum of contributions not in top (bias + Σ top + other = logit)",
          ),
        top: z.array(NgramContributionSchema),
        gated_by: z
          .string()
          .optional()
          .describe(
            "a gated label: its score is sigmoid(logit) × the score of this label, so logit and top explain the conditional factor (docs/explanations.md)",
          ),
      }),
    ),
  })
  .meta({ id: "TextExplanation" });

/** `POST /dashboard/api/explain`: one text's scores and explanation. */
export const DashboardExplainSchema = z.object({
  model: ModelRefSchema,
  predictions: z.array(LabelScoreSchema),
  flagged: z.array(z.string()).optional(),
  explanation: TextExplanationSchema,
});

/** One text's scores (seed-000 `sentiment`, `predictions` best first, `flagged` when calibrated). */
export const TextScoresSchema = z
  .object({
    sentiment: z.array(z.object({ sentiment_type: z.string(), sentiment_score: z.number() })),
    predictions: z.array(LabelScoreSchema),
    flagged: z
      .array(z.string())
      .optional()
      .describe("labels at or over their calibrated threshold (models that declare thresholds only)"),
    explanation: TextExplanationSchema.optional().describe("with explain: true"),
  })
  .meta({ id: "TextScores" });

/** An async prediction's stored result: one text, a batch, or an image. */
export const PredictionResultSchema = z
  .union([
    TextScoresSchema,
    z.object({ results: z.array(TextScoresSchema) }),
    z.object({ predictions: z.array(LabelScoreSchema) }),
  ])
  .meta({ id: "PredictionResult" });

const requestId = z.union([z.string(), z.number()]).describe("the body's request_id, else the server's");

/**
 * `POST /api/v1/predict`: `kind` tells the three answers apart (`text`: one text; `batch`: `texts`;
 * `image`), so a typed client narrows on it.
 */
export const PredictTextAnswerSchema = TextScoresSchema.extend({
  kind: z.literal("text"),
  request_id: requestId,
  language: z.string().optional(),
  model: ModelRefSchema,
}).meta({ id: "PredictTextAnswer" });
export const PredictBatchAnswerSchema = z
  .object({
    kind: z.literal("batch"),
    request_id: requestId,
    results: z.array(TextScoresSchema),
    language: z.string().optional(),
    model: ModelRefSchema,
  })
  .meta({ id: "PredictBatchAnswer" });
export const PredictImageAnswerSchema = z
  .object({
    kind: z.literal("image"),
    request_id: requestId,
    predictions: z.array(LabelScoreSchema),
    model: ModelRefSchema,
  })
  .meta({ id: "PredictImageAnswer" });
export const PredictAnswerSchema = z
  .discriminatedUnion("kind", [PredictTextAnswerSchema, PredictBatchAnswerSchema, PredictImageAnswerSchema])
  .meta({ id: "PredictAnswer" });

export const HealthSchema = z.object({
  message: z.string(),
  status: z.literal("ok"),
  environment: z.string(),
  default_model: z.string(),
});
export const ReadySchema = z.object({ status: z.literal("ready"), model: ModelRefSchema });

/** Statistics of one API. */
/** Latency percentiles from histograms (upper bin edges), with the calls they cover. */
const latencyPercentiles = z.object({
  p50: z.number(),
  p95: z.number(),
  p99: z.number(),
  calls: z.number().int(),
});

export const ApiStatisticsSchema = z
  .object({
    api: z.string(),
    "number of calls in current minute": z.number().int(),
    per_second: z.array(z.number().int()),
    per_minute: z.array(z.number().int()),
    per_hour: z.array(z.number().int()),
    status: z.object({ "2xx": z.number(), "3xx": z.number(), "4xx": z.number(), "5xx": z.number() }),
    avg_latency_ms: z.number().nullable(),
    callers_current_minute: z.array(z.object({ caller: z.string(), calls: z.number().int() })),
    per_minute_errors: z.object({ "4xx": z.array(z.number().int()), "5xx": z.array(z.number().int()) }),
    latency_ms: z.object({
      last_hour: latencyPercentiles.nullable(),
      last_24h: latencyPercentiles.nullable(),
    }),
  })
  .meta({ id: "ApiStatistics" });
export const AllStatisticsSchema = z.object({ as_of: isoTime, apis: z.array(ApiStatisticsSchema) });
export const StatisticsSchema = z.union([
  ApiStatisticsSchema.extend({ as_of: isoTime }),
  AllStatisticsSchema,
]);

const modelKind = z.enum(["text", "raw-text", "image", "tensor"]);

/** The ORT graph optimization level a version runs at (src/inference/optimization.ts). */
const optimizationLevel = z.enum(OPTIMIZATION_LEVELS);

export const ModelSummarySchema = z
  .object({
    id: z.string(),
    default: z.boolean(),
    active_version: z.string().nullable(),
    versions: z.number().int().describe("ready versions"),
    kind: modelKind.optional(),
    task: z.string().optional(),
    labels: z.array(z.string()).optional(),
    metrics: z.record(z.string(), z.number()).optional(),
    size_bytes: z.number().int().optional(),
    sha256: z.string().optional(),
    graph_optimization_level: optimizationLevel.optional(),
    created_at: isoTime,
    updated_at: isoTime,
  })
  .meta({ id: "ModelSummary" });
export const ModelListSchema = z.object({ models: z.array(ModelSummarySchema) });

export const VersionViewSchema = z
  .object({
    version: z.string(),
    state: z.enum(["pending", "ready"]),
    source: z.enum(["upload", "training", "import"]),
    kind: modelKind,
    task: z.string(),
    labels: z.array(z.string()),
    metrics: z.record(z.string(), z.number()),
    sha256: z.string(),
    size_bytes: z.number().int(),
    created_at: isoTime,
    description: z.string().optional(),
    graph_optimization_level: optimizationLevel,
    optimization_disagreements: z
      .array(z.object({ level: optimizationLevel, output: z.string(), detail: z.string() }))
      .optional(),
    thresholds: z.record(z.string(), z.number()).optional(),
  })
  .meta({ id: "ModelVersion" });

const jobStatus = z.enum(["queued", "running", "succeeded", "failed"]);
const failureCode = z.enum(["invalid", "retries_exhausted", "stuck"]);

/** A traffic split: model version → integer percent of callers (summing to 100). */
export const SplitSchema = z
  .record(z.string(), z.number().int())
  .describe("model version → integer percent of callers, summing to 100 (docs/rollout.md)")
  .meta({ id: "Split" });

/** A shadow version and the share of requests it also scores. */
export const ShadowSchema = z
  .object({ version: z.string(), sample_rate: z.number().describe("in (0, 1]") })
  .meta({ id: "Shadow" });

export const ModelDetailSchema = z.object({
  id: z.string(),
  default: z.boolean(),
  active_version: z.string().nullable(),
  split: SplitSchema.nullable().describe("the traffic split, null when the active version serves everyone"),
  shadows: z.array(ShadowSchema).describe("shadow versions (empty when none)"),
  drift: z
    .enum(["ok", "warning", "unknown"])
    .optional()
    .describe("the active version's drift status (GET /api/v1/models/:id/drift)"),
  drift_reference: z
    .enum(["training", "baseline", "pending"])
    .optional()
    .describe(
      "the active version's drift reference: its training inputs, a baseline of its live inputs, or pending (no reference yet)",
    ),
  created_at: isoTime,
  updated_at: isoTime,
  versions: z.array(VersionViewSchema),
  jobs: z.array(
    z.object({
      id: z.string(),
      version: z.string(),
      status: jobStatus,
      created_at: isoTime,
      status_url: z.string(),
    }),
  ),
});

export const UploadedVersionSchema = z.object({
  id: z.string(),
  version: z.string(),
  sha256: z.string(),
  size_bytes: z.number().int(),
  kind: modelKind,
  active_version: z.string().nullable(),
  memory: z
    .object({ wasm_heap_bytes: z.number().int(), session_memory_bytes: z.number().int() })
    .optional()
    .describe("ORT's WASM heap around validation (absent when the version already existed)"),
  graph_optimization_level: optimizationLevel.describe("the ORT graph optimization level it runs at"),
});

export const ActivationSchema = z.object({
  id: z.string(),
  active_version: z.string(),
  previous_version: z.string().nullable(),
  effective_within_ms: z.number(),
});

export const DeletionSchema = z.object({
  deleted: z.object({
    id: z.string(),
    versions: z.number().int(),
    jobs: z.number().int(),
    predictions: z.number().int(),
    log_rows: z.number().int(),
    r2_objects: z.number().int(),
  }),
});

/** `POST /api/v1/models` (training): the queued job (202). */
export const CreatedJobSchema = z
  .object({
    job_id: z.string(),
    status: z.literal("queued"),
    status_url: z.string(),
    model: ModelRefSchema,
    activate: z.boolean(),
  })
  .meta({ id: "CreatedJob" });

/** `POST /api/v1/models` (`task: "online"`): the created online model (201). */
export const CreatedOnlineModelSchema = z
  .object({
    id: z.string(),
    task: z.literal("online"),
    fields: z.record(z.string(), z.string()),
    created_at: isoTime,
  })
  .meta({ id: "CreatedOnlineModel" });

/** `GET /api/v1/jobs/:id`. */
export const JobSchema = z
  .object({
    id: z.string(),
    status: jobStatus,
    stage: z.string(),
    progress: z.number(),
    model: ModelRefSchema,
    activate: z.boolean(),
    task: z.string(),
    dataset: z
      .union([
        z.object({ r2_key: z.string(), format: z.enum(["csv", "jsonl", "json"]).optional() }),
        z.object({ inline_rows: z.number().int() }),
      ])
      .describe("the job's dataset: its R2 key, or how many rows were sent inline"),
    feedback: z
      .boolean()
      .describe(
        "whether the model's labelled feedback was added to the dataset (metrics.feedback_rows: how many)",
      ),
    metrics: z.record(z.string(), z.number()).nullable(),
    error: z.string().nullable(),
    error_code: failureCode.nullable(),
    attempts: z.number().int(),
    created_at: isoTime.nullable(),
    started_at: isoTime.nullable(),
    finished_at: isoTime.nullable(),
  })
  .meta({ id: "Job" });

/** `POST /api/v1/predictions` (202). */
export const AcceptedPredictionSchema = z
  .object({
    id: z.string(),
    status: z.literal("queued"),
    status_url: z.string(),
    model: ModelRefSchema,
  })
  .meta({ id: "AcceptedPrediction" });

/** `GET /api/v1/predictions/:id`. */
export const PredictionSchema = z
  .object({
    id: z.string(),
    status: z.enum(["queued", "running", "done", "failed"]),
    result: PredictionResultSchema.optional(),
    error: z.string().optional(),
    error_code: failureCode.optional(),
    model: ModelRefSchema,
    request_id: z.union([z.string(), z.number()]).optional(),
    attempts: z.number().int(),
    created_at: isoTime.nullable(),
    finished_at: isoTime.nullable(),
  })
  .meta({ id: "Prediction" });

export const PredictionLogPageSchema = z.object({
  items: z.array(
    z.object({
      at: isoTime,
      kind: z.enum(["sync", "async"]),
      caller: z.string().nullable(),
      model: ModelRefSchema,
      request_id: z.union([z.string(), z.number()]).nullable(),
      prediction_id: z.string().nullable(),
      item: z.number().int(),
      latency_ms: z.number(),
      top_label: z.string(),
      top_score: z.number(),
      scores: z.record(z.string(), z.number()),
      input: z.string().optional(),
    }),
  ),
  next_cursor: z.string().nullable(),
});

export const LoginUrlSchema = z.object({ url: z.string(), expires_at: isoTime });

export const DatasetSchema = z
  .object({
    name: z.string(),
    r2_key: z.string(),
    format: z.string(),
    size_bytes: z.number().int(),
    uploaded_at: isoTime,
  })
  .meta({ id: "Dataset" });
export const UploadedDatasetSchema = DatasetSchema.extend({
  rows: z.number().int(),
  columns: z.array(z.string()),
});
export const DatasetListSchema = z.object({
  datasets: z.array(DatasetSchema),
  next_cursor: z.string().nullable(),
});
export const DatasetDeletionSchema = z.object({ deleted: DatasetSchema });

const backlogCounts = z.object({
  queued: z.number().int(),
  running: z.number().int(),
  oldest_queued_s: z.number().nullable(),
});
const failedWork = z.object({
  kind: z.enum(["job", "prediction"]),
  id: z.string(),
  model: z.string(),
  error_code: z.string().nullable(),
  error: z.string().nullable(),
  finished_at: z.string().nullable(),
});
export const BacklogSchema = z.object({
  as_of: isoTime,
  jobs: backlogCounts,
  predictions: backlogCounts,
  failed_24h: z.object({
    jobs: z.record(z.string(), z.number().int()),
    predictions: z.record(z.string(), z.number().int()),
  }),
  recent_failures: z.array(failedWork).describe("the 10 most recent failures of the last 24 h, newest first"),
});

// Online learning (docs/online.md).
const snapshotInfo = z.object({ version: z.string(), samples: z.number().int(), created_at: isoTime });
const summary = {
  accuracy: z.number().nullable(),
  precision_macro: z.number().nullable(),
  recall_macro: z.number().nullable(),
  precision_weighted: z.number().nullable(),
  recall_weighted: z.number().nullable(),
};

export const IngestResultSchema = z
  .object({
    model: z.string(),
    accepted: z.number().int(),
    samples_total: z.number().int(),
    version: z.number().int(),
    classes_seen: z.number().int(),
    new_classes: z.number().int(),
    accuracy_last_1000: z.number().nullable(),
    snapshot: snapshotInfo.nullable(),
  })
  .meta({ id: "IngestResult" });

/** The online service's `/sample` answer: the learner's counts and the `message` its client reads. */
export const CompatSampleAnswerSchema = IngestResultSchema.extend({ message: z.string() }).meta({
  id: "CompatSampleAnswer",
});

/** The online service's `/predict` answer: the best account (`predictions`: the top n with `?n_top`). */
export const CompatPredictAnswerSchema = z
  .object({
    AccountNumber: z.string().nullable(),
    score: z.number().nullable(),
    version: z.string(),
    predictions: z.array(z.object({ AccountNumber: z.string(), score: z.number() })).optional(),
  })
  .meta({ id: "CompatPredictAnswer" });

/** The online service's liveness answer. */
export const MessageSchema = z.object({ message: z.string() }).meta({ id: "Message" });

export const OnlineMetricsSchema = z
  .object({
    model: z.string(),
    version: z.number().int(),
    samples_total: z.number().int(),
    classes_seen: z.number().int(),
    window: z.object({ rows: z.number().int(), ...summary }),
    cumulative: z.object({
      samples: z.number().int(),
      correct: z.number().int(),
      accuracy: z.number().nullable(),
    }),
    snapshot: snapshotInfo.nullable(),
    snapshot_pending_samples: z.number().int(),
    snapshot_pending_since: z.string().nullable(),
    snapshot_error: z.string().nullable(),
    series: z.array(
      z.object({ samples: z.number().int(), at: isoTime, classes: z.number().int(), ...summary }),
    ),
  })
  .meta({ id: "OnlineMetrics" });

/** `POST …/predict`: `["<AccountNumber>"]`, or with `?n_top=k` the top k with scores. */
export const OnlinePredictionSchema = z.union([
  z.array(z.string().nullable()).describe('["<AccountNumber>"]; [null] before the model has learned any'),
  z.array(z.object({ AccountNumber: z.string(), score: z.number() })),
  z
    .array(z.record(z.string(), z.union([z.string(), z.number()])))
    .describe("with n_top, for a model created with its own label field: [{<label field>, score}]"),
]);

export const OnlineResetSchema = z.object({ model: z.string(), reset: z.literal(true) });
export const OnlineDashboardSchema = z.object({ models: z.array(OnlineMetricsSchema) });

// Open Inference Protocol v2.
const oipDatatype = z.enum(OIP_DATATYPES);
const tensorMetadata = z.object({
  name: z.string(),
  datatype: oipDatatype,
  shape: z.array(z.number().int()),
});
export const OipServerMetadataSchema = z.object({
  name: z.string(),
  version: z.string(),
  extensions: z.array(z.string()),
});
export const OipModelMetadataSchema = z.object({
  name: z.string(),
  versions: z.array(z.string()),
  platform: z.string(),
  inputs: z.array(tensorMetadata),
  outputs: z.array(tensorMetadata),
});
export const OipInferResponseSchema = z.object({
  model_name: z.string(),
  model_version: z.string(),
  id: z.string().optional(),
  outputs: z.array(
    tensorMetadata.extend({
      parameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
      data: z.array(z.unknown()),
    }),
  ),
});
export const OipRepositoryIndexSchema = z.array(
  z.object({
    name: z.string(),
    version: z.string().optional(),
    state: z.enum(["READY", "UNAVAILABLE"]),
    reason: z.string(),
  }),
);

// Compatibility routes of the replaced services (docs/protocols.md).
export const RegistryPredictionSchema = z.object({
  model_id: z.string(),
  version: z.string(),
  cats: z.record(z.string(), z.number()),
  predictions: z.array(LabelScoreSchema),
});
export const ImageServiceSubmitSchema = z.object({ uuid: z.string() });
/** `GET /predictions/<uuid>`: done (200), failed (200 with `status`), pending (202). */
export const ImageServiceResultSchema = z.union([
  z.object({ uuid: z.string(), prediction: z.string().nullable(), score: z.number().nullable() }),
  z.object({
    uuid: z.string(),
    status: z.literal("failed"),
    prediction: z.null(),
    error: z.string().nullable(),
    error_code: failureCode.nullable(),
  }),
]);
export const ImageServicePendingSchema = z.object({
  uuid: z.string(),
  status: z.enum(["queued", "running"]),
  prediction: z.null(),
});

// Webhook deliveries (docs/webhooks.md).
export const WebhookDeliverySchema = z
  .object({
    id: z.string().describe("the Standard Webhooks webhook-id: the same on every attempt"),
    subject: z.object({ kind: z.enum(["prediction", "job"]), id: z.string() }),
    url: z.string(),
    status: z.enum(["waiting", "pending", "delivered", "failed"]),
    attempts: z.number().int(),
    last_status: z.number().int().nullable().describe("HTTP status of the last attempt (null: no answer)"),
    last_error: z.string().nullable(),
    created_at: isoTime,
    next_attempt_at: isoTime.nullable(),
    delivered_at: isoTime.nullable(),
  })
  .meta({ id: "WebhookDelivery" });
export const WebhookDeliveryListSchema = z.object({ deliveries: z.array(WebhookDeliverySchema) });

// Clients people already have (docs/clients.md).
export const ModerationResultSchema = z.object({
  flagged: z.boolean(),
  categories: z.record(z.string(), z.boolean()),
  category_scores: z.record(z.string(), z.number()),
  category_applied_input_types: z.record(z.string(), z.array(z.enum(["text", "image"]))),
});
export const ModerationAnswerSchema = z
  .object({
    id: z.string(),
    model: z.string(),
    models: z.array(ModelRefSchema),
    results: z.array(ModerationResultSchema),
  })
  .meta({ id: "ModerationAnswer" });
export const HfTextAnswerSchema = z
  .array(z.array(LabelScoreSchema))
  .describe("one [{label, score}] list per input, best first");
export const HfImageAnswerSchema = z.array(LabelScoreSchema).describe("[{label, score}], best first");

/** `PUT`/`DELETE /api/v1/models/:id/split`. */
export const SplitAnswerSchema = z.object({
  id: z.string(),
  active_version: z.string().nullable(),
  split: SplitSchema.nullable().describe("null once cleared, or after a 100 % split promoted its version"),
});

/** `PUT`/`DELETE /api/v1/models/:id/shadow`. */
export const ShadowsAnswerSchema = z.object({ id: z.string(), shadows: z.array(ShadowSchema) });

const errorCounts = z.object({ "4xx": z.number().int(), "5xx": z.number().int() });
const latencyQuantiles = { p50: z.number(), p95: z.number(), p99: z.number() };

/** One shadow version's running comparison with one serving version. */
export const ShadowComparisonSchema = z
  .object({
    serving_version: z.string(),
    requests: z.number().int().describe("sampled requests the shadow scored or failed on"),
    items: z.number().int().describe("inputs compared (a batch request has several)"),
    top1_agreement: z.number().nullable().describe("share of inputs with the same top label"),
    mean_abs_diff: z.record(z.string(), z.number()).describe("label → mean |shadow − serving| score"),
    flagged_rate: z.object({ serving: z.number(), shadow: z.number() }).nullable(),
    flagged_rate_diff: z
      .number()
      .nullable()
      .describe("shadow's flagged rate − serving's (flagged: some label at or over its threshold, else 0.5)"),
    latency_ms: z
      .object({ mean: z.number(), ...latencyQuantiles })
      .nullable()
      .describe("the shadow's own wall time per request (percentiles: histogram bin upper edges)"),
    errors: z.number().int().describe("shadow runs that failed"),
  })
  .meta({ id: "ShadowComparison" });

/** `GET /api/v1/models/:id/shadow`. */
export const ShadowReportSchema = z.object({
  id: z.string(),
  shadows: z.array(ShadowSchema.extend({ comparisons: z.array(ShadowComparisonSchema) })),
});

const trafficWindow = z.object({
  requests: z.number().int(),
  errors: errorCounts,
  latency_ms: z
    .object({ mean: z.number().nullable(), ...latencyQuantiles })
    .nullable()
    .describe("percentiles are histogram bin upper edges (≤ 19 % high); mean over the last 24 h only"),
});

/** `GET /api/v1/models/:id/traffic`: requests, errors and latency per version. */
export const TrafficSchema = z.object({
  id: z.string(),
  as_of: isoTime,
  active_version: z.string().nullable(),
  split: SplitSchema.nullable(),
  versions: z.array(
    z.object({
      version: z.string(),
      share: z.number().int().describe("percent of identified callers the split (or activation) assigns it"),
      shadow_sample_rate: z.number().nullable().describe("its sample rate when it is a shadow"),
      last_hour: trafficWindow.describe("the last 60 UTC minutes"),
      last_24h: trafficWindow.describe("the last 24 UTC hours"),
    }),
  ),
});

// Feedback and live quality per model version (docs/rollout.md, issue 30 item 3).
/** `POST /api/v1/predictions/:id/feedback` and `POST /api/v1/feedback`: what is recorded. */
export const FeedbackAnswerSchema = z
  .object({
    model: ModelRefSchema,
    prediction_id: z.string().nullable().describe("the async prediction (null for a sync one)"),
    request_id: z.string().nullable().describe("the X-Request-Id of the sync prediction (null for async)"),
    items: z.array(
      z.object({
        index: z.number().int().describe("the item (text) of the prediction, 0 for a single text"),
        labels: z.array(z.string()).describe("the true labels, in the model's label order"),
        predicted: z.array(z.string()).describe("what the version predicted, at its shipped thresholds"),
        correct: z.boolean(),
        text_stored: z.boolean().describe("whether the input text is kept for training (`feedback: true`)"),
        recorded_at: isoTime,
      }),
    ),
  })
  .meta({ id: "Feedback" });

/** One label's live quality in one version. */
export const LabelQualitySchema = z
  .object({
    label: z.string(),
    rule: z
      .enum(["threshold", "complement", "argmax"])
      .describe(
        "how the version decides this label: its score at or over `threshold`; `complement` (a binary model's negative label): the positive label's score under `threshold`; or the argmax",
      ),
    threshold: z.number().nullable().describe("the threshold used (null for argmax)"),
    positives: z.number().int().describe("feedback items whose true labels include this label"),
    negatives: z.number().int(),
    predicted_positive: z.number().int(),
    true_positives: z.number().int(),
    precision: z.number().nullable().describe("null while nothing was predicted positive"),
    recall: z.number().nullable().describe("null while there are no positives"),
    roc_auc: z
      .number()
      .nullable()
      .describe("rank-based ROC-AUC (binary: the positive label; multilabel: each), null below the minimum"),
  })
  .meta({ id: "LabelQuality" });

/** `GET /api/v1/models/:id/quality`. */
export const ModelQualitySchema = z
  .object({
    id: z.string(),
    active_version: z.string().nullable(),
    min_auc_class: z.number().int().describe("positives and negatives each needed before roc_auc is given"),
    window: z.object({
      rows: z.number().int().describe("feedback rows read"),
      limit: z.number().int().describe("the most recent feedback rows read per request"),
    }),
    versions: z.array(
      z.object({
        version: z.string(),
        task: z.string(),
        feedback: z.number().int().describe("labelled items of this version"),
        correct: z.number().int(),
        accuracy: z
          .number()
          .nullable()
          .describe("top-1 (binary, multiclass) or exact-set (multilabel); null without feedback"),
        labels: z.array(LabelQualitySchema),
      }),
    ),
  })
  .meta({ id: "ModelQuality" });

/**
 * `GET /dashboard/api/models/:id`: the per-model view's data, each part the answer of the API route
 * it names, or null when this deployment has no such route or the session's policy does not grant it.
 */
export const DashboardModelViewSchema = z.object({
  model: ModelDetailSchema.describe("GET /api/v1/models/:id"),
  quality: ModelQualitySchema.nullable().describe("GET /api/v1/models/:id/quality"),
  shadow: ShadowReportSchema.nullable().describe("GET /api/v1/models/:id/shadow"),
  traffic: TrafficSchema.nullable().describe("GET /api/v1/models/:id/traffic"),
});

/** `GET /api/v1/models/:id/drift` (src/drift/report.ts, docs/drift.md). */
export const DriftSchema = z
  .object({
    model: z.object({ id: z.string(), version: z.string() }),
    drift: z
      .enum(["ok", "warning", "unknown"])
      .describe("warning: PSI at or above the threshold in the current or previous hour"),
    threshold: z.number().describe("the PSI warning threshold (0.2)"),
    min_count: z.number().int().describe("inputs an hour needs before its PSI is reported"),
    epsilon: z.number().describe("the share an empty bin counts as"),
    reference: z
      .object({
        origin: z
          .enum(["training", "baseline"])
          .describe("training: its training inputs (or the upload's profile); baseline: its own live inputs"),
        source: z.string(),
        count: z.number().int(),
        created_at: z.string(),
        window: z
          .object({ start: isoTime, end: isoTime })
          .optional()
          .describe("a baseline's live hours (end exclusive)"),
      })
      .nullable()
      .describe("the version's reference profile; null when it has none yet"),
    reference_pending: z
      .object({
        min_count: z.number().int().describe("inputs a complete UTC hour needs to become the baseline"),
        best_hour: z
          .object({ start: isoTime, count: z.number().int() })
          .nullable()
          .describe("the kept complete hour with the most inputs so far"),
        current_count: z.number().int().describe("inputs in the current hour so far"),
        detail: z.string(),
      })
      .nullable()
      .describe("without a reference: how far the version is from its baseline; null with one"),
    hours: z.array(
      z.object({
        start: isoTime,
        count: z.number().int(),
        psi: z.record(z.string(), z.number()).nullable(),
        max_psi: z.number().nullable(),
        status: z.enum(["ok", "warning", "insufficient"]),
      }),
    ),
  })
  .meta({ id: "Drift" });

/** `PUT /api/v1/models/:id/drift/reference`: the version's new baseline reference. */
export const DriftReferenceSchema = z
  .object({
    model: z.object({ id: z.string(), version: z.string() }),
    reference: z.object({
      origin: z.literal("baseline"),
      source: z.string(),
      count: z.number().int(),
      created_at: z.string(),
      window: z.object({ start: isoTime, end: isoTime }),
    }),
    bytes: z.number().int().describe("the stored profile's size"),
  })
  .meta({ id: "DriftReference" });

/** `GET /dashboard/api/drift`: each model's drift report (active version, last 24 h). */
export const DriftDashboardSchema = z.object({ models: z.array(DriftSchema) });
