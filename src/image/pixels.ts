/** Decoded pixels, the type every image module shares (decode, orientation, preprocess). */

/** Image formats the decoder accepts. */
export type ImageFormat = "png" | "jpeg";

/**
 * Decoded pixels: 8-bit, interleaved, `channels` per pixel (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA),
 * `width × height` of them. With `grid`, they are the pixels at `grid.rows × grid.cols` (sorted full
 * indices; `width = cols.length`, `height = rows.length`) of a `grid.width × grid.height` image:
 * what a point-sampled resize reads (see `decodeForModel`).
 */
export interface DecodedImage {
  format: ImageFormat;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
  grid?: { width: number; height: number; rows: Int32Array; cols: Int32Array };
}
