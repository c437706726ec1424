/**
 * Reads a Keras model in TF.js layers format from disk, in either form:
 * - `model.json` + its weight shard files (paths in `weightsManifest[].paths`, relative to it);
 * - a JS module exporting the same object (nsfwjs's `model.min.js`), whose shards are JS modules
 *   exporting each shard's bytes as base64 (`<path>.min.js`, or `<path>.js`, beside it).
 * Node only (scripts/); the conversion itself is `src/keras/convert.ts`.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { LayersModelJson } from "../src/keras/convert";

/** A loaded model: its parsed `model.json` and the concatenated bytes of its weight shards. */
export interface KerasSource {
  model: LayersModelJson;
  weightData: Uint8Array;
}

const require = createRequire(import.meta.url);

/** Loads `file` (model.json or a JS module); throws naming the missing file or bad content. */
export function loadKerasSource(file: string): KerasSource {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const isModule = /\.(c?js)$/.test(abs);
  const model = (isModule ? require(abs) : JSON.parse(readFileSync(abs, "utf8"))) as LayersModelJson;
  if (!model?.modelTopology || !Array.isArray(model.weightsManifest)) {
    throw new Error(`${file}: not a TF.js layers model (needs modelTopology and weightsManifest)`);
  }
  const shards: Uint8Array[] = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) {
      const plain = path.join(dir, p);
      if (!isModule) {
        shards.push(new Uint8Array(readFileSync(plain)));
        continue;
      }
      const candidates = [`${plain}.min.js`, `${plain}.js`].filter((c) => existsSync(c));
      const found = candidates[0];
      if (!found) throw new Error(`weight shard module for '${p}' not found beside ${file}`);
      const base64 = require(found) as unknown;
      if (typeof base64 !== "string") throw new Error(`${found} does not export a base64 string`);
      shards.push(new Uint8Array(Buffer.from(base64, "base64")));
    }
  }
  const total = shards.reduce((n, s) => n + s.byteLength, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const s of shards) {
    weightData.set(s, offset);
    offset += s.byteLength;
  }
  return { model, weightData };
}
