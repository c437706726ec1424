/**
 * Running the deployable bundle in workerd through Miniflare's API, shared by the bench and the
 * browser test: build it exactly as a deploy would (`wrangler deploy --dry-run --outdir`), list
 * its modules for Miniflare, apply migrations/ to the local D1.
 */
import { execFileSync } from "node:child_process";
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { Miniflare } from "miniflare";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** Builds the deployable bundle into `outdir` (emptied first); returns its entry module's path. */
export async function buildBundle(outdir: string): Promise<string> {
  await rm(outdir, { recursive: true, force: true });
  execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], { cwd: root, stdio: "pipe" });
  return path.join(outdir, "index.js");
}

/** The bundle's modules as Miniflare wants them: the entry first, then every `.wasm`. */
export async function bundleModules(
  outdir: string,
  entry: string,
): Promise<{ type: "ESModule" | "CompiledWasm"; path: string }[]> {
  const wasm = (await readdir(outdir)).filter((f) => f.endsWith(".wasm"));
  return [
    { type: "ESModule", path: entry },
    ...wasm.map((f) => ({ type: "CompiledWasm" as const, path: path.join(outdir, f) })),
  ];
}

/** Applies migrations/*.sql in order to `db` (Miniflare's local D1), as `wrangler d1 migrations apply` would. */
export async function applyMigrations(db: Awaited<ReturnType<Miniflare["getD1Database"]>>): Promise<void> {
  const dir = path.join(root, "migrations");
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort()) {
    const sql = (await readFile(path.join(dir, file), "utf8")).replace(/^\s*--.*$/gm, "");
    const statements = sql
      .split(";")
      .map((s) => s.trim())
      .filter(Boolean);
    await db.batch(statements.map((s) => db.prepare(s)));
  }
}
