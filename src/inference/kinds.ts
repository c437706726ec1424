import { ApiError } from "../errors";
import type { ImageModelManifest, ModelManifest, TextModelManifest } from "./manifest";
import type { LoadedModel } from "./session-cache";

/** Narrows a loaded model to a text model, or refuses the request (400 `model_input_mismatch`). */
export function requireTextModel(model: LoadedModel<ModelManifest>): LoadedModel<TextModelManifest> {
  if (model.meta.kind === "image") {
    throw new ApiError(
      "model_input_mismatch",
      `model '${model.meta.id}' classifies images: send 'image' (base64 PNG or JPEG), not text`,
    );
  }
  return model as LoadedModel<TextModelManifest>;
}

/** Narrows a loaded model to an image model, or refuses the request (400 `model_input_mismatch`). */
export function requireImageModel(model: LoadedModel<ModelManifest>): LoadedModel<ImageModelManifest> {
  if (model.meta.kind !== "image") {
    throw new ApiError(
      "model_input_mismatch",
      `model '${model.meta.id}' classifies text: send 'text' or 'texts', not 'image'`,
    );
  }
  return model as LoadedModel<ImageModelManifest>;
}
