/**
 * Hostile dataset uploads against the bundle in workerd (auth and metering off): a 1 GiB gzip
 * bomb (~1 MB), a 15 MiB header line, 1,000,000 columns. Per case: status, workerd CPU (10 ms
 * ticks) and peak RSS growth (VmHWM reset before each). `npx tsx bench/dataset-bombs.ts [outdir]`
 * (outdir: a bundle built earlier, e.g. to compare commits; default: build the current tree).
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { build, root, startWorker } from "../scripts/local-worker";

function cpuMs(pids: ReadonlySet<number>): number {
  let total = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    total += (Number(fields[11]) + Number(fields[12])) * 10;
  }
  return total;
}
function kb(pids: ReadonlySet<number>, field: string): number {
  let sum = 0;
  for (const pid of pids) {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    sum += Number(m?.[1] ?? 0);
  }
  return sum;
}

const prebuilt = process.argv[2];
const bundle = prebuilt
  ? { outdir: prebuilt, entry: path.join(prebuilt, "index.js"), bytes: 0, gzip_bytes: 0 }
  : await build(path.join(root, "dist", "bench-datasets"));
const { mf, url, pids } = await startWorker(bundle, {
  ASAP_AUTH: "off",
  METERING: "off",
  LOG_LEVEL: "error",
});
const cases: [string, string, Uint8Array<ArrayBuffer>][] = [
  [
    "gzip bomb: 1 GiB of zeros in ~1 MB",
    "bomb.csv.gz",
    new Uint8Array(gzipSync(Buffer.alloc(1024 * 1024 * 1024), { level: 9 })),
  ],
  ["15 MiB header line", "wide-line.csv", new TextEncoder().encode(`${"h".repeat(15 * 1024 * 1024)}\nx\n`)],
  [
    "1,000,000 columns",
    "columns.csv",
    new TextEncoder().encode(`${Array.from({ length: 1_000_000 }, (_, i) => `c${i % 10}`).join(",")}\nx\n`),
  ],
];
const out: Record<string, unknown> = {};
for (const [what, name, body] of cases) {
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, "5");
  const rss0 = kb(pids, "VmRSS");
  const c0 = cpuMs(pids);
  const t0 = performance.now();
  const res = await fetch(`${url}/api/v1/datasets/${name}`, { method: "PUT", body });
  const text = await res.text();
  out[what] = {
    body_bytes: body.length,
    status: res.status,
    ms: Math.round(performance.now() - t0),
    workerd_cpu_ms: cpuMs(pids) - c0,
    peak_rss_growth_mb: Math.round((kb(pids, "VmHWM") - rss0) / 1024),
    detail: (JSON.parse(text) as { detail?: string }).detail?.slice(0, 100),
  };
}
console.log(JSON.stringify(out, null, 2));
await mf.dispose();
process.exit(0);
