/**
 * Shadow scoring's cost on the answering path (#30's target): the full stack as shipped (ASAP auth,
 * replay `strict`, statistics, throttling) on the default text model, with no shadow, with a 10 %
 * shadow, and with a 100 % one (the shadow's own cost, ten times what 10 % adds); the shadow is a
 * second version of the same model, so its run costs what the serving run costs. The services are
 * started side by side and loaded in turn for `rounds` interleaved rounds
 * (every other round in reverse order):
 * - a closed load (autocannon, `connections`, `duration` s): RPS, p50/p99 and workerd CPU per
 *   answered request;
 * - an open load at `rate` requests/s (below capacity, where the latency is the request's, not a
 *   queue's), each request timed in Node: p50/p99.
 * Medians with min/median/max per scenario, and the CPU rise per answered request against the same
 * round's no-shadow run. Alone: `npx tsx bench/shadow.ts` (BENCH_SHADOW_ROUNDS, BENCH_DURATION,
 * BENCH_SHADOW_RATE, BENCH_MODEL); `npm run bench` runs it too.
 */
import autocannon from "autocannon";
import type { Miniflare } from "miniflare";
import { putShippedModels } from "../scripts/local-r2";
import { type Bundle, build, root, startWorker } from "../scripts/local-worker";
import { type BenchAuth, createTokenPool, type TokenPool, useTokenPool } from "./auth";
import { workerdCpuMs } from "./cpu";

interface ShadowService {
  mf: Miniflare;
  url: string;
  pids: Set<number>;
  auth: BenchAuth;
}

export interface ShadowBenchOptions {
  model: string;
  rounds: number;
  duration: number;
  connections: number;
  rate: number;
  text: string;
}

const spread = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return {
    min: sorted[0] ?? 0,
    median: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0,
    max: sorted.at(-1) ?? 0,
  };
};

async function startShadowService(
  bundle: Bundle,
  pool: TokenPool,
  model: string,
  shadowRate: number | undefined,
): Promise<ShadowService> {
  const { mf, url, pids } = await startWorker(
    bundle,
    { LOG_LEVEL: "error", RATE_LIMITS: JSON.stringify({ default: { limit: 1_000_000, window: 1 } }) },
    {
      handleRuntimeStdio: (out, err) => {
        out.resume();
        err.resume();
      },
    },
  );
  const bucket = await mf.getR2Bucket("MODELS");
  const shipped = await putShippedModels(bucket);
  const auth = await useTokenPool(bucket, pool);
  if (shadowRate !== undefined) {
    // The shadow: the same bytes as another version (its own session, so its run is real work).
    const active = shipped.find((m) => m.id === model)?.version as string;
    const manifest = JSON.parse(
      (await (await bucket.get(`models/${model}/${active}/manifest.json`))?.text()) ?? "{}",
    ) as Record<string, unknown>;
    const bytes = await (await bucket.get(`models/${model}/${active}/model.onnx`))?.arrayBuffer();
    await bucket.put(`models/${model}/shadow/model.onnx`, new Uint8Array(bytes ?? new ArrayBuffer(0)));
    await bucket.put(
      `models/${model}/shadow/manifest.json`,
      JSON.stringify({ ...manifest, version: "shadow" }),
    );
    const res = await fetch(`${url}/api/v1/models/${model}/shadow`, {
      method: "PUT",
      headers: { "content-type": "application/json", ...auth.nextHeaders() },
      body: JSON.stringify({ shadows: [{ version: "shadow", sample_rate: shadowRate }] }),
    });
    if (!res.ok) throw new Error(`setting the shadow failed: ${res.status} ${await res.text()}`);
  }
  return { mf, url, pids, auth };
}

async function closedLoad(s: ShadowService, body: string, opts: ShadowBenchOptions) {
  const cpuBefore = workerdCpuMs(s.pids);
  const result = await autocannon({
    url: `${s.url}/api/v1/predict`,
    connections: opts.connections,
    duration: opts.duration,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    requests: [
      {
        setupRequest: (req: object) => ({
          ...req,
          headers: { ...(req as { headers?: object }).headers, ...s.auth.nextHeaders() },
        }),
      },
    ],
  });
  // The shadow runs finish in `waitUntil` after their answers: let the last ones count here.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const cpuMs = workerdCpuMs(s.pids) - cpuBefore;
  const ok = result.requests.total - result.non2xx;
  return {
    rps: Math.round(result.requests.total / result.duration),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    cpu_us_per_answer: Math.round((cpuMs * 1000) / Math.max(1, ok)),
    non2xx: result.non2xx,
  };
}

async function openLoad(s: ShadowService, body: string, opts: ShadowBenchOptions) {
  const cpuBefore = workerdCpuMs(s.pids);
  const latencies: number[] = [];
  let failed = 0;
  const count = Math.round(opts.rate * opts.duration * 2);
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + (i * 1000) / opts.rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const start = performance.now();
    pending.push(
      fetch(`${s.url}/api/v1/predict`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...s.auth.nextHeaders() },
      })
        .then(async (res) => {
          await res.arrayBuffer();
          if (res.ok) latencies.push(performance.now() - start);
          else failed++;
        })
        .catch(() => {
          failed++;
        }),
    );
  }
  await Promise.all(pending);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const cpuMs = workerdCpuMs(s.pids) - cpuBefore;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 100) /
    100;
  return {
    p50_ms: at(0.5),
    p99_ms: at(0.99),
    failed,
    // Below capacity: includes the process's own idle work at this rate (timers, alarms), so it is
    // higher than the closed load's; compared only with the same round's no-shadow open load.
    cpu_us_per_answer: Math.round((cpuMs * 1000) / Math.max(1, latencies.length)),
  };
}

/** Runs the comparison (see the module comment); returns its JSON figures. */
export async function shadowBench(bundle: Bundle, pool: TokenPool, opts: ShadowBenchOptions) {
  const body = JSON.stringify({ text: opts.text, model: opts.model });
  const services = {
    none: await startShadowService(bundle, pool, opts.model, undefined),
    shadow10: await startShadowService(bundle, pool, opts.model, 0.1),
    // Every request shadowed: the shadow's own cost per run, ten times what 10 % adds, so it
    // stands out of the shared machine's noise.
    shadow100: await startShadowService(bundle, pool, opts.model, 1),
  };
  const names = Object.keys(services) as (keyof typeof services)[];
  for (const name of names) {
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${services[name].url}/api/v1/predict`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...services[name].auth.nextHeaders() },
      });
      await res.arrayBuffer();
    }
  }
  type Closed = Awaited<ReturnType<typeof closedLoad>>;
  type Open = Awaited<ReturnType<typeof openLoad>>;
  const closed: Record<string, Closed[]> = { none: [], shadow10: [], shadow100: [] };
  const open: Record<string, Open[]> = { none: [], shadow10: [], shadow100: [] };
  for (let round = 0; round < opts.rounds; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      closed[name]?.push(await closedLoad(services[name], body, opts));
      open[name]?.push(await openLoad(services[name], body, opts));
    }
  }
  const comparison = async (s: ShadowService) =>
    (
      (await (
        await fetch(`${s.url}/api/v1/models/${opts.model}/shadow`, { headers: s.auth.nextHeaders() })
      ).json()) as { shadows: { comparisons: unknown[] }[] }
    ).shadows[0]?.comparisons[0] ?? null;
  const comparisons = {
    shadow10: await comparison(services.shadow10),
    shadow100: await comparison(services.shadow100),
  };
  await Promise.all(Object.values(services).map((s) => s.mf.dispose()));
  const summary = (name: string) => ({
    closed_load: {
      rps: spread((closed[name] ?? []).map((r) => r.rps)),
      p50_ms: spread((closed[name] ?? []).map((r) => r.p50_ms)),
      p99_ms: spread((closed[name] ?? []).map((r) => r.p99_ms)),
      cpu_us_per_answer: spread((closed[name] ?? []).map((r) => r.cpu_us_per_answer)),
      non2xx: (closed[name] ?? []).reduce((a, r) => a + r.non2xx, 0),
    },
    open_load: {
      rate: opts.rate,
      p50_ms: spread((open[name] ?? []).map((r) => r.p50_ms)),
      p99_ms: spread((open[name] ?? []).map((r) => r.p99_ms)),
      cpu_us_per_answer: spread((open[name] ?? []).map((r) => r.cpu_us_per_answer)),
      failed: (open[name] ?? []).reduce((a, r) => a + r.failed, 0),
    },
  });
  const pct = (a: number, b: number) => Math.round(((a - b) / b) * 1000) / 10;
  const cpuRise = (name: string, load: Record<string, { cpu_us_per_answer: number }[]>) => {
    const rounds = (load[name] ?? []).map((r, i) =>
      pct(r.cpu_us_per_answer, (load.none?.[i] as Closed).cpu_us_per_answer),
    );
    return { ...spread(rounds), rounds };
  };
  return {
    model: opts.model,
    rounds: opts.rounds,
    duration_s: opts.duration,
    connections: opts.connections,
    none: summary("none"),
    shadow10: summary("shadow10"),
    shadow100: summary("shadow100"),
    // Per round against the same round's no-shadow run.
    // The shadow's own share is what 100 % adds; a 10 % shadow should add about a tenth of it.
    cpu_per_answer_rise_pct: {
      closed_load: { shadow10: cpuRise("shadow10", closed), shadow100: cpuRise("shadow100", closed) },
      open_load: { shadow10: cpuRise("shadow10", open), shadow100: cpuRise("shadow100", open) },
    },
    shadow_comparisons: comparisons,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rounds = Number(process.env.BENCH_SHADOW_ROUNDS ?? 6);
  const duration = Number(process.env.BENCH_DURATION ?? 2.5);
  const rate = Number(process.env.BENCH_SHADOW_RATE ?? 100);
  const pool = await createTokenPool(
    Math.ceil(2_500 * duration * rounds + 2 * rate * duration * rounds + 100),
  );
  const bundle = await build(`${root}/dist/bench-shadow`);
  const result = await shadowBench(bundle, pool, {
    model: process.env.BENCH_MODEL ?? "toxicity",
    rounds,
    duration,
    connections: Number(process.env.BENCH_CONNECTIONS ?? 32),
    rate,
    text: "You are a wonderful person and I enjoyed reading your edit.",
  });
  console.log(JSON.stringify(result, null, 2));
}
