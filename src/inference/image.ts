/**
 * Image models: decoded pixels → the model's input (its manifest's `preprocess`) → one ORT run per
 * image → the probabilities in label order. Called through the scoring core (`score.ts`).
 */

import type { Config } from "../config";
import { type ImageModelManifest, imageInputDims, type ModelRef } from "../contracts/manifest";
import { meanLuma, observeImage, type Signals } from "../drift/profile";
import { ApiError } from "../errors";
import { type CheckedImage, decodeForModel } from "../image/decode";
import type { DecodedImage } from "../image/pixels";
import { toModelInput } from "../image/preprocess";
import { withModel } from "./engine";
import { requireImageModel } from "./kinds";
import { ort } from "./ort";
import type { LoadedModel } from "./session-cache";

/** Preprocesses a decoded image for `model` and runs it; returns the probabilities in label order. */
export async function scoreImage(
  model: LoadedModel<ImageModelManifest>,
  image: DecodedImage,
): Promise<Float32Array> {
  const { meta, session } = model;
  const input = new ort.Tensor(
    "float32",
    toModelInput(image, meta.preprocess),
    imageInputDims(meta.preprocess, 1),
  );
  const outputs = await session.run({ [meta.inputs.image]: input });
  const scores = outputs[meta.output];
  const k = meta.labels.length;
  if (!scores || !(scores.data instanceof Float32Array) || scores.data.length !== k) {
    throw new ApiError("model_unavailable", `model '${meta.id}' returned an output of unexpected shape`);
  }
  const result = scores.data.slice();
  for (const tensor of Object.values(outputs)) tensor.dispose();
  return result;
}

/** An image as the protocols carry it: base64 file text, or pixels already decoded. */
export type ImageSource = { base64: string } | { pixels: DecodedImage };

/** An image whose file passed `checkImage` (decoded once the model's input is known), or pixels. */
export type CheckedImageSource = { bytes: Uint8Array; checked: CheckedImage } | { pixels: DecodedImage };

/**
 * Runs image model `id` (at `version`, else its active one) on checked `images`, one run each,
 * each decoded for the model's input (`decodeForModel`: upright, at the scale or samples its
 * resize reads): the probabilities in label order. Refuses a text model with 400
 * `model_input_mismatch`. With `profile`, also the inputs' drift signals (src/drift/profile.ts).
 */
export async function scoreImages(
  bucket: R2Bucket,
  config: Config,
  id: string,
  version: string | undefined,
  images: readonly CheckedImageSource[],
  profile = false,
): Promise<{ model: ModelRef; labels: readonly string[]; scores: Float32Array[]; inputSignals?: Signals }> {
  return withModel(bucket, config, id, version, async (loaded) => {
    const model = requireImageModel(loaded);
    const scores: Float32Array[] = [];
    const inputSignals: Signals | undefined = profile ? {} : undefined;
    for (const image of images) {
      const pixels =
        "pixels" in image ? image.pixels : decodeForModel(image.bytes, model.meta.preprocess, image.checked);
      if (inputSignals) {
        // The size as sent; the brightness of the pixels the model reads.
        const sent = "pixels" in image ? image.pixels : image.checked;
        observeImage(inputSignals, sent.width, sent.height, meanLuma(pixels));
      }
      scores.push(await scoreImage(model, pixels));
    }
    return {
      model: { id: model.meta.id, version: model.meta.version },
      labels: model.meta.labels,
      scores,
      ...(inputSignals && { inputSignals }),
    };
  });
}
