import type {
  ImageModelManifest,
  ModelManifest,
  TensorModelManifest,
  TextInputManifest,
} from "../contracts/manifest";
import { ApiError } from "../errors";
import type { LoadedModel } from "./session-cache";

/** What a model takes, whatever its kind: text (hashed n-grams or raw text), an image, or tensors. */
export type ModelInput = "text" | "image" | "tensor";

/** The input a manifest's model takes. */
export function modelInput(manifest: ModelManifest): ModelInput {
  if (manifest.kind === "image") return "image";
  if (manifest.kind === "tensor") return "tensor";
  return "text";
}

/** The registry's name of a manifest's kind (`text` for hashed n-grams, as before kinds existed). */
export function kindName(manifest: ModelManifest): NonNullable<ModelManifest["kind"]> {
  return manifest.kind ?? "text";
}

/** How to call a model whose input is `input`: for refusals that say what to send instead. */
export function inputMismatch(manifest: ModelManifest, sent: ModelInput): ApiError {
  const what = {
    text: "classifies text: send 'text' or 'texts'",
    image: "classifies images: send 'image' (base64 PNG or JPEG)",
    tensor: `takes tensors: call POST /v2/models/${manifest.id}/infer (Open Inference Protocol)`,
  }[modelInput(manifest)];
  const sentWhat = { text: "text", image: "'image'", tensor: "tensors" }[sent];
  return new ApiError("model_input_mismatch", `model '${manifest.id}' ${what}, not ${sentWhat}`);
}

/** Narrows a loaded model to a text model, or refuses the request (400 `model_input_mismatch`). */
export function requireTextModel(model: LoadedModel<ModelManifest>): LoadedModel<TextInputManifest> {
  if (modelInput(model.meta) !== "text") throw inputMismatch(model.meta, "text");
  return model as LoadedModel<TextInputManifest>;
}

/** Narrows a loaded model to an image model, or refuses the request (400 `model_input_mismatch`). */
export function requireImageModel(model: LoadedModel<ModelManifest>): LoadedModel<ImageModelManifest> {
  if (modelInput(model.meta) !== "image") throw inputMismatch(model.meta, "image");
  return model as LoadedModel<ImageModelManifest>;
}

/** Narrows a loaded model to a tensor model, or refuses the request (400 `model_input_mismatch`). */
export function requireTensorModel(model: LoadedModel<ModelManifest>): LoadedModel<TensorModelManifest> {
  if (modelInput(model.meta) !== "tensor") throw inputMismatch(model.meta, "tensor");
  return model as LoadedModel<TensorModelManifest>;
}
