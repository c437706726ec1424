/**
 * `npm run bench:online`: ingest rate of `POST /api/v1/models/bank/samples` through the whole
 * Worker (ASAP auth, statistics + throttling, the `OnlineLearner` Durable Object, snapshots through
 * the registry) on workerd via Miniflare's API, as `npm run bench` runs it (the deployable bundle
 * from `wrangler deploy --dry-run`, no `wrangler dev` proxy).
 *
 * Streams the first BENCH_ONLINE_ROWS rows (default 20,000) of `../shared/datasets/bank` in file
 * order as `text/csv`, BENCH_ONLINE_BATCH rows per request (default 100), one request at a time
 * (the order of samples matters, as for the CLI's `stream`), and prints samples/s, request latency
 * percentiles and the model's metrics at the end as JSON.
 */
import { execFileSync } from "node:child_process";
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { prepareBenchAuth } from "../bench/auth";
import { BANK_DATASET, bankCsvSlice, bankDatasetPresent } from "./bank-data";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const outdir = path.join(root, "dist", "bench-online");
const ROWS = Number(process.env.BENCH_ONLINE_ROWS ?? 20_000);
const BATCH = Number(process.env.BENCH_ONLINE_BATCH ?? 100);

if (!bankDatasetPresent()) {
  console.error(`${BANK_DATASET} is absent: the ingest benchmark needs ../shared/datasets/bank`);
  process.exit(1);
}

await rm(outdir, { recursive: true, force: true });
execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], { cwd: root, stdio: "pipe" });
const wasm = (await readdir(outdir)).filter((f) => f.endsWith(".wasm"));
const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(root, "wrangler.toml"));
const mf = new Miniflare({
  ...(workerOptions as object),
  name: "edge-inference",
  // Explicit module list: ORT's glue contains a dynamic import() that Miniflare will not trace.
  modules: [
    { type: "ESModule", path: path.join(outdir, "index.js") },
    ...wasm.map((f) => ({ type: "CompiledWasm" as const, path: path.join(outdir, f) })),
  ],
  modulesRoot: outdir,
  bindings: {
    ...(workerOptions.bindings ?? {}),
    LOG_LEVEL: "error",
    RATE_LIMITS: JSON.stringify({ default: { limit: 1_000_000, window: 1 } }),
  },
} as ConstructorParameters<typeof Miniflare>[0]);

try {
  const url = (await mf.ready).toString().replace(/\/$/, "");
  // The registry's tables, so snapshots publish as in production.
  const db = await mf.getD1Database("DB");
  for (const file of (await readdir(path.join(root, "migrations")))
    .filter((f) => f.endsWith(".sql"))
    .sort()) {
    const sql = (await readFile(path.join(root, "migrations", file), "utf8")).replace(/--.*$/gm, "");
    for (const statement of sql.split(";").map((s) => s.trim())) {
      if (statement) await db.prepare(statement).run();
    }
  }
  const requests = Math.ceil(ROWS / BATCH);
  const auth = await prepareBenchAuth(await mf.getR2Bucket("MODELS"), requests + 1);
  const [header, ...lines] = bankCsvSlice(0, ROWS).trimEnd().split("\n");
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < lines.length; i += BATCH) {
    const body = `${[header, ...lines.slice(i, i + BATCH)].join("\n")}\n`;
    const t0 = performance.now();
    const res = await fetch(`${url}/api/v1/models/bank/samples`, {
      method: "POST",
      headers: { "content-type": "text/csv", ...auth.nextHeaders() },
      body,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`samples failed at row ${i}: ${res.status} ${text}`);
    latencies.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  const metrics = (await (
    await fetch(`${url}/api/v1/models/bank/metrics`, { headers: auth.nextHeaders() })
  ).json()) as Record<string, unknown>;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    Math.round((latencies[Math.floor((latencies.length - 1) * p)] as number) * 10) / 10;
  console.log(
    JSON.stringify(
      {
        runner: "miniflare API → workerd (no wrangler dev proxy), full stack",
        node: process.version,
        rows: lines.length,
        batch: BATCH,
        samples_per_s: Math.round(lines.length / seconds),
        request_ms: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: pct(1) },
        metrics: {
          samples_total: metrics.samples_total,
          classes_seen: metrics.classes_seen,
          window: metrics.window,
          snapshot: metrics.snapshot,
          snapshot_error: metrics.snapshot_error,
        },
      },
      null,
      2,
    ),
  );
} finally {
  await mf.dispose();
}
