/**
 * The bench's view of the Durable Objects: a wrapper entry module, written next to the built
 * bundle, that runs the Worker with every Durable Object namespace wrapped, so that each call to
 * an object is counted (per namespace and method) and, with `BENCH_DO_DELAY_MS`, waits that long
 * first (timed in Node through the `BENCH_DELAY` service binding, `delayService`): a simulated
 * distance to the objects (locally they are in the same process). The counts
 * are read, and reset, at `GET /__bench/rpcs[?reset]`. The Worker's own code is unchanged.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Bundle } from "../scripts/local-worker";

const WRAPPER = `import worker from "./index.js";
export * from "./index.js";

const NAMESPACES = ["CALLER_GUARD", "STATS_SHARD", "ONLINE_LEARNER", "DRIFT_SHARD", "ROLLOUT_CALLERS"];
const counts = {};
const wrapped = new WeakMap();

function stubOf(name, stub, delay, env) {
  return new Proxy({}, {
    get(_, method) {
      if (method === "then") return undefined;
      return async (...args) => {
        const key = name + "." + String(method);
        counts[key] = (counts[key] ?? 0) + 1;
        if (delay > 0) {
          // Waited for in Node, not with a timer here: a Worker's timers run on a clock that
          // stands still between I/O events, so a timer set after CPU work fires early.
          const res = await env.BENCH_DELAY.fetch("http://delay/?ms=" + delay);
          await res.arrayBuffer();
        }
        return stub[method](...args);
      };
    },
  });
}

function namespaceOf(name, ns, delay, env) {
  return new Proxy(ns, {
    get(target, prop) {
      if (prop === "get") return (id, options) => stubOf(name, target.get(id, options), delay, env);
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function wrap(env) {
  let out = wrapped.get(env);
  if (out) return out;
  const delay = Number(env.BENCH_DO_DELAY_MS ?? 0);
  out = { ...env };
  for (const name of NAMESPACES) if (env[name]) out[name] = namespaceOf(name, env[name], delay, env);
  wrapped.set(env, out);
  return out;
}

export default {
  fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/rpcs") {
      const body = JSON.stringify(counts);
      if (url.searchParams.has("reset")) for (const key of Object.keys(counts)) delete counts[key];
      return new Response(body, { headers: { "content-type": "application/json" } });
    }
    return worker.fetch(request, wrap(env), ctx);
  },
  queue: (batch, env, ctx) => worker.queue(batch, wrap(env), ctx),
  scheduled: (controller, env, ctx) => worker.scheduled(controller, wrap(env), ctx),
};
`;

/**
 * The `BENCH_DELAY` service binding of the wrapped Worker: answers after `?ms=` milliseconds of
 * real time.
 */
export async function delayService(request: Request): Promise<Response> {
  const ms = Number(new URL(request.url).searchParams.get("ms") ?? 0);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return new Response("");
}

/** `bundle` with the counting / delaying wrapper as its entry. */
export async function withObjectProxy(bundle: Bundle): Promise<Bundle> {
  const entry = path.join(bundle.outdir, "bench-entry.js");
  await writeFile(entry, WRAPPER);
  return { ...bundle, entry };
}

/**
 * Durable Object calls per namespace and method since the last reset; resets them. Undefined (and
 * said on stderr) when the service does not answer within 20 s.
 */
export async function takeRpcCounts(url: string): Promise<Record<string, number> | undefined> {
  try {
    const res = await fetch(`${url}/__bench/rpcs?reset`, { signal: AbortSignal.timeout(20_000) });
    return (await res.json()) as Record<string, number>;
  } catch (error) {
    console.error(`${new Date().toISOString()} ${url}: Durable Object call counts unavailable: ${error}`);
    return undefined;
  }
}
