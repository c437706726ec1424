/**
 * Live profiles: every scored input adds to its model version's histograms of the current UTC hour
 * (src/drift/profile.ts), kept in the sharded `DriftShard` objects like the statistics are kept in
 * `StatsShard`: collected in the request, batched per isolate for 50 ms and sent in `ctx.waitUntil`
 * (never on the answer's path), one RPC per batch to a random shard of the model, retried with the
 * same batch id (counted once). Readers sum the shards (src/drift/report.ts).
 */
import type { DriftShard } from "../../durable-objects/drift-shard";
import { deliverBatch, IsolateBatches } from "../batch";
import type { Config } from "../config";
import type { ModelRef } from "../contracts/manifest";
import { addSignals, observeScores, type Signals } from "./profile";

/** One hour, in ms: the live profiles' bucket. */
export const HOUR_MS = 3_600_000;
/** Hours of live profiles kept (and the most `GET /api/v1/models/:id/drift?hours=` reads). */
export const DRIFT_KEEP_HOURS = 48;

/** A version's live profile of one hour (`hour`: its start, epoch ms). */
export interface HourProfile {
  version: string;
  hour: number;
  /** Inputs scored. */
  count: number;
  signals: Signals;
}

/** Profiles sent together; the id (unique per batch, reused on retries) makes a batch count once. */
export interface DriftBatch {
  id: string;
  profiles: HourProfile[];
}

/** What one scoring call observed: the scores, and the input signals the scoring core collected. */
export interface ScoredInputs {
  model: ModelRef;
  labels: readonly string[];
  scores: readonly ArrayLike<number>[];
  /** The inputs' signals (length and buckets, or pixels and brightness), summed over the batch. */
  inputSignals?: Signals | undefined;
}

const ATTEMPTS = 3;

/** The shard `index` of model `id`'s live profiles. */
export function driftShard(env: Env, id: string, index: number): DurableObjectStub<DriftShard> {
  return env.DRIFT_SHARD.get(env.DRIFT_SHARD.idFromName(`${id}:${index}`));
}

/** Forgets model `id`'s live profiles on every shard (its deletion; best effort, like the shadow sums'). */
export async function clearLiveProfiles(env: Env, id: string, shards: number): Promise<void> {
  await Promise.allSettled(Array.from({ length: shards }, (_, i) => driftShard(env, id, i).clear()));
}

const batches = new IsolateBatches<HourProfile>(50, 500);

/**
 * Adds one scoring call's inputs to the live profile of its model version and hour. The one hook of
 * every scoring path (the request level, `src/predictions/classify.ts`, and the queue consumer,
 * `src/predictions/run.ts`). Costs the score histograms of the batch and an array push; the RPC
 * happens in `ctx.waitUntil`, at most one per model per 50 ms per isolate. Does nothing when
 * `DRIFT=off` or the core collected no input signals (tensor models). `onError` hears of a batch
 * that could not be delivered (after retries).
 */
export function recordLiveProfile(
  ctx: Pick<ExecutionContext, "waitUntil">,
  env: Env,
  config: Pick<Config, "DRIFT" | "STATS_SHARDS">,
  scored: ScoredInputs,
  onError: (error: unknown, inputs: number) => void,
  now = Date.now(),
): void {
  if (config.DRIFT === "off" || scored.inputSignals === undefined) return;
  const signals = addSignals({}, scored.inputSignals);
  observeScores(signals, scored.labels, scored.scores);
  const profile: HourProfile = {
    version: scored.model.version,
    hour: Math.floor(now / HOUR_MS) * HOUR_MS,
    count: scored.scores.length,
    signals,
  };
  const id = scored.model.id;
  batches.add(ctx, id, [profile], (profiles) => {
    const merged = mergeProfiles(profiles);
    return deliver(env, id, config.STATS_SHARDS, { id: crypto.randomUUID(), profiles: merged }).catch(
      (error: unknown) =>
        onError(
          error,
          merged.reduce((n, p) => n + p.count, 0),
        ),
    );
  });
}

/** Sums profiles of the same version and hour. */
export function mergeProfiles(profiles: readonly HourProfile[]): HourProfile[] {
  const out = new Map<string, HourProfile>();
  for (const p of profiles) {
    const key = `${p.version}|${p.hour}`;
    const into = out.get(key);
    if (!into)
      out.set(key, { version: p.version, hour: p.hour, count: p.count, signals: addSignals({}, p.signals) });
    else {
      into.count += p.count;
      addSignals(into.signals, p.signals);
    }
  }
  return [...out.values()];
}

async function deliver(env: Env, id: string, shards: number, batch: DriftBatch): Promise<void> {
  const stub = driftShard(env, id, Math.floor(Math.random() * shards));
  await deliverBatch(() => stub.record(batch), ATTEMPTS);
}
