/** Recording calls into, and reading aggregates out of, the sharded `StatsShard` objects. */
import type { CallBatch, CallEvent, ShardSnapshot, StatsShard } from "../../durable-objects/stats-shard";
import { deliverBatch, IsolateBatches } from "../batch";
import { ApiError } from "../errors";
import { withTimeout } from "../timeout";
import { addHistograms, percentiles } from "./latency";

/**
 * The statistics series of the requests model version `id`@`version` scored (kept beside the
 * APIs' series in the same shards; never listed by `GET /api/v1/statistics`).
 */
export const versionApi = (id: string, version: string): string => `model:${id}@${version}`;

/** API name of requests that matched no route (404, 405); `withState`'s initial `state.api`. */
export const UNMATCHED_API = "unknown";

/** How often a failed delivery is attempted in total; retries are safe because `recordBatch` is idempotent. */
const ATTEMPTS = 3;

function shard(env: Env, api: string, index: number): DurableObjectStub<StatsShard> {
  return env.STATS_SHARD.get(env.STATS_SHARD.idFromName(`${api}:${index}`));
}

/**
 * Calls of one API collected for 50 ms (off the response path: adds no latency) are sent together,
 * at most 500 per RPC; a full batch opens the next one.
 */
const batches = new IsolateBatches<CallEvent>(50, 500);

/**
 * Counts one call of `api`. Calls of the same 50 ms in this isolate are sent together (see
 * `IsolateBatches`), in one RPC to a random one of the API's `shards` shard objects, so a busy
 * isolate makes ~20 RPCs per second per API instead of one per request; `onError` hears of a batch
 * that could not be delivered. A failed delivery is retried to the same shard with the same batch
 * id, and each batch id is counted once, so every call is counted exactly once.
 */
export function recordCall(
  ctx: Pick<ExecutionContext, "waitUntil">,
  env: Env,
  api: string,
  shards: number,
  event: CallEvent,
  onError: (error: unknown, calls: number) => void,
): void {
  batches.add(ctx, api, [event], (events) =>
    deliver(env, api, shards, { id: crypto.randomUUID(), events }).catch((error: unknown) =>
      onError(error, events.length),
    ),
  );
}

async function deliver(env: Env, api: string, shards: number, batch: CallBatch): Promise<void> {
  const stub = shard(env, api, Math.floor(Math.random() * shards));
  await deliverBatch(() => stub.recordBatch(batch), ATTEMPTS);
}

/** Statistics of one API as served by `GET /api/v1/statistics`. */
export interface ApiStatistics {
  api: string;
  "number of calls in current minute": number;
  /** Calls per UTC second / minute / hour, oldest first; the last entry is the current one. */
  per_second: number[];
  per_minute: number[];
  per_hour: number[];
  /** Calls per status class over the `per_hour` window (24 h). */
  status: Record<"2xx" | "3xx" | "4xx" | "5xx", number>;
  /** Mean latency over the `per_hour` window; null without calls. */
  avg_latency_ms: number | null;
  /** Calls per caller in the current minute, busiest first (metering). */
  callers_current_minute: { caller: string; calls: number }[];
  /** 4xx and 5xx calls per UTC minute (`per_minute`'s window): the error rate over time. */
  per_minute_errors: { "4xx": number[]; "5xx": number[] };
  /**
   * Latency percentiles from histograms (upper bin edges: at most 19 % above the true value), over
   * the last 60 minutes and the last 24 h; null without calls.
   */
  latency_ms: {
    last_hour: { p50: number; p95: number; p99: number; calls: number } | null;
    last_24h: { p50: number; p95: number; p99: number; calls: number } | null;
  };
}

/**
 * What a reader who is not an admin may see of the statistics: of `callers_current_minute`, only its
 * own calls (other callers' names only to admins). `issuer` undefined (authentication off): all.
 * The one rule for `GET /api/v1/statistics` and the dashboard's statistics.
 */
export function onlyOwnCallers<T extends Pick<ApiStatistics, "callers_current_minute">>(
  apis: readonly T[],
  issuer: string | undefined,
  admin: boolean,
): void {
  if (issuer === undefined || admin) return;
  for (const api of apis) {
    api.callers_current_minute = api.callers_current_minute.filter((c) => c.caller === issuer);
  }
}

/** How long a statistics read waits for its shards before answering 503 (a hung object). */
const READ_TIMEOUT_MS = 10_000;

/** At most this many callers are listed per API (busiest first). */
const MAX_CALLERS = 100;

/**
 * Reads all `shards` shards of `api` at time `now` (epoch ms) and sums them: every series, status
 * count, latency sum and caller count is a plain sum over shards, since each call is in exactly one.
 */
export async function readApiStatistics(
  env: Env,
  api: string,
  shards: number,
  now: number,
  timeoutMs = READ_TIMEOUT_MS,
): Promise<ApiStatistics> {
  let snapshots: ShardSnapshot[];
  try {
    snapshots = await withTimeout(
      Promise.all(Array.from({ length: shards }, (_, i) => shard(env, api, i).read(now))),
      timeoutMs,
      "statistics shards",
    );
  } catch (cause) {
    throw new ApiError("statistics_unavailable", `statistics of '${api}' could not be read`, {
      cause,
      headers: { "retry-after": "1" },
    });
  }
  const sum = (pick: (s: ShardSnapshot) => number[]) =>
    snapshots.map(pick).reduce((acc, series) => acc.map((v, i) => v + (series[i] ?? 0)));
  const status: ApiStatistics["status"] = { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 };
  const callers = new Map<string, number>();
  let calls = 0;
  let latency = 0;
  for (const s of snapshots) {
    for (const [cls, n] of Object.entries(s.status)) {
      if (Object.hasOwn(status, cls)) status[cls as keyof typeof status] += n;
      calls += n;
    }
    latency += s.latencyMsSum;
    for (const [caller, n] of Object.entries(s.callers)) callers.set(caller, (callers.get(caller) ?? 0) + n);
  }
  const perMinute = sum((s) => s.perMinute);
  const minuteClass = (cls: string) =>
    perMinute.map((_, i) => snapshots.reduce((n, s) => n + (s.perMinuteStatus?.[cls]?.[i] ?? 0), 0));
  return {
    api,
    "number of calls in current minute": perMinute.at(-1) ?? 0,
    per_second: sum((s) => s.perSecond),
    per_minute: perMinute,
    per_hour: sum((s) => s.perHour),
    status,
    avg_latency_ms: calls === 0 ? null : Math.round((latency / calls) * 100) / 100,
    callers_current_minute: [...callers]
      .map(([caller, n]) => ({ caller, calls: n }))
      .sort((a, b) => b.calls - a.calls || a.caller.localeCompare(b.caller))
      .slice(0, MAX_CALLERS),
    per_minute_errors: { "4xx": minuteClass("4xx"), "5xx": minuteClass("5xx") },
    latency_ms: {
      last_hour: percentiles(addHistograms(snapshots.map((s) => s.latencyLastHour ?? []))),
      last_24h: percentiles(addHistograms(snapshots.map((s) => s.latencyLastDay ?? []))),
    },
  };
}

/** Statistics of every API in `apis`, read at `now`, as `GET /api/v1/statistics` lists them. */
export async function readAllStatistics(
  env: Env,
  apis: readonly string[],
  shards: number,
  now: number,
): Promise<{ as_of: string; apis: ApiStatistics[] }> {
  const all = await Promise.all(apis.map((api) => readApiStatistics(env, api, shards, now)));
  return { as_of: new Date(now).toISOString(), apis: all };
}

/** The APIs statistics are kept for: the route table's (`routeApis`) and `UNMATCHED_API`. */
export function statisticsApis(routeApis: readonly string[]): string[] {
  return [...new Set([...routeApis, UNMATCHED_API])];
}

/** One window of a version's traffic, as `GET /api/v1/models/:id/traffic` shows it. */
export interface TrafficWindow {
  requests: number;
  errors: { "4xx": number; "5xx": number };
  latency_ms: { mean: number | null; p50: number; p95: number; p99: number } | null;
}

/**
 * The requests model version `id`@`version` scored (`versionApi` series), over the last 60 UTC
 * minutes and the last 24 UTC hours: counts, 4xx/5xx, latency percentiles (and the 24 h mean).
 */
export async function readVersionTraffic(
  env: Env,
  id: string,
  version: string,
  shards: number,
  now: number,
): Promise<{ last_hour: TrafficWindow; last_24h: TrafficWindow }> {
  const s = await readApiStatistics(env, versionApi(id, version), shards, now);
  const total = (series: readonly number[]) => series.reduce((a, b) => a + b, 0);
  const quantiles = (q: { p50: number; p95: number; p99: number } | null, mean: number | null) =>
    q === null ? null : { mean, p50: q.p50, p95: q.p95, p99: q.p99 };
  return {
    last_hour: {
      requests: total(s.per_minute),
      errors: { "4xx": total(s.per_minute_errors["4xx"]), "5xx": total(s.per_minute_errors["5xx"]) },
      latency_ms: quantiles(s.latency_ms.last_hour, null),
    },
    last_24h: {
      requests: total(s.per_hour),
      errors: { "4xx": s.status["4xx"], "5xx": s.status["5xx"] },
      latency_ms: quantiles(s.latency_ms.last_24h, s.avg_latency_ms),
    },
  };
}
