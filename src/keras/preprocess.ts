/**
 * The preprocessing an imported TF.js layers model is declared with: its origin's. TF.js apps feed
 * image classifiers through `tf.image.resizeBilinear(x, size, alignCorners = true)` (nsfwjs, the
 * tfjs-models classifiers), point-sampled with aligned corners: the importer declares
 * `bilinear_align_corners` unless told otherwise, and `alpha: "ignore"` (`fromPixels(image, 3)` drops
 * the alpha channel), so the Worker computes the model's input as the model's authors serve it
 * (docs/images.md).
 */
import type { ImagePreprocessSpec } from "../contracts/manifest";

/** The resize method of a TF.js model's origin: `resizeBilinear` with `alignCorners`. */
export const TFJS_RESIZE_FILTER = "bilinear_align_corners" satisfies ImagePreprocessSpec["resize"]["filter"];

/** The `preprocess` of an imported model with input `height × width × channels`. */
export function importedPreprocess(
  input: { height: number; width: number; channels: 1 | 3 },
  options: {
    layout: "NHWC" | "NCHW";
    fit: ImagePreprocessSpec["resize"]["fit"];
    filter?: ImagePreprocessSpec["resize"]["filter"] | undefined;
    mean?: number[] | undefined;
    std?: number[] | undefined;
  },
): ImagePreprocessSpec {
  const { height, width, channels } = input;
  return {
    height,
    width,
    channels,
    layout: options.layout,
    // TF.js apps read pixels with tf.browser.fromPixels(image, 3): the alpha channel is dropped.
    alpha: "ignore",
    resize: { filter: options.filter ?? TFJS_RESIZE_FILTER, fit: options.fit },
    normalize: {
      mean: options.mean ?? new Array(channels).fill(0),
      std: options.std ?? new Array(channels).fill(1),
    },
  };
}
