/**
 * A V8 CPU profile of `POST /api/v1/predict` in workerd, taken through workerd's inspector while
 * autocannon loads the service: `NODE_OPTIONS=--experimental-websocket npx tsx bench/profile.ts`
 * (Node 20 needs the flag for its WebSocket client).
 *
 * It builds the deployable bundle, starts it like `npm run bench` does (Miniflare's API, local R2
 * seeded from models/, tmpfs storage), warms it, then profiles BENCH_PROFILE_SECONDS (default 10)
 * of load at concurrency 32 and writes the profile (open it in Chrome's DevTools) to
 * `dist/profile/<scenario>.cpuprofile`. On stdout: JSON with the share of samples spent in each
 * function (self time, top BENCH_PROFILE_TOP, default 40) and per source file of the bundle's
 * modules (by the bundle's `// src/...` markers: esbuild writes one before each module).
 *
 * BENCH_PROFILE_SCENARIO: `bare` (auth and metering off, the default), `full` (as shipped, replay
 * strict), `replay-off`, `reused` (replay off, one token reused by every request); `+nolog`
 * appended turns the request log off (`REQUEST_LOG=off`). The inspector slows the isolate a little;
 * the shares, not the absolute times, are what this is for.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import autocannon from "autocannon";
import { putShippedModels } from "../scripts/local-r2";
import { build, root, startWorker } from "../scripts/local-worker";
import { createTokenPool, useTokenPool } from "./auth";

if (typeof WebSocket !== "function") {
  console.error("run with NODE_OPTIONS=--experimental-websocket (Node 20's WebSocket client)");
  process.exit(2);
}
if (existsSync("/dev/shm")) process.env.TMPDIR = process.env.BENCH_TMPDIR ?? "/dev/shm";
const SECONDS = Number(process.env.BENCH_PROFILE_SECONDS ?? 10);
const TOP = Number(process.env.BENCH_PROFILE_TOP ?? 40);
const SCENARIO = process.env.BENCH_PROFILE_SCENARIO ?? "bare";
const [kind, ...flags] = SCENARIO.split("+");
const VARS: Record<string, Record<string, string>> = {
  bare: { ASAP_AUTH: "off", METERING: "off" },
  full: {},
  "replay-off": { ASAP_REPLAY_POLICY: '{"default":"off"}' },
  reused: { ASAP_REPLAY_POLICY: '{"default":"off"}' },
};
const vars = VARS[kind as string];
if (!vars)
  throw new Error(`BENCH_PROFILE_SCENARIO: one of ${Object.keys(VARS).join(", ")}, optionally +nolog`);

/** A free loopback port (for the inspector). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** A minimal Chrome DevTools Protocol session over one WebSocket. */
async function cdp(url: string) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let id = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.onmessage = (event) => {
    const msg = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: unknown };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.error ? Promise.reject(msg.error) : msg.result);
  };
  return {
    send: <T>(method: string, params: object = {}): Promise<T> =>
      new Promise((resolve) => {
        waiting.set(++id, resolve as (r: unknown) => void);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

if (flags.includes("nolog")) Object.assign(vars, { REQUEST_LOG: "off" });
const outdir = path.join(root, "dist", "profile");
const bundle = await build(outdir);
const inspectorPort = await freePort();
const { mf, url } = await startWorker(
  bundle,
  { LOG_LEVEL: "error", RATE_LIMITS: JSON.stringify({ default: { limit: 1_000_000, window: 1 } }), ...vars },
  {
    inspectorPort,
    handleRuntimeStdio: (out, err) => {
      out.resume(); // the request log lines: dropped
      err.resume();
    },
  },
);
const bucket = await mf.getR2Bucket("MODELS");
await putShippedModels(bucket);
let headers: () => Record<string, string> = () => ({});
if (kind !== "bare") {
  const count = kind === "reused" ? 1 : Math.ceil(4_000 * (SECONDS + 5));
  const auth = await useTokenPool(bucket, await createTokenPool(count, "RS256"));
  headers = auth.nextHeaders;
}
const body = JSON.stringify({
  request_id: 1,
  text: "You are a wonderful person and I enjoyed reading your edit.",
  model: "toxicity",
});
const load = (duration: number) =>
  autocannon({
    url: `${url}/api/v1/predict`,
    connections: 32,
    duration,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    requests: [
      {
        setupRequest: (req: object) => ({
          ...req,
          headers: { ...(req as { headers?: object }).headers, ...headers() },
        }),
      },
    ],
  });
await load(3); // session, key cache, objects, JIT
const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as {
  id: string;
  webSocketDebuggerUrl?: string;
}[];
const target = targets.find((t) => t.id.includes("edge-inference")) ?? targets[0];
const ws = target?.webSocketDebuggerUrl ?? `ws://127.0.0.1:${inspectorPort}/${target?.id}`;
const session = await cdp(ws);
await session.send("Profiler.enable");
await session.send("Profiler.setSamplingInterval", { interval: 100 });
await session.send("Profiler.start");
const result = await load(SECONDS);
const { profile } = await session.send<{ profile: Profile }>("Profiler.stop");
session.close();
await mf.dispose();
const file = path.join(outdir, `${SCENARIO}.cpuprofile`);
await writeFile(file, JSON.stringify(profile));

// Self time per function and per module of the bundle (esbuild's `// src/x.ts` markers).
const source = readFileSync(bundle.entry, "utf8").split("\n");
const moduleAt: string[] = [];
let current = "(bundle prelude)";
for (const line of source) {
  const marker = /^\/\/ ((?:src|durable-objects|node_modules)\/\S+)$/.exec(line);
  if (marker) current = (marker[1] as string).replace(/^node_modules\/([^/]+).*/, "$1 (npm)");
  moduleAt.push(current);
}
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfFn = new Map<string, number>();
const selfModule = new Map<string, number>();
for (const id of profile.samples) {
  const frame = (byId.get(id) as ProfileNode).callFrame;
  const inBundle = frame.url.endsWith("/index.js") || frame.url.endsWith("index.js");
  const mod = inBundle
    ? (moduleAt[frame.lineNumber] ?? "?")
    : frame.url || `(${frame.functionName || "native"})`;
  const fn = `${frame.functionName || "(anonymous)"} ${inBundle ? `${mod}:${frame.lineNumber + 1}` : frame.url}`;
  selfFn.set(fn, (selfFn.get(fn) ?? 0) + 1);
  selfModule.set(mod, (selfModule.get(mod) ?? 0) + 1);
}
const total = profile.samples.length;
const share = (m: Map<string, number>, top: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, n]) => ({ name, pct: Math.round((1000 * n) / total) / 10 }));
console.log(
  JSON.stringify(
    {
      scenario: SCENARIO,
      seconds: SECONDS,
      requests: result.requests.total,
      rps: Math.round(result.requests.total / result.duration),
      statuses: Object.fromEntries(
        Object.entries(result.statusCodeStats ?? {}).map(([c, s]) => [c, s.count]),
      ),
      samples: total,
      profile: path.relative(root, file),
      self_by_module: share(selfModule, 30),
      self_by_function: share(selfFn, TOP),
    },
    null,
    2,
  ),
);
