/**
 * The one error type of the API. Every failure a client can see is an `ApiError` with a stable
 * machine-readable `code`, rendered once (in the router's catch stage) as RFC 9457
 * `application/problem+json`.
 */

/** Stable error codes, their HTTP status and a short human title. */
export const ERROR_CODES = {
  invalid_json: { status: 400, title: "Request body is not valid JSON" },
  invalid_request: { status: 400, title: "Request failed validation" },
  unsupported_encoding: { status: 400, title: "Unsupported encoding_type" },
  batch_too_large: { status: 400, title: "Too many texts in one request" },
  invalid_content_length: { status: 400, title: "Invalid Content-Length" },
  payload_too_large: { status: 413, title: "Request body too large" },
  text_too_large: { status: 413, title: "Text too large" },
  work_budget_exceeded: { status: 413, title: "Request exceeds the per-request work budget" },
  invalid_image: { status: 400, title: "Image is not a valid PNG or JPEG" },
  image_too_large: { status: 413, title: "Image too large" },
  unsupported_image_format: { status: 415, title: "Unsupported image format" },
  model_input_mismatch: { status: 400, title: "Model does not take this kind of input" },
  unknown_network: { status: 400, title: "Model has no such network variant" },
  explain_unsupported: { status: 400, title: "Model cannot explain its scores" },
  unsupported_media_type: { status: 415, title: "Unsupported Content-Type" },
  invalid_token: { status: 401, title: "Missing or invalid bearer token" },
  forbidden: { status: 403, title: "Caller is not allowed this API" },
  origin_not_allowed: { status: 403, title: "Origin not allowed (CORS)" },
  route_not_found: { status: 404, title: "No such route" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  model_not_found: { status: 404, title: "Unknown model" },
  model_version_not_found: { status: 404, title: "Unknown model version" },
  model_unavailable: { status: 503, title: "Model could not be loaded" },
  api_not_found: { status: 404, title: "Unknown API" },
  rate_limited: { status: 429, title: "Too many requests" },
  rate_limiter_unavailable: { status: 503, title: "Rate limiter unavailable" },
  statistics_unavailable: { status: 503, title: "Statistics unavailable" },
  auth_unavailable: { status: 503, title: "Authentication temporarily unavailable" },
  not_ready: { status: 503, title: "Service not ready" },
  invalid_model: { status: 422, title: "Model upload failed validation" },
  model_too_large: { status: 413, title: "Model would not fit an isolate's memory" },
  model_resource_limit: { status: 503, title: "Uploaded model exceeded its Worker's CPU or memory limit" },
  model_exists: { status: 409, title: "Model already exists" },
  model_version_exists: { status: 409, title: "Model version already exists" },
  reference_is_training: { status: 409, title: "The version's reference profile is of its training inputs" },
  drift_window_too_small: { status: 422, title: "Too few live inputs in the chosen hours for a reference" },
  invalid_split: { status: 400, title: "Traffic split is not valid" },
  invalid_shadow: { status: 400, title: "Shadow versions are not valid" },
  model_is_default: { status: 409, title: "The default model cannot be deleted" },
  model_is_online: { status: 409, title: "An online model cannot be deleted" },
  job_in_progress: { status: 409, title: "A training job for this model is already queued or running" },
  job_not_found: { status: 404, title: "Unknown job" },
  prediction_not_found: { status: 404, title: "Unknown prediction" },
  unknown_label: { status: 400, title: "The model has no such label" },
  feedback_conflict: { status: 409, title: "Different feedback was already recorded for this prediction" },
  webhook_delivery_not_found: { status: 404, title: "Unknown webhook delivery" },
  invalid_callback_url: { status: 400, title: "Callback URL refused" },
  callback_not_allowed: { status: 403, title: "Callback destination not allowed for this issuer" },
  invalid_idempotency_key: { status: 400, title: "Idempotency-Key is not valid" },
  idempotency_key_reused: { status: 422, title: "Idempotency-Key was used with a different request" },
  idempotency_key_in_progress: { status: 409, title: "A request with this Idempotency-Key is in progress" },
  invalid_dataset: { status: 422, title: "Dataset is not usable" },
  dataset_too_large: { status: 413, title: "Dataset too large" },
  dataset_exists: { status: 409, title: "Dataset already exists" },
  dataset_not_found: { status: 404, title: "Unknown dataset" },
  length_required: { status: 411, title: "Content-Length required" },
  registry_unavailable: { status: 503, title: "Model registry unavailable" },
  queue_unavailable: { status: 503, title: "Queue unavailable" },
  label_limit_reached: { status: 422, title: "The online model's label set is full" },
  learner_unavailable: { status: 503, title: "Online learner unavailable" },
  rollout_unavailable: { status: 503, title: "Traffic split assignment unavailable" },
  login_code_invalid: { status: 401, title: "Login code is invalid, expired or already used" },
  dashboard_login_required: { status: 401, title: "Dashboard login required" },
  config_invalid: { status: 500, title: "Server configuration is invalid" },
  internal_error: { status: 500, title: "Internal error" },
} as const satisfies Record<string, { status: number; title: string }>;

/** A stable error code (see `ERROR_CODES`). */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options for an `ApiError` beyond its code and detail. */
export interface ApiErrorOptions {
  /** Extra response headers (e.g. `Allow`, `Retry-After`, `WWW-Authenticate`). */
  headers?: Record<string, string>;
  /** Extra problem members (e.g. `errors` from validation); must never contain secrets. */
  extensions?: Record<string, unknown>;
  /** Underlying error, for logs only: never rendered. */
  cause?: unknown;
}

/** An error with an HTTP status and a stable code, safe to show to the client. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(code: ErrorCode, detail: string, options: ApiErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ApiError";
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }
}

/** Renders an `ApiError` as an `application/problem+json` response. */
export function problemResponse(error: ApiError, instance: string, requestId: string): Response {
  const body = {
    type: `urn:edge-inference:problem:${error.code}`,
    title: ERROR_CODES[error.code].title,
    status: error.status,
    code: error.code,
    detail: error.message,
    instance,
    request_id: requestId,
    ...error.extensions,
  };
  return new Response(JSON.stringify(body), {
    status: error.status,
    headers: { "content-type": "application/problem+json", ...error.headers },
  });
}

/**
 * Renders an `ApiError` in the Open Inference Protocol's error shape, `{"error": "…"}`, with the
 * same status and headers (the code is kept in `code` for clients that want it, an auth failure's
 * reason in `reason`).
 */
export function oipErrorResponse(error: ApiError): Response {
  // An auth failure's `reason` (docs/auth.md: every auth error carries one) is kept as well.
  const reason = typeof error.extensions.reason === "string" ? error.extensions.reason : undefined;
  const body = { error: error.message, code: error.code, ...(reason !== undefined && { reason }) };
  return new Response(JSON.stringify(body), {
    status: error.status,
    headers: { "content-type": "application/json", ...error.headers },
  });
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/**
 * Renders an `ApiError` as a small HTML page, for routes a person opens in a browser (the
 * dashboard): the same status, code and detail as the problem+json form, no script, no styles.
 */
export function problemHtmlResponse(error: ApiError, requestId: string): Response {
  const title = ERROR_CODES[error.code].title;
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(error.message)}</p>
<p><small>status ${error.status} · code <code>${error.code}</code> · request ${escapeHtml(requestId)}</small></p></body></html>
`;
  return new Response(body, {
    status: error.status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy":
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      "cache-control": "no-store",
      ...error.headers,
    },
  });
}
