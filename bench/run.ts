/**
 * `npm run bench`: load-tests the Worker on workerd directly, never through `wrangler dev` (whose
 * dev proxy caps even a hello-world Worker at ~530 RPS on these machines).
 *
 * How: `wrangler deploy --dry-run --outdir` builds the exact bundle that would ship (its size is
 * reported too); Miniflare's API runs that bundle in workerd with local R2 (bindings and vars from
 * wrangler.toml via wrangler's `unstable_getMiniflareWorkerOptions`), seeded from models/; a
 * hello-world Worker runs in the same way in the same run as the ceiling; autocannon generates
 * the load (concurrency 32; 2.5 s per scenario and round, 10 s for those run once, by default).
 * Prints one JSON document on stdout, and nothing else (`npm run -s bench > out.json`: `-s` keeps
 * npm's own banner out); workerd's output (the request log lines, warnings) goes to BENCH_LOG
 * (default dist/bench-workerd.log), and each Worker scenario reports the lines it wrote per request.
 *
 * Compared scenarios, each its own service, all started up front and loaded in turn for
 * BENCH_ROUNDS rounds (medians reported, every round listed): the hello-world Worker (ceiling);
 * predict single with the full stack (ASAP auth with a warm key cache + statistics + throttling,
 * replay checking `strict`); the same with replay checking `off` for the bench issuer; the same
 * with one token reused by every request (`reused`); with ES256 instead of RS256 tokens; with auth
 * off; with metering (statistics + throttling) off; with both off (`bare`); bare without the
 * request log (`bareNoLog`, not as shipped: `request_log_cost`); bare with one `console.log` per
 * request line instead of one per batch (`bareUnbatchedLog`, REQUEST_LOG_BATCH=1, not as shipped:
 * what the batching saves); and the Flask + scikit-learn reference service (bench/peer.ts) when its Debian packages are
 * installed (else the JSON says why it was skipped). Every Worker service runs behind a wrapper
 * (bench/objects.ts) that counts its Durable Object calls: `do_rpcs_per_1000` per scenario.
 * Then the distance phase: the full stack (strict and replay off) with every Durable Object call
 * delayed by 0, 25 and 100 ms, against bare, BENCH_DISTANCE_ROUNDS rounds (default 3) of an open
 * load at BENCH_DISTANCE_RATE (default 200 requests/s, below every scenario's capacity: a
 * saturated service's latency is its queue, not the distance), each request timed in Node. Many short interleaved rounds, every other one in reverse order,
 * spread the machine's drift (other work on the 2 cores moves a single 10 s figure by ±20 %) over
 * all scenarios alike; a feature's cost is taken round by round against the same round's run
 * without it. Also, once each, on
 * the full-stack service: health, predict batch of 32, image predict (digits model) with a 28×28
 * PNG and a 640×480 JPEG; then cold start, model-only time, and image decode/preprocess/model times,
 * and the decoder's time to refuse decode bombs (`image_bombs`; alone: `npx tsx bench/image-bombs.ts`),
 * and the worst batch requests the per-request work budget lets through (`batch_budget`; alone:
 * `npx tsx bench/batch-budget.ts`), and what a 12 MP phone photo costs next to a 640×480 one
 * (`phone_photos`; alone: `npx tsx bench/phone-photos.ts`), and what `explain: true` adds per text
 * next to scoring it (`explain_time`; alone: `npx tsx bench/explain-time.ts`).
 * (`phone_photos`; alone: `npx tsx bench/phone-photos.ts`). Last, live profiling's cost (`drift_cost`:
 * `DRIFT` on vs off, single and batch of 32, BENCH_DRIFT_ROUNDS rounds, default 6; alone:
 * `BENCH_ONLY=drift npm run -s bench`).
 *
 * Tokens are RS256 (ASAP's usual algorithm; RSA verification is the cheapest of the allowed ones)
 * unless a scenario says otherwise, pre-signed once before the load (RSA signing in Node does
 * ~4,000 tokens/s) and shared by the services (each has its own replay state).
 *
 * Env: BENCH_DURATION (s per scenario and round, default 2.5), BENCH_ROUNDS (default 20),
 * BENCH_DISTANCE_ROUNDS (default 3), BENCH_PEER_PORT (default 8891), BENCH_CONNECTIONS
 * (default 32), BENCH_MODEL (default toxicity), BENCH_TMPDIR (where local storage lives; default
 * /dev/shm when present), BENCH_ONLY=moderation (only the image moderation model's figures: cold
 * start, workerd RSS, sequential CPU/latency per 224×224 and 640×480 JPEG, and the
 * decode/preprocess/model split and ORT WASM memory in Node), BENCH_ONLY=shadow (only the shadow
 * scoring comparison, bench/shadow.ts: a 10 % shadow on BENCH_MODEL against none, BENCH_SHADOW_ROUNDS
 * rounds, default 6, open load at BENCH_SHADOW_RATE requests/s, default 100), BENCH_ONLY=cost (only
 * the compared scenarios, the peer and the `targets` block: issue #33's figures, ~7 min at 8 rounds).
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import autocannon from "autocannon";
import type { Miniflare } from "miniflare";
import { putShippedModels } from "../scripts/local-r2";
import { type Bundle, build, root, startMiniflare, startWorker } from "../scripts/local-worker";
import { observeScores, observeText } from "../src/drift/profile";
import { featurize, type SparseFeatures } from "../src/featurizer/text";
import { type BenchAuth, createTokenPool, type TokenPool, useTokenPool } from "./auth";
import { measureBatchBudget } from "./batch-budget";
import { workerdCpuMs } from "./cpu";
import { measureExplainTime } from "./explain-time";
import {
  benchImages,
  measureBombTimes,
  measureImageTime,
  moderationImages,
  watchOrtMemory,
} from "./image-time";
import { measureModelTime } from "./model-time";
import { delayService, takeRpcCounts, withObjectProxy } from "./objects";
import { type Peer, peerUnavailable, startPeer } from "./peer";
import { measurePhonePhotos } from "./phone-photos";
import { shadowBench } from "./shadow";

watchOrtMemory();
const outdir = path.join(root, "dist", "bench");
// Miniflare keeps the local Durable Object and D1 SQLite files in its temp dir (os.tmpdir()). On
// this VM's shared virtual disk each commit's fsync blocks workerd's one event-loop thread, which
// production storage never does; on tmpfs the SQLite work is still done and counted, minus the
// disk waits.
const STORAGE_DIR = process.env.BENCH_TMPDIR ?? (existsSync("/dev/shm") ? "/dev/shm" : undefined);
if (STORAGE_DIR) process.env.TMPDIR = STORAGE_DIR;
const DURATION = Number(process.env.BENCH_DURATION ?? 2.5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
/** Seconds of each scenario run once (health, batch, images). */
const ONCE_DURATION = 10;
const DISTANCE_ROUNDS = Number(process.env.BENCH_DISTANCE_ROUNDS ?? 3);
/**
 * Request rate of the distance phase (all scenarios alike): well below every scenario's capacity,
 * so that latency shows the distance and not the queue of a saturated service.
 */
const DISTANCE_RATE = Number(process.env.BENCH_DISTANCE_RATE ?? 200);
const PEER_PORT = Number(process.env.BENCH_PEER_PORT ?? 8891);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MODEL = process.env.BENCH_MODEL ?? "toxicity";
/**
 * Where the services' workerd stdout/stderr go (their request log lines, warnings, errors): a file,
 * so that stdout carries the JSON result only.
 */
const LOG_FILE = process.env.BENCH_LOG ?? path.join(root, "dist", "bench-workerd.log");
mkdirSync(path.dirname(LOG_FILE), { recursive: true });
const logFile = createWriteStream(LOG_FILE, { flags: "w" });

/** Lines a service's workerd wrote to stdout (its request log lines), counted as they pass to `LOG_FILE`. */
interface LogLines {
  count: number;
}

/** Miniflare's `handleRuntimeStdio`: both streams to `LOG_FILE`, stdout's lines counted in `lines`. */
function toLogFile(lines: LogLines) {
  return (stdout: Readable, stderr: Readable) => {
    stdout.on("data", (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines.count++;
      logFile.write(chunk);
    });
    stderr.on("data", (chunk: Buffer) => logFile.write(chunk));
  };
}

const SAMPLE_TEXTS = [
  "hello",
  "You are a wonderful person and I enjoyed reading your edit.",
  "This is the worst article I have ever seen, what an idiot wrote it",
  "Please stop changing the page without discussing it on the talk page first.",
];

interface LoadResult {
  rps: number;
  /** CPU time of the workerd process per request, in µs: steadier than RPS on a busy machine. */
  workerd_cpu_us_per_req: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  non2xx: number;
  /** Count per status code, to tell what a non-2xx was. */
  statuses: Record<string, number>;
  errors: number;
  /** Durable Object calls per 1,000 requests, by namespace and method (Worker services only). */
  do_rpcs_per_1000?: Record<string, number>;
  /** Lines the service wrote to stdout per request (its request log; Worker services only). */
  log_lines_per_req?: number;
}

interface LoadOptions {
  method?: "GET" | "POST";
  body?: string;
  auth?: BenchAuth;
  /** The loaded service's workerd processes, so that only their CPU is counted. */
  pids?: ReadonlySet<number>;
  /** Seconds (default: a round's `DURATION`). */
  duration?: number;
  /** The service's base URL, to count its Durable Object calls (bench/objects.ts). */
  rpcUrl?: string;
  /** The service's stdout line counter. */
  lines?: LogLines;
}

async function load(url: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const { auth, pids, rpcUrl, lines } = opts;
  if (rpcUrl) await takeRpcCounts(rpcUrl);
  const linesBefore = lines?.count ?? 0;
  const cpuBefore = workerdCpuMs(pids);
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: opts.duration ?? DURATION,
    method: opts.method ?? "GET",
    headers: opts.body ? { "content-type": "application/json" } : {},
    body: opts.body,
    // Each request needs a fresh token (replay protection): tokens are pre-signed, handed out here.
    ...(auth && {
      requests: [
        {
          setupRequest: (req: object) => ({
            ...req,
            headers: { ...(req as { headers?: object }).headers, ...auth.nextHeaders() },
          }),
        },
      ],
    }),
  });
  const cpuMs = workerdCpuMs(pids) - cpuBefore;
  const linesWritten = (lines?.count ?? 0) - linesBefore;
  // Calls made in `waitUntil` after the last response (statistics batches) land in the next count.
  const rpcs = rpcUrl ? await takeRpcCounts(rpcUrl) : undefined;
  if (rpcUrl && !rpcs)
    console.error(
      `  after ${result.requests.total} requests, statuses ${JSON.stringify(result.statusCodeStats)}`,
    );
  const per1000 = (n: number) => Math.round((n * 10_000) / Math.max(1, result.requests.total)) / 10;
  return {
    rps: Math.round(result.requests.total / result.duration),
    workerd_cpu_us_per_req: Math.round((cpuMs * 1000) / Math.max(1, result.requests.total)),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    statuses: Object.fromEntries(
      Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, stats.count ?? 0]),
    ),
    errors: result.errors + result.timeouts,
    ...(rpcs && {
      do_rpcs_per_1000: Object.fromEntries(
        [["total", Object.values(rpcs).reduce((a, b) => a + b, 0)] as const, ...Object.entries(rpcs)].map(
          ([k, n]) => [k, per1000(n)],
        ),
      ),
    }),
    ...(lines && {
      log_lines_per_req: Math.round((linesWritten * 100) / Math.max(1, result.requests.total)) / 100,
    }),
  };
}

interface Service {
  mf: Miniflare;
  url: string;
  pids: Set<number>;
  /** Tokens whose key is in this service's R2 key store (undefined when auth is off). */
  auth?: BenchAuth;
  /** Lines its workerd wrote to stdout so far. */
  lines: LogLines;
}

/**
 * Starts the built Worker in workerd via Miniflare with local R2 seeded from models/, vars from
 * wrangler.toml's top level (dev) plus `vars`, and the key of `pool` (unless auth is off); then
 * warms it with 20 predicts unless `warm` is false.
 */
async function startService(
  bundle: Bundle,
  vars: Record<string, string>,
  pool: TokenPool,
  warm = true,
): Promise<Service> {
  const lines: LogLines = { count: 0 };
  const { mf, url, pids } = await startWorker(
    bundle,
    {
      LOG_LEVEL: "error",
      // The limiter is consulted on every request but never refuses at bench rates.
      RATE_LIMITS: JSON.stringify({ default: { limit: 1_000_000, window: 1 } }),
      ...vars,
    },
    { handleRuntimeStdio: toLogFile(lines) },
    { BENCH_DELAY: delayService },
  );
  const bucket = await mf.getR2Bucket("MODELS");
  await putShippedModels(bucket);
  const auth = vars.ASAP_AUTH === "off" ? undefined : await useTokenPool(bucket, pool);
  const service = { mf, url, pids, lines, ...(auth && { auth }) };
  for (let i = 0; warm && i < 20; i++) await post(service, single); // session, key cache, objects
  return service;
}

async function post(service: Service, body: string): Promise<Response> {
  const res = await fetch(`${service.url}/api/v1/predict`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...service.auth?.nextHeaders() },
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`predict failed: ${res.status}`);
  return res;
}

/** The ceiling: a hello-world Worker in workerd through Miniflare, like the service. */
function helloWorld(): Promise<{ mf: Miniflare; url: string; pids: Set<number> }> {
  return startMiniflare({
    modules: true,
    script: "export default { fetch() { return new Response('hello world'); } };",
    handleRuntimeStdio: toLogFile({ count: 0 }),
  });
}

const single = JSON.stringify({ request_id: 1, text: SAMPLE_TEXTS[1], model: MODEL });
const batch = JSON.stringify({
  request_id: 2,
  texts: Array.from({ length: 32 }, (_, i) => SAMPLE_TEXTS[i % SAMPLE_TEXTS.length]),
  model: MODEL,
});

/** First predict on a fresh service (isolate already up): R2 read + sha256 + session + run. */
async function coldStart(
  bundle: Bundle,
  pool: TokenPool,
): Promise<{ first_predict_ms: number; second_predict_ms: number }> {
  const service = await startService(bundle, {}, pool, false);
  try {
    await fetch(`${service.url}/api/v1/health`).then((r) => r.arrayBuffer());
    const time = async () => {
      const t0 = performance.now();
      await post(service, single);
      return Math.round((performance.now() - t0) * 100) / 100;
    };
    return { first_predict_ms: await time(), second_predict_ms: await time() };
  } finally {
    await service.mf.dispose();
  }
}

/** The median of `xs` (the lower middle value for an even count). */
function middle(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;
}

/**
 * The round whose RPS is the median, with the median CPU per request, min/median/max of both over
 * the rounds and every round's figures.
 */
function median(rounds: LoadResult[]) {
  const rps = middle(rounds.map((r) => r.rps));
  const mid = rounds.find((r) => r.rps === rps) as LoadResult;
  return {
    ...mid,
    workerd_cpu_us_per_req: middle(rounds.map((r) => r.workerd_cpu_us_per_req)),
    rps_spread: spread(rounds.map((r) => r.rps)),
    cpu_us_spread: spread(rounds.map((r) => r.workerd_cpu_us_per_req)),
    rounds: rounds.map((r) => ({ rps: r.rps, cpu_us: r.workerd_cpu_us_per_req })),
  };
}

/** Resident memory (MiB) of `pids` (VmRSS from /proc). */
function workerdRssMib(pids: ReadonlySet<number>): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      kb += Number(m?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return Math.round((kb / 1024) * 10) / 10;
}

/** min / median / max of `xs`, rounded to 0.1. */
function spread(xs: number[]): { min: number; median: number; max: number } {
  const r = (x: number) => Math.round(x * 10) / 10;
  return { min: r(Math.min(...xs)), median: r(middle(xs)), max: r(Math.max(...xs)) };
}

/**
 * The moderation image model on a fresh full-stack service: cold start (first image predict on an
 * isolate already serving text: R2 read of the model, sha256, ORT session, run; its wall time and
 * the workerd CPU it took), the workerd RSS before it, after it and after all runs, then `n`
 * sequential predicts per bench image: latency min/median/max at concurrency 1, and workerd CPU
 * per request from /proc's 10 ms ticks over groups of 5 requests (2 ms resolution), min/median/max
 * over the groups.
 */
async function moderationBench(bundle: Bundle, pool: TokenPool, n = 60) {
  const service = await startService(bundle, {}, pool, false);
  try {
    await post(service, single); // ORT and a text session up: the baseline is a serving isolate
    const rssBefore = workerdRssMib(service.pids);
    const body = (image: string) => JSON.stringify({ model: "moderation-image", image });
    const time = async (image: string) => {
      const t0 = performance.now();
      await post(service, body(image));
      return performance.now() - t0;
    };
    const cpuCold = workerdCpuMs(service.pids);
    const first = await time(moderationBenchImages.jpeg224);
    const firstCpu = workerdCpuMs(service.pids) - cpuCold;
    const rssFirst = workerdRssMib(service.pids);
    const cpuSecond = workerdCpuMs(service.pids);
    const second = await time(moderationBenchImages.jpeg224);
    const secondCpu = workerdCpuMs(service.pids) - cpuSecond;
    const sequential: Record<
      string,
      { latency_ms: ReturnType<typeof spread>; workerd_cpu_ms_per_req: ReturnType<typeof spread> }
    > = {};
    for (const [name, image] of Object.entries(moderationBenchImages)) {
      const latencies: number[] = [];
      const cpu: number[] = [];
      for (let g = 0; g < n / 5; g++) {
        const cpu0 = workerdCpuMs(service.pids);
        for (let i = 0; i < 5; i++) latencies.push(await time(image));
        cpu.push((workerdCpuMs(service.pids) - cpu0) / 5);
      }
      sequential[name] = { latency_ms: spread(latencies), workerd_cpu_ms_per_req: spread(cpu) };
    }
    const rssAfter = workerdRssMib(service.pids);
    const r = (x: number) => Math.round(x * 10) / 10;
    return {
      cold_start: {
        first_predict_ms: Math.round(first),
        first_predict_workerd_cpu_ms: firstCpu,
        second_predict_ms: Math.round(second),
        second_predict_workerd_cpu_ms: secondCpu,
      },
      workerd_rss_mib: {
        before: rssBefore,
        after_first_predict: rssFirst,
        after_all: rssAfter,
        delta_first_predict: r(rssFirst - rssBefore),
        delta_all: r(rssAfter - rssBefore),
      },
      sequential,
    };
  } finally {
    await service.mf.dispose();
  }
}

const predictUrl = (s: Service) => `${s.url}/api/v1/predict`;
const moderationBenchImages = moderationImages();
if (process.env.BENCH_ONLY === "moderation") {
  // Only the image moderation model's figures (the full bench takes ~10 minutes).
  const built = await build(outdir);
  const pool = await createTokenPool(20_000, "RS256");
  const moderation = await moderationBench(built, pool);
  await measureImageTime(root, "digits", benchImages(), 10); // ORT up first: its baseline memory
  const time = await measureImageTime(root, "moderation-image", moderationBenchImages, 50);
  console.log(JSON.stringify({ moderation: { ...moderation, image_time: time } }, null, 2));
  process.exit(0);
}
/** The shadow scoring comparison (bench/shadow.ts): a 10 % shadow against none, same run. */
const shadowOptions = {
  model: MODEL,
  rounds: Number(process.env.BENCH_SHADOW_ROUNDS ?? 6),
  duration: DURATION,
  connections: CONNECTIONS,
  rate: Number(process.env.BENCH_SHADOW_RATE ?? 100),
  text: SAMPLE_TEXTS[1] as string,
};
// One token per request (strict replay): three services (none, 10 %, 100 %), each loaded every round
// by the closed load (up to ~2,500 RPS here) and the open load. (A pool sized for one service ran
// out on a quiet machine: the last service loaded got replayed tokens, i.e. refusals.)
const shadowTokens = () =>
  createTokenPool(
    Math.ceil(
      3 *
        (2_500 * shadowOptions.duration * shadowOptions.rounds +
          2 * shadowOptions.rate * shadowOptions.duration * shadowOptions.rounds) +
        100,
    ),
  );
if (process.env.BENCH_ONLY === "shadow") {
  const shadowBuilt = await build(outdir);
  console.log(
    JSON.stringify({ shadow: await shadowBench(shadowBuilt, await shadowTokens(), shadowOptions) }, null, 2),
  );
  process.exit(0);
}

/**
 * What live profiling (docs/drift.md) costs: the full stack with `DRIFT` on (as shipped) and off,
 * loaded in turn for `rounds` rounds (every other one backwards) with a single text and a batch of
 * 32; workerd CPU µs per request min/median/max per side, and the added CPU round by round against
 * the same round's run without it.
 */
function inRequestDriftCost() {
  // What the request itself adds per text (the rest runs in waitUntil): the input signals from the
  // featurized row and one score histogram per label, as the core and `recordLiveProfile` do.
  const manifest = JSON.parse(readFileSync(path.join(root, "models", MODEL, "manifest.json"), "utf8"));
  const rows = SAMPLE_TEXTS.map((t) => featurize(t, manifest.featurizer));
  const labels: string[] = manifest.labels;
  const scores = labels.map((_, i) => (i + 1) / (labels.length + 1));
  const n = 20_000;
  const us: number[] = [];
  for (let repeat = 0; repeat < 7; repeat++) {
    const signals = {};
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const k = i % SAMPLE_TEXTS.length;
      observeText(signals, SAMPLE_TEXTS[k] as string, {
        ids: (rows[k] as SparseFeatures).ids,
        buckets: manifest.featurizer.buckets,
      });
      observeScores(signals, labels, [scores]);
    }
    us.push(Math.round(((performance.now() - t0) * 1000 * 100) / n) / 100);
  }
  return {
    us_per_text: spread(us),
    note: `Node, ${MODEL}'s featurizer and labels, sample texts, 7 × ${n} texts`,
  };
}

async function driftCost(bundle: Bundle, pool: TokenPool, rounds: number) {
  const on = await startService(bundle, {}, pool);
  const off = await startService(bundle, { DRIFT: "off" }, pool);
  const bodies = { single, batch32: batch } as const;
  const out: Record<string, unknown> = {};
  try {
    for (const [name, body] of Object.entries(bodies)) {
      const runs = { on: [] as LoadResult[], off: [] as LoadResult[] };
      for (let round = 0; round < rounds; round++) {
        const sides = round % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const);
        for (const side of sides) {
          const service = side === "on" ? on : off;
          runs[side].push(
            await load(predictUrl(service), {
              method: "POST",
              body,
              pids: service.pids,
              rpcUrl: service.url,
              ...(service.auth && { auth: service.auth }),
            }),
          );
        }
      }
      const added = runs.on.map((r, i) => {
        const base = (runs.off[i] as LoadResult).workerd_cpu_us_per_req;
        return r.workerd_cpu_us_per_req - base;
      });
      out[name] = {
        drift_on_cpu_us: spread(runs.on.map((r) => r.workerd_cpu_us_per_req)),
        drift_off_cpu_us: spread(runs.off.map((r) => r.workerd_cpu_us_per_req)),
        added_cpu_us_per_request: spread(added),
        added_cpu_pct: spread(
          added.map(
            (a, i) => Math.round((1000 * a) / (runs.off[i] as LoadResult).workerd_cpu_us_per_req) / 10,
          ),
        ),
        rps_on: spread(runs.on.map((r) => r.rps)),
        rps_off: spread(runs.off.map((r) => r.rps)),
        do_rpcs_per_1000_on: runs.on.at(-1)?.do_rpcs_per_1000,
      };
    }
  } finally {
    await Promise.all([on.mf.dispose(), off.mf.dispose()]);
  }
  return { rounds, in_request: inRequestDriftCost(), ...out };
}

const DRIFT_ROUNDS = Number(process.env.BENCH_DRIFT_ROUNDS ?? 6);
if (process.env.BENCH_ONLY === "drift") {
  // Only live profiling's cost (docs/drift.md).
  const built = await withObjectProxy(await build(outdir));
  const pool = await createTokenPool(Math.ceil(3_000 * DURATION * DRIFT_ROUNDS * 2) + 200, "RS256");
  console.log(JSON.stringify({ drift_cost: await driftCost(built, pool, DRIFT_ROUNDS) }, null, 2));
  process.exit(0);
}
// BENCH_ONLY=cost: only the compared scenarios (and the peer) and their targets (issue #33's
// figures), without the one-off, image, shadow, distance and drift measurements.
const COST_ONLY = process.env.BENCH_ONLY === "cost";
const modelTime = COST_ONLY ? undefined : await measureModelTime(root, MODEL, SAMPLE_TEXTS);
// What explain: true adds per text next to scoring it (bench/explain-time.ts).
const explainTime = COST_ONLY ? undefined : await measureExplainTime();
const images = benchImages();
const imageTime = COST_ONLY ? undefined : await measureImageTime(root, "digits", images);
const imageBombs = COST_ONLY ? undefined : measureBombTimes();
const phonePhotos = COST_ONLY ? undefined : await measurePhonePhotos(root);
const imageBody = (image: string) => JSON.stringify({ request_id: 3, model: "digits", image });
const built = await build(outdir);
const bundle = await withObjectProxy(built);
// Enough tokens for ~3,000 authenticated requests a second on the busiest service, every round,
// plus its one-off scenarios.
const perService = Math.ceil(3_000 * (DURATION * ROUNDS + 2 * ONCE_DURATION));
const rs256 = await createTokenPool(perService, "RS256");
const es256Pool = await createTokenPool(perService, "ES256");
// One token that every request of the `reused` scenario sends (replay off: an SDK client keeping
// its token for many requests), valid for the longest lifetime ASAP allows.
const reusedPool = await createTokenPool(1, "RS256", "edge-inference", 3600);
const cold = COST_ONLY ? undefined : await coldStart(bundle, rs256);
const moderation = COST_ONLY ? undefined : await moderationBench(bundle, rs256);
const moderationTime = COST_ONLY
  ? undefined
  : await measureImageTime(root, "moderation-image", moderationBenchImages, 50);
// The worst batch requests (bench/batch-budget.ts).
const batchBudget = COST_ONLY ? undefined : await measureBatchBudget(built);

const hello = await helloWorld();
const REPLAY_OFF = { ASAP_REPLAY_POLICY: '{"default":"off"}' };
const BARE = { ASAP_AUTH: "off", METERING: "off" };
// Every scenario runs as shipped (wrangler.toml: REQUEST_LOG = "all", one line per request, batched
// per isolate by REQUEST_LOG_BATCH) except `bareNoLog`, the bare one without the request log (the
// log's own cost) and `bareUnbatchedLog`, bare with one console.log per line (what batching saves).
const services = {
  full: await startService(bundle, {}, rs256),
  replayOff: await startService(bundle, REPLAY_OFF, rs256),
  reused: await startService(bundle, REPLAY_OFF, reusedPool),
  es256: await startService(bundle, {}, es256Pool),
  noAuth: await startService(bundle, { ASAP_AUTH: "off" }, rs256),
  noMetering: await startService(bundle, { METERING: "off" }, rs256),
  bare: await startService(bundle, BARE, rs256),
  bareNoLog: await startService(bundle, { ...BARE, REQUEST_LOG: "off" }, rs256),
  // Bare with one console.log per request line instead of one per batch (REQUEST_LOG_BATCH).
  bareUnbatchedLog: await startService(bundle, { ...BARE, REQUEST_LOG_BATCH: "1" }, rs256),
};
const loadSingle = (s: Service) =>
  load(predictUrl(s), {
    method: "POST",
    body: single,
    pids: s.pids,
    rpcUrl: s.url,
    lines: s.lines,
    ...(s.auth && { auth: s.auth }),
  });
const peerSkipped = peerUnavailable();
let peer: Peer | undefined;
let peerError: string | undefined;
if (!peerSkipped) {
  try {
    peer = await startPeer(PEER_PORT);
  } catch (error) {
    peerError = error instanceof Error ? error.message : String(error);
  }
}
const loadPeer = (p: Peer) => load(`${p.url}/api/v1/predict`, { method: "POST", body: single, pids: p.pids });
const runs: Record<keyof typeof services | "hello" | "flask", LoadResult[]> = {
  hello: [],
  flask: [],
  full: [],
  replayOff: [],
  reused: [],
  es256: [],
  noAuth: [],
  noMetering: [],
  bare: [],
  bareNoLog: [],
  bareUnbatchedLog: [],
};
const order = ["hello", ...(peer ? ["flask"] : []), ...Object.keys(services)] as (keyof typeof runs)[];
for (let round = 0; round < ROUNDS; round++) {
  // Every other round runs backwards, so a drift during a round weighs on both sides of a pair.
  for (const name of round % 2 === 0 ? order : [...order].reverse()) {
    runs[name].push(
      name === "hello"
        ? await load(hello.url, { pids: hello.pids })
        : name === "flask"
          ? await loadPeer(peer as Peer)
          : await loadSingle(services[name]),
    );
  }
}
await peer?.stop();
const s = services.full;
const withAuth = { pids: s.pids, ...(s.auth && { auth: s.auth }) };
const once = COST_ONLY
  ? undefined
  : {
      health: await load(`${s.url}/api/v1/health`, { pids: s.pids, duration: ONCE_DURATION }),
      batch: await load(predictUrl(s), { method: "POST", body: batch, duration: ONCE_DURATION, ...withAuth }),
      png28: await load(predictUrl(s), {
        method: "POST",
        body: imageBody(images.png28),
        duration: ONCE_DURATION,
        ...withAuth,
      }),
      jpeg640: await load(predictUrl(s), {
        method: "POST",
        body: imageBody(images.jpeg640),
        duration: ONCE_DURATION,
        ...withAuth,
      }),
    };
await Promise.all([
  hello.mf.dispose(),
  ...Object.entries(services)
    .filter(([name]) => name !== "bare")
    .map(([, x]) => x.mf.dispose()),
]);

/**
 * Latency under an open load of `rate` requests/s for `duration` s: each request is timed on its
 * own in Node (autocannon's latencies under `overallRate` are not per request), p50/p99 in ms.
 */
async function openLoad(s: Service, rate: number, duration: number) {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const pending: Promise<void>[] = [];
  const count = Math.round(rate * duration);
  const t0 = performance.now();
  await takeRpcCounts(s.url);
  for (let i = 0; i < count; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const start = performance.now();
    pending.push(
      fetch(predictUrl(s), {
        method: "POST",
        body: single,
        headers: { "content-type": "application/json", ...s.auth?.nextHeaders() },
      })
        .then(async (res) => {
          await res.arrayBuffer();
          latencies.push(performance.now() - start);
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        })
        .catch(() => {
          statuses.error = (statuses.error ?? 0) + 1;
        }),
    );
  }
  await Promise.all(pending);
  const rpcs = await takeRpcCounts(s.url);
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 10) / 10;
  return {
    requests: count,
    p50_ms: at(0.5),
    p99_ms: at(0.99),
    statuses,
    do_rpcs_per_1000: Object.fromEntries(
      Object.entries(rpcs ?? {}).map(([k, n]) => [k, Math.round((n * 10_000) / count) / 10]),
    ),
  };
}

/**
 * Distance: the full stack with every Durable Object call delayed by `delay` ms (bench/objects.ts),
 * replay checking strict and off, loaded in turn with bare (which calls no object) for
 * DISTANCE_ROUNDS rounds at DISTANCE_RATE requests/s; medians of p50 and p99.
 */
async function distance(delay: number) {
  const vars = { BENCH_DO_DELAY_MS: String(delay) };
  const strict = await startService(bundle, vars, rs256);
  const off = await startService(bundle, { ...vars, ...REPLAY_OFF }, rs256);
  type Open = Awaited<ReturnType<typeof openLoad>>;
  const rounds: Record<"bare" | "strict" | "off", Open[]> = { bare: [], strict: [], off: [] };
  const scenarios = { bare: services.bare, strict, off };
  for (let round = 0; round < DISTANCE_ROUNDS; round++) {
    const names = Object.keys(rounds) as (keyof typeof rounds)[];
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      rounds[name].push(await openLoad(scenarios[name], DISTANCE_RATE, DURATION));
    }
  }
  await Promise.all([strict.mf.dispose(), off.mf.dispose()]);
  const summary = (rs: Open[]) => ({
    p50_ms: middle(rs.map((r) => r.p50_ms)),
    p99_ms: middle(rs.map((r) => r.p99_ms)),
    rounds: rs,
  });
  const bareS = summary(rounds.bare);
  const strictS = summary(rounds.strict);
  const offS = summary(rounds.off);
  return {
    delay_ms: delay,
    bare: bareS,
    full_strict: strictS,
    full_replay_off: offS,
    rate_per_s: DISTANCE_RATE,
    p50_over_bare_ms: {
      strict: Math.round((strictS.p50_ms - bareS.p50_ms) * 10) / 10,
      replay_off: Math.round((offS.p50_ms - bareS.p50_ms) * 10) / 10,
    },
  };
}
const shadow = COST_ONLY ? undefined : await shadowBench(built, await shadowTokens(), shadowOptions);
const distances: Awaited<ReturnType<typeof distance>>[] = [];
let distanceError: string | undefined;
try {
  for (const delay of COST_ONLY ? [] : [0, 25, 100]) distances.push(await distance(delay));
} catch (error) {
  distanceError = error instanceof Error ? error.stack : String(error);
}
await services.bare.mf.dispose();
// Live profiling's cost (docs/drift.md): DRIFT on vs off, same run (alone: BENCH_ONLY=drift).
const driftCosts = COST_ONLY ? undefined : await driftCost(bundle, rs256, DRIFT_ROUNDS);
const helloM = median(runs.hello);
const full = median(runs.full);
const es256 = median(runs.es256);
const noAuth = median(runs.noAuth);
const noMetering = median(runs.noMetering);
const bare = median(runs.bare);
const pct = (a: number, b: number) => Math.round((1000 * a) / b) / 10;
const replayOff = median(runs.replayOff);
const reused = median(runs.reused);
const bareNoLog = median(runs.bareNoLog);
const bareUnbatchedLog = median(runs.bareUnbatchedLog);
const flask = peer ? median(runs.flask) : undefined;
const ratio = (a: number, b: number) => Math.round((100 * a) / b) / 100;
/** Admission (CallerGuard) calls per 1,000 requests of a scenario's median round. */
const guardRpcs = (r: LoadResult, method?: string) =>
  Object.entries(r.do_rpcs_per_1000 ?? {})
    .filter(([k]) => k.startsWith("CALLER_GUARD.") && (!method || k === `CALLER_GUARD.${method}`))
    .reduce((a, [, n]) => a + n, 0);
const d25 = distances[1];
/**
 * The request log's CPU per request as a share of a bare predict's without it: per round (bare
 * with the log vs the same round's bare without it), median over rounds.
 */
const logCostRounds = runs.bare.map((r, i) => {
  const off = (runs.bareNoLog[i] as LoadResult).workerd_cpu_us_per_req;
  return pct(r.workerd_cpu_us_per_req - off, off);
});
const logCostPct = middle(logCostRounds);
const targets = {
  full_cpu_x_bare: {
    value: ratio(full.workerd_cpu_us_per_req, bare.workerd_cpu_us_per_req),
    target: "<= 1.25",
  },
  full_replay_off_cpu_x_bare: {
    value: ratio(replayOff.workerd_cpu_us_per_req, bare.workerd_cpu_us_per_req),
    target: "<= 1.25",
  },
  full_rps_pct_of_bare: { value: pct(full.rps, bare.rps), target: ">= 75" },
  full_replay_off_rps_pct_of_bare: { value: pct(replayOff.rps, bare.rps), target: ">= 75" },
  throttling_rpcs_per_1000: { value: guardRpcs(full, "lease"), target: "<= 20" },
  replay_off_admission_rpcs_per_1000: { value: guardRpcs(replayOff, "admit"), target: "0" },
  d25_p50_over_bare_ms_replay_off: { value: d25?.p50_over_bare_ms.replay_off, target: "<= 2" },
  d25_p50_over_bare_ms_strict: { value: d25?.p50_over_bare_ms.strict, target: "<= 27" },
  full_x_flask: flask ? { value: ratio(full.rps, flask.rps), target: ">= 3" } : { skipped: true },
  // Issue #33.
  reused_token_cpu_x_bare: {
    value: ratio(reused.workerd_cpu_us_per_req, bare.workerd_cpu_us_per_req),
    target: "<= 1.15",
  },
  full_rps_x_flask: flask
    ? { value: ratio(full.rps, flask.rps), target: ">= 2.5 (stretch 3)" }
    : { skipped: true },
  full_cpu_share_of_flask: flask
    ? { value: ratio(full.workerd_cpu_us_per_req, flask.workerd_cpu_us_per_req), target: "<= 0.25" }
    : { skipped: true },
  request_log_cpu_pct_of_bare: { value: logCostPct, target: "<= 5" },
};
/**
 * The cost of a feature (`on` vs `off` runs of the same rounds), round by round, so each pair was
 * measured minutes apart at most; reported as the median over rounds, from RPS and from CPU.
 */
function cost(on: LoadResult[], off: LoadResult[]) {
  const rps = on.map((r, i) => pct((off[i] as LoadResult).rps - r.rps, (off[i] as LoadResult).rps));
  const cpu = on.map((r, i) =>
    pct(r.workerd_cpu_us_per_req - (off[i] as LoadResult).workerd_cpu_us_per_req, r.workerd_cpu_us_per_req),
  );
  return { rps_pct: middle(rps), cpu_pct: middle(cpu), rounds_rps_pct: rps, rounds_cpu_pct: cpu };
}
const authCost = cost(runs.full, runs.noAuth);
const authCostEs256 = cost(runs.es256, runs.noAuth);
const meteringCost = cost(runs.full, runs.noMetering);
const unbatchedLogCostRounds = runs.bareUnbatchedLog.map((r, i) => {
  const off = (runs.bareNoLog[i] as LoadResult).workerd_cpu_us_per_req;
  return pct(r.workerd_cpu_us_per_req - off, off);
});
const requestLogCost = {
  ...cost(runs.bare, runs.bareNoLog),
  cpu_pct_of_bare_without_log: logCostPct,
  rounds_cpu_pct_of_bare_without_log: logCostRounds,
  // The same with one console.log per line (REQUEST_LOG_BATCH=1), same rounds.
  unbatched_cpu_pct_of_bare_without_log: middle(unbatchedLogCostRounds),
  unbatched_rounds_cpu_pct_of_bare_without_log: unbatchedLogCostRounds,
};
console.log(
  JSON.stringify(
    {
      runner: "miniflare API → workerd (no wrangler dev proxy)",
      local_storage_dir: STORAGE_DIR ?? "os default temp dir",
      node: process.version,
      connections: CONNECTIONS,
      duration_s: DURATION,
      rounds: ROUNDS,
      model: MODEL,
      hello_world: helloM,
      health: once?.health,
      predict_single: { ...full, pct_of_hello_world: pct(full.rps, helloM.rps) },
      predict_batch32: once && { ...once.batch, texts_per_s: once.batch.rps * 32 },
      predict_single_es256_tokens: es256,
      predict_single_no_auth: noAuth,
      predict_single_no_metering: noMetering,
      predict_single_bare: { ...bare, pct_of_hello_world: pct(bare.rps, helloM.rps) },
      predict_single_replay_off: replayOff,
      predict_single_reused_token: {
        ...reused,
        note: "replay off, every request sends the same token",
        cpu_x_bare: ratio(reused.workerd_cpu_us_per_req, bare.workerd_cpu_us_per_req),
      },
      predict_single_bare_no_request_log: bareNoLog,
      predict_single_bare_unbatched_request_log: bareUnbatchedLog,
      drift_cost: driftCosts,
      flask_reference: flask
        ? {
            ...flask,
            note: "gunicorn -w 2 (master + workers' CPU in workerd_cpu_us_per_req), same body and load",
            full_x_flask: ratio(full.rps, flask.rps),
            replay_off_x_flask: ratio(replayOff.rps, flask.rps),
            bare_x_flask: ratio(bare.rps, flask.rps),
            full_cpu_share: ratio(full.workerd_cpu_us_per_req, flask.workerd_cpu_us_per_req),
          }
        : { skipped: peerSkipped ?? peerError },
      distance: distanceError ? { error: distanceError, measured: distances } : distances,
      targets,
      // Costs per round (full stack vs the same without the feature, same round), median over
      // rounds; RPS cost = 1 − rps_with / rps_without, CPU cost = 1 − cpu_without / cpu_with.
      auth_cost: authCost,
      auth_cost_es256: authCostEs256,
      metering_cost: meteringCost,
      // The request log line (REQUEST_LOG=all, as shipped): bare vs bare without it.
      request_log_cost: requestLogCost,
      bare_pct_of_hello_world_cpu: pct(helloM.workerd_cpu_us_per_req, bare.workerd_cpu_us_per_req),
      cold_start: cold,
      model_time: modelTime,
      explain_time: explainTime,
      predict_image_png28: once?.png28,
      predict_image_jpeg640: once?.jpeg640,
      image_time: imageTime,
      image_bombs: imageBombs,
      batch_budget: batchBudget,
      phone_photos: phonePhotos,
      moderation_image: moderation && { ...moderation, image_time: moderationTime },
      shadow_scoring: shadow,
      bundle: { bytes: built.bytes, gzip_bytes: built.gzip_bytes },
    },
    null,
    2,
  ),
);
