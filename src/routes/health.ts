import { HealthSchema, ReadySchema } from "../answers";
import type { Handler } from "../context";
import { ApiError } from "../errors";
import { reply } from "../http";
import { probeModel } from "../predictions/classify";

/** `GET /api/v1/health`: liveness only; touches no model and needs no auth. */
export const health: Handler = (request) =>
  reply(HealthSchema, {
    message: "Application is up and running",
    status: "ok",
    environment: request.state.config.ENVIRONMENT,
    default_model: request.state.config.DEFAULT_MODEL,
  });

/** `GET /api/v1/health/ready`: 200 only when the default model loads and runs, else 503. */
export const ready: Handler = async (request, env) => {
  const { config } = request.state;
  try {
    const model = await probeModel(env.MODELS, config, config.DEFAULT_MODEL, undefined);
    request.state.model = model;
    return reply(ReadySchema, { status: "ready", model });
  } catch (cause) {
    const reason = cause instanceof ApiError ? cause.code : "internal_error";
    throw new ApiError("not_ready", `default model '${config.DEFAULT_MODEL}' is not loadable (${reason})`, {
      cause,
      headers: { "retry-after": "5" },
      extensions: { reason },
    });
  }
};
