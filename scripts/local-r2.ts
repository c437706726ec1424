/**
 * The R2 side of local development, shared by `npm start`, `npm run seed`, the key CLI and the
 * bench: access to wrangler's LOCAL R2 (`.wrangler/state`, the storage `wrangler dev` uses) and
 * the upload of the shipped models in `models/<id>/`.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { getPlatformProxy } from "wrangler";
import { manifestSchema } from "../src/contracts/manifest";
import { r2Keys } from "../src/contracts/r2-keys";
import { repoRoot } from "./repo-root";

/** The slice of an R2 bucket used from Node (workers-types are not loaded in Node scripts). */
export interface NodeBucket {
  put(
    key: string,
    value: Uint8Array | string,
    options?: { httpMetadata: { contentType: string } },
  ): Promise<unknown>;
}

// Not a fixed "..": this module also runs from the CLI's bundle in cli/dist/.
const root = repoRoot(import.meta.url);

/** Runs `fn` with the local `MODELS` bucket through wrangler's platform proxy, then disposes it. */
export async function withLocalR2<T>(fn: (bucket: NodeBucket) => Promise<T>): Promise<T> {
  const proxy = await getPlatformProxy<{ MODELS: NodeBucket }>({
    configPath: path.join(root, "wrangler.toml"),
    persist: true,
  });
  try {
    return await fn(proxy.env.MODELS);
  } finally {
    await proxy.dispose();
  }
}

/**
 * Uploads every `models/<id>/` (model.onnx + manifest.json, and profile.json when present) to `bucket` under its manifest's
 * version and points the model's active version at it; returns the `{ id, version }` pairs.
 */
export async function putShippedModels(bucket: NodeBucket): Promise<{ id: string; version: string }[]> {
  const modelsDir = path.join(root, "models");
  const ids = (await readdir(modelsDir, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const seeded: { id: string; version: string }[] = [];
  for (const id of ids) {
    const dir = path.join(modelsDir, id);
    const manifestText = await readFile(path.join(dir, "manifest.json"), "utf8");
    const { version } = manifestSchema.parse(JSON.parse(manifestText));
    // A plain copy: Miniflare's proxies cannot serialise Node's pooled Buffers.
    await bucket.put(r2Keys.model(id, version), new Uint8Array(await readFile(path.join(dir, "model.onnx"))));
    await bucket.put(r2Keys.manifest(id, version), manifestText);
    // The reference profile (docs/drift.md), when the model has one.
    const profile = await readFile(path.join(dir, "profile.json"), "utf8").catch(() => undefined);
    if (profile !== undefined) await bucket.put(r2Keys.profile(id, version), profile);
    await bucket.put(r2Keys.active(id), JSON.stringify({ version }));
    seeded.push({ id, version });
  }
  return seeded;
}
