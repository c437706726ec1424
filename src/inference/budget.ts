/**
 * The per-request work budget of the classification core. Whatever protocol carries a request
 * (the native `/api/v1/predict`, Open Inference Protocol infer, the replaced services' routes,
 * async predictions), the work it may cost is bounded here, once, and checked before that work:
 *
 * - images: at most `MAX_REQUEST_IMAGES` model runs and `MAX_REQUEST_PIXELS` decoded pixels in
 *   total (one native request's largest image: 2048 × 2048), counted from the count of images and
 *   the image headers before any pixel is decoded;
 * - texts: at most `MAX_REQUEST_TEXT_BYTES` of UTF-8 in total (besides `MAX_BATCH` texts of
 *   `MAX_TEXT_BYTES` each).
 *
 * Over budget is 413 `work_budget_exceeded`, naming the limit. The defaults keep the worst request
 * under 1 s of CPU and 64 MB of memory growth (`npx tsx bench/batch-budget.ts`, docs/configuration.md).
 */
import type { Config } from "../config";
import { ApiError } from "../errors";

/** The budget's share of the configuration. */
export type WorkBudget = Pick<Config, "MAX_REQUEST_IMAGES" | "MAX_REQUEST_PIXELS" | "MAX_REQUEST_TEXT_BYTES">;

function overBudget(detail: string, limits: Record<string, number>): ApiError {
  return new ApiError("work_budget_exceeded", detail, { extensions: limits });
}

/** Refuses more image model runs than the budget allows (before anything is decoded). */
export function checkImageRuns(budget: WorkBudget, images: number): void {
  if (images > budget.MAX_REQUEST_IMAGES) {
    throw overBudget(
      `${images} images in one request; the limit is ${budget.MAX_REQUEST_IMAGES} (MAX_REQUEST_IMAGES): split the batch`,
      { limit_images: budget.MAX_REQUEST_IMAGES },
    );
  }
}

/** Refuses images whose decoded pixels (width × height each, from their headers) exceed the budget. */
export function checkImagePixels(
  budget: WorkBudget,
  sizes: readonly { width: number; height: number }[],
): void {
  const pixels = sizes.reduce((sum, s) => sum + s.width * s.height, 0);
  if (pixels > budget.MAX_REQUEST_PIXELS) {
    throw overBudget(
      `the images of this request hold ${pixels} pixels; the limit is ${budget.MAX_REQUEST_PIXELS} per request (MAX_REQUEST_PIXELS): send fewer or smaller images`,
      { limit_pixels: budget.MAX_REQUEST_PIXELS },
    );
  }
}

/** Refuses texts whose UTF-8 bytes in total exceed the budget. */
export function checkTextBudget(budget: WorkBudget, texts: readonly string[]): void {
  const limit = budget.MAX_REQUEST_TEXT_BYTES;
  // Cheap bound first: a UTF-8 encoding is at most 3 bytes per UTF-16 unit.
  let upper = 0;
  for (const t of texts) upper += t.length * 3;
  if (upper <= limit) return;
  const encoder = new TextEncoder();
  let bytes = 0;
  for (const t of texts) bytes += encoder.encode(t).byteLength;
  if (bytes > limit) {
    throw overBudget(
      `the texts of this request hold ${bytes} bytes of UTF-8; the limit is ${limit} per request (MAX_REQUEST_TEXT_BYTES): split the batch`,
      { limit_bytes: limit },
    );
  }
}
