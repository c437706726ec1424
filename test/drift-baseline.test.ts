/**
 * Baseline drift references from live traffic (docs/drift.md "Baseline reference"), with the real
 * `moderation-image` model (no training profile: imported from nsfwjs) and real images: synthetic
 * RGB images (src/image/synthetic.ts) scored through the Worker (Open Inference Protocol, raw
 * pixels, 8 per request). Each population is scored once, into the current hour of its own
 * collection version; its live profile, read back from the `DriftShard` objects, is then placed in
 * chosen past hours of the version under test with `DriftShard.record` (the shards take the hour
 * with the profile), which is how these tests put traffic in complete hours without waiting for them.
 * `DRIFT_BASELINE_MIN` is 300 here (vars), 1,000 by default.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { r2Keys } from "../src/contracts/r2-keys";
import { baselineProfile, freezeBaseline } from "../src/drift/baseline";
import { driftShard, HOUR_MS, type HourProfile, mergeProfiles } from "../src/drift/live";
import { PSI_WARNING, type ReferenceProfile } from "../src/drift/profile";
import type { DriftReport } from "../src/drift/report";
import type { DecodedImage } from "../src/image/pixels";
import { syntheticImage } from "../src/image/synthetic";
import { api, fixtureBytes, postJson, problem, seedShippedModel } from "./helpers";
import { waitFor } from "./registry-helpers";

const MODEL = "moderation-image";
const MIN = 300;
const vars = { DRIFT_BASELINE_MIN: String(MIN) };
const SEED = 31;
const SHARDS = 4;
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** The populations: `base` and `same` from one generator, `dark` much darker and smaller. */
const POPULATIONS = {
  base: { from: 0, n: 320, side: 64, gain: 1 },
  same: { from: 320, n: 240, side: 64, gain: 1 },
  dark: { from: 560, n: 104, side: 24, gain: 0.3 },
} as const;
type Population = keyof typeof POPULATIONS;

function image(index: number, side: number, gain: number): DecodedImage {
  const img = syntheticImage(SEED, index, side, side);
  if (gain !== 1)
    for (let i = 0; i < img.data.length; i++) img.data[i] = Math.round((img.data[i] as number) * gain);
  return img;
}

/** Puts a shipped model's bytes and manifest in R2 as `version` (with `profile` when given). */
async function seedVersion(version: string, profile?: ReferenceProfile): Promise<void> {
  const manifest = JSON.parse(decode(await fixtureBytes(`models/${MODEL}/manifest.json`))) as object;
  await env.MODELS.put(r2Keys.model(MODEL, version), await fixtureBytes(`models/${MODEL}/model.onnx`));
  await env.MODELS.put(r2Keys.manifest(MODEL, version), JSON.stringify({ ...manifest, version }));
  if (profile)
    await env.MODELS.put(
      r2Keys.profile(MODEL, version),
      JSON.stringify({ ...profile, model: { id: MODEL, version } }),
    );
}

/** The version's live profile of `hour`, summed over the shards. */
async function liveHour(version: string, hour: number): Promise<HourProfile | undefined> {
  const parts = await Promise.all(
    Array.from({ length: SHARDS }, (_, i) => driftShard(env, MODEL, i).read(version, hour, hour)),
  );
  return mergeProfiles(parts.flat())[0];
}

/** Scores a population with the real model (8 raw-pixel images per OIP request); returns its live profile. */
async function collect(name: Population): Promise<HourProfile> {
  const { from, n, side, gain } = POPULATIONS[name];
  const version = `collect-${name}`;
  await seedVersion(version);
  for (let i = 0; i < n; i += 8) {
    const batch = Array.from({ length: Math.min(8, n - i) }, (_, k) => image(from + i + k, side, gain));
    const data: number[] = [];
    for (const img of batch) for (const v of img.data) data.push(v);
    const res = await postJson(`/v2/models/${MODEL}/versions/${version}/infer`, {
      inputs: [{ name: "image", datatype: "UINT8", shape: [batch.length, side, side, 3], data }],
    });
    if (res.status !== 200) throw new Error(`infer: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  }
  // Collected in the current hour (the hour may turn while it runs: its profile may span two).
  return waitFor(async () => {
    const now = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const parts = [await liveHour(version, now - HOUR_MS), await liveHour(version, now)].filter(
      (p): p is HourProfile => p !== undefined,
    );
    const [sum] = mergeProfiles(parts.map((p) => ({ ...p, hour: 0 })));
    return sum && sum.count === n ? sum : undefined;
  });
}

/** Places `profile` in `hour` of `version` (one delivered batch, as the Worker sends them). */
async function place(version: string, hour: number, profile: HourProfile): Promise<void> {
  const fresh = await driftShard(env, MODEL, Math.floor(Math.random() * SHARDS)).record({
    id: crypto.randomUUID(),
    profiles: [{ ...profile, version, hour }],
  });
  expect(fresh).toBe(true);
}

async function drift(
  query: string,
  options: { vars: Record<string, string> } = { vars },
): Promise<DriftReport> {
  const res = await api(`/api/v1/models/${MODEL}/drift?${query}`, {}, options);
  if (res.status !== 200) throw new Error(`drift: ${res.status} ${await res.text()}`);
  return (await res.json()) as DriftReport;
}

const putReference = (
  body: unknown,
  headers: Record<string, string> = {},
  v: Record<string, unknown> = vars,
) =>
  api(
    `/api/v1/models/${MODEL}/drift/reference`,
    {
      method: "PUT",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    },
    { vars: v },
  );

const iso = (t: number) => new Date(t).toISOString();
const hourNow = () => Math.floor(Date.now() / HOUR_MS) * HOUR_MS;

let shipped: string;
const live = {} as Record<Population, HourProfile>;

beforeAll(async () => {
  shipped = (await seedShippedModel(MODEL)).version;
  // The shipped model has no reference profile (nothing to seed): its training data is not ours.
  expect(await env.MODELS.head(r2Keys.profile(MODEL, shipped))).toBeNull();
  for (const name of Object.keys(POPULATIONS) as Population[]) live[name] = await collect(name);
}, 240_000);

describe("a baseline from live traffic (moderation-image, real images)", () => {
  it("pending until a complete hour has DRIFT_BASELINE_MIN inputs; then the first such hour is the reference, and later hours get PSI against it", async () => {
    const h = hourNow();
    // 104 dark images 5 hours ago: fewer than MIN, so no baseline yet, and the report says why.
    await place(shipped, h - 5 * HOUR_MS, live.dark);
    const pending = await drift("hours=8");
    expect(pending.reference).toBeNull();
    expect(pending.drift).toBe("unknown");
    expect(pending.reference_pending).toMatchObject({
      min_count: MIN,
      best_hour: { start: iso(h - 5 * HOUR_MS), count: POPULATIONS.dark.n },
    });
    expect(pending.reference_pending?.detail).toMatch(/first complete UTC hour with at least 300 inputs/);
    expect(pending.hours.every((x) => x.psi === null)).toBe(true);
    expect(await env.MODELS.head(r2Keys.profile(MODEL, shipped))).toBeNull();

    // 320 images at h−4 (the baseline), the dark ones again at h−3, 240 more of the same kind at h−2.
    await place(shipped, h - 4 * HOUR_MS, live.base);
    await place(shipped, h - 3 * HOUR_MS, live.dark);
    await place(shipped, h - 2 * HOUR_MS, live.same);
    // With the default minimum (1,000) none of these hours is enough: still pending.
    const stillPending = await drift("hours=8", { vars: {} });
    expect(stillPending.reference).toBeNull();
    expect(stillPending.reference_pending).toMatchObject({
      min_count: 1000,
      best_hour: { count: POPULATIONS.base.n },
    });

    const report = await drift("hours=8");
    expect(report.reference_pending).toBeNull();
    expect(report.reference).toMatchObject({
      origin: "baseline",
      count: POPULATIONS.base.n,
      window: { start: iso(h - 4 * HOUR_MS), end: iso(h - 3 * HOUR_MS) },
    });
    const stored = (await (await env.MODELS.get(r2Keys.profile(MODEL, shipped)))?.json()) as ReferenceProfile;
    expect(stored).toMatchObject({ origin: "baseline", kind: "image", count: POPULATIONS.base.n });
    expect(Object.keys(stored.signals).sort()).toEqual(
      [
        "brightness",
        "pixels",
        "score:Drawing",
        "score:Hentai",
        "score:Neutral",
        "score:Porn",
        "score:Sexy",
      ].sort(),
    );
    const bytes = JSON.stringify(stored).length;
    console.log(`baseline profile of moderation-image: ${bytes} bytes`);
    expect(bytes).toBeLessThan(2048);

    const at = (t: number) => report.hours.find((x) => x.start === iso(t));
    console.log(
      `baseline PSI: dark ${JSON.stringify(at(h - 3 * HOUR_MS)?.psi)}; same kind ${JSON.stringify(at(h - 2 * HOUR_MS)?.psi)}`,
    );
    expect(at(h - 4 * HOUR_MS)?.max_psi).toBe(0);
    expect(at(h - 5 * HOUR_MS)?.status).toBe("warning");
    expect(at(h - 3 * HOUR_MS)?.status).toBe("warning");
    expect(at(h - 3 * HOUR_MS)?.max_psi as number).toBeGreaterThan(PSI_WARNING);
    expect(at(h - 3 * HOUR_MS)?.psi?.brightness as number).toBeGreaterThan(PSI_WARNING);
    expect(at(h - 2 * HOUR_MS)?.status).toBe("ok");
    expect(at(h - 2 * HOUR_MS)?.max_psi as number).toBeLessThan(PSI_WARNING);

    // The model's metadata names the reference's origin.
    const detail = (await (await api(`/api/v1/models/${MODEL}`, {}, { vars })).json()) as {
      drift_reference?: string;
    };
    expect(detail.drift_reference).toBe("baseline");
  });

  it("the freeze happens once under concurrent reads, and never replaces a training profile", async () => {
    const h = hourNow();
    await seedVersion("conc");
    await place("conc", h - 3 * HOUR_MS, live.base);
    const reports = await Promise.all(Array.from({ length: 8 }, () => drift("version=conc&hours=4")));
    const refs = new Set(reports.map((r) => JSON.stringify(r.reference)));
    expect(refs.size).toBe(1);
    expect(reports[0]?.reference?.origin).toBe("baseline");
    const etag = (await env.MODELS.head(r2Keys.profile(MODEL, "conc")))?.etag;
    await drift("version=conc&hours=4");
    expect((await env.MODELS.head(r2Keys.profile(MODEL, "conc")))?.etag).toBe(etag);

    // The store itself: of 8 concurrent freezes (each with its own created_at) exactly one is stored,
    // and every caller gets that one back.
    await seedVersion("race");
    const profiles = Array.from({ length: 8 }, (_, i) =>
      baselineProfile({
        model: { id: MODEL, version: "race" },
        kind: "image",
        labels: ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"],
        hours: [live.base],
        from: h - 3 * HOUR_MS,
        to: h - 2 * HOUR_MS,
        how: "automatic",
        now: Date.now() + i,
      }),
    );
    const results = await Promise.all(profiles.map((p) => freezeBaseline(env.MODELS, p)));
    expect(results.filter((r) => r.stored)).toHaveLength(1);
    const kept = (await (await env.MODELS.get(r2Keys.profile(MODEL, "race")))?.json()) as ReferenceProfile;
    for (const r of results) expect(r.reference?.created_at).toBe(kept.created_at);

    // A version with a training (uploaded) profile: a freeze that read "no reference" before it was
    // stored still leaves it, the drift report keeps it, and the admin route refuses to replace it.
    const training: ReferenceProfile = {
      ...profiles[0],
      source: "train split of a sample (test)",
      origin: undefined,
      window: undefined,
    } as ReferenceProfile;
    delete training.origin;
    delete training.window;
    await seedVersion("trained", training);
    await place("trained", h - 3 * HOUR_MS, live.dark);
    const stale = await freezeBaseline(env.MODELS, {
      ...profiles[1],
      model: { id: MODEL, version: "trained" },
    } as ReferenceProfile);
    expect(stale.stored).toBe(false);
    expect(stale.reference?.source).toBe("train split of a sample (test)");
    const report = await drift("version=trained&hours=4");
    expect(report.reference).toMatchObject({ origin: "training", source: "train split of a sample (test)" });
    expect(report.hours.find((x) => x.start === iso(h - 3 * HOUR_MS))?.status).toBe("warning");
    const refused = await putReference({
      version: "trained",
      from: iso(h - 3 * HOUR_MS),
      to: iso(h - 2 * HOUR_MS),
    });
    expect(refused.status).toBe(409);
    const p = await problem(refused);
    expect(p.code).toBe("reference_is_training");
    expect(p.detail).toMatch(/new version without a profile/);
    expect(
      ((await (await env.MODELS.get(r2Keys.profile(MODEL, "trained")))?.json()) as ReferenceProfile).source,
    ).toBe("train split of a sample (test)");
  });

  it("PUT …/drift/reference sets and resets a baseline from chosen complete hours; its refusals", async () => {
    const h = hourNow();
    await seedVersion("admin");
    await place("admin", h - 6 * HOUR_MS, live.dark);
    await place("admin", h - 5 * HOUR_MS, live.same);
    await place("admin", h - 2 * HOUR_MS, live.base);
    const window = (from: number, to: number, extra = {}) => ({
      version: "admin",
      from: iso(h - from * HOUR_MS),
      to: iso(h - to * HOUR_MS),
      ...extra,
    });

    // Two hours with 104 + 240 inputs: enough together.
    const set = await putReference(window(6, 4));
    expect(set.status, await set.clone().text()).toBe(200);
    const body = (await set.json()) as { reference: Record<string, unknown>; bytes: number };
    expect(body.reference).toMatchObject({
      origin: "baseline",
      count: POPULATIONS.dark.n + POPULATIONS.same.n,
      window: { start: iso(h - 6 * HOUR_MS), end: iso(h - 4 * HOUR_MS) },
    });
    expect(body.reference.source).toMatch(/set by an admin/);
    expect(body.bytes).toBeLessThan(2048);
    let report = await drift("version=admin&hours=8");
    expect(report.reference?.window).toEqual({ start: iso(h - 6 * HOUR_MS), end: iso(h - 4 * HOUR_MS) });

    // A reset to the later hour of base images: that hour's PSI is now 0.
    const reset = await putReference(window(2, 1));
    expect(reset.status).toBe(200);
    report = await drift("version=admin&hours=8");
    expect(report.reference).toMatchObject({ origin: "baseline", count: POPULATIONS.base.n });
    expect(report.hours.find((x) => x.start === iso(h - 2 * HOUR_MS))?.max_psi).toBe(0);
    expect(report.hours.find((x) => x.start === iso(h - 6 * HOUR_MS))?.status).toBe("warning");

    // Too few inputs: 422 with the count and the minimum.
    const few = await putReference(window(6, 5));
    expect(few.status).toBe(422);
    expect(await problem(few)).toMatchObject({ code: "drift_window_too_small", count: 104, min_count: MIN });
    const empty = await putReference(window(4, 3));
    expect((await problem(empty)).code).toBe("drift_window_too_small");

    // Bad windows and bodies: 400 naming the field.
    const cases: [unknown, RegExp][] = [
      [window(3, 3), /to must be after from/],
      [{ ...window(3, 2), from: iso(h - 3 * HOUR_MS + 60_000) }, /from must be the start of a UTC hour/],
      [window(1, -1), /only complete hours/],
      [window(0, -1), /only complete hours/],
      [window(49, 47), /kept 48 h/],
      [{ version: "admin", from: "yesterday", to: iso(h) }, /ISO 8601/],
      [{ version: "admin", from: iso(h - HOUR_MS) }, /to/],
      [{ ...window(2, 1), force: true }, /force|unrecognized/i],
    ];
    for (const [b, detail] of cases) {
      const res = await putReference(b);
      expect(res.status, JSON.stringify(b)).toBe(400);
      const p = await problem(res);
      expect(p.code).toBe("invalid_request");
      expect(JSON.stringify(p), JSON.stringify(b)).toMatch(detail);
    }
    expect((await problem(await putReference("{"))).code).toBe("invalid_json");
    expect((await problem(await putReference({ ...window(2, 1), version: "9" }))).code).toBe(
      "model_version_not_found",
    );

    // Admin only (ASAP_POLICY api `models_admin`): a reader gets 403 and nothing changes.
    const reader = JSON.stringify({
      issuers: { "edge-inference-tests": ["models:GET", "predict"] },
      default: [],
    });
    const before = (await env.MODELS.head(r2Keys.profile(MODEL, "admin")))?.etag;
    const forbidden = await putReference(window(6, 4), {}, { ...vars, ASAP_POLICY: reader });
    expect(forbidden.status).toBe(403);
    expect((await problem(forbidden)).code).toBe("forbidden");
    expect((await env.MODELS.head(r2Keys.profile(MODEL, "admin")))?.etag).toBe(before);
  });
});
