/**
 * `"network"` in a predict request: picks one of the network variants a text model declares in its
 * manifest (`networks`: network name → model id, e.g. `{"linear": "toxicity", "mlp": "toxicity-mlp"}`).
 * No `network` → the requested model itself (the best variant is the one shipped under the plain id).
 * A model that declares no `networks` (uploaded models, image models) ignores the field, as the
 * seed API did.
 */
import type { Config } from "../config";
import type { ModelManifest } from "../contracts/manifest";
import { ApiError } from "../errors";
import { getManifest, resolveVersion } from "../storage/model-store";

/** The model id a request with `network` is served by (`version` then applies to that model). */
export async function resolveNetwork(
  bucket: R2Bucket,
  config: Config,
  id: string,
  version: string | undefined,
  network: string | undefined,
): Promise<string> {
  if (network === undefined) return id;
  const resolved = await resolveVersion(bucket, id, version, config.ACTIVE_POINTER_TTL_MS);
  const manifest = await getManifest(bucket, id, resolved, config.ACTIVE_POINTER_TTL_MS);
  return networkTarget(manifest, network);
}

/** Pure part of `resolveNetwork`: the model id for `network` according to `manifest`. */
export function networkTarget(manifest: ModelManifest, network: string): string {
  // Only hashed n-gram text manifests declare networks.
  const networks = "networks" in manifest ? manifest.networks : undefined;
  if (!networks) return manifest.id;
  const target = networks[network];
  if (target !== undefined) return target;
  const available = Object.keys(networks).sort();
  throw new ApiError(
    "unknown_network",
    `model '${manifest.id}' has no network '${network}'; available: ${available.join(", ")}`,
    { extensions: { available } },
  );
}

/** Labels whose score reaches the manifest's threshold for them, in label order. */
export function flaggedLabels(
  labels: readonly string[],
  scores: ArrayLike<number>,
  thresholds: Record<string, number> | undefined,
): string[] {
  if (!thresholds) return [];
  return labels.filter((label, i) => {
    const t = thresholds[label];
    return t !== undefined && (scores[i] as number) >= t;
  });
}
