/**
 * Model-only time: onnxruntime-web (the same WASM build and graph as in the Worker, one thread)
 * running a shipped model in Node on pre-featurized inputs, so the figure excludes HTTP, JSON,
 * auth and featurization. Featurization time is reported separately.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-web";
import type { z } from "zod";
import { textManifestSchema } from "../src/contracts/manifest";
import { featurize, featurizeBatch } from "../src/featurizer/text";

/** Per-text timings in milliseconds for a batch of 1 and a batch of 32. */
export interface ModelTime {
  model_ms_per_text_single: number;
  model_ms_per_text_batch32: number;
  featurize_ms_per_text: number;
}

/** The `ids`/`values` inputs of a text model graph for `texts`. */
export function feeds(texts: string[], spec: Parameters<typeof featurize>[1]): Record<string, ort.Tensor> {
  const batch = featurizeBatch(texts, spec);
  return {
    ids: new ort.Tensor("int64", batch.ids, batch.dims),
    values: new ort.Tensor("float32", batch.values, batch.dims),
  };
}

/**
 * Loads shipped model `id` from models/ for a Node timing: its manifest validated by `schema`, and
 * an onnxruntime-web session with the Worker's thread count and session options (src/inference/ort.ts).
 */
export async function loadShippedModel<S extends z.ZodType>(
  root: string,
  id: string,
  schema: S,
): Promise<{ manifest: z.infer<S>; session: ort.InferenceSession }> {
  ort.env.wasm.numThreads = 1;
  const dir = path.join(root, "models", id);
  const manifest = schema.parse(JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")));
  const session = await ort.InferenceSession.create(await readFile(path.join(dir, "model.onnx")), {
    graphOptimizationLevel: "all",
  });
  return { manifest, session };
}

/** Measures `id` from models/ on `texts` (each timing is the mean over `iterations` runs). */
export async function measureModelTime(
  root: string,
  id: string,
  texts: string[],
  iterations = 2000,
): Promise<ModelTime> {
  const { manifest, session } = await loadShippedModel(root, id, textManifestSchema);
  const one = feeds([texts[1 % texts.length] as string], manifest.featurizer);
  const batch = feeds(
    Array.from({ length: 32 }, (_, i) => texts[i % texts.length] as string),
    manifest.featurizer,
  );
  const time = async (input: Record<string, ort.Tensor>, n: number) => {
    for (let i = 0; i < 500; i++) await session.run(input);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await session.run(input);
    return (performance.now() - t0) / n;
  };
  const single = await time(one, iterations);
  const batched = (await time(batch, Math.ceil(iterations / 8))) / 32;
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) featurize(texts[i % texts.length] as string, manifest.featurizer);
  const featurizeMs = (performance.now() - t0) / iterations;
  await session.release();
  const r = (x: number) => Math.round(x * 10_000) / 10_000;
  return {
    model_ms_per_text_single: r(single),
    model_ms_per_text_batch32: r(batched),
    featurize_ms_per_text: r(featurizeMs),
  };
}
