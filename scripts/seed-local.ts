/**
 * Seeds the LOCAL R2 bucket (wrangler's `.wrangler/state`, the same storage `wrangler dev` uses)
 * with every model in `models/<id>/` and points each model's active version at it.
 * Usage: `tsx scripts/seed-local.ts` (also the first step of `npm start`).
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { getPlatformProxy } from "wrangler";
import { manifestSchema, r2Keys } from "../src/inference/manifest";

/** The slice of the R2 binding this script uses (workers-types are not loaded in Node scripts). */
interface LocalBucket {
  put(key: string, value: Uint8Array | string): Promise<unknown>;
}

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** Uploads each `models/<id>/` to local R2; returns the seeded `{ id, version }` pairs. */
export async function seedLocalModels(): Promise<{ id: string; version: string }[]> {
  const modelsDir = path.join(root, "models");
  const ids = (await readdir(modelsDir, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  const proxy = await getPlatformProxy<{ MODELS: LocalBucket }>({
    configPath: path.join(root, "wrangler.toml"),
    persist: true,
  });
  const seeded: { id: string; version: string }[] = [];
  try {
    for (const id of ids.sort()) {
      const dir = path.join(modelsDir, id);
      const manifestBytes = await readFile(path.join(dir, "manifest.json"));
      const manifest = manifestSchema.parse(JSON.parse(manifestBytes.toString("utf8")));
      const bytes = await readFile(path.join(dir, "model.onnx"));
      // Plain copies: the platform proxy cannot serialise Node's pooled Buffers.
      await proxy.env.MODELS.put(r2Keys.model(id, manifest.version), new Uint8Array(bytes));
      await proxy.env.MODELS.put(r2Keys.manifest(id, manifest.version), manifestBytes.toString("utf8"));
      await proxy.env.MODELS.put(r2Keys.active(id), JSON.stringify({ version: manifest.version }));
      seeded.push({ id, version: manifest.version });
    }
  } finally {
    await proxy.dispose();
  }
  return seeded;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const seeded = await seedLocalModels();
  for (const m of seeded) console.log(`seeded local R2: models/${m.id}/${m.version}`);
}
