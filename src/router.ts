import { type IRequest, Router } from "itty-router";
import * as z from "zod";
import { afterCheck, createAdmission } from "./admission/stage";
import * as A from "./answers";
import { AuthError, authApiError } from "./auth/failure";
import { authenticate } from "./auth/stage";
import { ConfigError, loadConfig } from "./config";
import type { AppRequest, Handler } from "./context";
import { sessionIssuer } from "./dashboard/session";
import { ApiError, oipErrorResponse, problemHtmlResponse, problemResponse } from "./errors";
import { applyResponseHeaders, optionsResponse, settleRequestBody } from "./http";
import { jobRequestSchema } from "./jobs/spec";
import { createLogger, requestLineText, requestLog, sampleRequest } from "./log";
import { meter } from "./metering/meter";
import { onlinePredictQuerySchema } from "./online/io";
import { onlineModelRequestSchema } from "./online/online-models";
import { bankInputSchema, bankSampleSchema } from "./online/sample";
import { type DocumentedRoute, openApi, type RouteDoc } from "./openapi";
import * as compatHandlers from "./protocols/compat";
import * as hf from "./protocols/hf";
import * as oip from "./protocols/oip";
import * as openai from "./protocols/openai";
import {
  dashboardBacklog,
  dashboardDrift,
  dashboardExchange,
  dashboardExplain,
  dashboardExplainBodySchema,
  dashboardLogin,
  dashboardModels,
  dashboardModelView,
  dashboardOnline,
  dashboardPage,
  dashboardScript,
  dashboardStatistics,
  dashboardStyles,
} from "./routes/dashboard";
import {
  getDatasets,
  listDatasetsQuerySchema,
  putDataset,
  removeDataset,
  uploadDatasetQuerySchema,
} from "./routes/datasets";
import { driftQuerySchema, driftReferenceRequestSchema, getDrift, putDriftReference } from "./routes/drift";
import {
  feedback,
  feedbackSchema,
  predictionFeedback,
  predictionFeedbackSchema,
  quality,
} from "./routes/feedback";
import { health, ready } from "./routes/health";
import { getJob } from "./routes/jobs";
import { onlineMetrics, onlinePredict, onlineReset, onlineSamples } from "./routes/online";
import { predict, predictRequestSchema } from "./routes/predict";
import {
  asyncPredictionRequestSchema,
  getPrediction,
  listPredictionLog,
  logQuerySchema,
  submitPrediction,
} from "./routes/predictions";
import {
  activate,
  activateSchema,
  createModel,
  getModel,
  listModels,
  putVersion,
  removeModel,
  versionUploadQuerySchema,
} from "./routes/registry";
import * as rollout from "./routes/rollout";
import { statistics, statisticsQuerySchema } from "./routes/statistics";
import { deliveriesQuerySchema, getDeliveries, getDelivery } from "./routes/webhooks";
import { closest, didYouMean } from "./suggest";

type Method = "GET" | "POST" | "PUT" | "DELETE";
/** The methods a path answers: its routes' methods, and HEAD wherever GET is. */
type AllowedMethod = Method | "HEAD";

/** One route: its documented fields (`DocumentedRoute`: api name, auth, throttling, doc) and handler. */
export interface RouteDef extends DocumentedRoute {
  method: Method;
  /** Opened by a person in a browser: errors are rendered as an HTML page, not problem+json. */
  html?: boolean;
  /**
   * Free of side effects a client could observe (inference only): the handler runs while the
   * token's replay check is under way, and its result is released only after the check.
   */
  speculative?: boolean;
  handler: Handler;
}

/** A route with a token and throttling (most routes); `open` routes have neither. */
const authed = (method: Method, path: string, api: string, handler: Handler, doc: RouteDoc): RouteDef => ({
  method,
  path,
  api,
  auth: true,
  throttle: true,
  handler,
  doc,
});
const open = (method: Method, path: string, api: string, handler: Handler, doc: RouteDoc): RouteDef => ({
  method,
  path,
  api,
  auth: false,
  throttle: false,
  handler,
  doc,
});
const compat = (method: Method, path: string, api: string, handler: Handler, doc: RouteDoc): RouteDef => ({
  ...authed(method, path, api, handler, doc),
  compat: true,
});

const TEXT_ERRORS = [
  "invalid_json",
  "invalid_request",
  "batch_too_large",
  "payload_too_large",
  "text_too_large",
  "unsupported_media_type",
  "model_not_found",
  "model_version_not_found",
  "model_input_mismatch",
  "model_unavailable",
  // A model with a traffic split, when its callers' object fails (docs/rollout.md).
  "rollout_unavailable",
] as const;
const IMAGE_ERRORS = ["invalid_image", "image_too_large", "unsupported_image_format"] as const;
const ONLINE_ERRORS = ["invalid_json", "invalid_request", "model_not_found", "learner_unavailable"] as const;
const MODEL_ADMIN_ERRORS = [
  "invalid_json",
  "invalid_request",
  "model_not_found",
  "registry_unavailable",
] as const;
const JOB_ERRORS = [
  "invalid_json",
  "invalid_request",
  "payload_too_large",
  "model_exists",
  "model_version_exists",
  "job_in_progress",
  "invalid_dataset",
  "dataset_too_large",
  "registry_unavailable",
  "queue_unavailable",
] as const;
const CALLBACK_ERRORS = ["invalid_callback_url", "callback_not_allowed"] as const;
const FEEDBACK_ERRORS = [
  "invalid_json",
  "invalid_request",
  "payload_too_large",
  "unsupported_media_type",
  "prediction_not_found",
  "model_version_not_found",
  "unknown_label",
  "feedback_conflict",
  "registry_unavailable",
] as const;
const onlineSampleBody = z.union([bankSampleSchema, z.array(bankSampleSchema)]);
/** `pandas.DataFrame.to_dict()`: column → {row → value} (or column → [values]); numbers are printed. */
const pandasColumns = z
  .record(z.string(), z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]))
  .describe("pandas DataFrame.to_dict() columns: column → {row: value}");
const CSV_SAMPLES = {
  mediaType: "text/csv",
  description: "samples as CSV with a header line (the bank dataset's columns)",
  schema: z.string(),
};
/** An answer that is its status alone (the Open Inference Protocol's health and readiness). */
const STATUS_ONLY = { description: "OK (no body)" };

/** Every route of the service, in matching order. */
export const ROUTES: readonly RouteDef[] = [
  open("GET", "/api/v1/health", "health", health, {
    summary: "Liveness; never loads a model",
    responses: { 200: A.HealthSchema },
  }),
  open("GET", "/api/v1/health/ready", "health_ready", ready, {
    summary: "200 when the default model loads and runs",
    responses: { 200: A.ReadySchema },
    errors: ["not_ready"],
  }),
  {
    ...authed("POST", "/api/v1/predict", "predict", predict, {
      summary: "Classify one text, a batch of texts, or one image",
      body: predictRequestSchema,
      responses: { 200: A.PredictAnswerSchema },
      errors: [
        ...TEXT_ERRORS,
        ...IMAGE_ERRORS,
        "unsupported_encoding",
        "unknown_network",
        "explain_unsupported",
      ],
    }),
    speculative: true,
  },
  authed(
    "GET",
    "/api/v1/statistics",
    "statistics",
    statistics(() => ROUTES.map((r) => r.api)),
    {
      summary: "Per-API call statistics and per-caller metering",
      query: statisticsQuerySchema,
      responses: { 200: A.StatisticsSchema },
      errors: ["invalid_request", "api_not_found", "statistics_unavailable"],
    },
  ),
  open(
    "GET",
    "/api/v1/openapi.json",
    "openapi",
    openApi(() => ROUTES),
    {
      summary: "This OpenAPI 3.1 document",
      responses: {
        200: {
          description: "OpenAPI 3.1 document",
          mediaType: "application/json",
          schema: z.looseObject({}),
        },
      },
    },
  ),
  // Registry (docs/registry.md). Reads are `models`; every mutation is `models_admin`, which
  // ASAP_POLICY should grant to admin issuers only.
  authed("GET", "/api/v1/models", "models", listModels, {
    summary: "Every model with its active version",
    responses: { 200: A.ModelListSchema },
    errors: ["registry_unavailable"],
  }),
  authed("GET", "/api/v1/models/:id", "models", getModel, {
    summary: "A model, all its versions and its latest jobs",
    responses: { 200: A.ModelDetailSchema },
    errors: ["model_not_found", "registry_unavailable"],
  }),
  authed("GET", "/api/v1/models/:id/drift", "models", getDrift, {
    summary: "PSI per signal per hour of a version's live inputs against its reference profile",
    query: driftQuerySchema,
    responses: { 200: A.DriftSchema },
    errors: ["invalid_request", "model_not_found", "model_version_not_found", "statistics_unavailable"],
  }),
  authed("PUT", "/api/v1/models/:id/drift/reference", "models_admin", putDriftReference, {
    summary: "Set (or reset) a version's baseline drift reference from chosen complete live hours",
    body: driftReferenceRequestSchema,
    responses: { 200: A.DriftReferenceSchema },
    errors: [
      ...MODEL_ADMIN_ERRORS,
      "model_version_not_found",
      "drift_window_too_small",
      "reference_is_training",
      "statistics_unavailable",
    ],
  }),
  authed("POST", "/api/v1/models", "models_admin", createModel, {
    summary: "Queue a training job, or (task `online`) create an online model (201)",
    body: z.union([jobRequestSchema, onlineModelRequestSchema]),
    responses: { 201: A.CreatedOnlineModelSchema, 202: A.CreatedJobSchema },
    errors: [...JOB_ERRORS, ...CALLBACK_ERRORS],
  }),
  authed("PUT", "/api/v1/models/:id/versions/:version", "models_admin", putVersion, {
    summary: "Upload a model version (validated before it is stored)",
    body: {
      mediaType: "multipart/form-data",
      description: "parts `manifest` (JSON) and `model` (ONNX bytes)",
    },
    query: versionUploadQuerySchema,
    responses: { 200: A.UploadedVersionSchema, 201: A.UploadedVersionSchema },
    errors: [
      ...MODEL_ADMIN_ERRORS,
      "unsupported_media_type",
      "payload_too_large",
      "invalid_model",
      "model_too_large",
      "model_version_exists",
    ],
  }),
  authed("POST", "/api/v1/models/:id/activate", "models_admin", activate, {
    summary: "Switch the active version (or roll back)",
    body: activateSchema,
    responses: { 200: A.ActivationSchema },
    errors: [...MODEL_ADMIN_ERRORS, "model_version_not_found"],
  }),
  authed("DELETE", "/api/v1/models/:id", "models_admin", removeModel, {
    summary: "Delete a model and every related object",
    responses: { 200: A.DeletionSchema },
    errors: [...MODEL_ADMIN_ERRORS, "model_is_default", "model_is_online"],
  }),
  // Safe rollout (docs/rollout.md): split and shadows are registry writes (`models_admin`), like
  // activation; their reads are `models`.
  authed("PUT", "/api/v1/models/:id/split", "models_admin", rollout.putSplit, {
    summary: "Set the traffic split (sticky per caller; a 100 % split promotes its version)",
    body: rollout.splitRequestSchema,
    responses: { 200: A.SplitAnswerSchema },
    errors: [...MODEL_ADMIN_ERRORS, "invalid_split", "model_version_not_found", "model_unavailable"],
  }),
  authed("DELETE", "/api/v1/models/:id/split", "models_admin", rollout.deleteSplit, {
    summary: "Clear the traffic split (every caller gets the active version)",
    responses: { 200: A.SplitAnswerSchema },
    errors: [...MODEL_ADMIN_ERRORS],
  }),
  authed("PUT", "/api/v1/models/:id/shadow", "models_admin", rollout.putShadow, {
    summary: "Set shadow versions that also score a sample of requests after the answer",
    body: rollout.shadowRequestSchema,
    responses: { 200: A.ShadowsAnswerSchema },
    errors: [...MODEL_ADMIN_ERRORS, "invalid_shadow", "model_version_not_found", "model_unavailable"],
  }),
  authed("DELETE", "/api/v1/models/:id/shadow", "models_admin", rollout.deleteShadow, {
    summary: "Clear the shadow versions (their comparisons are kept)",
    responses: { 200: A.ShadowsAnswerSchema },
    errors: [...MODEL_ADMIN_ERRORS],
  }),
  authed("GET", "/api/v1/models/:id/shadow", "models", rollout.getShadow, {
    summary: "Shadow versions and their comparisons with the versions that answered",
    responses: { 200: A.ShadowReportSchema },
    errors: ["model_not_found", "registry_unavailable", "statistics_unavailable"],
  }),
  authed("GET", "/api/v1/models/:id/traffic", "models", rollout.getTraffic, {
    summary: "Requests, errors and latency per version (last hour, last 24 h)",
    responses: { 200: A.TrafficSchema },
    errors: ["model_not_found", "registry_unavailable", "statistics_unavailable"],
  }),
  authed("GET", "/api/v1/jobs/:id", "jobs", getJob, {
    summary: "Training job status, progress, metrics, error",
    responses: { 200: A.JobSchema },
    errors: ["job_not_found", "registry_unavailable"],
  }),
  authed("POST", "/api/v1/predictions", "predictions", submitPrediction, {
    summary: "Submit an async prediction (a signed webhook to `callback_url` when it finishes)",
    body: asyncPredictionRequestSchema,
    responses: { 202: A.AcceptedPredictionSchema },
    errors: [
      ...TEXT_ERRORS,
      ...IMAGE_ERRORS,
      "unsupported_encoding",
      "unknown_network",
      "queue_unavailable",
      "registry_unavailable",
      ...CALLBACK_ERRORS,
    ],
  }),
  authed("GET", "/api/v1/predictions", "prediction_log", listPredictionLog, {
    summary: "The prediction log, cursor-paged",
    query: logQuerySchema,
    responses: { 200: A.PredictionLogPageSchema },
    errors: ["invalid_request", "registry_unavailable"],
  }),
  authed("GET", "/api/v1/predictions/:id", "predictions", getPrediction, {
    summary: "An async prediction's status and result",
    responses: { 200: A.PredictionSchema },
    errors: ["prediction_not_found", "registry_unavailable"],
  }),
  // Feedback and live quality per version (docs/rollout.md).
  authed("POST", "/api/v1/predictions/:id/feedback", "feedback", predictionFeedback, {
    summary: "Record the true label(s) of an async prediction (once per item; 201, or 200 when identical)",
    body: predictionFeedbackSchema,
    responses: { 200: A.FeedbackAnswerSchema, 201: A.FeedbackAnswerSchema },
    errors: [...FEEDBACK_ERRORS],
  }),
  authed("POST", "/api/v1/feedback", "feedback", feedback, {
    summary: "Record the true label(s) of a prediction by the X-Request-Id of its sync answer",
    body: feedbackSchema,
    responses: { 200: A.FeedbackAnswerSchema, 201: A.FeedbackAnswerSchema },
    errors: [...FEEDBACK_ERRORS],
  }),
  authed("GET", "/api/v1/models/:id/quality", "models", quality, {
    summary: "Live quality per version from feedback: accuracy, per-label precision/recall, ROC-AUC",
    responses: { 200: A.ModelQualitySchema },
    errors: ["model_not_found", "registry_unavailable"],
  }),
  // Signed webhooks (docs/webhooks.md): the caller's deliveries and their status.
  authed("GET", "/api/v1/webhooks/deliveries", "webhooks", getDeliveries, {
    summary: "Webhook deliveries of the caller's jobs and predictions, newest first",
    query: deliveriesQuerySchema,
    responses: { 200: A.WebhookDeliveryListSchema },
    errors: ["invalid_request", "registry_unavailable"],
  }),
  authed("GET", "/api/v1/webhooks/deliveries/:id", "webhooks", getDelivery, {
    summary: "One webhook delivery: status, attempts, last answer",
    responses: { 200: A.WebhookDeliverySchema },
    errors: ["webhook_delivery_not_found", "registry_unavailable"],
  }),
  // Dashboard (docs/dashboard.md): an ASAP caller gets a one-time login URL; the page and its
  // read-only data routes accept only the session cookie that URL sets.
  authed("POST", "/api/v1/dashboard/login", "dashboard", dashboardLogin, {
    summary: "A one-time dashboard login URL (valid 15 min) for the calling issuer",
    responses: { 200: A.LoginUrlSchema },
    errors: ["registry_unavailable"],
  }),
  {
    ...open("GET", "/dashboard/login", "dashboard_page", dashboardExchange, {
      summary: "Exchange a one-time code for a session cookie → 303 to /dashboard",
      query: z.strictObject({ code: z.string() }),
      responses: {
        303: {
          description:
            "redirect to /dashboard with `Set-Cookie` (HttpOnly, SameSite=Strict, Path=/dashboard)",
        },
      },
      errors: ["login_code_invalid", "registry_unavailable"],
    }),
    throttle: true,
    html: true,
  },
  // Training datasets in R2 (docs/registry.md): admin only, like every registry mutation.
  ...["/api/v1/datasets/:id", "/api/v1/datasets/:folder/:id"].map((path) =>
    authed("PUT", path, "models_admin", putDataset, {
      summary:
        "Upload a training dataset (CSV, JSON Lines or JSON; gzipped when the name ends in .gz), validated",
      body: {
        mediaType: "application/octet-stream",
        description: "the dataset file; Content-Length required",
      },
      query: uploadDatasetQuerySchema,
      responses: { 201: A.UploadedDatasetSchema },
      errors: [
        "invalid_request",
        "length_required",
        "payload_too_large",
        "dataset_too_large",
        "invalid_dataset",
        "dataset_exists",
      ],
    }),
  ),
  authed("GET", "/api/v1/datasets", "models_admin", getDatasets, {
    summary: "Training datasets in name order, 1,000 per page",
    query: listDatasetsQuerySchema,
    responses: { 200: A.DatasetListSchema },
    errors: ["invalid_request"],
  }),
  ...["/api/v1/datasets/:id", "/api/v1/datasets/:folder/:id"].map((path) =>
    authed("DELETE", path, "models_admin", removeDataset, {
      summary: "Delete a training dataset",
      responses: { 200: A.DatasetDeletionSchema },
      errors: ["dataset_not_found"],
    }),
  ),
  ...(
    [
      ["/dashboard", dashboardPage, "The dashboard page (HTML)", "text/html"],
      ["/dashboard/app.js", dashboardScript, "The dashboard's script", "text/javascript"],
      ["/dashboard/app.css", dashboardStyles, "The dashboard's styles", "text/css"],
    ] as const
  ).map(
    ([path, handler, summary, mediaType]): RouteDef => ({
      ...open("GET", path, "dashboard_page", handler, {
        summary,
        responses: { 200: { description: summary, mediaType, schema: z.string() } },
        errors: ["dashboard_login_required", "registry_unavailable"],
      }),
      throttle: true,
      session: true,
      html: path === "/dashboard",
    }),
  ),
  ...(
    [
      [
        "/dashboard/api/statistics",
        dashboardStatistics(() => ROUTES.map((r) => r.api)),
        "Every API's statistics",
        A.AllStatisticsSchema,
      ],
      ["/dashboard/api/models", dashboardModels, "Models and their active versions", A.ModelListSchema],
      ["/dashboard/api/online", dashboardOnline, "Online learners' metrics", A.OnlineDashboardSchema],
      [
        "/dashboard/api/backlog",
        dashboardBacklog,
        "Queued and running jobs and async predictions",
        A.BacklogSchema,
      ],
      ["/dashboard/api/drift", dashboardDrift, "Each model's PSI per hour (drift)", A.DriftDashboardSchema],
    ] as const
  ).map(
    ([path, handler, summary, answer]): RouteDef => ({
      ...open("GET", path, "dashboard_data", handler, {
        summary: `Dashboard data (session cookie only): ${summary}`,
        responses: { 200: answer },
        errors: [
          "dashboard_login_required",
          "registry_unavailable",
          "statistics_unavailable",
          "learner_unavailable",
        ],
      }),
      throttle: true,
      session: true,
    }),
  ),
  // The dashboard's per-model view (docs/dashboard.md): GET /api/v1/models/:id and its quality, shadow, traffic.
  {
    ...open(
      "GET",
      "/dashboard/api/models/:id",
      "dashboard_data",
      dashboardModelView((apiPath) => ROUTES.find((r) => r.method === "GET" && r.path === apiPath)),
      {
        summary:
          "Dashboard data (session cookie only): a model's detail, live quality, shadow comparisons and traffic per version",
        responses: { 200: A.DashboardModelViewSchema },
        errors: ["dashboard_login_required", "forbidden", "model_not_found", "registry_unavailable"],
      },
    ),
    throttle: true,
    session: true,
  },
  // The dashboard's "Explain a text" box (docs/explanations.md).
  {
    ...open("POST", "/dashboard/api/explain", "dashboard_data", dashboardExplain, {
      summary: "Dashboard (session cookie only): score and explain one text (the issuer needs predict:POST)",
      body: dashboardExplainBodySchema,
      responses: { 200: A.DashboardExplainSchema },
      errors: [
        ...TEXT_ERRORS,
        "dashboard_login_required",
        "explain_unsupported",
        "forbidden",
        "work_budget_exceeded",
      ],
    }),
    throttle: true,
    session: true,
  },
  // Online learning (docs/online.md): models of ONLINE_MODELS and those created with task "online".
  authed("POST", "/api/v1/models/:id/samples", "online_samples", onlineSamples, {
    summary: "Labelled samples (one, an array, or text/csv) → predict, store, learn each",
    body: onlineSampleBody,
    bodyAlso: [CSV_SAMPLES],
    responses: { 200: A.IngestResultSchema },
    errors: [...ONLINE_ERRORS, "payload_too_large", "label_limit_reached"],
  }),
  authed("POST", "/api/v1/models/:id/predict", "online_predict", onlinePredict, {
    summary: 'One sample → `["<AccountNumber>"]` (top k with `?n_top=k`)',
    body: bankInputSchema,
    query: onlinePredictQuerySchema,
    responses: { 200: A.OnlinePredictionSchema },
    errors: [...ONLINE_ERRORS, "model_unavailable"],
  }),
  authed("POST", "/api/v1/models/:id/reset", "models_admin", onlineReset, {
    summary: "Reset an online model's learner (weights, samples, metrics)",
    responses: { 200: A.OnlineResetSchema },
    errors: ["model_not_found", "learner_unavailable", "registry_unavailable"],
  }),
  authed("GET", "/api/v1/models/:id/metrics", "online_metrics", onlineMetrics, {
    summary: "Precision/recall/accuracy of the last 1,000 predictions, and series",
    responses: { 200: A.OnlineMetricsSchema },
    errors: ["model_not_found", "learner_unavailable"],
  }),
  // Open Inference Protocol v2 (KServe V2 REST; docs/protocols.md). Health probes need no token,
  // like /api/v1/health; errors are `{"error": "…"}` (see `toProblem`).
  authed("GET", "/v2", "oip_server", oip.serverMetadata, {
    summary: "Server metadata",
    responses: { 200: A.OipServerMetadataSchema },
  }),
  open("GET", "/v2/health/live", "health", oip.serverLive, {
    summary: "Liveness (status only)",
    responses: { 200: STATUS_ONLY },
  }),
  open("GET", "/v2/health/ready", "health_ready", oip.serverReady, {
    summary: "Readiness: the default model loads and runs (status only)",
    responses: { 200: STATUS_ONLY },
    errors: ["model_unavailable"],
  }),
  ...["/v2/models/:model", "/v2/models/:model/versions/:version"].flatMap((base): RouteDef[] => [
    authed("GET", base, "oip_metadata", oip.modelMetadata, {
      summary: "Model metadata: versions, platform, inputs and outputs",
      responses: { 200: A.OipModelMetadataSchema },
      errors: ["model_not_found", "model_version_not_found", "model_unavailable"],
    }),
    authed("GET", `${base}/ready`, "oip_ready", oip.modelReady, {
      summary: "Model readiness (status only)",
      responses: { 200: STATUS_ONLY },
      errors: ["model_not_found", "model_version_not_found", "model_unavailable"],
    }),
    {
      ...authed("POST", `${base}/infer`, "oip_infer", oip.infer, {
        summary:
          "Inference: BYTES texts, or images as BYTES files or UINT8 pixels → FP32 scores + labels; tensor models: their own tensors",
        body: oip.inferRequestSchema,
        responses: { 200: A.OipInferResponseSchema },
        errors: [...TEXT_ERRORS, ...IMAGE_ERRORS, "explain_unsupported"],
      }),
      speculative: true,
    },
  ]),
  authed("POST", "/v2/repository/index", "oip_repository", oip.repositoryIndex, {
    summary: "Model repository index",
    body: oip.repositoryIndexSchema,
    responses: { 200: A.OipRepositoryIndexSchema },
    errors: ["invalid_json", "invalid_request", "registry_unavailable"],
  }),
  // Clients people already have (docs/clients.md): OpenAI's moderation API.
  {
    ...authed("POST", "/v1/moderations", "moderations", openai.moderations, {
      summary: "OpenAI-compatible moderation: texts → toxicity model, data: URL images → image model",
      body: openai.moderationRequestSchema,
      responses: { 200: A.ModerationAnswerSchema },
      errors: [...TEXT_ERRORS, ...IMAGE_ERRORS],
    }),
    speculative: true,
  },
  // Hugging Face task shapes per model (@huggingface/inference with endpointUrl).
  {
    ...authed(
      "POST",
      "/hf/models/:model/pipeline/text-classification",
      "hf_inference",
      hf.hfTextClassification,
      {
        summary: "Hugging Face text classification: `{inputs, parameters: {top_k}}` → `[[{label, score}]]`",
        body: hf.hfTextRequestSchema,
        responses: { 200: A.HfTextAnswerSchema },
        errors: [...TEXT_ERRORS],
      },
    ),
    speculative: true,
  },
  {
    ...authed(
      "POST",
      "/hf/models/:model/pipeline/image-classification",
      "hf_inference",
      hf.hfImageClassification,
      {
        summary:
          "Hugging Face image classification: raw image bytes (or JSON base64 `inputs`) → `[{label, score}]`",
        body: {
          mediaType: "application/octet-stream",
          description: "the PNG or JPEG bytes; or application/json `{inputs: <base64>, parameters: {top_k}}`",
        },
        responses: { 200: A.HfImageAnswerSchema },
        errors: [
          ...IMAGE_ERRORS,
          "invalid_json",
          "invalid_request",
          "payload_too_large",
          "model_not_found",
          "model_input_mismatch",
          "model_unavailable",
        ],
      },
    ),
    speculative: true,
  },
  // Compatibility routes of the replaced services (docs/protocols.md), switched by COMPAT_ROUTES.
  compat("GET", "/models", "compat_models", compatHandlers.registryListModels, {
    summary: "Registry service: every model",
    responses: { 200: A.ModelListSchema },
    errors: ["registry_unavailable"],
  }),
  compat("POST", "/models", "compat_models_admin", compatHandlers.registryTrain, {
    summary: "Registry service: train on datasets/<s3bucket>/<training_object>",
    body: compatHandlers.registryTrainSchema,
    responses: { 202: A.CreatedJobSchema },
    errors: [...JOB_ERRORS],
  }),
  compat("DELETE", "/models/:id", "compat_models_admin", compatHandlers.registryDeleteModel, {
    summary: "Registry service: delete a model and everything related",
    responses: { 200: A.DeletionSchema },
    errors: [...MODEL_ADMIN_ERRORS, "model_is_default", "model_is_online"],
  }),
  compat("GET", "/prediction", "compat_prediction", compatHandlers.registryPrediction, {
    summary: "Registry service: a model's categories for a text (JSON body on GET)",
    body: compatHandlers.registryPredictionSchema,
    responses: { 200: A.RegistryPredictionSchema },
    errors: [...TEXT_ERRORS],
  }),
  // The same, for HTTP clients that cannot send a body with GET (fetch, browsers).
  compat("POST", "/prediction", "compat_prediction", compatHandlers.registryPrediction, {
    summary: "Registry service: a model's categories for a text",
    body: compatHandlers.registryPredictionSchema,
    responses: { 200: A.RegistryPredictionSchema },
    errors: [...TEXT_ERRORS],
  }),
  compat("POST", "/sample", "compat_sample", compatHandlers.onlineServiceSample, {
    summary: "Online service: labelled samples (records, one record, or pandas columns) → `{message}`",
    body: z.union([bankSampleSchema, z.array(bankSampleSchema), pandasColumns]),
    bodyAlso: [CSV_SAMPLES],
    responses: { 200: A.CompatSampleAnswerSchema },
    errors: [...ONLINE_ERRORS, "payload_too_large", "label_limit_reached"],
  }),
  compat("POST", "/predict", "compat_predict", compatHandlers.onlineServicePredict, {
    summary: 'Online service: one sample (a record, a list of one, or pandas columns) → `{"AccountNumber"}`',
    body: z.union([bankInputSchema, z.array(bankInputSchema), pandasColumns]),
    query: onlinePredictQuerySchema,
    responses: { 200: A.CompatPredictAnswerSchema },
    errors: [...ONLINE_ERRORS],
  }),
  ...["/inference/image", "/inference/image/"].map((path) =>
    compat("POST", path, "compat_image", compatHandlers.imageServiceSubmit, {
      summary: "Image service: an async prediction with the general image model → {uuid} (also at …/image/)",
      body: compatHandlers.imageServiceRequestSchema,
      bodyAlso: [
        {
          mediaType: "text/plain",
          description: "the same JSON, as the image service's clients send it",
          schema: compatHandlers.imageServiceRequestSchema,
        },
      ],
      responses: { 200: A.ImageServiceSubmitSchema },
      alias: path.endsWith("/"),
      errors: [
        ...IMAGE_ERRORS,
        "invalid_json",
        "invalid_request",
        "payload_too_large",
        "queue_unavailable",
        "rollout_unavailable",
      ],
    }),
  ),
  ...["/predictions/:uuid", "/predictions/:uuid/"].map((path) =>
    compat("GET", path, "compat_image_result", compatHandlers.imageServiceResult, {
      summary: 'Image service: `{"prediction": "<label>"}` when done (202 while queued; also at …/<uuid>/)',
      responses: { 200: A.ImageServiceResultSchema, 202: A.ImageServicePendingSchema },
      alias: path.endsWith("/"),
      errors: ["prediction_not_found", "registry_unavailable"],
    }),
  ),
  {
    ...open("GET", "/getStatus", "health", compatHandlers.onlineServiceStatus, {
      summary: 'Online service: liveness, `{"message": "Success!"}`',
      responses: { 200: A.MessageSchema },
    }),
    compat: true,
  },
  compat("GET", "/metrics", "compat_metrics", compatHandlers.onlineServiceMetrics, {
    summary: "Online service: monitoring of the last 1,000 predictions",
    responses: { 200: A.OnlineMetricsSchema },
    errors: ["model_not_found", "learner_unavailable"],
  }),
];

const fallbackLogger = createLogger("info");

/** First stage: request id, timing, validated config and logger. */
function withState(request: IRequest, env: Env): void {
  const state = {
    requestId: request.headers.get("x-request-id")?.slice(0, 128) || crypto.randomUUID(),
    startedAt: Date.now(),
    api: "unknown",
  };
  (request as AppRequest).state = state as AppRequest["state"];
  const config = loadConfig(env as unknown as Record<string, unknown>);
  Object.assign(state, { config, logger: createLogger(config.LOG_LEVEL) });
}

/** Renders any error as problem+json; unexpected errors become a generic 500 (details only in logs). */
function toProblem(error: unknown, request: IRequest): Response {
  const req = request as AppRequest;
  let apiError: ApiError;
  if (error instanceof ApiError) apiError = error;
  else if (error instanceof AuthError) {
    apiError = authApiError(error);
    (req.state?.logger ?? fallbackLogger).log(apiError.status >= 500 ? "warn" : "info", "auth_rejected", {
      request_id: req.state?.requestId,
      reason: error.reason,
    });
  } else if (error instanceof ConfigError)
    apiError = new ApiError("config_invalid", error.message, { cause: error });
  else apiError = new ApiError("internal_error", "unexpected error; see server logs", { cause: error });
  const logger = req.state?.logger ?? fallbackLogger;
  if (apiError.status >= 500) {
    const cause = apiError.cause ?? error;
    logger.log("error", "request_failed", {
      request_id: req.state?.requestId,
      code: apiError.code,
      error: cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause),
    });
  }
  const path = new URL(request.url).pathname;
  const requestId = req.state?.requestId ?? "unknown";
  if (req.state?.html) return problemHtmlResponse(apiError, requestId);
  if (path === "/v2" || path.startsWith("/v2/")) return oipErrorResponse(apiError);
  return problemResponse(apiError, path, requestId);
}

/** First of the last stages: an unread request body is drained within bounds (`settleRequestBody`). */
async function settleBody(_response: Response, request: IRequest): Promise<undefined> {
  await settleRequestBody(request as unknown as Request);
  return undefined;
}

/**
 * Last stage: the headers every response carries (request id, security, CORS: `applyResponseHeaders`
 * is the one place) and the structured log line of the request (per `REQUEST_LOG`). A HEAD answer
 * is the GET answer without its body.
 */
function finish(responseIn: Response, request: IRequest, _env: Env, ctx: ExecutionContext): Response {
  const req = request as AppRequest;
  const state = req.state;
  let response = responseIn;
  if (request.method === "HEAD" && response.body) {
    void response.body.cancel();
    response = new Response(null, { status: response.status, headers: response.headers });
  }
  // Every response is built by this Worker (json/problemResponse), so its headers are mutable.
  applyResponseHeaders(response.headers, request as unknown as Request, state?.config);
  if (!state) return response;
  response.headers.set("x-request-id", state.requestId);
  // REQUEST_LOG, not LOG_LEVEL, decides (all lines when the config itself failed to load).
  if (!sampleRequest(state.config?.REQUEST_LOG ?? 1)) return response;
  const line = requestLineText({
    request_id: state.requestId,
    client_request_id: state.clientRequestId,
    api: state.api,
    issuer: state.caller?.issuer,
    method: request.method,
    url: request.url,
    status: response.status,
    latency_ms: Date.now() - state.startedAt,
    model: state.model?.id,
    model_version: state.model?.version,
  });
  // Batched per isolate (`RequestLog`): one console.log per REQUEST_LOG_BATCH lines.
  requestLog.add(line, state.config?.REQUEST_LOG_BATCH ?? 1, (flushed) => ctx.waitUntil(flushed));
  return response;
}

/**
 * 404 for a path no route serves, with the closest routes (`suggestions`, "METHOD /path"): each
 * route's pattern with its parameters filled from the request's segments, compared by edit
 * distance; a route of the request's method wins a tie.
 */
function routeNotFound(request: IRequest): ApiError {
  const path = new URL(request.url).pathname;
  const segments = path.split("/");
  const concrete = ROUTES.filter(
    (r) => !r.compat || (request as AppRequest).state?.config?.COMPAT_ROUTES,
  ).map((r) => {
    const filled = r.path
      .split("/")
      .map((s, i) => (s.startsWith(":") ? (segments[i] ?? s) : s))
      .join("/");
    return { label: `${r.method} ${r.path}`, filled, method: r.method };
  });
  const near = closest(
    path,
    concrete.map((c) => c.filled),
    6,
  );
  const suggestions = [
    ...new Set(
      near.flatMap((f) =>
        concrete
          .filter((c) => c.filled === f)
          .sort((a, b) => Number(b.method === request.method) - Number(a.method === request.method))
          .map((c) => c.label),
      ),
    ),
  ].slice(0, 3);
  return new ApiError(
    "route_not_found",
    `no route for ${request.method} ${path}${didYouMean(suggestions)} (GET /api/v1/openapi.json lists every route)`,
    { extensions: { suggestions } },
  );
}

/** Builds the router: each route, 405 for known paths with other methods, 404 otherwise. */
export function buildRouter() {
  const router = Router<IRequest, [Env, ExecutionContext]>({
    before: [withState],
    catch: toProblem,
    finally: [settleBody, finish, meter],
  });
  const admit = createAdmission([...new Set(ROUTES.filter((r) => r.throttle).map((r) => r.api))]);
  const methodsByPath = new Map<string, AllowedMethod[]>();
  for (const route of ROUTES) {
    // HEAD is GET without the body (RFC 9110 §9.3.2): the same stages, handler and headers.
    const methods: AllowedMethod[] = route.method === "GET" ? ["GET", "HEAD"] : [route.method];
    methodsByPath.set(route.path, [...(methodsByPath.get(route.path) ?? []), ...methods]);
    for (const method of methods)
      router[method.toLowerCase() as "get"](
        route.path,
        async (request: IRequest, env: Env, ctx: ExecutionContext) => {
          const req = request as AppRequest;
          req.state.api = route.api;
          if (route.compat && !req.state.config.COMPAT_ROUTES) throw routeNotFound(request);
          if (route.html) req.state.html = true;
          if (route.auth) await authenticate(req, env, route);
          if (route.session) {
            const { config } = req.state;
            const cookie = req.headers.get("cookie");
            const issuer = await sessionIssuer(env.DB, cookie, config.ASAP_POLICY, Date.now());
            req.state.caller = { issuer, subject: "dashboard-session" };
          }
          const { replayCheck } = await admit(req, env, ctx, route);
          if (!replayCheck) return route.handler(req, env, ctx);
          // Side-effect-free routes run while the token's replay check is under way; the others
          // wait for it. Either way no result leaves before the check has said yes.
          if (route.speculative) return afterCheck(replayCheck, () => route.handler(req, env, ctx));
          await replayCheck;
          return route.handler(req, env, ctx);
        },
      );
  }
  for (const [path, methods] of methodsByPath) {
    const compatOnly = ROUTES.every((r) => r.path !== path || r.compat);
    // Neither authenticated nor throttled: browsers send preflights without credentials.
    router.options(path, (request: IRequest) =>
      optionsResponse(
        request as unknown as Request,
        methods,
        (request as AppRequest).state.config.CORS_ORIGINS,
      ),
    );
    router.all(path, (request: IRequest) => {
      if (compatOnly && !(request as AppRequest).state.config.COMPAT_ROUTES) throw routeNotFound(request);
      throw new ApiError("method_not_allowed", `${request.method} is not allowed on ${path}`, {
        headers: { allow: methods.join(", ") },
      });
    });
  }
  router.all("*", (request: IRequest) => {
    throw routeNotFound(request);
  });
  return router;
}
