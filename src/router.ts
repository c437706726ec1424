import { type IRequest, Router } from "itty-router";
import { createAdmission } from "./admission";
import { authenticate } from "./auth/stage";
import { ConfigError, loadConfig } from "./config";
import type { AppRequest, Handler } from "./context";
import { ApiError, problemResponse } from "./errors";
import { createLogger, sampleRequest, writeLine } from "./log";
import { meter } from "./metering/meter";
import { getDatasets, putDataset, removeDataset } from "./routes/datasets";
import { health, ready } from "./routes/health";
import { getJob } from "./routes/jobs";
import { activate, createModel, getModel, listModels, putVersion, removeModel } from "./routes/models";
import { onlineMetrics, onlinePredict, onlineSamples } from "./routes/online";
import { predict } from "./routes/predict";
import { getPrediction, listPredictionLog, submitPrediction } from "./routes/predictions";
import { statistics } from "./routes/statistics";

type Method = "GET" | "POST" | "PUT" | "DELETE";

/** One API route: `api` names it in logs, statistics and policies. */
export interface RouteDef {
  method: Method;
  path: string;
  api: string;
  /** Requires a valid ASAP bearer token allowed by `ASAP_POLICY` (docs/auth.md); health probes do not. */
  auth: boolean;
  /** Counted against the caller's rate limit before the handler runs (health probes are not). */
  throttle: boolean;
  handler: Handler;
}

/** Every route of the service, in matching order. */
export const ROUTES: readonly RouteDef[] = [
  { method: "GET", path: "/api/v1/health", api: "health", auth: false, throttle: false, handler: health },
  {
    method: "GET",
    path: "/api/v1/health/ready",
    api: "health_ready",
    auth: false,
    throttle: false,
    handler: ready,
  },
  { method: "POST", path: "/api/v1/predict", api: "predict", auth: true, throttle: true, handler: predict },
  {
    method: "GET",
    path: "/api/v1/statistics",
    api: "statistics",
    auth: true,
    throttle: true,
    handler: statistics(() => ROUTES.map((r) => r.api)),
  },
  // Registry (docs/registry.md). Reads are `models`; every mutation is `models_admin`, which
  // ASAP_POLICY should grant to admin issuers only.
  { method: "GET", path: "/api/v1/models", api: "models", auth: true, throttle: true, handler: listModels },
  { method: "GET", path: "/api/v1/models/:id", api: "models", auth: true, throttle: true, handler: getModel },
  {
    method: "POST",
    path: "/api/v1/models",
    api: "models_admin",
    auth: true,
    throttle: true,
    handler: createModel,
  },
  {
    method: "PUT",
    path: "/api/v1/models/:id/versions/:version",
    api: "models_admin",
    auth: true,
    throttle: true,
    handler: putVersion,
  },
  {
    method: "POST",
    path: "/api/v1/models/:id/activate",
    api: "models_admin",
    auth: true,
    throttle: true,
    handler: activate,
  },
  {
    method: "DELETE",
    path: "/api/v1/models/:id",
    api: "models_admin",
    auth: true,
    throttle: true,
    handler: removeModel,
  },
  { method: "GET", path: "/api/v1/jobs/:id", api: "jobs", auth: true, throttle: true, handler: getJob },
  // Training datasets in R2 (docs/registry.md): admin only, like every registry mutation.
  {
    method: "PUT",
    path: "/api/v1/datasets/:id",
    api: "models_admin",
    auth: true,
    throttle: true,
    handler: putDataset,
  },
  {
    method: "GET",
    path: "/api/v1/datasets",
    api: "models_admin",
    auth: true,
    throttle: true,
    handler: getDatasets,
  },
  {
    method: "DELETE",
    path: "/api/v1/datasets/:id",
    api: "models_admin",
    auth: true,
    throttle: true,
    handler: removeDataset,
  },
  {
    method: "POST",
    path: "/api/v1/predictions",
    api: "predictions",
    auth: true,
    throttle: true,
    handler: submitPrediction,
  },
  {
    method: "GET",
    path: "/api/v1/predictions",
    api: "prediction_log",
    auth: true,
    throttle: true,
    handler: listPredictionLog,
  },
  {
    method: "GET",
    path: "/api/v1/predictions/:id",
    api: "predictions",
    auth: true,
    throttle: true,
    handler: getPrediction,
  },
  // Online learning (docs/online.md): only model ids in ONLINE_MODELS.
  {
    method: "POST",
    path: "/api/v1/models/:id/samples",
    api: "online_samples",
    auth: true,
    throttle: true,
    handler: onlineSamples,
  },
  {
    method: "POST",
    path: "/api/v1/models/:id/predict",
    api: "online_predict",
    auth: true,
    throttle: true,
    handler: onlinePredict,
  },
  {
    method: "GET",
    path: "/api/v1/models/:id/metrics",
    api: "online_metrics",
    auth: true,
    throttle: true,
    handler: onlineMetrics,
  },
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
  else if (error instanceof ConfigError)
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
  return problemResponse(apiError, new URL(request.url).pathname, req.state?.requestId ?? "unknown");
}

/** Last stage: request id header and the structured log line of the request (per `REQUEST_LOG`). */
function finish(response: Response, request: IRequest): Response {
  const req = request as AppRequest;
  const state = req.state;
  if (!state) return response;
  // Every response is built by this Worker (json/problemResponse), so its headers are mutable.
  response.headers.set("x-request-id", state.requestId);
  // REQUEST_LOG, not LOG_LEVEL, decides (all lines when the config itself failed to load).
  if (!sampleRequest(state.config?.REQUEST_LOG ?? 1)) return response;
  writeLine("info", "request", {
    request_id: state.requestId,
    client_request_id: state.clientRequestId,
    api: state.api,
    issuer: state.caller?.issuer,
    method: request.method,
    route: new URL(request.url).pathname,
    status: response.status,
    latency_ms: Date.now() - state.startedAt,
    model: state.model?.id,
    model_version: state.model?.version,
  });
  return response;
}

/** Builds the router: each route, 405 for known paths with other methods, 404 otherwise. */
export function buildRouter() {
  const router = Router<IRequest, [Env, ExecutionContext]>({
    before: [withState],
    catch: toProblem,
    finally: [finish, meter],
  });
  const admit = createAdmission([...new Set(ROUTES.filter((r) => r.throttle).map((r) => r.api))]);
  const methodsByPath = new Map<string, Method[]>();
  for (const route of ROUTES) {
    methodsByPath.set(route.path, [...(methodsByPath.get(route.path) ?? []), route.method]);
    router[route.method.toLowerCase() as "get"](
      route.path,
      async (request: IRequest, env: Env, ctx: ExecutionContext) => {
        const req = request as AppRequest;
        req.state.api = route.api;
        if (route.auth) await authenticate(req, env, route);
        await admit(req, env, route);
        return route.handler(req, env, ctx);
      },
    );
  }
  for (const [path, methods] of methodsByPath) {
    router.all(path, (request: IRequest) => {
      throw new ApiError("method_not_allowed", `${request.method} is not allowed on ${path}`, {
        headers: { allow: methods.join(", ") },
      });
    });
  }
  router.all("*", (request: IRequest) => {
    throw new ApiError("route_not_found", `no route for ${request.method} ${new URL(request.url).pathname}`);
  });
  return router;
}
