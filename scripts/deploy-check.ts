/**
 * `npm run deploy:check [-- --env production]`: builds the bundle that `wrangler deploy` would upload
 * (`wrangler deploy --dry-run --outdir dist/deploy-check`) and fails when it is over the Workers paid
 * plan's limits: 10 MB compressed (gzip) or 64 MiB uncompressed. Also says whether it fits the free
 * plan (3 MB compressed). Exit codes: 0 fits the paid plan, 1 over a limit, 2 the build failed.
 */
import { spawnSync } from "node:child_process";
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";

/** Cloudflare's Worker size limits (developers.cloudflare.com/workers/platform/limits/#worker-size). */
export const LIMITS = {
  paidGzipBytes: 10 * 1024 * 1024,
  freeGzipBytes: 3 * 1024 * 1024,
  rawBytes: 64 * 1024 * 1024,
};

/** Sizes of a built bundle: what wrangler uploads (no source maps, no README). */
export interface BundleSize {
  files: { name: string; bytes: number }[];
  bytes: number;
  gzipBytes: number;
}

/** Verdict on `size`: the plan it needs and the limits it passes, as printable lines. */
export function judge(size: BundleSize): { ok: boolean; plan: "free" | "paid" | "none"; lines: string[] } {
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MiB`;
  const overPaid = size.gzipBytes > LIMITS.paidGzipBytes;
  const overRaw = size.bytes > LIMITS.rawBytes;
  const plan = overPaid || overRaw ? "none" : size.gzipBytes > LIMITS.freeGzipBytes ? "paid" : "free";
  const lines = [
    ...size.files.map((f) => `  ${f.name}  ${mb(f.bytes)}`),
    `uncompressed ${mb(size.bytes)} (limit ${mb(LIMITS.rawBytes)})${overRaw ? "  OVER" : ""}`,
    `gzip         ${mb(size.gzipBytes)} (paid plan limit ${mb(LIMITS.paidGzipBytes)}, free plan ${mb(LIMITS.freeGzipBytes)})${overPaid ? "  OVER" : ""}`,
    plan === "none"
      ? "FAIL: the bundle is over the Workers paid plan's limit; it cannot be deployed"
      : plan === "paid"
        ? "OK: fits the Workers paid plan (over the free plan's 3 MB compressed: deploy needs Workers Paid)"
        : "OK: fits even the Workers free plan",
  ];
  return { ok: plan !== "none", plan, lines };
}

/** Sizes of the files in `outdir` that wrangler uploads. */
export async function measure(outdir: string): Promise<BundleSize> {
  const files: BundleSize["files"] = [];
  let bytes = 0;
  let gzipBytes = 0;
  for (const name of (await readdir(outdir)).sort()) {
    if (name.endsWith(".map") || name === "README.md") continue;
    const content = await readFile(path.join(outdir, name));
    files.push({ name, bytes: content.byteLength });
    bytes += content.byteLength;
    gzipBytes += gzipSync(content).byteLength;
  }
  return { files, bytes, gzipBytes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
  const outdir = path.join(root, "dist", "deploy-check");
  await rm(outdir, { recursive: true, force: true });
  const args = ["wrangler", "deploy", "--dry-run", "--outdir", outdir, ...process.argv.slice(2)];
  const built = spawnSync("npx", args, { cwd: root, encoding: "utf8" });
  if (built.status !== 0) {
    process.stderr.write(`${built.stdout}${built.stderr}\nnpx ${args.join(" ")} failed\n`);
    process.exit(2);
  }
  // wrangler's own figure, for comparison with ours (it gzips the same files).
  const reported = /Total Upload: .*/.exec(built.stdout)?.[0];
  const verdict = judge(await measure(outdir));
  console.log(`bundle in ${path.relative(root, outdir)}/ (${reported ?? "wrangler printed no total"})`);
  for (const line of verdict.lines) console.log(line);
  process.exit(verdict.ok ? 0 : 1);
}
