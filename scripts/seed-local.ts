/**
 * Seeds the LOCAL R2 bucket (the storage `wrangler dev` uses) with every model in `models/<id>/`
 * and points each model's active version at it.
 * Usage: `tsx scripts/seed-local.ts` (`npm run seed`; also the first step of `npm start`).
 */
import { putShippedModels, withLocalR2 } from "./local-r2";

/** Uploads each `models/<id>/` to local R2; returns the seeded `{ id, version }` pairs. */
export function seedLocalModels(): Promise<{ id: string; version: string }[]> {
  return withLocalR2(putShippedModels);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const seeded = await seedLocalModels();
  for (const m of seeded) console.log(`seeded local R2: models/${m.id}/${m.version}`);
}
