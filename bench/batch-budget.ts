/**
 * The per-request work budget (src/inference/budget.ts) under its worst requests: every batch the
 * budget lets through, on every protocol, sent one at a time to the bundle in workerd (auth and
 * metering off: the work itself). Per scenario: the status, workerd CPU per request from /proc
 * (10 ms ticks), latency, and the workerd process's peak RSS growth over the request (VmHWM reset
 * before each scenario), min/median/max over BENCH_BUDGET_ROUNDS rounds (default 5) after one
 * warm-up. The refused cases (48 flat 2048² RGBA PNGs, UINT8 [64,1,1,1]) are timed too.
 *
 * Alone: `npx tsx bench/batch-budget.ts` (prints JSON); `npm run bench` includes it as `batch_budget`.
 * The budget's goal: every accepted request under 1 s of CPU and 64 MB of growth.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { encode as encodePng } from "fast-png";
import { putShippedModels } from "../scripts/local-r2";
import { type Bundle, build, root, startWorker } from "../scripts/local-worker";
import { buildMlpOnnx } from "../test/support/sklearn-onnx";

const ROUNDS = Number(process.env.BENCH_BUDGET_ROUNDS ?? 5);

function cpuMs(pids: ReadonlySet<number>): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      // exited
    }
  }
  return total;
}

function statusKb(pids: ReadonlySet<number>, field: "VmRSS" | "VmHWM"): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      kb += Number(m?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return kb;
}

/** Resets the peak RSS (VmHWM) of `pids` to their current RSS (Linux: `5` > clear_refs). */
function resetPeak(pids: ReadonlySet<number>): void {
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
    } catch {
      // not permitted or exited: growth is then measured against the earlier peak
    }
  }
}

function spread(xs: number[]): { min: number; median: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0] ?? 0, median: s[Math.floor(s.length / 2)] ?? 0, max: s[s.length - 1] ?? 0 };
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

/** A flat (one colour) RGBA PNG: the cheapest body for the most pixels. */
function flatPng(width: number, height: number, channels: 1 | 4 = 4): string {
  const data = new Uint8Array(width * height * channels).fill(200);
  return b64(encodePng({ width, height, data, channels, depth: 8 }));
}

interface Scenario {
  name: string;
  path: string;
  body: string;
}

function scenarios(): Scenario[] {
  const oip = (model: string, input: unknown) => ({
    path: `/v2/models/${model}/infer`,
    body: JSON.stringify({ inputs: [input] }),
  });
  const bytesInput = (data: string[]) => ({ name: "image", datatype: "BYTES", shape: [data.length], data });
  const big = flatPng(2048, 2048);
  // 8 × 724² = 4,193,408 pixels: the most the pixel budget lets through in 8 images.
  const eighth = flatPng(724, 724);
  const words = "you are a wonderful person and this is a test of the batch budget ";
  const text = words.repeat(Math.floor(62_000 / words.length));
  return [
    {
      name: "native: one 2048² RGBA PNG (reference)",
      path: "/api/v1/predict",
      body: JSON.stringify({ model: "moderation-image", image: big }),
    },
    { name: "oip BYTES: one 2048² RGBA PNG", ...oip("moderation-image", bytesInput([big])) },
    {
      name: "oip BYTES: 8 × 724² RGBA PNGs (pixel and run budget)",
      ...oip("moderation-image", bytesInput(Array(8).fill(eighth))),
    },
    {
      name: "oip BYTES: 8 × 224² RGBA PNGs (8 model runs)",
      ...oip("moderation-image", bytesInput(Array(8).fill(flatPng(224, 224)))),
    },
    {
      name: "oip UINT8: [8, 252, 252, 1] (largest under the 1 MiB body)",
      ...oip("moderation-image", {
        name: "image",
        datatype: "UINT8",
        shape: [8, 252, 252, 1],
        data: new Array(8 * 252 * 252).fill(7),
      }),
    },
    {
      name: "refused: oip BYTES 48 × 2048² RGBA PNGs",
      ...oip("moderation-image", bytesInput(Array(48).fill(big))),
    },
    {
      name: "refused: oip UINT8 [64, 1, 1, 1]",
      ...oip("moderation-image", {
        name: "image",
        datatype: "UINT8",
        shape: [64, 1, 1, 1],
        data: new Array(64).fill(0),
      }),
    },
    {
      name: "texts: 16 × 62 kB to toxicity-mlp (≈ 1 MiB, the text budget)",
      path: "/api/v1/predict",
      body: JSON.stringify({ model: "toxicity-mlp", texts: Array(16).fill(text) }),
    },
    {
      name: "oip texts: 16 × 62 kB to toxicity",
      ...oip("toxicity", { name: "text", datatype: "BYTES", shape: [16], data: Array(16).fill(text) }),
    },
  ];
}

/** The tensor model of the tensor scenario: an MLP 4096 → 512 → 10 (8 MiB of float32 weights). */
const MLP = { inputs: 4096, hidden: 512, outputs: 10 };

/** Uploads the bench MLP as tensor model `bench-mlp` (auth off) and activates it. */
async function uploadMlp(url: string): Promise<void> {
  const { inputs: D, hidden: H, outputs: K } = MLP;
  let seed = 7;
  const r = (n: number) =>
    Float32Array.from({ length: n }, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return (seed / 2 ** 31 - 0.5) * 0.1;
    });
  const bytes = buildMlpOnnx(
    { inputs: D, hidden: H, outputs: K, w1: r(H * D), b1: r(H), w2: r(K * H), b2: r(K) },
    { id: "bench-mlp", version: "1" },
  );
  const manifest = {
    kind: "tensor",
    inputs: [{ name: "features", datatype: "FP32", shape: [-1, D] }],
    outputs: [
      { name: "probabilities", datatype: "FP32", shape: [-1, K] },
      { name: "logits", datatype: "FP32", shape: [-1, K] },
    ],
    output: "probabilities",
    quantization: "none",
  };
  const form = new FormData();
  form.append("manifest", JSON.stringify(manifest));
  form.append("model", new Blob([new Uint8Array(bytes)]), "model.onnx");
  const res = await fetch(`${url}/api/v1/models/bench-mlp/versions/1?activate=true`, {
    method: "PUT",
    body: form,
  });
  if (res.status !== 201) throw new Error(`bench MLP upload: ${res.status} ${await res.text()}`);
}

/** The tensor scenario: MAX_BATCH (64) rows of the MLP's 4096 features, the most one request may send. */
function tensorScenario(): Scenario {
  const rows = 64;
  return {
    name: `oip tensor: [${rows}, ${MLP.inputs}] FP32 to an uploaded MLP ${MLP.inputs}→${MLP.hidden}→${MLP.outputs} (MAX_BATCH rows)`,
    path: "/v2/models/bench-mlp/infer",
    body: JSON.stringify({
      inputs: [
        {
          name: "features",
          datatype: "FP32",
          shape: [rows, MLP.inputs],
          data: new Array(rows * MLP.inputs).fill(1),
        },
      ],
    }),
  };
}

export interface BudgetFigure {
  status: number;
  body_bytes: number;
  workerd_cpu_ms: ReturnType<typeof spread>;
  latency_ms: ReturnType<typeof spread>;
  peak_rss_growth_mb: ReturnType<typeof spread>;
}

/** Runs the scenarios against `bundle` in a fresh workerd; one figure per scenario. */
export async function measureBatchBudget(
  bundle: Bundle,
  rounds = ROUNDS,
): Promise<Record<string, BudgetFigure>> {
  const { mf, url, pids } = await startWorker(bundle, {
    ASAP_AUTH: "off",
    METERING: "off",
    LOG_LEVEL: "error",
    REQUEST_LOG: "off",
    PREDICTION_LOG: "off",
  });
  try {
    await putShippedModels(await mf.getR2Bucket("MODELS"));
    await uploadMlp(url);
    const out: Record<string, BudgetFigure> = {};
    // BENCH_BUDGET_ONLY=<text>: only the scenarios whose name contains it.
    const only = process.env.BENCH_BUDGET_ONLY;
    for (const s of [...scenarios(), tensorScenario()].filter((s) => !only || s.name.includes(only))) {
      const send = () =>
        fetch(`${url}${s.path}`, {
          method: "POST",
          body: s.body,
          headers: { "content-type": "application/json" },
        });
      process.stderr.write(`${s.name} (${s.body.length} bytes)\n`);
      const warm = await send(); // the model's session, the shape's allocations
      await warm.arrayBuffer();
      const cpu: number[] = [];
      const latency: number[] = [];
      const growth: number[] = [];
      for (let i = 0; i < rounds; i++) {
        resetPeak(pids);
        const rss0 = statusKb(pids, "VmRSS");
        const c0 = cpuMs(pids);
        const t0 = performance.now();
        const res = await send();
        await res.arrayBuffer();
        latency.push(Math.round(performance.now() - t0));
        cpu.push(cpuMs(pids) - c0);
        growth.push(Math.round((statusKb(pids, "VmHWM") - rss0) / 1024));
      }
      out[s.name] = {
        status: warm.status,
        body_bytes: s.body.length,
        workerd_cpu_ms: spread(cpu),
        latency_ms: spread(latency),
        peak_rss_growth_mb: spread(growth),
      };
    }
    return out;
  } finally {
    await mf.dispose();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(root, "bench/batch-budget.ts")) {
  const outdir = path.join(root, "dist", "bench-budget");
  // BENCH_BUDGET_PREBUILT=1 reuses the bundle of an earlier run.
  const bundle = process.env.BENCH_BUDGET_PREBUILT
    ? { outdir, entry: path.join(outdir, "index.js"), bytes: 0, gzip_bytes: 0 }
    : await build(outdir);
  console.log(JSON.stringify(await measureBatchBudget(bundle), null, 2));
  process.exit(0);
}
