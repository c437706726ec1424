/**
 * Trains the `mlp` network variant of a text model (`models/<id>-mlp/`): the fastText-style
 * embedding bag → hidden layer → heads of `src/training/embedbag.ts`, with the protocol of the
 * linear models (`src/training/select.ts`): the epoch count and the learning rate are picked on the
 * validation fold (train rows with i % 5 == 3) by networks fitted on the rest of the train split,
 * Platt calibration (+ the deployment prior correction for toxicity) and thresholds are fitted on
 * the fold, then the network is refitted on the whole train split and scored once on the test split.
 *
 *   npm run train -- <toxicity|sentiment|spam>-mlp [--dry-run]
 */

import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { textManifestSchema } from "../../src/contracts/manifest";
import { FEATURIZER_NAME, FEATURIZER_VERSION, type TextFeaturizerSpec } from "../../src/featurizer/text";
import { exportEmbedBagModel } from "../../src/onnx/text";
import { priorWeights } from "../../src/training/calibration";
import {
  DEFAULT_EMBEDBAG,
  type EmbedBagHyperparameters,
  type EmbedBagModel,
  embedBagLogits,
  embedBagScoreText,
  quantizeEmbedBag,
  trainEmbedBag,
} from "../../src/training/embedbag";
import {
  accuracy,
  featurizeTexts,
  finiteMean,
  precisionRecallF1Macro,
  rocAuc,
  type SparseMatrix,
  sparseRow,
  type TrainingRow,
} from "../../src/training/index";
import { priorShift } from "../../src/training/nb";
import { calibrationFigures, columnTruth, fitPlatt } from "../../src/training/select";
import { fmt } from "./card";
import { ROOT, SEED, TRAINING_CATALOGUE } from "./catalogue";
import { chooseThreshold, columnLabel, encodeRows, sig, validationSplit } from "./protocol";

/** 2^17 buckets × 32 dimensions of int8 embeddings = 4 MiB, under the 5 MB model limit. */
const MLP_SPEC: TextFeaturizerSpec = {
  name: FEATURIZER_NAME,
  version: FEATURIZER_VERSION,
  buckets: 2 ** 17,
  word_ngrams: [1, 2],
  char_ngrams: [2, 5],
  seed: 0,
  tf: "sublinear",
  norm: "l2",
};

/** Learning rates compared on the validation fold, each for up to `MAX_EPOCHS` epochs (kept small: training shares two cores). */
const LEARNING_RATES = [1e-3];
const MAX_EPOCHS = 5;

function logitsOf(model: EmbedBagModel, X: SparseMatrix): Float64Array[] {
  const out: Float64Array[] = [];
  for (let i = 0; i < X.rows; i++) out.push(embedBagLogits(model, sparseRow(X, i)));
  return out;
}

export async function trainMlp(baseId: string, dryRun: boolean): Promise<void> {
  const cfg = TRAINING_CATALOGUE[baseId];
  if (!cfg) throw new Error(`unknown model ${baseId}`);
  const id = `${baseId}-mlp`;
  const log = (line: string): void => console.log(`[${id}] ${line}`);
  const t0 = Date.now();
  const data = cfg.load();
  const { fitRows, valRows } = validationSplit(data);
  const enc = (rows: readonly TrainingRow[]) => encodeRows(cfg, rows);
  const feat = (rows: readonly TrainingRow[]) =>
    featurizeTexts(
      rows.map((r) => r.text),
      MLP_SPEC,
    );
  const fitX = feat(fitRows);
  const valX = feat(valRows);
  const valT = enc(valRows);
  const C = valT.columns;
  const colAucs = (L: Float64Array[], T: ReturnType<typeof enc>): number[] =>
    Array.from({ length: C }, (_, k) => {
      const { y, known } = columnTruth(T, k);
      return rocAuc(
        L.map((z) => z[k] as number).filter((_, i) => known[i]),
        y.filter((_, i) => known[i]),
      );
    });
  // Selection: learning rate × epochs by the validation fold's mean ROC-AUC.
  const tried: { lr: number; epoch: number; auc: number[] }[] = [];
  let best = { lr: 0, epoch: 0, score: -1, logits: [] as Float64Array[] };
  for (const lr of LEARNING_RATES) {
    const hp: EmbedBagHyperparameters = { ...DEFAULT_EMBEDBAG, learningRate: lr, epochs: MAX_EPOCHS };
    const started = Date.now();
    trainEmbedBag({
      X: fitX,
      targets: enc(fitRows),
      task: cfg.task,
      labels: cfg.labels,
      spec: MLP_SPEC,
      hyperparameters: hp,
      seed: SEED,
      onEpoch: (epoch, model) => {
        const L = logitsOf(model, valX);
        const auc = colAucs(L, valT);
        tried.push({ lr, epoch, auc });
        const score = finiteMean(auc);
        log(`lr ${lr} epoch ${epoch}: validation AUC ${score.toFixed(4)} (${Date.now() - started} ms)`);
        if (score > best.score) best = { lr, epoch, score, logits: L };
      },
    });
  }
  log(`chosen lr ${best.lr}, ${best.epoch} epochs (validation AUC ${best.score.toFixed(4)})`);
  const allT = enc(data.train);
  const sampleRates = Array.from({ length: C }, (_, k) => {
    const { y, known } = columnTruth(allT, k);
    const ys = y.filter((_, i) => known[i]);
    return ys.reduce((a, b) => a + b, 0) / ys.length;
  });
  const deploy = cfg.deploymentPrior?.rates;
  const shift = deploy ? priorShift(sampleRates, deploy) : new Array<number>(C).fill(0);
  const platt = Array.from({ length: C }, (_, k) => {
    const { y, known } = columnTruth(valT, k);
    return fitPlatt(
      best.logits.map((z) => z[k] as number).filter((_, i) => known[i]),
      y.filter((_, i) => known[i]),
    );
  });
  const thresholds: Record<string, number> = {};
  const validation: Record<string, number> = {};
  for (let k = 0; k < C; k++) {
    const { y, known } = columnTruth(valT, k);
    const pl = platt[k] as { a: number; b: number };
    const p = best.logits
      .map((z) => sig(pl.a * (z[k] as number) + pl.b + (shift[k] as number)))
      .filter((_, i) => known[i]);
    const yk = y.filter((_, i) => known[i]);
    const w = deploy ? priorWeights(yk, sampleRates[k] as number, deploy[k] as number) : undefined;
    thresholds[columnLabel(cfg, k)] = Number(chooseThreshold(cfg.thresholdRule, p, yk, w).toFixed(4));
  }
  const bestAuc = tried.find((t) => t.lr === best.lr && t.epoch === best.epoch)?.auc ?? [];
  if (cfg.task === "multilabel") {
    cfg.labels.forEach((l, k) => {
      validation[`roc_auc_${l}`] = bestAuc[k] as number;
    });
    validation.roc_auc_mean = best.score;
  } else {
    validation.roc_auc = best.score;
    const { y } = columnTruth(valT, 0);
    const pl = platt[0] as { a: number; b: number };
    validation.accuracy = accuracy(
      best.logits.map((z) => (sig(pl.a * (z[0] as number) + pl.b) >= 0.5 ? 1 : 0)),
      y,
    );
  }
  log(`thresholds ${JSON.stringify(thresholds)}`);

  // Refit on the whole train split with the chosen settings; fold Platt + prior shift into the heads.
  const started = Date.now();
  const raw = trainEmbedBag({
    X: feat(data.train),
    targets: allT,
    task: cfg.task,
    labels: cfg.labels,
    spec: MLP_SPEC,
    hyperparameters: { ...DEFAULT_EMBEDBAG, learningRate: best.lr, epochs: best.epoch },
    seed: SEED,
  });
  const trainingMs = Date.now() - started;
  const H = raw.hidden;
  const w2 = Float32Array.from(raw.w2, (w, j) => w * (platt[Math.floor(j / H)]?.a as number));
  const b2 = Float32Array.from(
    raw.b2,
    (b, k) => (platt[k]?.a as number) * b + (platt[k]?.b as number) + (shift[k] as number),
  );
  const model = quantizeEmbedBag({ ...raw, w2, b2 });

  // Test split, once.
  const testX = feat(data.test);
  const testT = enc(data.test);
  const L = logitsOf(model, testX);
  const test: Record<string, number> = { rows: data.test.length };
  const calibration: { label: string; setting: string; brier: number; ece15: number }[] = [];
  const aucs = colAucs(L, testT);
  for (let k = 0; k < C; k++) {
    const { y, known } = columnTruth(testT, k);
    const yk = y.filter((_, i) => known[i]);
    const zk = L.map((z) => z[k] as number).filter((_, i) => known[i]);
    const label = columnLabel(cfg, k);
    const shipped = zk.map(sig);
    if (cfg.task === "multilabel") test[`roc_auc_${label}`] = aucs[k] as number;
    if (deploy) {
      const w = priorWeights(yk, sampleRates[k] as number, deploy[k] as number);
      calibration.push({
        label,
        setting: "sample-prior scores (before the prior correction), test split as is",
        ...calibrationFigures(
          zk.map((z) => sig(z - (shift[k] as number))),
          yk,
        ),
      });
      calibration.push({
        label,
        setting: "shipped scores, test split reweighted to the deployment prior",
        ...calibrationFigures(shipped, yk, w),
      });
    } else {
      calibration.push({ label, setting: "shipped scores, test split", ...calibrationFigures(shipped, yk) });
    }
    const t = thresholds[label] as number;
    const suffix = cfg.task === "binary" ? "" : `_${label}`;
    test[`false_positives_at_threshold${suffix}`] = shipped.filter((v, i) => v >= t && yk[i] === 0).length;
    test[`recall_at_threshold${suffix}`] =
      shipped.filter((v, i) => v >= t && yk[i] === 1).length / Math.max(1, yk.filter((v) => v === 1).length);
    if (cfg.task === "binary") {
      const pred = shipped.map((v) => (v >= 0.5 ? 1 : 0));
      test.accuracy = accuracy(pred, yk);
      test.roc_auc = aucs[0] as number;
      const prf = precisionRecallF1Macro(pred, yk, 2);
      test.precision_macro = prf.precision;
      test.recall_macro = prf.recall;
      test.f1_macro = prf.f1;
      const predT = shipped.map((v) => (v >= t ? 1 : 0));
      test.accuracy_at_threshold = accuracy(predT, yk);
      test.f1_macro_at_threshold = precisionRecallF1Macro(predT, yk, 2).f1;
    }
  }
  if (cfg.task === "multilabel") test.roc_auc_mean = finiteMean(aucs);
  log(`TEST ${JSON.stringify(test)}`);
  for (const c of calibration)
    log(`calibration ${c.label} ${c.setting}: brier ${fmt(c.brier)} ece15 ${fmt(c.ece15)}`);
  const texts = [...cfg.referenceTexts, ...(cfg.probes ?? [])];
  for (const t of texts)
    log(`${JSON.stringify(Array.from(embedBagScoreText(model, t), (x) => Number(x.toFixed(3))))} ${t}`);
  if (dryRun) return;

  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(test)) metrics[k === "rows" ? "test_rows" : `test_${k}`] = v;
  for (const [k, v] of Object.entries(validation)) metrics[`validation_${k}`] = v;
  metrics.train_rows = data.train.length;
  metrics.validation_rows = valRows.length;
  const description = `${cfg.description.split(":")[0]}: fastText-style network (hashed word 1-2 + char 2-5 n-gram embedding bag, ${raw.dim} dims → ${raw.hidden} ReLU → heads), int8.`;
  const { onnx, manifest } = await exportEmbedBagModel(model, { id, version: "1", description, metrics });
  const full = textManifestSchema.parse({
    ...manifest,
    networks: { linear: baseId, mlp: id },
    thresholds,
  });
  if (onnx.byteLength > 5 * 1024 * 1024) throw new Error(`${id}: model is ${onnx.byteLength} bytes (> 5 MB)`);
  const dir = path.join(ROOT, "models", id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "model.onnx"), onnx);
  writeFileSync(path.join(dir, "manifest.json"), `${JSON.stringify(full, null, 2)}\n`);
  const round = (xs: Float64Array): number[] => Array.from(xs, (x) => Number(x.toPrecision(9)));
  writeFileSync(
    path.join(dir, "reference.json"),
    `${JSON.stringify({ texts, scores: texts.map((t) => round(embedBagScoreText(model, t))) }, null, 2)}\n`,
  );
  const card = `# Model card: \`${id}\` (version 1, network \`mlp\`)

${description} Selected with \`"network": "mlp"\` on model \`${baseId}\` (or by its id).

- Task: **${cfg.task}**, labels: ${cfg.labels.map((l) => `\`${l}\``).join(", ")}; same inputs/outputs as the linear graph.
- Format: ONNX (opset 17, IR 8): Gather(E int8 [${MLP_SPEC.buckets}, ${raw.dim}]) → DequantizeLinear → × values → ReduceSum → Gemm(W1 int8 [${raw.hidden}, ${raw.dim}]) → Relu → Gemm(W2 int8 [${raw.columns}, ${raw.hidden}]) → Sigmoid. Per-channel int8 scales, float32 biases.
- Size: **${onnx.byteLength} bytes**; sha256 \`${full.sha256}\`; created ${full.created_at} by \`npm run train -- ${id}\` (seed ${SEED}); final fit **${(trainingMs / 1000).toFixed(1)} s** (one core).
- Flagging thresholds (validation fold): ${Object.entries(thresholds)
    .map(([l, t]) => `\`${l}\` ${t}`)
    .join(", ")}.

## Data and protocol

${cfg.source.map((s) => `- ${s}`).join("\n")}

Same split as \`${baseId}\`, selection on a fixed validation fold (not k-fold CV): test rows \`i % 5 == 4\` (scored once, below); validation fold \`i % 5 == 3\` (${valRows.length} rows); networks for the selection were fitted on \`i % 5 ∈ {0, 1, 2}\` (${fitRows.length} rows); the final network was refitted on the whole train split (${data.train.length} rows) with the chosen learning rate and epoch count. Training: Adam (β 0.9/0.999, per-row steps, lazy moments for the embedding rows), binary cross-entropy per label, embedding init U(±${DEFAULT_EMBEDBAG.initScale}), Glorot-uniform dense layers, heads' biases started at the label log-odds.

## Selection (validation fold, mean ROC-AUC over ${C === 1 ? "the logit" : "labels"})

| learning rate | ${Array.from({ length: MAX_EPOCHS }, (_, e) => `epoch ${e + 1}`).join(" | ")} |
|---|${Array.from({ length: MAX_EPOCHS }, () => "---").join("|")}|
${LEARNING_RATES.map(
  (lr) =>
    `| ${lr} | ${tried
      .filter((t) => t.lr === lr)
      .map((t) => fmt(finiteMean(t.auc)))
      .join(" | ")} |`,
).join("\n")}

Chosen: learning rate ${best.lr}, ${best.epoch} epochs. Validation: ${Object.entries(validation)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(", ")}.

## Test split (int8, reported once)

| metric | value |
|---|---|
${Object.entries(test)
  .filter(([k]) => k !== "rows")
  .map(([k, v]) => `| ${k} | ${fmt(v)} |`)
  .join("\n")}

## Calibration

Platt scaling per head fitted on the validation fold (${platt.map((p, k) => `${columnLabel(cfg, k)} a=${p.a.toFixed(3)}, b=${p.b.toFixed(3)}`).join("; ")})${deploy ? `, then the prior correction of \`${baseId}\` (shifts ${shift.map((s) => s.toFixed(3)).join(", ")})` : ""}, folded into the heads.

| label | setting | Brier | ECE (15 bins) |
|---|---|---|---|
${calibration.map((c) => `| ${c.label} | ${c.setting} | ${fmt(c.brier)} | ${fmt(c.ece15)} |`).join("\n")}

## Featurizer

\`\`\`json
${JSON.stringify(MLP_SPEC, null, 2)}
\`\`\`

## Limitations

${cfg.limitations.map((l) => `- ${l}`).join("\n")}
`;
  writeFileSync(path.join(dir, "MODEL_CARD.md"), card);
  log(`wrote models/${id}/ (${onnx.byteLength} bytes) in ${Date.now() - t0} ms`);
}
