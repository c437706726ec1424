/** The model card (`models/<id>/MODEL_CARD.md`) of a text model trained by `text.ts`. */

import { LENGTH_BUCKETS } from "../../src/training/calibration";
import { type FairnessReport, fairnessMarkdown } from "../../src/training/fairness";
import type { Gate } from "../../src/training/index";
import type { Selection } from "../../src/training/select";
import { type Dataset, type ModelConfig, positiveTweets, SEED } from "./catalogue";
import { columnLabel } from "./protocol";

export const fmt = (x: number | undefined, d = 4): string => (x === undefined ? "–" : x.toFixed(d));

/** What the conditional head of a gated column chose and measured (`RunState.gate`). */
export interface GateOutcome extends Gate {
  /** The conditional task's own CV AUC (rows where `by` is 1). */
  conditionalAuc: number;
  /** Rows the conditional head validates on (pooled over folds) and their positives. */
  conditionalRows: number;
  conditionalPositives: number;
  /** Rate of the label among the train split's rows where `by` is 1, and the deployment's. */
  sampleRate: number;
  deployRate: number;
  /** Every candidate's conditional CV AUC. */
  tried: Record<string, number>;
}

export interface TextTrainingOutcome {
  selection: Selection;
  thresholds: Record<string, number>;
  validation: Record<string, number>;
  test: { float: Record<string, number>; int8: Record<string, number> };
  calibration: { label: string; setting: string; brier: number; ece15: number }[];
  classTable?: { label: string; precision: number; recall: number; f1: number; support: number }[];
  trainingMs: number;
  fairness?: { report: FairnessReport; devTweets: number; testTweets?: number };
  /** `--gate-identity-hate` (issue #28): the gated column's conditional head. */
  gate?: GateOutcome;
}

export function modelCard(
  cfg: ModelConfig,
  data: Dataset,
  o: TextTrainingOutcome,
  size: number,
  sha: string,
  createdAt: string,
  fitRows: number,
  valRows: number,
  shift: number[],
  sampleRates: number[],
): string {
  const keys = Object.keys(o.test.int8).filter((k) => k !== "rows");
  const pass = (o.test.int8[cfg.bar.metric] as number) >= cfg.bar.baseline;
  const names = cfg.candidates.map((c) => c.name);
  const triedNames = Object.keys(o.selection.tried);
  const colNames = o.selection.columns.map((_, k) =>
    cfg.task === "binary" ? columnLabel(cfg, k) : (cfg.labels[k] as string),
  );
  const binaryNote =
    cfg.task === "binary"
      ? `The graph has one logit: p = sigmoid(logit) is the probability of \`${cfg.labels[1]}\`; \`scores\` = [1 − p, p].`
      : "Each label has its own logit and sigmoid; labels are independent (multi-label).";
  return `# Model card: \`${cfg.id}\` (version ${cfg.version}, network \`linear\`)

${cfg.description}

- Task: **${cfg.task}**, labels (output order): ${cfg.labels.map((l) => `\`${l}\``).join(", ")}. ${binaryNote}
- Format: ONNX (opset 17, IR 8), int8 weights (symmetric, per logit column), float32 bias; the linear graph of \`src/onnx/text.ts\`.
- Size: **${size} bytes** (${(size / 1024 / 1024).toFixed(2)} MiB); sha256 \`${sha}\`
- Created: ${createdAt} by \`npm run train -- ${cfg.id}\` (seed ${SEED}); final fit **${(o.trainingMs / 1000).toFixed(1)} s** (featurizing + optimisation, one core).
- Flagging thresholds (manifest \`thresholds\`, chosen on the validation ${o.selection.folds === 1 ? "fold" : "folds (pooled out-of-fold scores)"}; a response's \`flagged\` lists the labels at or above theirs): ${Object.entries(
    o.thresholds,
  )
    .map(([l, t]) => `\`${l}\` ${t}`)
    .join(", ")}.

## Data

${cfg.source.map((s) => `- ${s}`).join("\n")}

The datasets live in \`../shared/datasets/\` and are not part of this repository.

${data.notes.map((n) => `- ${n}`).join("\n")}

## Protocol

${
  o.selection.folds === 1
    ? `Data row *i* (file order, header excluded) is **test** when \`i % 5 == 4\` and **validation** when \`i % 5 == 3\`; the rest (\`i % 5 ∈ {0, 1, 2}\`, ${fitRows} rows) is the fitting fold. Every choice — the variant and C per label, the averaging of two variants, the Platt calibration, the thresholds — was made on the validation fold (${valRows} rows) by models fitted on the fitting fold. The chosen configuration was then refitted on the whole train split (${data.train.length} rows = fitting + validation fold) and scored **once** on the test split (${data.test.length} rows). A fixed validation fold (not k-fold CV) keeps training within one core-minute budget; the "± sd" of validation figures is a bootstrap standard deviation (200 resamples of the validation rows), not a spread across folds.`
    : `Data row *i* (file order, header excluded) is **test** when \`i % 5 == 4\`. Selection is by **${o.selection.folds}-fold cross-validation on the train split**: fold *f* ∈ {0, 1, 2, 3} validates on the data rows with \`i % 5 == f\` while each candidate is fitted on the other train rows (${fitRows} rows for the first fold${data.train.length > valRows ? "; rows without a data index, such as extra data, always fit" : ""}), so every one of the ${valRows} validation rows gets an out-of-fold logit. Each choice — the variant and C per label, the averaging of two variants, the borrowing — maximises the **mean of the per-fold ROC-AUCs**; the "± sd" is the sample standard deviation of the ${o.selection.folds} per-fold AUCs. Platt calibration and the thresholds are fitted on the pooled out-of-fold logits. The chosen configuration was then refitted on the whole train split (${data.train.length} rows) and scored **once** on the test split (${data.test.length} rows).`
}

## Variants tried (validation ROC-AUC${cfg.task === "binary" ? "" : " per label"}${o.selection.folds > 1 ? `, mean of ${o.selection.folds} folds` : ""})

\`lr\`: logistic regression, IDF-scaled L2 (each bucket's penalty divided by its squared smoothed IDF). \`nb\`: NB-weighted logistic regression (Wang & Manning 2012): features scaled by the log-count ratio r of the fitting fold (smoothing α per bucket), r folded back into the weights. \`avg(a, b)\`: the mean of two variants' logits (an ensemble that is still one linear model). Candidates: ${cfg.candidates.map((c) => `\`${c.name}\` (${c.kind}, C=${c.c}${c.alpha !== undefined ? `, α=${c.alpha}` : ""}, ${c.maxIterations ?? 150} L-BFGS iterations)`).join("; ")}.

| variant | ${colNames.join(" | ")} |
|---|${colNames.map(() => "---").join("|")}|
${triedNames.map((n) => `| ${names.includes(n) ? n : n} | ${(o.selection.tried[n] ?? []).map((v) => (Number.isFinite(v) ? fmt(v) : "–")).join(" | ")} |`).join("\n")}

${
  cfg.lengthBalance
    ? `Training rows (fitting fold and final fit) are **length-balanced**: within each word-count bucket (${LENGTH_BUCKETS.join(", ")} words as edges) the positives and negatives of each label are reweighted so the bucket's weighted rate equals the label's overall rate (\`lengthBalancedWeights\`, \`src/training/calibration.ts\`). Short comments in this sample are far more often toxic than long ones; without the weights a short benign text inherits that lean from its length alone.\n\n`
    : ""
}${
  cfg.borrowFrom !== undefined
    ? `Labels may **borrow** \`${cfg.labels[cfg.borrowFrom]}\`'s logit: λ·(sd ratio) × its chosen logit is added to theirs, λ ∈ {0.25, 0.5, 1} picked on the fold, kept only when it raises the label's validation AUC (row \`borrow\` above; still one linear model).\n\n`
    : ""
}${(cfg.selectionNotes ?? []).map((n) => `- ${n}`).join("\n")}

Chosen: ${o.selection.columns.map((c, k) => `${colNames[k]} → \`${c.parts.join(" + ")}\`${c.borrow ? ` + ${c.borrow.weight.toFixed(3)} × \`${colNames[c.borrow.from]}\`'s logit` : ""} (${fmt(c.validation_auc)} ± ${fmt(c.validation_auc_sd)}${c.validation_auc_folds ? `; folds ${c.validation_auc_folds.map((v) => fmt(v)).join(", ")}` : ""})`).join("; ")}.

${o.gate ? `${gateParagraph(cfg, o)}\n\n` : ""}Validation figures: ${Object.entries(o.validation)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(", ")}.

## Test split (reported once)

Baseline: scikit-learn TF-IDF (word 1–2 + char_wb 2–5) + LogisticRegression(C=4). The bar is **${cfg.bar.metric} ≥ ${cfg.bar.baseline}** on the shipped int8 model: **${pass ? "met" : "NOT met"}**. Issue #16's target, ${cfg.bar.metric} ≥ ${cfg.target}: **${(o.test.int8[cfg.bar.metric] as number) >= cfg.target ? "met" : "NOT met"}** (${fmt(o.test.int8[cfg.bar.metric])}).

| metric | int8 (shipped) | float32 |
|---|---|---|
${keys.map((k) => `| ${k === cfg.bar.metric ? `**${k}**` : k} | ${fmt(o.test.int8[k])} | ${fmt(o.test.float[k])} |`).join("\n")}

Metrics without a threshold in their name use 0.5 (binary) or are threshold-free (ROC-AUC).
${
  o.classTable
    ? `
Per class (shipped int8 model, threshold 0.5, test split):

| class | precision | recall | F1 | support |
|---|---|---|---|---|
${o.classTable.map((r) => `| ${r.label} | ${fmt(r.precision)} | ${fmt(r.recall)} | ${fmt(r.f1)} | ${r.support} |`).join("\n")}
`
    : ""
}
## Calibration

Platt scaling per logit (p = sigmoid(a·z + b)), fitted on ${o.selection.folds === 1 ? "the validation fold's logits" : "the pooled out-of-fold logits"}: ${o.selection.platt.map((p, k) => `${colNames[k]} a=${p.a.toFixed(3)}, b=${p.b.toFixed(3)}`).join("; ")}; folded into the weights and bias.${
    cfg.deploymentPrior
      ? ` Then **prior correction** to the deployment prior — ${cfg.deploymentPrior.source} — by adding logit(π_deploy) − logit(π_sample) to each label's logit (π_sample = the train split's rate: ${sampleRates.map((r, k) => `${cfg.labels[k]} ${(100 * r).toFixed(2)} %`).join(", ")}; shifts ${shift.map((s) => s.toFixed(3)).join(", ")}). The shipped scores are probabilities for a population with the deployment prior; the test split has the sample's prior, so their calibration is measured with the test rows reweighted (positives × π_deploy/π_sample, negatives × (1−π_deploy)/(1−π_sample)).`
      : ""
  }

| label | setting | Brier | ECE (15 bins) |
|---|---|---|---|
${o.calibration.map((c) => `| ${c.label} | ${c.setting} | ${fmt(c.brier)} | ${fmt(c.ece15)} |`).join("\n")}

${o.fairness ? fairnessSection(cfg, o.fairness) : ""}## Featurizer

\`src/featurizer/text.ts\` (version 1${cfg.spec.norm === "l2-blocks" ? '; `norm: "l2-blocks"`: word n-grams hash into the lower half of the buckets, character n-grams into the upper half, and each half is L2-normalised on its own' : ""}):

\`\`\`json
${JSON.stringify(cfg.spec, null, 2)}
\`\`\`

## Limitations

${cfg.limitations.map((l) => `- ${l}`).join("\n")}

\`reference.json\` holds hand-written texts (not from the dataset) with the trainer's int8 (dequantized) and float scores, for the Worker's parity tests.
`;
}

/** The card's section on issue #28's identity-and-address evaluation of the shipped int8 model. */
function fairnessSection(cfg: ModelConfig, f: NonNullable<TextTrainingOutcome["fairness"]>): string {
  const tweetCount = positiveTweets([4]).length;
  const title = ["`", cfg.id, "` version ", cfg.version].join("");
  return `## Fairness: identity and address (issue #28)

The shipped int8 model at its thresholds on the identity-and-address set of \`src/training/fairness.ts\` (generated for this project: ${f.report.terms} identity terms in 7 categories — sexuality, gender, ethnicity, religion, age, disability, nationality — in benign and toxic templates of 5 families: first person, second person, third person with a name, third person with an occupation, short phrases; every sentence mentions one term). AUCs rank by the \`toxic\` score; a sentence counts as **flagged** when any label reaches its threshold (a non-empty \`flagged\` in a response). Subgroup, BPSN and BNSP AUC as defined by Borkan et al. 2019, the background of a term being the sentences of the other terms (with the same number of sentences per term, the mean BPSN and the mean BNSP are the same number). Held-out terms never occur in the training augmentation. Reproduce: \`npm run fairness -- ${cfg.id} --terms\`; \`test/predict-models.test.ts\` asserts the figures through the Worker.

${fairnessMarkdown(title, f.report, f.testTweets ?? Number.NaN, tweetCount, true)}

Positive tweets flagged on the sentiment data's fold 3 (the selection's check, never augmentation): ${(100 * f.devTweets).toFixed(1)} %.

${(cfg.fairnessNotes ?? []).map((n) => `- ${n}`).join("\n")}

`;
}

/** The card's account of a gated column (`--gate-identity-hate`). */
function gateParagraph(cfg: ModelConfig, o: TextTrainingOutcome): string {
  const g = o.gate as GateOutcome;
  const label = cfg.labels[g.column] as string;
  const by = cfg.labels[g.by] as string;
  const col = o.selection.columns[g.column];
  return `**Gated \`${label}\`** (issue #28): the served score is \`${by}\`'s shipped score × P(\`${label}\` | \`${by}\`), two sigmoids multiplied in the graph (\`Gate\`, src/training/linear-model.ts; ONNX tail in src/onnx/text.ts). The conditional head is fitted **without** the identity masks and is **not capped**, on the train rows whose \`${by}\` label is 1 (its validation: the same folds' ${g.conditionalRows} such rows, ${g.conditionalPositives} positive); candidate chosen by its conditional CV AUC (${Object.entries(
    g.tried,
  )
    .map(([n, v]) => `${n} ${fmt(v)}`)
    .join(
      ", ",
    )}): \`${col?.parts.join(" + ")}\` (${fmt(g.conditionalAuc)}), Platt-calibrated on those rows' pooled out-of-fold logits and moved from the sample's rate of \`${label}\` among \`${by}\` rows (${(100 * g.sampleRate).toFixed(2)} %) to the deployment prior's (${(100 * g.deployRate).toFixed(2)} %). The identity words may lift \`${label}\` only as far as \`${by}\`'s score allows: a benign sentence about an identity scores low on \`${by}\`, so on \`${label}\` too. The \`${label}\` row of the figures above is the product's (CV AUC over all validation rows; threshold chosen on the pooled out-of-fold products).`;
}
