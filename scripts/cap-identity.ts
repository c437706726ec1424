/**
 * Issue #28's weight cap (`src/training/cap.ts`) on a shipped linear int8 text model: read back from
 * its ONNX graph, capped, checked, and (for `toxicity` version 5) written.
 *
 *   npx tsx scripts/cap-identity.ts --check     round 1 on train data only: version 4 as is, D
 *                                               (identity buckets' positive weights to 0), D+ (and the
 *                                               address buckets' to 0)
 *   npx tsx scripts/cap-identity.ts --round2    round 2: E(0.25), E(0.5) (address buckets scaled)
 *   npx tsx scripts/cap-identity.ts --write --version=5 --address-scale=0.5
 *                                               writes models/toxicity/ (scores the public test split once)
 *   [--from=models/toxicity]                    the base model's folder
 *   npx tsx scripts/cap-identity.ts --check --from-state=<file> [--address-scale=0.5]
 *                                               the base is a selection run's state instead
 *                                               (`scripts/train.ts --no-test --save-state=<file>`):
 *                                               its refitted float model quantized to int8 as train.ts
 *                                               does, and its thresholds (chosen on its pooled
 *                                               out-of-fold scores before any cap, as version 4's that
 *                                               version 5 kept); checks the base as is and with the
 *                                               cap E(address scale), nothing else (issue #28's "B+cap")
 *   npx tsx scripts/cap-identity.ts --check --per-label --from-state=<file>
 *                                               the per-label caps H, G(1), G(0.5) of that state
 *   npx tsx scripts/cap-identity.ts --calibrate-thresholds
 *                                               candidate T: the shipped model with thresholds raised
 *                                               on benign text that is neither the evaluation nor a
 *                                               test split (`calibratedThresholds`)
 *
 * Checks use train data only (never the test split): in-sample ROC-AUC on the train split's
 * multi-label rows, the 40 probes, the identity set and the positive tweets of the sentiment data's
 * fold 3. Run `--check`/`--round2` against version 4's files (git show <v4 commit>:models/toxicity/…)
 * to repeat the choice; against version 5 they cap an already capped model.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { textManifestSchema } from "../src/contracts/manifest";
import type { TextFeaturizerSpec } from "../src/featurizer/text";
import { onnx } from "../src/onnx/generated/onnx.js";
import { exportModel } from "../src/onnx/text";
import { capBuckets, capIdentityAndAddress, capModel, type LabelCap } from "../src/training/cap";
import {
  FAIRNESS_TARGETS,
  fairnessMarkdown,
  fairnessReport,
  fairnessSummary,
  identityEvalSet,
  scoredFromLabels,
  targetsMet,
} from "../src/training/fairness";
import { augmentTerms, cleanTweet, identityAugmentation } from "../src/training/fairness-augment";
import { evaluateModel, featurizeTexts, quantizeInt8, scoreMatrix } from "../src/training/index";
import { type Int8LinearModel, scoreText } from "../src/training/linear-model";
import { finiteMean, rocAuc } from "../src/training/metrics";
import { positiveTweets, ROOT, TRAINING_CATALOGUE } from "./training/catalogue";
import { readRunState } from "./training/text";

/** Reads a shipped linear int8 text model back from its ONNX graph (initializers W, W_scale, bias). */
export function readInt8Model(dir: string): { model: Int8LinearModel; thresholds: Record<string, number> } {
  const manifest = textManifestSchema.parse(
    JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")),
  );
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

/**
 * The int8 model and thresholds of a selection run's saved state (`--save-state`): its float model
 * quantized exactly as `scripts/training/text.ts` quantizes before export, its thresholds unchanged.
 */
export function readStateModel(file: string): { model: Int8LinearModel; thresholds: Record<string, number> } {
  const state = readRunState(file);
  return { model: quantizeInt8(state.model), thresholds: { ...state.thresholds } };
}

function check(
  name: string,
  model: Int8LinearModel,
  thresholds: Record<string, number>,
  atThresholds = false,
): void {
  const cfg = TRAINING_CATALOGUE.toxicity;
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
  const unflaggedToxic = scoredFromLabels(toxic, model.labels, thresholds).filter(
    (e) => !e.flaggedRank,
  ).length;
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
  if (atThresholds) {
    // In-sample, train split: per label the recall and the false-positive rate at the thresholds.
    const at = model.labels.map((label, k) => {
      const t = thresholds[label] as number;
      const ys = rows.map((r) => (r.target as number[])[k] as number);
      const pos = s.filter((_, i) => ys[i] === 1);
      const neg = s.filter((_, i) => ys[i] === 0);
      return [
        label,
        Number((pos.filter((x) => (x[k] as number) >= t).length / Math.max(1, pos.length)).toFixed(3)),
        Number((neg.filter((x) => (x[k] as number) >= t).length / Math.max(1, neg.length)).toFixed(4)),
      ];
    });
    console.log(`${name}: train in-sample [label, recall, fpr] at the thresholds ${JSON.stringify(at)}`);
  }
  const set = identityEvalSet();
  const report = fairnessReport(
    set,
    scoredFromLabels(score(set.map((e) => e.text)), model.labels, thresholds),
  );
  const tweets = positiveTweets([3]);
  const tweetRate =
    scoredFromLabels(score(tweets), model.labels, thresholds).filter((e) => e.flagged).length / tweets.length;
  console.log(
    `${name}: probes ${probesPass ? "pass" : "FAIL"} (max benign ${maxBenign.toFixed(3)}, min toxic ${minToxic.toFixed(3)}, benign flagged ${flaggedBenign}, toxic unflagged ${unflaggedToxic}); train in-sample mean AUC ${finiteMean(aucs).toFixed(4)} ${JSON.stringify(aucs.map((a) => Number(a.toFixed(4))))}`,
  );
  console.log(`${name}: ${fairnessSummary(report, tweetRate)}`);
  const met = targetsMet(report, tweetRate);
  console.log(
    `${name}: issue #28's targets met ${Object.values(met).filter(Boolean).length} of ${Object.keys(FAIRNESS_TARGETS).length} ${JSON.stringify(met)}`,
  );
  console.log(
    `${name}: families ${JSON.stringify(report.per_family.map((f) => [f.family, Number(f.fpr.toFixed(3)), Number(f.tpr.toFixed(3))]))}; worst terms ${JSON.stringify(
      [...report.per_term]
        .sort((a, b) => a.bpsn_auc - b.bpsn_auc)
        .slice(0, 8)
        .map((t) => [t.term, Number(t.bpsn_auc.toFixed(3)), Number(t.fpr.toFixed(3))]),
    )}`,
  );
}

/**
 * Writes `models/toxicity/` as the capped model (`version`): the int8 graph by our exporter, the
 * manifest (the base's thresholds and validation figures; test figures of the capped model — the
 * public test split is scored here, once), reference.json and the card (the base's card with a
 * version section and the fairness section in front).
 */
async function write(
  from: string,
  base: Int8LinearModel,
  capped: Int8LinearModel,
  thresholds: Record<string, number>,
  version: string,
  addressScale: number,
): Promise<void> {
  const cfg = TRAINING_CATALOGUE.toxicity;
  if (!cfg) throw new Error("no toxicity config");
  const oldManifest = textManifestSchema.parse(
    JSON.parse(readFileSync(path.join(from, "manifest.json"), "utf8")),
  );
  const data = cfg.load();
  const testX = featurizeTexts(
    data.test.map((r) => r.text),
    capped.spec,
  );
  const targets = data.test.map((r) => r.target);
  const test = evaluateModel(capped, testX, targets);
  const baseTest = evaluateModel(base, testX, targets);
  const scores = scoreMatrix(capped, testX);
  capped.labels.forEach((label, k) => {
    const t = thresholds[label] as number;
    const known = targets.map((y) => (y as number[])[k] as number);
    const pos = known.filter((y) => y === 1).length;
    test[`recall_at_threshold_${label}`] =
      scores.filter((s, i) => known[i] === 1 && (s[k] as number) >= t).length / Math.max(1, pos);
    test[`false_positives_at_threshold_${label}`] = scores.filter(
      (s, i) => known[i] === 0 && (s[k] as number) >= t,
    ).length;
  });
  console.log(`TEST (once) capped: ${JSON.stringify(test)}`);
  console.log(`(base on the same rows, recomputed: roc_auc_mean ${baseTest.roc_auc_mean?.toFixed(4)})`);
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(test)) metrics[k === "rows" ? "test_rows" : `test_${k}`] = v;
  for (const [k, v] of Object.entries(oldManifest.metrics ?? {})) if (!k.startsWith("test_")) metrics[k] = v;
  const description = `${cfg.description.replace(/, int8\.$/, "")}, int8; identity and address weight cap (issue #28).`;
  const { onnx: bytes, manifest } = await exportModel(capped, {
    id: "toxicity",
    version,
    description,
    metrics,
  });
  const full = textManifestSchema.parse({
    ...manifest,
    network: "linear",
    networks: { linear: "toxicity", mlp: "toxicity-mlp" },
    thresholds,
  });
  if (bytes.byteLength > 5 * 1024 * 1024) throw new Error("model over 5 MB");
  // The fairness figures of the written model.
  const set = identityEvalSet();
  const scoreAll = (texts: readonly string[]) => texts.map((t) => scoreText(capped, t));
  const report = fairnessReport(
    set,
    scoredFromLabels(scoreAll(set.map((e) => e.text)), capped.labels, thresholds),
  );
  const tweets = positiveTweets([4]);
  const tweetRate =
    scoredFromLabels(scoreAll(tweets), capped.labels, thresholds).filter((e) => e.flagged).length /
    tweets.length;
  console.log(`fairness (written model): ${fairnessSummary(report, tweetRate)}`);
  const ref = JSON.parse(readFileSync(path.join(from, "reference.json"), "utf8")) as { texts: string[] };
  const round = (xs: Float64Array): number[] => Array.from(xs, (x) => Number(x.toPrecision(9)));
  const refScores = ref.texts.map((t) => round(scoreText(capped, t)));
  const reference = { texts: ref.texts, scores: refScores, float_scores: refScores };
  const oldCard = readFileSync(path.join(from, "MODEL_CARD.md"), "utf8");
  const f4 = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(4));
  const perLabel = capped.labels
    .map(
      (l) =>
        `| ${l} | ${f4(test[`roc_auc_${l}`])} | ${f4(oldManifest.metrics?.[`test_roc_auc_${l}`])} | ${f4(test[`recall_at_threshold_${l}`])} | ${test[`false_positives_at_threshold_${l}`]} |`,
    )
    .join("\n");
  const title = ["`toxicity` version ", version].join("");
  const versionSection = `# Model card: \`toxicity\` (version ${version}, network \`linear\`)

${description}

- Size: **${bytes.byteLength} bytes** (${(bytes.byteLength / 1024 / 1024).toFixed(2)} MiB); sha256 \`${full.sha256}\`
- Created: ${full.created_at} by \`npx tsx scripts/cap-identity.ts --write --version=${version} --address-scale=${addressScale}\` from version ${oldManifest.version} (sha256 \`${oldManifest.sha256}\`); no refit: version ${oldManifest.version}'s selection, calibration and thresholds, with issue #28's weight cap (\`src/training/cap.ts\`).
- Flagging thresholds (unchanged from version ${oldManifest.version}): ${Object.entries(thresholds)
    .map(([l, t]) => ["`", l, "` ", t].join(""))
    .join(", ")}.

## Version ${version}: identity and address weight cap (issue #28)

Version ${oldManifest.version} flagged benign sentences that mention an identity ("I am a proud gay man") or address the reader ("You are a caring nurse"): in the Jigsaw sample these words occur mostly in toxic comments, so their n-grams carried toxicity on their own. Version ${version} is version ${oldManifest.version}'s int8 weights with **positive** weights (every label) changed in the hashed buckets of identity and address n-grams: set to 0 for the word unigrams of the ${augmentTermCount()} augmentation terms' words (\`augmentTerms()\`: the evaluation's terms except its 15 held-out ones, plus 20 others), the bigrams of two-word terms and the character 4/5-grams of " word "; multiplied by ${addressScale} for "you", "your", "u", "ur", "yourself" (same n-grams) and the bigrams "you are", "you re", "are a", "are an". Negative weights, scales, bias and thresholds are unchanged, so a text without these n-grams scores exactly as under version ${oldManifest.version}.

**How it was chosen** (train data only; the rules are in the commit messages, written before each round's figures): the 4-fold retraining with augmentation (\`src/training/fairness-augment.ts\`, \`--augment-identity\`, \`--augment-tweets\`) could not run on the shared cores in time (~9 % of a core per run), so the cap was chosen instead. Checks per candidate: the 40 probes, the in-sample ROC-AUC on the train split's multi-label rows (drop ≤ 0.003), the identity set, the positive tweets of the sentiment data's fold 3. Round 1: D (identity cap only) — probes pass, min BPSN 0.892, worst family FPR 19.4 % (second person); D+ (and address buckets to 0) — min BPSN 0.925, worst family 0.7 %, but a toxic probe fell to 0.604: **fails the probes**. Round 2 (address buckets scaled instead of zeroed): E(0.25) — toxic probe 0.741, fails; **E(0.5)** — probes pass (lowest toxic probe 0.827), in-sample AUC 0.9951 as version ${oldManifest.version}: **chosen**, then its test split was scored once.

| label | test ROC-AUC, version ${version} (int8) | version ${oldManifest.version} | recall at threshold (v${version}) | false positives at threshold (v${version}) |
|---|---|---|---|---|
${perLabel}
| **mean** | **${f4(test.roc_auc_mean)}** | ${f4(oldManifest.metrics?.test_roc_auc_mean)} | | |

\`reference.json\`: the capped int8 model's scores (there is no float model of version ${version}; \`float_scores\` repeats them).

## Fairness: identity and address (issue #28)

The shipped int8 model at its thresholds on the identity-and-address set of \`src/training/fairness.ts\` (generated for this project: ${report.terms} identity terms in 7 categories, benign and toxic templates of 5 families — first person, second person, third person with a name, third person with an occupation, short phrases; every sentence mentions one term). AUCs rank by the \`toxic\` score; a sentence counts as **flagged** when any label reaches its threshold. Subgroup, BPSN and BNSP AUC as in Borkan et al. 2019 (background = the sentences of the other terms; with equal counts per term the mean BPSN equals the mean BNSP). Held-out terms are in neither the augmentation nor the cap. Reproduce with \`npm run fairness -- toxicity --terms\`; \`test/predict-models.test.ts\` asserts the figures through the Worker.

${fairnessMarkdown(title, report, tweetRate, tweets.length, true)}

${FAIRNESS_NOTES.map((n) => `- ${n}`).join("\n")}

---

The rest of this card is version ${oldManifest.version}'s (the selection, calibration and thresholds version ${version} keeps).

`;
  const rest = oldCard
    .replace(/^# Model card:[^\n]*\n/, `# Version ${oldManifest.version} (base)\n`)
    .replace(/^## /gm, "### ");
  const dir = path.join(ROOT, "models", "toxicity");
  writeFileSync(path.join(dir, "model.onnx"), bytes);
  writeFileSync(path.join(dir, "manifest.json"), `${JSON.stringify(full, null, 2)}\n`);
  writeFileSync(path.join(dir, "reference.json"), `${JSON.stringify(reference, null, 2)}\n`);
  writeFileSync(path.join(dir, "MODEL_CARD.md"), versionSection + rest);
  console.log(`wrote models/toxicity/ version ${version} (${bytes.byteLength} bytes, sha256 ${full.sha256})`);
}

/** The card's known remaining failures (hand-written after the measurement; see the issue note). */
const FAIRNESS_NOTES: string[] = [
  "Version 4 → version 5 on this set (same thresholds): worst term FPR 75.7 % (gay; homosexual 75.7 %, queer 56.8 %) → 10.8 % (nigerian, a held-out term); worst template family FPR 24.8 % (second person) → 1.1 %; BPSN AUC min 0.640 → 0.908, mean 0.940 → 0.969; subgroup AUC min 0.931 → 0.946; overall AUC 0.940 → 0.969; toxic sentences flagged 74.9 % → 70.2 %. `docs/models.md` has the table with the positive tweets.",
  "Issue #28's targets met: BPSN min ≥ 0.90, worst family FPR ≤ 5 %. **Missed**: worst term FPR ≤ 5 % — two terms are over it: nigerian 10.8 % (a held-out term: the cap acts only on the terms it lists, and a term outside `augmentTerms()` keeps its Jigsaw lean) and gay 5.4 % (every other term ≤ 3 %); BPSN mean ≥ 0.97 (0.969); subgroup AUC min ≥ 0.95 (millennial 0.946, held out; muslim 0.948); positive tweets ≤ 2 % (the cap does not touch what flags them; docs/models.md).",
  'The cost on the public test split (scored once): mean ROC-AUC 0.9580 → 0.9558; `identity_hate` 0.9357 → 0.9200 and its recall at the threshold 31 % → 16 % — attacks on an identity lean on the identity words, which the cap takes from every label (a linear model cannot tell "gay" in an attack from "gay" in a greeting); `toxic` recall at the threshold 73.0 % → 69.3 %.',
  "What a cap cannot do: it changes listed n-grams only (other spellings, slurs built on the terms, other languages keep their weights); it lowers toxic sentences that lean on the same words as much as benign ones (the set's toxic sentences flagged: 74.9 % → 70.2 %); and it does not teach the model anything — the retraining with the disjoint augmentation (`src/training/fairness-augment.ts`, `npm run train -- toxicity --augment-identity=1 --augment-tweets=5000`) is written but was not run to completion.",
];

/** Issue #28's threshold calibration: the share of benign calibration texts allowed per label. */
export const CALIBRATION_QUANTILE = 0.995;

/**
 * The benign calibration texts of candidate T (neither the evaluation nor any test split): the
 * augmentation's benign rows (other templates and words than the evaluation, no held-out term) and
 * the clean positive tweets of the sentiment data's folds 0–2.
 */
export function calibrationTexts(): string[] {
  const benignAug = identityAugmentation()
    .filter((r) => r.target.every((v) => v === 0))
    .map((r) => r.text);
  return [...benignAug, ...positiveTweets([0, 1, 2]).filter(cleanTweet)];
}

/** Per label max(threshold, the CALIBRATION_QUANTILE quantile of its score on `calibrationTexts()`). */
export function calibratedThresholds(
  model: Int8LinearModel,
  thresholds: Record<string, number>,
): Record<string, number> {
  const scores = calibrationTexts().map((t) => scoreText(model, t));
  const out: Record<string, number> = {};
  model.labels.forEach((label, k) => {
    const col = scores.map((s) => s[k] as number).sort((a, b) => a - b);
    // The smallest value at or above which at most (1 − q) of the texts score.
    const q = col[Math.min(col.length - 1, Math.ceil(CALIBRATION_QUANTILE * col.length))] as number;
    out[label] = Number(Math.max(thresholds[label] as number, q).toFixed(4));
  });
  console.log(`calibration: ${scores.length} benign texts, quantile ${CALIBRATION_QUANTILE}`);
  return out;
}

const KEEP = { identity: 1, address: 1 } as const;
/**
 * Issue #28's per-label cap candidates for a version 6 (the rule written before their figures; none shipped): version 5's cap E(0.5)
 * per label — H caps `toxic` and `insult` only; G(1) every label except `identity_hate`; G(0.5)
 * every label, `identity_hate` at half strength (its identity and address positive weights × 0.5).
 */
export const PER_LABEL_CANDIDATES: Record<string, LabelCap> = {
  H: { severe_toxic: KEEP, obscene: KEEP, threat: KEEP, identity_hate: KEEP },
  "G(1)": { identity_hate: KEEP },
  "G(0.5)": { identity_hate: { identity: 0.5, address: 0.5 } },
};

const augmentTermCount = (): number => augmentTerms().length;

async function main(): Promise<void> {
  const args = Object.fromEntries(
    process.argv.slice(2).map((a) => {
      const [k, v] = a.replace(/^--/, "").split("=", 2);
      return [k as string, v ?? "1"];
    }),
  );
  const from = path.resolve(ROOT, args.from ?? "models/toxicity");
  const stateFile = args["from-state"];
  const { model, thresholds } = stateFile
    ? readStateModel(path.resolve(ROOT, stateFile))
    : readInt8Model(from);
  if (args["calibrate-thresholds"]) {
    // Issue #28's candidate T (rule addendum 3): the model's weights unchanged, thresholds raised.
    const raised = calibratedThresholds(model, thresholds);
    console.log(`thresholds ${JSON.stringify(thresholds)} -> ${JSON.stringify(raised)}`);
    check("as shipped", model, thresholds, true);
    check("T (raised thresholds)", model, raised, true);
    return;
  }
  if (stateFile && args.check && args["per-label"]) {
    // Issue #28's per-label candidates (rule addendum 2): B's model with v5's cap per label.
    console.log(`${stateFile}: thresholds ${JSON.stringify(thresholds)} (the run's own, unchanged)`);
    for (const [name, perLabel] of Object.entries(PER_LABEL_CANDIDATES))
      check(name, capIdentityAndAddress(model, 0.5, perLabel), thresholds);
    return;
  }
  if (stateFile && args.check) {
    // Issue #28's "B+cap": the state's model as is and with version 5's cap unchanged; no other choice.
    const scale = Number(args["address-scale"] ?? 0.5);
    console.log(`${stateFile}: thresholds ${JSON.stringify(thresholds)} (the run's own, unchanged)`);
    check("state (no cap)", model, thresholds);
    check(`state + cap E(${scale})`, capIdentityAndAddress(model, scale), thresholds);
    return;
  }
  if (args.write) {
    const version = args.version ?? "5";
    const scale = Number(args["address-scale"] ?? 0.5);
    const capped = capIdentityAndAddress(model, scale);
    await write(from, model, capped, thresholds, version, scale);
    return;
  }
  if (args.round2) {
    for (const scale of [0.25, 0.5]) check(`E(${scale})`, capIdentityAndAddress(model, scale), thresholds);
  }
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
