/**
 * Shadow versions (docs/rollout.md): after the answer is sent, a sampled request is also scored by
 * each of the model's shadow versions on the same inputs, and the comparison with the version that
 * answered is added to the model's `ShadowShard` sums. Everything here runs in `ctx.waitUntil`: it
 * never delays or changes the answer, and it is not a request (no admission, quota or metering).
 * Text and image models only: tensor models have no labelled scores to compare.
 */

import { IsolateBatches } from "../batch";
import type { Config } from "../config";
import type { Shadow } from "../contracts/rollout";
import { type Classification, type ImageSource, scoreImageInputs, scoreTextInputs } from "../inference/score";
import type { Logger } from "../log";
import { compareScores, failedRun, type ShadowObservation, sumObservations } from "../rollout/comparison";
import { recordShadowSums } from "../rollout/shadow-stats";
import { activePointerOrNull } from "../storage/model-store";

/**
 * Observations of one model collected for 50 ms in this isolate are summed per pair and sent in one
 * RPC (as the statistics are: `IsolateBatches`), so a busy model costs a shard ~20 writes a second
 * per isolate, not one per shadow run.
 */
const batches = new IsolateBatches<ShadowObservation>(50, 1000);

/** The inputs a request was scored on. */
export type ShadowInputs = { texts: readonly string[] } | { images: readonly ImageSource[] };

/** The shadows of the pointer that score this request: sampled, and never the serving version. */
export function sampledShadows(
  shadows: readonly Shadow[] | undefined,
  serving: string,
  random: () => number = Math.random,
): Shadow[] {
  return (shadows ?? []).filter((s) => s.version !== serving && random() < s.sample_rate);
}

/**
 * Schedules the shadow runs of a request that `served` answered (see the module comment). The
 * model's pointer is read from this isolate's cache (the request just resolved it).
 */
export function shadowAfter(
  env: Env,
  ctx: Pick<ExecutionContext, "waitUntil">,
  config: Config,
  served: Classification,
  inputs: ShadowInputs,
  logger: Logger,
): void {
  const failed = (error: unknown) =>
    logger.log("warn", "shadow_failed", {
      model: served.model.id,
      error: error instanceof Error ? error.message.slice(0, 300) : String(error),
    });
  ctx.waitUntil(
    runShadows(env, config, served, inputs).then((observations) => {
      const { id } = served.model;
      if (observations.length === 0) return;
      batches.add(ctx, id, observations, (batch) =>
        recordShadowSums(env, id, config.STATS_SHARDS, sumObservations(batch)).catch(failed),
      );
    }, failed),
  );
}

async function runShadows(
  env: Env,
  config: Config,
  served: Classification,
  inputs: ShadowInputs,
): Promise<ShadowObservation[]> {
  const { id, version: serving } = served.model;
  const pointer = await activePointerOrNull(env.MODELS, id, config.ACTIVE_POINTER_TTL_MS);
  const shadows = sampledShadows(pointer?.shadows, serving);
  if (shadows.length === 0) return [];
  // Yield to the event loop first: the model runs below are synchronous CPU work, and queued as
  // microtasks they would run before the answer is written out.
  await new Promise((resolve) => setTimeout(resolve, 0));
  const observations: ShadowObservation[] = [];
  for (const { version } of shadows) {
    const started = Date.now();
    try {
      const choice = { model: id, version };
      const shadowed =
        "texts" in inputs
          ? await scoreTextInputs(env, config, choice, inputs.texts)
          : await scoreImageInputs(env, config, choice, inputs.images);
      observations.push(compareScores(version, serving, served, shadowed, Date.now() - started));
    } catch {
      observations.push(failedRun(version, serving));
    }
  }
  return observations;
}
