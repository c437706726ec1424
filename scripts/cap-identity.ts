/**
 * Issue #28's weight cap: limits what a single identity (or address) token can carry in a linear
 * text model by setting its **positive** weights, on every label, to 0 in the hashed buckets of:
 *
 * - identity (`--identity`): the word unigram of each word of each augmentation term
 *   (`augmentTerms()` of `src/training/fairness-augment.ts`, so never the evaluation's held-out
 *   terms), the word bigram of two-word terms, and the character 4- and 5-grams of " word ";
 * - address (`--address`): the same for "you", "your", "u", "ur", "yourself" and the word bigrams
 *   "you are", "you re", "are a", "are an".
 *
 * Negative weights stay: a token may still count against a label. The int8 scales and bias stay, so
 * every other text scores exactly as before.
 *
 *   npx tsx scripts/cap-identity.ts --from=models/toxicity [--identity] [--address] [--check] [--write=<dir> --version=5]
 *
 * `--check` measures on train data only (never the test split): in-sample ROC-AUC on the train
 * split's multi-label rows, the 40 probes, the identity set and the positive tweets of the sentiment
 * data's fold 3.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { murmur3, type TextFeaturizerSpec } from "../src/featurizer/text";
import { textManifestSchema } from "../src/inference/manifest";
import { onnx } from "../src/onnx/generated/onnx.js";
import { fairnessReport, fairnessSummary, identityEvalSet, scoredFromLabels } from "../src/training/fairness";
import { augmentTerms } from "../src/training/fairness-augment";
import { finiteMean, rocAuc } from "../src/training/metrics";
import { type Int8LinearModel, scoreText } from "../src/training/model";
import { MODELS, positiveTweets, ROOT } from "./train";

export const ADDRESS_WORDS = ["you", "your", "u", "ur", "yourself"];
export const ADDRESS_BIGRAMS = ["you are", "you re", "are a", "are an"];

/** Reads a shipped linear int8 text model back from its ONNX graph (initializers W, W_scale, bias). */
export function readInt8Model(dir: string): { model: Int8LinearModel; thresholds: Record<string, number> } {
  const manifest = textManifestSchema.parse(JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")));
  const proto = onnx.ModelProto.decode(readFileSync(path.join(dir, "model.onnx")));
  const init = (name: string) => {
    const t = proto.graph?.initializer?.find((i) => i.name === name);
    if (!t?.rawData) throw new Error(`${dir}: no initializer ${name} (not a linear int8 graph)`);
    return Uint8Array.from(t.rawData);
  };
  const w = init("W");
  const scales = init("W_scale");
  const bias = init("bias");
  return {
    model: {
      task: manifest.task as Int8LinearModel["task"],
      labels: [...manifest.labels],
      spec: manifest.featurizer as TextFeaturizerSpec,
      columns: manifest.labels.length,
      quantization: "int8",
      weights: new Int8Array(w.buffer, w.byteOffset, w.byteLength),
      scales: new Float32Array(scales.buffer, scales.byteOffset, scales.byteLength / 4),
      bias: new Float32Array(bias.buffer, bias.byteOffset, bias.byteLength / 4),
    },
    thresholds: manifest.thresholds ?? {},
  };
}

/** The buckets of `words`' unigrams and character 4/5-grams of " word ", and of `bigrams`. */
export function bucketsOf(spec: TextFeaturizerSpec, words: readonly string[], bigrams: readonly string[]): Set<number> {
  if (spec.norm !== "l2-blocks") throw new Error("the cap is written for l2-blocks featurizers");
  const half = spec.buckets >>> 1;
  const mask = half - 1;
  const out = new Set<number>();
  for (const g of [...words, ...bigrams]) out.add(murmur3(g, spec.seed) & mask);
  for (const word of words) {
    const padded = [...` ${word} `];
    for (const n of [4, 5])
      for (let i = 0; i + n <= padded.length; i++)
        out.add(half + (murmur3(padded.slice(i, i + n).join(""), spec.seed + 1) & mask));
  }
  return out;
}

/** The cap's buckets for `identity` and/or `address`. */
export function capBuckets(spec: TextFeaturizerSpec, opts: { identity: boolean; address: boolean }): Set<number> {
  const words: string[] = [];
  const bigrams: string[] = [];
  if (opts.identity)
    for (const term of augmentTerms()) {
      const parts = term.toLowerCase().split(/[\s-]+/);
      words.push(...parts.filter((p) => p.length >= 2));
      if (parts.length === 2) bigrams.push(parts.join(" "));
    }
  if (opts.address) {
    words.push(...ADDRESS_WORDS);
    bigrams.push(...ADDRESS_BIGRAMS);
  }
  return bucketsOf(spec, words, bigrams);
}

/** A copy of `model` with positive weights in `buckets` set to 0 (every column); counts the changed weights. */
export function capModel(model: Int8LinearModel, buckets: Set<number>): { model: Int8LinearModel; changed: number } {
  const weights = Int8Array.from(model.weights);
  const C = model.columns;
  let changed = 0;
  for (const b of buckets)
    for (let k = 0; k < C; k++)
      if ((weights[b * C + k] as number) > 0) {
        weights[b * C + k] = 0;
        changed++;
      }
  return { model: { ...model, weights }, changed };
}

function check(name: string, model: Int8LinearModel, thresholds: Record<string, number>): void {
  const cfg = MODELS.toxicity;
  if (!cfg) throw new Error("no toxicity config");
  const score = (texts: readonly string[]) => texts.map((t) => scoreText(model, t));
  const probes = JSON.parse(readFileSync(path.join(ROOT, "test/fixtures/toxicity-probes.json"), "utf8")) as {
    benign: string[];
    toxic: string[];
  };
  const benign = score(probes.benign);
  const toxic = score(probes.toxic);
  const maxBenign = Math.max(...benign.flatMap((s) => [...s]));
  const minToxic = Math.min(...toxic.map((s) => s[0] as number));
  const flaggedBenign = scoredFromLabels(benign, model.labels, thresholds).filter((e) => e.flagged).length;
  const unflaggedToxic = scoredFromLabels(toxic, model.labels, thresholds).filter((e) => !e.flaggedRank).length;
  const probesPass = maxBenign <= 0.1 && minToxic >= 0.8 && flaggedBenign === 0 && unflaggedToxic === 0;
  // In-sample: the train split's multi-label rows (the model was fitted on them; only the change counts).
  const data = cfg.load();
  const rows = data.train.filter((_, i) => (data.trainIndex[i] as number) >= 0);
  const s = score(rows.map((r) => r.text));
  const aucs = model.labels.map((_, k) =>
    rocAuc(
      s.map((x) => x[k] as number),
      rows.map((r) => (r.target as number[])[k] as number),
    ),
  );
  const set = identityEvalSet();
  const report = fairnessReport(set, scoredFromLabels(score(set.map((e) => e.text)), model.labels, thresholds));
  const tweets = positiveTweets([3]);
  const tweetRate =
    scoredFromLabels(score(tweets), model.labels, thresholds).filter((e) => e.flagged).length / tweets.length;
  console.log(
    `${name}: probes ${probesPass ? "pass" : "FAIL"} (max benign ${maxBenign.toFixed(3)}, min toxic ${minToxic.toFixed(3)}, benign flagged ${flaggedBenign}, toxic unflagged ${unflaggedToxic}); train in-sample mean AUC ${finiteMean(aucs).toFixed(4)} ${JSON.stringify(aucs.map((a) => Number(a.toFixed(4))))}`,
  );
  console.log(`${name}: ${fairnessSummary(report, tweetRate)}`);
  console.log(
    `${name}: families ${JSON.stringify(report.per_family.map((f) => [f.family, Number(f.fpr.toFixed(3)), Number(f.tpr.toFixed(3))]))}; worst terms ${JSON.stringify(
      [...report.per_term]
        .sort((a, b) => a.bpsn_auc - b.bpsn_auc)
        .slice(0, 8)
        .map((t) => [t.term, Number(t.bpsn_auc.toFixed(3)), Number(t.fpr.toFixed(3))]),
    )}`,
  );
}

async function main(): Promise<void> {
  const args = Object.fromEntries(
    process.argv.slice(2).map((a) => {
      const [k, v] = a.replace(/^--/, "").split("=", 2);
      return [k as string, v ?? "1"];
    }),
  );
  const from = path.resolve(ROOT, args.from ?? "models/toxicity");
  const { model, thresholds } = readInt8Model(from);
  if (args.check) {
    check("base", model, thresholds);
    for (const [name, opts] of [
      ["D (identity)", { identity: true, address: false }],
      ["D+ (identity + address)", { identity: true, address: true }],
    ] as const) {
      const buckets = capBuckets(model.spec, opts);
      const capped = capModel(model, buckets);
      console.log(`${name}: ${buckets.size} buckets, ${capped.changed} positive weights set to 0`);
      check(name, capped.model, thresholds);
    }
  }
}

if (process.argv[1]?.endsWith("cap-identity.ts")) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
