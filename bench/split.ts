/**
 * What a traffic split costs a predict (docs/rollout.md "Who is on which version"): two services
 * side by side on the full stack as shipped (ASAP auth, replay `strict`, statistics, throttling),
 * the default text model without a split (`plain`) and with a 90/10 split over two versions of the
 * same bytes (`split`). Requests are sent one at a time (the latency is the request's, not a
 * queue's) and timed in Node, for `rounds` interleaved rounds (every other one in reverse order):
 * - `warm`: `requests` predicts by one caller the isolate knows (split: its ordinal is cached);
 * - `first` / `second`: `callers` new issuers, each first verified by a `GET /api/v1/models/:id`
 *   (its public key fetched and cached, its token checked), then its first predict (split: the
 *   `RolloutCallers` RPC that stores its ordinal) and its second (cached).
 * Per scenario: min/median/max over the rounds of each round's median, in ms. Locally the object
 * runs in the same workerd process, so `first` shows the RPC and SQLite insert without network
 * distance. Alone: `npx tsx bench/split.ts` (BENCH_SPLIT_ROUNDS, BENCH_SPLIT_REQUESTS,
 * BENCH_SPLIT_CALLERS, BENCH_MODEL).
 */
import { exportSPKI, generateKeyPair } from "jose";
import type { Miniflare } from "miniflare";
import { putShippedModels } from "../scripts/local-r2";
import { type Bundle, build, root, startWorker } from "../scripts/local-worker";
import { mintToken, PEM_CONTENT_TYPE, R2_KEY_PREFIX } from "../src/auth/asap";

interface Service {
  mf: Miniflare;
  url: string;
}

/** An issuer with its keypair's public PEM, its kid and tokens to spend (one per request). */
interface Issuer {
  name: string;
  kid: string;
  pem: string;
  tokens: string[];
}

const spread = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const r = (x: number | undefined) => Math.round((x ?? 0) * 100) / 100;
  return { min: r(sorted[0]), median: r(sorted[Math.floor((sorted.length - 1) / 2)]), max: r(sorted.at(-1)) };
};
const median = (xs: number[]) => spread(xs).median;

async function issuer(name: string, tokens: number): Promise<Issuer> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const kid = `${name}/bench-split`;
  const minted: string[] = [];
  for (let i = 0; i < tokens; i++) {
    minted.push(
      await mintToken({
        issuer: name,
        kid,
        alg: "ES256",
        privateKey,
        audience: "edge-inference",
        ttlS: 1800,
      }),
    );
  }
  return { name, kid, pem: await exportSPKI(publicKey), tokens: minted };
}

async function startService(
  bundle: Bundle,
  model: string,
  issuers: Issuer[],
  split: boolean,
): Promise<Service> {
  const { mf, url } = await startWorker(
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
  for (const i of issuers) {
    await bucket.put(`${R2_KEY_PREFIX}${i.kid}`, i.pem, { httpMetadata: { contentType: PEM_CONTENT_TYPE } });
  }
  if (split) {
    // The canary: the same bytes as another version (its own session, so its run is real work).
    const active = shipped.find((m) => m.id === model)?.version as string;
    const manifest = JSON.parse(
      (await (await bucket.get(`models/${model}/${active}/manifest.json`))?.text()) ?? "{}",
    ) as Record<string, unknown>;
    const bytes = await (await bucket.get(`models/${model}/${active}/model.onnx`))?.arrayBuffer();
    await bucket.put(`models/${model}/canary/model.onnx`, new Uint8Array(bytes ?? new ArrayBuffer(0)));
    await bucket.put(
      `models/${model}/canary/manifest.json`,
      JSON.stringify({ ...manifest, version: "canary" }),
    );
    const admin = issuers[0] as Issuer;
    const res = await fetch(`${url}/api/v1/models/${model}/split`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${admin.tokens.pop()}` },
      body: JSON.stringify({ split: { [active]: 90, canary: 10 } }),
    });
    if (!res.ok) throw new Error(`setting the split failed: ${res.status} ${await res.text()}`);
  }
  return { mf, url };
}

/** One request, timed in Node; throws unless 2xx. */
async function timed(url: string, token: string, body?: string): Promise<number> {
  const start = performance.now();
  const res = await fetch(url, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body,
  });
  await res.arrayBuffer();
  const ms = performance.now() - start;
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return ms;
}

export interface SplitBenchOptions {
  model: string;
  rounds: number;
  requests: number;
  callers: number;
  text: string;
}

/** Runs the comparison (see the module comment); returns its JSON figures. */
export async function splitBench(bundle: Bundle, opts: SplitBenchOptions) {
  const body = JSON.stringify({ model: opts.model, text: opts.text });
  // Services keep their own replay state, so both spend the same tokens.
  const warm = await issuer("bench-split-warm", opts.rounds * opts.requests + 40);
  const fresh: Issuer[] = [];
  for (let c = 0; c < opts.rounds * opts.callers; c++) fresh.push(await issuer(`bench-split-caller-${c}`, 3));
  const admin = await issuer("bench-split-admin", 2);
  const services = {
    plain: await startService(bundle, opts.model, [admin, warm, ...fresh], false),
    split: await startService(bundle, opts.model, [admin, warm, ...fresh], true),
  };
  const names = Object.keys(services) as (keyof typeof services)[];
  const cursors = { plain: 0, split: 0 };
  const next = (name: keyof typeof services) => warm.tokens[cursors[name]++] as string;
  for (const name of names) {
    for (let i = 0; i < 20; i++) await timed(`${services[name].url}/api/v1/predict`, next(name), body);
  }
  type Scenario = "warm" | "first" | "second";
  const rounds: Record<string, Record<Scenario, number[]>> = {
    plain: { warm: [], first: [], second: [] },
    split: { warm: [], first: [], second: [] },
  };
  for (let round = 0; round < opts.rounds; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      const { url } = services[name];
      const warmMs: number[] = [];
      for (let i = 0; i < opts.requests; i++)
        warmMs.push(await timed(`${url}/api/v1/predict`, next(name), body));
      const firstMs: number[] = [];
      const secondMs: number[] = [];
      for (const caller of fresh.slice(round * opts.callers, (round + 1) * opts.callers)) {
        await timed(`${url}/api/v1/models/${opts.model}`, caller.tokens[0] as string);
        firstMs.push(await timed(`${url}/api/v1/predict`, caller.tokens[1] as string, body));
        secondMs.push(await timed(`${url}/api/v1/predict`, caller.tokens[2] as string, body));
      }
      const r = rounds[name] as Record<Scenario, number[]>;
      r.warm.push(median(warmMs));
      r.first.push(median(firstMs));
      r.second.push(median(secondMs));
    }
  }
  await Promise.all(Object.values(services).map((s) => s.mf.dispose()));
  const summary = (name: string) => {
    const r = rounds[name] as Record<Scenario, number[]>;
    return { warm_ms: spread(r.warm), first_ms: spread(r.first), second_ms: spread(r.second) };
  };
  return {
    model: opts.model,
    rounds: opts.rounds,
    requests_per_round: opts.requests,
    new_callers_per_round: opts.callers,
    plain: summary("plain"),
    split: summary("split"),
    // Per round: split − plain, of the round medians.
    first_request_added_ms: spread(
      (rounds.split?.first ?? []).map((ms, i) => ms - (rounds.plain?.first[i] ?? 0)),
    ),
    warm_added_ms: spread((rounds.split?.warm ?? []).map((ms, i) => ms - (rounds.plain?.warm[i] ?? 0))),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bundle = await build(`${root}/dist/bench-split`);
  const result = await splitBench(bundle, {
    model: process.env.BENCH_MODEL ?? "toxicity",
    rounds: Number(process.env.BENCH_SPLIT_ROUNDS ?? 5),
    requests: Number(process.env.BENCH_SPLIT_REQUESTS ?? 200),
    callers: Number(process.env.BENCH_SPLIT_CALLERS ?? 30),
    text: "You are a wonderful person and I enjoyed reading your edit.",
  });
  console.log(JSON.stringify(result, null, 2));
}
