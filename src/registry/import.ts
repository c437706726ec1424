/**
 * Lazy import of models that are in R2 but not (yet) in D1: the shipped models seeded by
 * `npm start` / the tests, and models uploaded with `wrangler r2 object put` (docs/deploy.md).
 * A model is imported when it has an active pointer (`models/<id>/active.json`); every version
 * whose manifest is valid becomes a `ready` version row with source `import`. Bytes are not read:
 * the serving path checks them (size, sha256) when it loads them.
 */

import { d1 } from "../contracts/d1";
import { activePointerSchema, MODEL_ID_RE, manifestSchema } from "../contracts/manifest";
import { r2Keys } from "../contracts/r2-keys";
import { getModelRow, insertVersionStatements, rolloutColumns } from "./db";

/** Imports model `id` from R2 when D1 does not know it; a no-op otherwise. */
export async function ensureModelImported(env: Env, id: string): Promise<void> {
  if (!MODEL_ID_RE.test(id) || (await getModelRow(env.DB, id))) return;
  const pointerObject = await env.MODELS.get(r2Keys.active(id));
  if (!pointerObject) return;
  const pointer = activePointerSchema.safeParse(await pointerObject.json().catch(() => null));
  if (!pointer.success) return;
  const now = Date.now();
  const statements: D1PreparedStatement[] = [];
  for (const key of await listKeys(env.MODELS, `models/${id}/`)) {
    if (!key.endsWith("/manifest.json")) continue;
    const object = await env.MODELS.get(key);
    const parsed = manifestSchema.safeParse(await object?.json().catch(() => null));
    if (!parsed.success || parsed.data.id !== id || key !== r2Keys.manifest(id, parsed.data.version))
      continue;
    statements.push(...insertVersionStatements(env.DB, parsed.data, "ready", "import", now, true));
  }
  if (statements.length === 0) return;
  const { split, shadows } = rolloutColumns(pointer.data);
  statements.push(
    env.DB.prepare(
      "UPDATE models SET active_version = ?, split = ?, shadows = ?, updated_at = ? WHERE id = ? AND active_version IS NULL",
    ).bind(pointer.data.version, split, shadows, now, id),
  );
  await d1("import model", () => env.DB.batch(statements));
}

/** Imports every model R2 holds that D1 does not know (for `GET /api/v1/models`). */
export async function importAllModels(env: Env): Promise<void> {
  const ids = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await env.MODELS.list({ prefix: "models/", delimiter: "/", ...(cursor ? { cursor } : {}) });
    for (const prefix of page.delimitedPrefixes) ids.add(prefix.slice("models/".length, -1));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  const { results } = await d1("list models", () =>
    env.DB.prepare("SELECT id FROM models").all<{ id: string }>(),
  );
  for (const row of results) ids.delete(row.id);
  for (const id of ids) await ensureModelImported(env, id);
}

/** Every key under `prefix` (all pages). */
export async function listKeys(bucket: R2Bucket, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, ...(cursor ? { cursor } : {}) });
    for (const object of page.objects) keys.push(object.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}
