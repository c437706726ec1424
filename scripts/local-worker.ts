/**
 * Runs the Worker's deployable bundle in workerd through Miniflare's API, as production runs it and
 * without `wrangler dev`'s proxy: `wrangler deploy --dry-run --outdir` builds the bundle, Miniflare
 * serves it on a loopback port with wrangler.toml's bindings and vars, and the D1 migrations are
 * applied to its local database. Shared by `npm run bench` and the Node-side tests (test/node/).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** Pids of this process's workerd children. */
export function workerdPids(): Set<number> {
  const pids = new Set<number>();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm.includes("workerd") && ppid === process.pid) pids.add(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Starts Miniflare with `options` and returns it with the workerd processes it started. */
export async function startMiniflare(
  options: ConstructorParameters<typeof Miniflare>[0],
): Promise<{ mf: Miniflare; url: string; pids: Set<number> }> {
  const before = workerdPids();
  const mf = new Miniflare(options);
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const pids = new Set([...workerdPids()].filter((pid) => !before.has(pid)));
  return { mf, url, pids };
}

/** A built bundle: its folder, entry module and sizes. */
export interface Bundle {
  outdir: string;
  entry: string;
  bytes: number;
  gzip_bytes: number;
}

/** Builds the deployable bundle; returns its entry path and sizes. */
export async function build(outdir: string): Promise<Bundle> {
  await rm(outdir, { recursive: true, force: true });
  execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], { cwd: root, stdio: "pipe" });
  let bytes = 0;
  let gzipBytes = 0;
  for (const file of await readdir(outdir)) {
    if (file.endsWith(".map") || file === "README.md") continue;
    const content = await readFile(path.join(outdir, file));
    bytes += (await stat(path.join(outdir, file))).size;
    gzipBytes += gzipSync(content).byteLength;
  }
  return { outdir, entry: path.join(outdir, "index.js"), bytes, gzip_bytes: gzipBytes };
}

/**
 * The bundle's modules as Miniflare wants them: the entry first, then the Worker's `index.js` when
 * the entry is a wrapper around it (the bench's), then every `.wasm`.
 */
async function bundleModules(bundle: Bundle): Promise<{ type: "ESModule" | "CompiledWasm"; path: string }[]> {
  const { outdir, entry } = bundle;
  const wasm = (await readdir(outdir)).filter((f) => f.endsWith(".wasm"));
  const index = path.join(outdir, "index.js");
  return [
    { type: "ESModule", path: entry },
    ...(entry === index ? [] : [{ type: "ESModule" as const, path: index }]),
    ...wasm.map((f) => ({ type: "CompiledWasm" as const, path: path.join(outdir, f) })),
  ];
}

/** Applies migrations/*.sql in order to `db` (Miniflare's in-memory D1), as `wrangler d1 migrations apply` would. */
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

/** Miniflare options a caller of `startWorker` may add: where to listen, the inspector, stdio. */
export interface WorkerListen {
  host?: string;
  port?: number;
  inspectorPort?: number;
  /** Receives workerd's stdout and stderr (default: piped to this process's). */
  handleRuntimeStdio?: (stdout: Readable, stderr: Readable) => void;
}

const byomBuilds = new Map<string, Promise<Bundle>>();

/**
 * Builds the isolated BYOM Worker (workers/byom/, where uploaded models run) beside `bundle`, once
 * per process: `wrangler deploy --dry-run` of its own config.
 */
function buildByom(bundle: Bundle): Promise<Bundle> {
  const outdir = `${bundle.outdir}-byom`;
  let built = byomBuilds.get(outdir);
  if (!built) {
    built = (async () => {
      await rm(outdir, { recursive: true, force: true });
      execFileSync(
        "npx",
        ["wrangler", "deploy", "--dry-run", "-c", "workers/byom/wrangler.toml", "--outdir", outdir],
        { cwd: root, stdio: "pipe" },
      );
      return { outdir, entry: path.join(outdir, "index.js"), bytes: 0, gzip_bytes: 0 };
    })();
    byomBuilds.set(outdir, built);
  }
  return built;
}

/**
 * Starts `bundle` in workerd with wrangler.toml's top-level bindings and vars (dev) plus `vars`,
 * beside the isolated BYOM Worker (workers/byom/wrangler.toml's config) that its BYOM binding calls,
 * on `listen` (default: a free loopback port; also the inspector's port and where workerd's
 * stdout/stderr go, by default this process's), and applies the D1 migrations; `services` adds
 * service bindings answered by Node functions. Stop it with `mf.dispose()`.
 */
export async function startWorker(
  bundle: Bundle,
  vars: Record<string, string>,
  listen: WorkerListen = {},
  services: Record<string, (request: Request) => Promise<Response>> = {},
): Promise<{ mf: Miniflare; url: string; pids: Set<number> }> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(root, "wrangler.toml"));
  const byom = await buildByom(bundle);
  const byomOptions = unstable_getMiniflareWorkerOptions(path.join(root, "workers/byom/wrangler.toml"));
  const started = await startMiniflare({
    ...listen,
    workers: [
      {
        ...(workerOptions as object),
        name: "edge-inference",
        // Explicit module list: ORT's glue contains a dynamic import() that Miniflare will not trace.
        modules: await bundleModules(bundle),
        modulesRoot: bundle.outdir,
        bindings: { ...(workerOptions.bindings ?? {}), ...vars },
        serviceBindings: {
          ...((workerOptions as { serviceBindings?: object }).serviceBindings ?? {}),
          ...services,
        },
      },
      {
        ...(byomOptions.workerOptions as object),
        name: "edge-inference-byom",
        modules: await bundleModules(byom),
        modulesRoot: byom.outdir,
      },
    ],
  } as ConstructorParameters<typeof Miniflare>[0]);
  await applyMigrations(await started.mf.getD1Database("DB"));
  return started;
}
