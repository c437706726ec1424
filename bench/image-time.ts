/**
 * Image predict inputs for the bench and their cost split, in Node: decode (PNG/JPEG → pixels) and
 * preprocessing (gray, resize, normalise) with the Worker's own code, and model-only time
 * (onnxruntime-web WASM, one thread, same session options as the Worker) on a preprocessed input.
 */
import * as ort from "onnxruntime-web";
import { base64, drawDigit, grayJpeg, grayPng } from "../scripts/digit-images";
import { decodeImage } from "../src/image/decode";
import { toModelInput } from "../src/image/preprocess";
import { imageManifestSchema } from "../src/inference/manifest";
import { loadShippedModel } from "./model-time";

/** The two bench images: a 28×28 PNG and a 640×480 JPEG (resized by the Worker), as base64. */
export function benchImages(): { png28: string; jpeg640: string } {
  return {
    png28: base64(grayPng(drawDigit("7", 28, 28), 28, 28)),
    jpeg640: base64(grayJpeg(drawDigit("3", 640, 480, 440), 640, 480, 90)),
  };
}

/** Milliseconds: the model once (its input size is fixed), decode and preprocess per image. */
export interface ImageTime {
  model_ms: number;
  images: Record<string, { decode_ms: number; preprocess_ms: number }>;
}

/** Measures the bench images against the `id` model in models/ (means over `iterations` runs). */
export async function measureImageTime(
  root: string,
  id: string,
  images: Record<string, string>,
  iterations = 200,
): Promise<ImageTime> {
  const { manifest, session } = await loadShippedModel(root, id, imageManifestSchema);
  const { channels, height, width } = manifest.preprocess;
  const mean = (fn: () => unknown, n: number) => {
    for (let i = 0; i < Math.min(20, n); i++) fn();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    return (performance.now() - t0) / n;
  };
  const r = (x: number) => Math.round(x * 1000) / 1000;
  const decoded = Object.entries(images).map(([name, b64]) => {
    const bytes = new Uint8Array(Buffer.from(b64, "base64"));
    return { name, bytes, image: decodeImage(bytes) };
  });
  // Model first, before the decoders' allocations can put the GC inside the timed loop.
  const first = decoded[0];
  if (!first) throw new Error("no bench images");
  const input = toModelInput(first.image, manifest.preprocess);
  const feeds = { [manifest.inputs.image]: new ort.Tensor("float32", input, [1, channels, height, width]) };
  for (let i = 0; i < 50; i++) await session.run(feeds);
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) await session.run(feeds);
  const modelMs = (performance.now() - t0) / iterations;
  await session.release();
  const out: ImageTime = { model_ms: r(modelMs), images: {} };
  for (const { name, bytes, image } of decoded) {
    out.images[name] = {
      decode_ms: r(mean(() => decodeImage(bytes), Math.ceil(iterations / 4))),
      preprocess_ms: r(mean(() => toModelInput(image, manifest.preprocess), Math.ceil(iterations / 4))),
    };
  }
  return out;
}
