/**
 * Predict with the real shipped models (models/<id>/), real local R2 and onnxruntime-web in workerd.
 * ORT-using cases live in this one file: each file that loads ORT costs ~15 s of startup.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { r2Keys } from "../src/contracts/r2-keys";
import { sha256Hex } from "../src/hash";
import { sessionCache } from "../src/inference/engine";
import { createSession } from "../src/inference/ort";
import { SessionCache } from "../src/inference/session-cache";
import {
  EVAL_TEMPLATES,
  EVAL_VOCABULARY,
  FAIRNESS_TARGETS,
  type FairnessReport,
  fairnessReport,
  HELD_OUT_TERMS,
  IDENTITY_TERMS,
  identityEvalSet,
  TEMPLATE_FAMILIES,
} from "../src/training/fairness";
import {
  AUGMENT_TEMPLATES,
  AUGMENT_VOCABULARY,
  augmentTerms,
  identityAugmentation,
} from "../src/training/fairness-augment";
import { accuracy, precisionRecallF1Macro, rocAuc } from "../src/training/metrics";
import probes from "./fixtures/toxicity-probes.json";
import { api, fixtureBytes, postJson, problem, seedShippedModel } from "./helpers";

interface Reference {
  texts: string[];
  scores: number[][];
}
interface LabelScore {
  sentiment_type: string;
  sentiment_score: number;
}

const MODELS = ["toxicity", "sentiment", "spam"] as const;
// Regression bars: the shipped models' test-split figures, rounded down. Issue #16's targets (toxicity
// 0.960, sentiment 0.792, spam macro-F1 0.985) are not all met (sentiment's is); the cards give the figures.
// Toxicity version 5 (issue #28's weight cap): 0.9558, issue #28's floor 0.955 (version 4: 0.9580).
const BAR_TOXICITY_AUC = 0.955;
const BAR_SENTIMENT_ACCURACY = 0.794;
const BAR_SPAM_F1 = 0.97;
/** Every shipped text model: the default (`linear`) variants and their `mlp` siblings. */
const ALL_TEXT_MODELS = [...MODELS, ...MODELS.map((id) => `${id}-mlp`)];
const versions: Record<string, string> = {};

async function manifestOf(
  id: string,
): Promise<{ labels: string[]; version: string; sha256: string } & Record<string, unknown>> {
  return JSON.parse(new TextDecoder().decode(await fixtureBytes(`models/${id}/manifest.json`)));
}

beforeAll(async () => {
  for (const id of ALL_TEXT_MODELS) versions[id] = (await seedShippedModel(id)).version;
});

describe("seed-compatible predict", () => {
  it("the seed's curl body works verbatim and returns all six toxicity labels", async () => {
    const res = await postJson(
      "/api/v1/predict",
      '{"request_id": 1234, "text": "hello", "network": "mlp", "language": "en-US", "encoding_type": "UTF-8"}',
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as {
      request_id: number;
      sentiment: LabelScore[];
      language: string;
      model: unknown;
    };
    expect(body.request_id).toBe(1234);
    expect(body.language).toBe("en-US");
    // The seed body asks for `"network": "mlp"`: the toxicity model's mlp variant serves it.
    expect(body.model).toEqual({ id: "toxicity-mlp", version: versions["toxicity-mlp"] });
    expect(body.sentiment.map((s) => s.sentiment_type)).toEqual([
      "toxic",
      "severe_toxic",
      "obscene",
      "threat",
      "insult",
      "identity_hate",
    ]);
    for (const s of body.sentiment) {
      expect(s.sentiment_score).toBeGreaterThanOrEqual(0);
      expect(s.sentiment_score).toBeLessThanOrEqual(1);
    }
    expect(body.sentiment[0]?.sentiment_score).toBeLessThan(0.5);
  });

  it("readiness is 200 once the default model is in R2", async () => {
    const res = await api("/api/v1/health/ready");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ready", model: { id: "toxicity" } });
  });
});

describe("shipped models match the trainer's reference scores", () => {
  for (const id of ALL_TEXT_MODELS) {
    it(`${id}: ORT in the Worker equals the trainer's int8 forward pass`, async () => {
      const ref = JSON.parse(
        new TextDecoder().decode(await fixtureBytes(`models/${id}/reference.json`)),
      ) as Reference;
      const manifest = await manifestOf(id);
      // The API refuses blank texts (400); the trainer's reference also covers "" for the parity test.
      const cases = ref.texts
        .map((text, i) => ({ text, scores: ref.scores[i] as number[] }))
        .filter((c) => c.text.trim());
      const res = await postJson("/api/v1/predict", { model: id, texts: cases.map((c) => c.text) });
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        results: { sentiment: LabelScore[] }[];
        model: { version: string };
      };
      expect(body.model.version).toBe(manifest.version);
      expect(body.results).toHaveLength(cases.length);
      body.results.forEach((r, i) => {
        expect(r.sentiment.map((s) => s.sentiment_type)).toEqual(manifest.labels);
        r.sentiment.forEach((s, j) => {
          expect(s.sentiment_score).toBeCloseTo(cases[i]?.scores[j] as number, 4);
        });
      });
    });
  }

  it("obvious cases go the obvious way", async () => {
    const top = async (model: string, text: string) => {
      const res = await postJson("/api/v1/predict", { model, text, n_top: 1 });
      const body = (await res.json()) as { sentiment: LabelScore[] };
      expect(body.sentiment).toHaveLength(1);
      return body.sentiment[0] as LabelScore;
    };
    expect(
      (await top("spam", "WINNER!! You have won a free prize. Call 09061701461 now to claim")).sentiment_type,
    ).toBe("spam");
    expect((await top("spam", "ok see you at lunch tomorrow")).sentiment_type).toBe("ham");
    expect((await top("sentiment", "I love this, what a great day :)")).sentiment_type).toBe("positive");
    expect((await top("sentiment", "this is awful, I hate it, so sad")).sentiment_type).toBe("negative");
  });
});

describe("toxicity probes: calibrated to the deployment prior (shipped default model)", () => {
  it("20 benign texts score ≤ 0.10 on every label and are not flagged; 20 toxic texts ≥ 0.80 on toxic and flagged", async () => {
    const score = async (texts: string[]) => {
      const res = await postJson("/api/v1/predict", { texts });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { results: { sentiment: LabelScore[]; flagged: string[] }[] };
      return body.results;
    };
    expect(probes.benign).toHaveLength(20);
    expect(probes.toxic).toHaveLength(20);
    expect(probes.benign).toContain("hello");
    const benign = await score(probes.benign);
    for (const r of benign) expect(r.sentiment).toHaveLength(6);
    const tooHigh = benign.flatMap((r, i) => {
      const text = probes.benign[i] as string;
      return r.sentiment
        .filter((s) => s.sentiment_score > 0.1)
        .map((s) => `${text} → ${s.sentiment_type} ${s.sentiment_score.toFixed(3)}`);
    });
    expect(tooHigh).toEqual([]);
    for (const r of benign) expect(r.flagged).toEqual([]);
    const toxic = await score(probes.toxic);
    const tooLow = toxic.flatMap((r, i) => {
      const s = r.sentiment.find((x) => x.sentiment_type === "toxic")?.sentiment_score ?? 0;
      return s >= 0.8 ? [] : [`${probes.toxic[i]} → toxic ${s.toFixed(3)}`];
    });
    expect(tooLow).toEqual([]);
    for (const r of toxic) expect(r.flagged).toContain("toxic");
  });
});

describe("network variants and flagged labels", () => {
  it("no network → the best (linear) model; linear and mlp select the variants", async () => {
    const modelOf = async (body: Record<string, unknown>) => {
      const res = await postJson("/api/v1/predict", { text: "you are a stupid idiot", ...body });
      expect(res.status).toBe(200);
      return ((await res.json()) as { model: { id: string } }).model.id;
    };
    expect(await modelOf({})).toBe("toxicity");
    expect(await modelOf({ network: "linear" })).toBe("toxicity");
    expect(await modelOf({ network: "mlp" })).toBe("toxicity-mlp");
    expect(await modelOf({ model: "sentiment", network: "mlp" })).toBe("sentiment-mlp");
    expect(await modelOf({ model: "spam", network: "linear" })).toBe("spam");
  });

  it("an unknown network → 400 unknown_network naming the available ones", async () => {
    const res = await postJson("/api/v1/predict", { text: "hello", network: "transformer" });
    expect(res.status).toBe(400);
    const p = await problem(res);
    expect(p.code).toBe("unknown_network");
    expect(p.available).toEqual(["linear", "mlp"]);
    expect(p.detail).toMatch(/linear, mlp/);
    const queued = await postJson("/api/v1/predictions", { text: "hello", network: "transformer" });
    expect(queued.status).toBe(400);
    expect((await problem(queued)).code).toBe("unknown_network");
  });

  it("flagged lists the labels at or over the manifest's thresholds (batch and single, whatever n_top)", async () => {
    const manifest = await manifestOf("toxicity");
    const thresholds = manifest.thresholds as Record<string, number>;
    expect(Object.keys(thresholds).sort()).toEqual([...manifest.labels].sort());
    const texts = ["You are a stupid idiot.", "thank you for your help", "I will kill you, you moron"];
    const res = await postJson("/api/v1/predict", { texts });
    const body = (await res.json()) as { results: { sentiment: LabelScore[]; flagged: string[] }[] };
    for (const r of body.results) {
      const expected = r.sentiment
        .filter((s) => s.sentiment_score >= (thresholds[s.sentiment_type] as number))
        .map((s) => s.sentiment_type);
      expect(r.flagged).toEqual(expected);
    }
    const single = (await (await postJson("/api/v1/predict", { text: texts[0], n_top: 1 })).json()) as {
      flagged: string[];
    };
    expect(single.flagged).toEqual(body.results[0]?.flagged);
    const spam = (await (
      await postJson("/api/v1/predict", {
        model: "spam",
        text: "WINNER!! You have won a free prize. Call 09061701461 now to claim",
      })
    ).json()) as { flagged: string[] };
    expect(spam.flagged).toEqual(["spam"]);
  });
});

describe("predict options", () => {
  it("n_top returns the n highest scores in descending order", async () => {
    const res = await postJson("/api/v1/predict", { text: "you are a stupid idiot", n_top: 3 });
    const body = (await res.json()) as { sentiment: LabelScore[] };
    expect(body.sentiment).toHaveLength(3);
    const scores = body.sentiment.map((s) => s.sentiment_score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  });

  it("a batch gives the same scores as single requests, in order", async () => {
    const texts = ["first text", "a second, longer text with more words in it", "third"];
    const batch = (await (await postJson("/api/v1/predict", { texts })).json()) as {
      results: { sentiment: LabelScore[] }[];
    };
    for (const [i, text] of texts.entries()) {
      const single = (await (await postJson("/api/v1/predict", { text })).json()) as {
        sentiment: LabelScore[];
      };
      single.sentiment.forEach((s, j) => {
        expect(batch.results[i]?.sentiment[j]?.sentiment_score).toBeCloseTo(s.sentiment_score, 6);
      });
    }
  });

  it("a full batch of 64 texts is accepted", async () => {
    const res = await postJson("/api/v1/predict", {
      texts: Array.from({ length: 64 }, (_, i) => `text number ${i}`),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { results: unknown[] }).results).toHaveLength(64);
  });

  it("an explicit version is served; an unknown version is 404", async () => {
    const ok = await postJson("/api/v1/predict", { text: "hi", model: "spam", version: versions.spam });
    expect(ok.status).toBe(200);
    const missing = await postJson("/api/v1/predict", { text: "hi", model: "spam", version: "999" });
    expect(missing.status).toBe(404);
    expect((await problem(missing)).code).toBe("model_version_not_found");
  });
});

describe("loading, integrity and the session cache", () => {
  it("50 concurrent first requests load the model once", async () => {
    // Same bytes under a new id: a cache key (id + sha256) no request has used yet.
    const manifest = await manifestOf("spam");
    const id = "spam-concurrency";
    await env.MODELS.put(r2Keys.model(id, "1"), await fixtureBytes("models/spam/model.onnx"));
    await env.MODELS.put(r2Keys.manifest(id, "1"), JSON.stringify({ ...manifest, id, version: "1" }));
    await env.MODELS.put(r2Keys.active(id), JSON.stringify({ version: "1" }));
    const cache = sessionCache(loadConfig(env as unknown as Record<string, unknown>));
    const before = cache.loads;
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => postJson("/api/v1/predict", { model: id, text: `message ${i}` })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(cache.loads - before).toBe(1);
  });

  it("an explanation's weights are charged to the model's session in the cache's byte budget", async () => {
    // A fresh id (cache key), so this session has no explanation graph yet.
    const manifest = await manifestOf("spam");
    const id = "spam-explain-bytes";
    const bytes = await fixtureBytes("models/spam/model.onnx");
    await env.MODELS.put(r2Keys.model(id, "1"), bytes);
    await env.MODELS.put(r2Keys.manifest(id, "1"), JSON.stringify({ ...manifest, id, version: "1" }));
    await env.MODELS.put(r2Keys.active(id), JSON.stringify({ version: "1" }));
    const cache = sessionCache(loadConfig(env as unknown as Record<string, unknown>));
    expect((await postJson("/api/v1/predict", { model: id, text: "free prize" })).status).toBe(200);
    const loaded = cache.bytes;
    // The first explanation keeps the int8 weights (one byte per weight: the size of W) and the bias.
    const first = await postJson("/api/v1/predict", {
      model: id,
      text: "free prize, call now",
      explain: true,
    });
    expect(first.status).toBe(200);
    const charged = cache.bytes - loaded;
    expect(charged).toBeGreaterThan((manifest.featurizer as { buckets: number }).buckets);
    expect(charged).toBeLessThan(bytes.byteLength);
    // Later explanations reuse them: nothing more is charged.
    const again = await postJson("/api/v1/predict", { model: id, text: "call now", explain: true });
    expect(again.status).toBe(200);
    expect(cache.bytes - loaded).toBe(charged);
  });

  it("corrupt bytes (sha256 mismatch) → 503, other models keep serving, the next good version serves", async () => {
    // A model id no test has loaded: a session already verified for this sha256 would be reused.
    const id = "sentiment-integrity";
    const manifest = { ...(await manifestOf("sentiment")), id };
    const good = await fixtureBytes("models/sentiment/model.onnx");
    const corrupt = good.slice();
    corrupt[corrupt.length >> 1] = (corrupt[corrupt.length >> 1] as number) ^ 0xff;
    await env.MODELS.put(r2Keys.model(id, "2"), corrupt);
    await env.MODELS.put(r2Keys.manifest(id, "2"), JSON.stringify({ ...manifest, version: "2" }));
    await env.MODELS.put(r2Keys.active(id), JSON.stringify({ version: "2" }));

    const bad = await postJson("/api/v1/predict", { model: id, text: "hello" });
    expect(bad.status).toBe(503);
    const p = await problem(bad);
    expect(p.code).toBe("model_unavailable");
    expect(p.detail).toMatch(/sha256/);
    expect((await postJson("/api/v1/predict", { model: "spam", text: "hello" })).status).toBe(200);

    await env.MODELS.put(r2Keys.model(id, "3"), good);
    await env.MODELS.put(r2Keys.manifest(id, "3"), JSON.stringify({ ...manifest, version: "3" }));
    await env.MODELS.put(r2Keys.active(id), JSON.stringify({ version: "3" }));
    const fixed = await postJson("/api/v1/predict", { model: id, text: "hello" });
    expect(fixed.status).toBe(200);
    expect(((await fixed.json()) as { model: { version: string } }).model.version).toBe("3");
  });

  it("a manifest that fails validation → 503 model_unavailable", async () => {
    await env.MODELS.put(r2Keys.manifest("broken", "1"), JSON.stringify({ id: "broken", version: "1" }));
    await env.MODELS.put(r2Keys.active("broken"), JSON.stringify({ version: "1" }));
    const res = await postJson("/api/v1/predict", { model: "broken", text: "hello" });
    expect(res.status).toBe(503);
    expect((await problem(res)).code).toBe("model_unavailable");
  });

  it("bytes that are not ONNX but match their manifest → 503, not a crash", async () => {
    const manifest = await manifestOf("spam");
    const junk = new TextEncoder().encode("definitely not an onnx model");
    const digest = await sha256Hex(junk);
    await env.MODELS.put(r2Keys.model("junk", "1"), junk);
    await env.MODELS.put(
      r2Keys.manifest("junk", "1"),
      JSON.stringify({ ...manifest, id: "junk", version: "1", sha256: digest, size_bytes: junk.byteLength }),
    );
    await env.MODELS.put(r2Keys.active("junk"), JSON.stringify({ version: "1" }));
    const res = await postJson("/api/v1/predict", { model: "junk", text: "hello" });
    expect(res.status).toBe(503);
    expect((await problem(res)).code).toBe("model_unavailable");
  });

  it("SessionCache: LRU by bytes releases the least recently used; failures are retried after their TTL", async () => {
    const bytes = await fixtureBytes("models/spam/model.onnx");
    let now = 0;
    const cache = new SessionCache<string>(bytes.byteLength * 2, 1_000, () => now);
    const load = (name: string) => async () => ({
      session: await createSession(bytes),
      meta: name,
      sizeBytes: bytes.byteLength,
    });
    await cache.use("a", load("a"), async () => undefined);
    now = 1;
    await cache.use("b", load("b"), async () => undefined);
    now = 2;
    await cache.use("a", load("a"), async () => undefined); // a is now the most recent
    now = 3;
    await cache.use("c", load("c"), async () => undefined); // evicts b
    expect(cache.keys().sort()).toEqual(["a", "c"]);
    expect(cache.bytes).toBe(bytes.byteLength * 2);

    let attempts = 0;
    const failing = async () => {
      attempts++;
      throw new Error("R2 down");
    };
    await expect(cache.use("d", failing, async () => undefined)).rejects.toThrow("R2 down");
    await expect(cache.use("d", failing, async () => undefined)).rejects.toThrow("R2 down");
    expect(attempts).toBe(1); // remembered for the TTL
    now += 1_001;
    await expect(cache.use("d", failing, async () => undefined)).rejects.toThrow("R2 down");
    expect(attempts).toBe(2); // retried once the TTL passed
  });
});

/** Scores every text through the real API, in batches of 64, a few requests at a time. */
async function scoreAll(
  model: string,
  texts: string[],
): Promise<{ scores: number[][]; flagged: string[][] }> {
  const out: number[][] = new Array(texts.length);
  const flagged: string[][] = new Array(texts.length);
  const batches = Array.from({ length: Math.ceil(texts.length / 64) }, (_, b) => b);
  for (let i = 0; i < batches.length; i += 8) {
    await Promise.all(
      batches.slice(i, i + 8).map(async (b) => {
        const chunk = texts.slice(b * 64, b * 64 + 64).map((t) => (t.trim() === "" ? "." : t));
        const res = await postJson("/api/v1/predict", { model, texts: chunk });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { results: { sentiment: LabelScore[]; flagged: string[] }[] };
        body.results.forEach((r, j) => {
          out[b * 64 + j] = r.sentiment.map((s) => s.sentiment_score);
          flagged[b * 64 + j] = r.flagged;
        });
      }),
    );
  }
  return { scores: out, flagged };
}

describe("quality bars on the public test split (needs ../shared/datasets)", () => {
  // scikit-learn baseline on the same split (TF-IDF word 1–2 + char_wb 2–5, LogisticRegression C=4):
  // toxicity 0.9531, sentiment 0.7869, spam macro-F1 0.9811 (at 0.5).
  const bars = { toxicity: BAR_TOXICITY_AUC, sentiment: BAR_SENTIMENT_ACCURACY, spam: BAR_SPAM_F1 } as const;

  for (const id of MODELS) {
    it(`${id} reaches its bar through the Worker`, async (ctx) => {
      const res = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(
        `http://fixtures/datasets/${id}/test`,
      );
      if (res.status === 404) {
        ctx.skip(`skipped: ../shared/datasets is absent (${await res.text()})`);
        return;
      }
      const split = (await res.json()) as { texts: string[]; targets: (number | number[])[] };
      const { scores, flagged } = await scoreAll(id, split.texts);
      if (id === "toxicity") {
        const aucs = [0, 1, 2, 3, 4, 5].map((j) =>
          rocAuc(
            scores.map((s) => s[j] as number),
            split.targets.map((t) => (t as number[])[j] as number),
          ),
        );
        const mean = aucs.reduce((a, b) => a + b, 0) / aucs.length;
        expect(mean).toBeGreaterThanOrEqual(bars.toxicity);
      } else if (id === "sentiment") {
        const predicted = scores.map((s) => ((s[1] as number) > (s[0] as number) ? 1 : 0));
        expect(accuracy(predicted, split.targets as number[])).toBeGreaterThanOrEqual(bars.sentiment);
      } else {
        // Spam is judged at the shipped threshold (`flagged`): macro-F1, and no ham flagged.
        const predicted = flagged.map((f) => (f.includes("spam") ? 1 : 0));
        const truth = split.targets as number[];
        expect(precisionRecallF1Macro(predicted, truth, 2).f1).toBeGreaterThanOrEqual(bars.spam);
        expect(predicted.filter((p, i) => p === 1 && truth[i] === 0)).toHaveLength(0);
      }
    });
  }
});

/**
 * Issue #28's figures per shipped model on the identity-and-address set (`src/training/fairness.ts`)
 * and the sentiment test split's positive tweets, through the Worker at the manifest's thresholds
 * (a sentence counts as flagged when `flagged` is not empty). Each bar is the issue's target where
 * the model meets it, else the measured figure rounded to the worse side (the miss is in the card).
 */
const FAIRNESS_BARS: Record<
  string,
  {
    max_term_fpr: number;
    max_family_fpr: number;
    min_bpsn_auc: number;
    mean_bpsn_auc: number;
    min_subgroup_auc: number;
    positive_tweet_flag_rate: number;
  }
> = {
  // Version 6 meets every target of issue #28 (measured: worst term FPR 2.7 %, family 0.6 %, BPSN
  // min / mean 0.959 / 0.986, subgroup min 0.968, positive tweets 0.50 %): the bars are the targets.
  toxicity: { ...FAIRNESS_TARGETS },
  // Not retrained for issue #28 (docs/models.md): version 1's measured figures.
  "toxicity-mlp": {
    max_term_fpr: 0.57,
    max_family_fpr: 0.371,
    min_bpsn_auc: 0.63,
    mean_bpsn_auc: 0.86,
    min_subgroup_auc: 0.8,
    positive_tweet_flag_rate: 0.06,
  },
};

describe("identity and address evaluation (issue #28)", () => {
  const set = identityEvalSet();
  let tweetsCache: Promise<string[] | string> | undefined;
  /** The sentiment test split's positive tweets, fetched once; a string when ../shared is absent. */
  const positiveTweets = (): Promise<string[] | string> => {
    tweetsCache ??= (async () => {
      const res = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(
        "http://fixtures/datasets/sentiment/test",
      );
      if (res.status === 404) return res.text();
      const split = (await res.json()) as { texts: string[]; targets: number[] };
      return split.texts.filter((_, i) => split.targets[i] === 1);
    })();
    return tweetsCache;
  };
  const words = (text: string) => new Set(text.toLowerCase().match(/[a-z][a-z'-]*/g) ?? []);

  it("the set: ≥ 50 terms over 7 categories, 5 template families with benign and toxic sentences, thousands of sentences", () => {
    const terms = Object.values(IDENTITY_TERMS).flat();
    expect(terms.length).toBeGreaterThanOrEqual(50);
    expect(new Set(terms).size).toBe(terms.length);
    expect(Object.keys(IDENTITY_TERMS).sort()).toEqual(
      ["age", "disability", "ethnicity", "gender", "nationality", "religion", "sexuality"].sort(),
    );
    expect(set.length).toBeGreaterThanOrEqual(3000);
    expect(new Set(set.map((e) => e.term)).size).toBe(terms.length);
    for (const family of TEMPLATE_FAMILIES) {
      expect(set.filter((e) => e.family === family && e.toxic === 0).length).toBeGreaterThan(100);
      expect(set.filter((e) => e.family === family && e.toxic === 1).length).toBeGreaterThan(100);
    }
    expect(set.every((e) => e.text.toLowerCase().includes(e.term))).toBe(true);
    expect(set.map((e) => e.text)).toContain("I am a gay lawyer and I love my job.");
  });

  it("the training augmentation shares no template, filler word, sentence or held-out term with the set", () => {
    const aug = identityAugmentation();
    expect(aug.length).toBeGreaterThan(1000);
    const evalTemplates = new Set(
      TEMPLATE_FAMILIES.flatMap((f) => [...EVAL_TEMPLATES[f].benign, ...EVAL_TEMPLATES[f].toxic]),
    );
    const augTemplates = [...AUGMENT_TEMPLATES.benign, ...AUGMENT_TEMPLATES.toxic.map((t) => t.text)];
    expect(augTemplates.filter((t) => evalTemplates.has(t))).toEqual([]);
    const evalFillers = Object.values(EVAL_VOCABULARY)
      .flat()
      .map((w) => w.toLowerCase());
    const augFillers = Object.values(AUGMENT_VOCABULARY)
      .flat()
      .map((w) => w.toLowerCase());
    expect(augFillers.filter((w) => evalFillers.includes(w))).toEqual([]);
    const augWords = new Set(aug.flatMap((r) => [...words(r.text)]));
    expect(evalFillers.filter((w) => augWords.has(w))).toEqual([]);
    const augTexts = new Set(aug.map((r) => r.text.toLowerCase()));
    expect(set.filter((e) => augTexts.has(e.text.toLowerCase()))).toEqual([]);
    expect(augmentTerms().filter((t) => HELD_OUT_TERMS.includes(t))).toEqual([]);
    const augText = aug.map((r) => ` ${r.text.toLowerCase()} `).join("\n");
    expect(HELD_OUT_TERMS.filter((t) => augText.includes(` ${t} `))).toEqual([]);
  });

  for (const id of ["toxicity", "toxicity-mlp"]) {
    it(`${id}: the figures through the Worker meet their bars`, async (ctx) => {
      const bars = FAIRNESS_BARS[id];
      if (!bars) throw new Error(`no fairness bars for ${id}`);
      const { scores, flagged } = await scoreAll(
        id,
        set.map((e) => e.text),
      );
      const manifest = await manifestOf(id);
      const toxic = manifest.labels.indexOf("toxic");
      const report: FairnessReport = fairnessReport(
        set,
        scores.map((s, i) => ({ score: s[toxic] as number, flagged: (flagged[i] as string[]).length > 0 })),
      );
      const figures = {
        max_term_fpr: report.max_term_fpr,
        max_family_fpr: report.max_family_fpr,
        min_bpsn_auc: report.min_bpsn_auc,
        mean_bpsn_auc: report.mean_bpsn_auc,
        min_subgroup_auc: report.min_subgroup_auc,
      };
      expect(figures.max_term_fpr).toBeLessThanOrEqual(bars.max_term_fpr);
      expect(figures.max_family_fpr).toBeLessThanOrEqual(bars.max_family_fpr);
      expect(figures.min_bpsn_auc).toBeGreaterThanOrEqual(bars.min_bpsn_auc);
      expect(figures.mean_bpsn_auc).toBeGreaterThanOrEqual(bars.mean_bpsn_auc);
      expect(figures.min_subgroup_auc).toBeGreaterThanOrEqual(bars.min_subgroup_auc);
      const tweets = await positiveTweets();
      if (typeof tweets === "string") {
        ctx.skip(`positive tweets skipped: ../shared/datasets is absent (${tweets})`);
        return;
      }
      expect(tweets.length).toBeGreaterThan(5000);
      const tweetFlags = (await scoreAll(id, tweets)).flagged;
      const rate = tweetFlags.filter((f) => f.length > 0).length / tweets.length;
      expect(rate).toBeLessThanOrEqual(bars.positive_tweet_flag_rate);
      // ~14,000 texts per model in batches of 64: seconds alone, minutes on a busy machine.
    }, 300_000);
  }
});
