import type { Handler } from "../context";
import { ApiError } from "../errors";
import { json } from "../http";
import { scoreTexts, withModel } from "../inference/engine";
import { scoreImage } from "../inference/image";
import { requireImageModel, requireTextModel } from "../inference/kinds";

/** `GET /api/v1/health`: liveness only; touches no model and needs no auth. */
export const health: Handler = (request) =>
  json({
    message: "Application is up and running",
    status: "ok",
    environment: request.state.config.ENVIRONMENT,
    default_model: request.state.config.DEFAULT_MODEL,
  });

/** `GET /api/v1/health/ready`: 200 only when the default model loads and runs, else 503. */
export const ready: Handler = async (request, env) => {
  const { config } = request.state;
  try {
    const model = await withModel(env.MODELS, config, config.DEFAULT_MODEL, undefined, async (m) => {
      if (m.meta.kind === "image") {
        const { width, height } = m.meta.preprocess;
        const blank = {
          format: "png" as const,
          width,
          height,
          channels: 1 as const,
          data: new Uint8Array(width * height),
        };
        await scoreImage(requireImageModel(m), blank);
      } else await scoreTexts(requireTextModel(m), ["ready"]);
      return { id: m.meta.id, version: m.meta.version };
    });
    request.state.model = model;
    return json({ status: "ready", model });
  } catch (cause) {
    const reason = cause instanceof ApiError ? cause.code : "internal_error";
    throw new ApiError("not_ready", `default model '${config.DEFAULT_MODEL}' is not loadable (${reason})`, {
      cause,
      headers: { "retry-after": "5" },
      extensions: { reason },
    });
  }
};
