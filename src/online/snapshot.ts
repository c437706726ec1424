/**
 * Snapshots of an online model: the learner's current weights, quantized to int8 and exported by
 * the one ONNX exporter, published through the registry (`publishModelVersion`) and activated, so
 * the stateless edge predict path serves them.
 */
import type { TextModelManifest } from "../contracts/manifest";
import { exportModel } from "../onnx/text";
import { publishModelVersion } from "../registry/publish";
import { quantizeInt8 } from "../training/linear-model";
import { BANK_INPUT_TAG } from "./features";
import type { OnlineSoftmax } from "./learner";

/** Registry version name of the snapshot taken after `samples` samples (sorts in time order). */
export function snapshotVersion(samples: number): string {
  return `s${String(samples).padStart(10, "0")}`;
}

/** An exported snapshot, not yet published. */
export interface Snapshot {
  manifest: TextModelManifest;
  bytes: Uint8Array;
}

/**
 * Exports the learner's current state as model `id`'s snapshot after `samples` samples. The
 * weights are copied synchronously before the first `await`, so later updates cannot leak in.
 */
export function buildSnapshot(
  learner: OnlineSoftmax,
  id: string,
  samples: number,
  metrics: Record<string, number>,
): Promise<Snapshot> {
  const model = quantizeInt8(learner.toFloatModel());
  return exportModel(model, {
    id,
    version: snapshotVersion(samples),
    description: `Online bank-account model (softmax, Adagrad) after ${samples} samples; ${BANK_INPUT_TAG}`,
    metrics: { samples, labels: learner.labels.length, ...metrics },
  }).then(({ onnx, manifest }) => ({ manifest, bytes: onnx }));
}

/** Publishes `snapshot` as a new registry version of its model and makes it the active one. */
export async function publishSnapshot(env: Env, snapshot: Snapshot): Promise<void> {
  await publishModelVersion(env, {
    manifest: snapshot.manifest,
    bytes: snapshot.bytes,
    activate: true,
    source: "training",
  });
}
