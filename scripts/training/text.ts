/**
 * Trains, quantizes, evaluates and exports one text model of the catalogue (the linear models:
 * selection on the validation fold(s), final fit on the train split, one scoring of the test split)
 * and writes `models/<id>/{model.onnx,manifest.json,MODEL_CARD.md,reference.json}` (unless dry run).
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { deserialize, serialize } from "node:v8";
import { textManifestSchema } from "../../src/contracts/manifest";
import { normalizeText, wordTokens } from "../../src/featurizer/text";
import { exportModel } from "../../src/onnx/text";
import { lengthBalancedWeights, priorWeights, standardDeviation } from "../../src/training/calibration";
import { capIdentityAndAddress } from "../../src/training/cap";
import {
  type FairnessReport,
  fairnessReport,
  fairnessSummary,
  identityEvalSet,
  scoredFromLabels,
} from "../../src/training/fairness";
import { identityAugmentation } from "../../src/training/fairness-augment";
import {
  accuracy,
  evaluateModel,
  featurizeTexts,
  finiteMean,
  type Gate,
  precisionRecallF1Macro,
  quantizeInt8,
  scoreMatrix,
  scoreText,
  sparseRows,
  type TrainingRow,
} from "../../src/training/index";
import { logitOf, priorShift } from "../../src/training/nb";
import {
  assembleSelected,
  calibrationFigures,
  columnTruth,
  conditionalTargets,
  type Fold,
  foldAucs,
  logitMatrix,
  type Selection,
  selectLinear,
} from "../../src/training/select";
import type { EncodedTargets } from "../../src/training/trainer";
import { fmt, type GateOutcome, modelCard, type TextTrainingOutcome } from "./card";
import { augmentToxicity, type ModelConfig, positiveTweets, ROOT, SEED } from "./catalogue";
import {
  chooseThreshold,
  columnLabel,
  encodeRows,
  maskIdentityFeatures,
  sig,
  validationFolds,
} from "./protocol";

/**
 * What selection and the final fit hand to the test-split scoring (`--save-state` / `--resume`; the
 * file is `node:v8`'s serialization of this object). `scripts/cap-identity.ts --from-state` reads it too.
 */
export interface RunState {
  selection: Selection;
  /** Chosen on the pooled out-of-fold (or validation-fold) scores of the uncapped model. */
  thresholds: Record<string, number>;
  validation: Record<string, number>;
  shift: number[];
  sampleRates: number[];
  /** The float model refitted on the whole train split (before int8 and before any cap). */
  model: ReturnType<typeof assembleSelected>;
  trainingMs: number;
  fitRowCount: number;
  valRowCount: number;
  /**
   * `--gate-identity-hate` (issue #28): the gated column's conditional head. `selection.columns` and
   * `platt` hold its choice and Platt parameters, `shift` its prior shift (to `deployRate`), and the
   * column's `validation_auc` is the shipped product's.
   */
  gate?: GateOutcome;
}

/** A selection run's saved state (`--no-test --save-state=<file>`). */
export function readRunState(file: string): RunState {
  return deserialize(readFileSync(file)) as RunState;
}

export async function trainTextModel(
  cfg: ModelConfig,
  dryRun: boolean,
  over: Record<string, string>,
): Promise<void> {
  const t0 = Date.now();
  const data = cfg.augment ? augmentToxicity(cfg.load(), cfg.augment) : cfg.load();
  if (cfg.maskIdentity)
    data.notes.push(
      "Fitted without identity n-grams (issue #28, `--mask-identity`): every training row's feature values in the identity buckets of `src/training/cap.ts` (the `augmentTerms()` words' unigrams, two-word bigrams, character 4/5-grams; never the evaluation's held-out terms) are 0 in the CV folds and the final fit, so the other n-grams are fitted around them; validation rows are scored with all their n-grams, as at serving.",
    );
  if (cfg.maskIdentityBigrams)
    data.notes.push(
      "And per row the word bigrams that contain one of those words (`--mask-identity=bigrams`), where a masked word's lean would otherwise move.",
    );
  if (cfg.maskIdentityChunks)
    data.notes.push(
      'And per row every character n-gram of a chunk whose letters are an identity word or that word + "s" (`--mask-identity=chunks`: "gay", "gay.", "gays"; the featurizer\'s 2- and 3-grams of the word carried its lean once the 4/5-grams were masked).',
    );
  const augmentWeight = cfg.augment?.identityWeight ?? 1;
  const identityRowTexts = new Set(cfg.augment?.identity ? identityAugmentation().map((r) => r.text) : []);
  const log = (line: string): void => console.log(`[${cfg.id}] ${line}`);
  const enc = (rows: readonly TrainingRow[]) => encodeRows(cfg, rows);
  // Targets to fit on: with `lengthBalance`, the mask carries the length-balancing row weights.
  const forFitting = (rows: readonly TrainingRow[], targets: EncodedTargets): EncodedTargets => {
    const balanced = cfg.lengthBalance
      ? lengthBalancedWeights(
          rows.map((r) => wordTokens(normalizeText(r.text)).length),
          targets,
        )
      : targets;
    if (augmentWeight === 1 || !data.augmented) return balanced;
    // Generated identity rows carry `identityWeight` (tweets: weight 1, they are real text).
    const m = Float64Array.from(balanced.m);
    const C = balanced.columns;
    rows.forEach((r, i) => {
      if (!data.augmented?.has(r) || !Array.isArray(r.target) || r.target.length !== C) return;
      if (identityRowTexts.has(r.text))
        for (let k = 0; k < C; k++) m[i * C + k] = (m[i * C + k] as number) * augmentWeight;
    });
    return { ...balanced, m };
  };
  const feat = (rows: readonly TrainingRow[]) =>
    featurizeTexts(
      rows.map((r) => r.text),
      cfg.spec,
    );
  const selectAndFit = (): RunState => {
    const features = feat(data.train);
    const trainX = maskIdentityFeatures(cfg, cfg.spec, data.train, features, log).X;
    const cuts = validationFolds(data, Number(over.folds ?? cfg.folds ?? 1));
    const rowsOf = (idx: readonly number[]) => idx.map((t) => data.train[t] as TrainingRow);
    const folds: Fold[] = cuts.map(({ fit, val }) => ({
      fitX: sparseRows(trainX, fit),
      fitTargets: forFitting(rowsOf(fit), enc(rowsOf(fit))),
      // Scored as at serving: all the text's n-grams (masked buckets carry the weights the fit gave them).
      valX: sparseRows(features, val),
      valTargets: enc(rowsOf(val)),
    }));
    const fitRowCount = cuts[0]?.fit.length ?? 0;
    const valRowCount = cuts.reduce((n, c) => n + c.val.length, 0);
    log(
      `${cuts.length === 1 ? "fixed validation fold" : `${cuts.length}-fold CV`}: fit ${fitRowCount} rows, validation ${valRowCount}, test ${data.test.length} (load + featurize ${Date.now() - t0} ms)`,
    );
    const { selection, valProbabilities, valTargets } = selectLinear({
      folds,
      task: cfg.task,
      labels: cfg.labels,
      spec: cfg.spec,
      candidates: cfg.candidates,
      seed: SEED,
      ...(cfg.borrowFrom !== undefined && { borrowFrom: cfg.borrowFrom }),
      log,
    });
    const C = valTargets.columns;
    // Sample rates per column on the whole train split (known labels only; augmentation rows left out,
    // so adding them does not move the prior correction).
    const allTargets = enc(data.train);
    const rateOf = (targets: EncodedTargets, k: number): number => {
      const { y, known } = columnTruth(targets, k);
      const ys = y.filter((_, i) => known[i] && !data.augmented?.has(data.train[i] as TrainingRow));
      return ys.reduce((a, b) => a + b, 0) / ys.length;
    };
    const sampleRates = Array.from({ length: C }, (_, k) => rateOf(allTargets, k));
    const deploy = cfg.deploymentPrior?.rates;
    const shift = deploy ? priorShift(sampleRates, deploy) : new Array<number>(C).fill(0);
    const shifted = (p: number, by: number): number =>
      sig(logitOf(Math.min(1 - 1e-12, Math.max(1e-12, p))) + by);
    /** The conditional head of `g.column` given `g.by`, and the product's pooled validation scores. */
    const selectGate = (g: Gate) => {
      const label = cfg.labels[g.column] as string;
      const cond = (t: EncodedTargets) => conditionalTargets(t, g.column, g.by);
      const condFolds: Fold[] = cuts.map(({ fit }, f) => ({
        fitX: sparseRows(features, fit),
        fitTargets: forFitting(rowsOf(fit), cond(enc(rowsOf(fit)))),
        valX: (folds[f] as Fold).valX,
        valTargets: cond((folds[f] as Fold).valTargets),
      }));
      log(
        `gate: ${label} = ${cfg.labels[g.by]}'s score × P(${label} | ${cfg.labels[g.by]}), fitted without masks`,
      );
      const picked = selectLinear({
        folds: condFolds,
        task: cfg.task,
        labels: [label],
        spec: cfg.spec,
        candidates: cfg.candidates,
        seed: SEED,
        log,
      });
      const sampleRate = rateOf(cond(allTargets), 0);
      const deployRate = deploy ? (deploy[g.column] as number) / (deploy[g.by] as number) : sampleRate;
      const condShift = logitOf(deployRate) - logitOf(sampleRate);
      const product = valProbabilities.map(
        (row, i) =>
          shifted(row[g.by] as number, shift[g.by] as number) *
          shifted(picked.valProbabilities[i]?.[0] as number, condShift),
      );
      // Per-fold AUC of the product, as every other column's choice is measured.
      const { mean, folds: per } = foldAucs(folds, product, g.column);
      const condCol = picked.selection.columns[0] as Selection["columns"][number];
      selection.columns[g.column] = {
        ...condCol,
        validation_auc: mean,
        validation_auc_sd: standardDeviation(per.filter(Number.isFinite), 1),
        validation_auc_folds: per,
      };
      selection.platt[g.column] = picked.selection.platt[0] as { a: number; b: number };
      for (const [name, aucs] of Object.entries(picked.selection.tried)) {
        const row = Array.from({ length: C }, () => Number.NaN);
        row[g.column] = aucs[0] as number;
        selection.tried[`${name} (${label} given ${cfg.labels[g.by]})`] = row;
      }
      shift[g.column] = condShift;
      // The conditional validation rows, pooled over the folds.
      const condVal = columnTruth(picked.valTargets, 0);
      const outcome: GateOutcome = {
        column: g.column,
        by: g.by,
        conditionalAuc: condCol.validation_auc,
        conditionalRows: condVal.known.filter(Boolean).length,
        conditionalPositives: condVal.y.filter((y, i) => y === 1 && condVal.known[i]).length,
        sampleRate,
        deployRate,
        tried: Object.fromEntries(
          Object.entries(picked.selection.tried).map(([k, v]) => [k, v[0] as number]),
        ),
      };
      log(
        `gate: conditional ${condCol.parts.join("+")} AUC ${condCol.validation_auc.toFixed(4)} on ${outcome.conditionalRows} rows (${outcome.conditionalPositives} positive); product AUC ${mean.toFixed(4)} folds ${per.map((v) => v.toFixed(4)).join("/")}; rate ${sampleRate.toFixed(4)} → ${deployRate.toFixed(4)}`,
      );
      return { outcome, selection: picked.selection, product, condShift, cond };
    };
    // Issue #28's gate: the gated column is re-chosen as a conditional head on unmasked features,
    // and its validation scores become the product the graph serves.
    const gate = cfg.gate ? selectGate(cfg.gate) : undefined;
    const thresholds: Record<string, number> = {};
    const validation: Record<string, number> = {};
    for (let k = 0; k < C; k++) {
      const { y, known } = columnTruth(valTargets, k);
      const p = (
        gate && k === gate.outcome.column
          ? gate.product
          : valProbabilities.map((row) => shifted(row[k] as number, shift[k] as number))
      ).filter((_, i) => known[i]);
      const yk = y.filter((_, i) => known[i]);
      const w = deploy ? priorWeights(yk, sampleRates[k] as number, deploy[k] as number) : undefined;
      const t = chooseThreshold(cfg.thresholdRule, p, yk, w);
      thresholds[columnLabel(cfg, k)] = Number(t.toFixed(4));
      const col = selection.columns[k];
      const name = cfg.task === "binary" ? "" : `_${cfg.labels[k]}`;
      validation[`roc_auc${name}`] = col?.validation_auc as number;
      validation[`roc_auc${name}_sd`] = col?.validation_auc_sd as number;
    }
    if (cfg.task === "multilabel") {
      validation.roc_auc_mean = finiteMean(selection.columns.map((c) => c.validation_auc));
    } else {
      const { y } = columnTruth(valTargets, 0);
      const p = valProbabilities.map((r) => r[0] as number);
      validation.accuracy = accuracy(
        p.map((v) => (v >= 0.5 ? 1 : 0)),
        y,
      );
      const t = Object.values(thresholds)[0] as number;
      validation.f1_macro_at_threshold = precisionRecallF1Macro(
        p.map((v) => (v >= t ? 1 : 0)),
        y,
        2,
      ).f1;
    }
    log(
      `selection ${JSON.stringify(selection.columns.map((c) => c.parts.join("+") + (c.borrow ? ` + ${c.borrow.weight.toFixed(3)}·${cfg.labels[c.borrow.from]}` : "") + (c.validation_auc_folds ? ` folds ${c.validation_auc_folds.map((v) => v.toFixed(4)).join("/")}` : "")))}`,
    );
    log(`validation ${JSON.stringify(validation)}`);
    log(
      `thresholds ${JSON.stringify(thresholds)} shift ${JSON.stringify(shift.map((x) => Number(x.toFixed(3))))}`,
    );

    const trainStart = Date.now();
    const model = assembleSelected({
      X: trainX,
      targets: forFitting(data.train, allTargets),
      task: cfg.task,
      labels: cfg.labels,
      spec: cfg.spec,
      candidates: cfg.candidates,
      selection,
      shift,
      seed: SEED,
      log,
    });
    if (gate) {
      // The conditional head on the unmasked features of the rows where the gate's label is 1.
      const { column, by } = gate.outcome;
      const head = assembleSelected({
        X: features,
        targets: forFitting(data.train, gate.cond(allTargets)),
        task: cfg.task,
        labels: [cfg.labels[column] as string],
        spec: cfg.spec,
        candidates: cfg.candidates,
        selection: gate.selection,
        shift: [gate.condShift],
        seed: SEED,
        log,
      });
      for (let b = 0; b < cfg.spec.buckets; b++) model.weights[b * C + column] = head.weights[b] as number;
      model.bias[column] = head.bias[0] as number;
      model.gates = [{ column, by }];
    }
    const trainingMs = Date.now() - trainStart;

    return {
      selection,
      thresholds,
      validation,
      shift,
      sampleRates,
      model,
      trainingMs,
      fitRowCount,
      valRowCount,
      ...(gate && { gate: gate.outcome }),
    };
  };
  // `--resume=<file>`: a selection run's state saved by `--no-test --save-state=<file>` (same flags),
  // so the chosen run's test split is scored without repeating its cross-validation.
  const state: RunState = over.resume ? readRunState(over.resume) : selectAndFit();
  if (over.resume) log(`resumed the selection run's state from ${over.resume} (no refit)`);
  const {
    selection,
    thresholds,
    validation,
    shift,
    sampleRates,
    model,
    trainingMs,
    fitRowCount,
    valRowCount,
  } = state;
  const C = selection.columns.length;
  const deploy = cfg.deploymentPrior?.rates;
  // The float figures below are the uncapped float model's; the shipped int8 model carries the cap.
  // A gated column's conditional head is left uncapped: it only counts once the gate's label is.
  const uncapped = state.gate
    ? { [cfg.labels[state.gate.column] as string]: { identity: 1, address: 1 } }
    : {};
  const quantized = cfg.cap
    ? capIdentityAndAddress(quantizeInt8(model), cfg.cap.addressScale, uncapped)
    : quantizeInt8(model);
  // Issue #28: the identity evaluation and the flag rate on positive tweets of the sentiment data's
  // fold 3 (never augmentation), at this run's thresholds; part of every selection run's criterion.
  let fairness: { report: FairnessReport; devTweets: number; testTweets?: number } | undefined;
  if (cfg.fairness) {
    const scoreAll = (texts: readonly string[]) => texts.map((t) => scoreText(quantized, t));
    const flagRate = (texts: readonly string[]) =>
      scoredFromLabels(scoreAll(texts), cfg.labels, thresholds).filter((e) => e.flagged).length /
      Math.max(1, texts.length);
    const set = identityEvalSet();
    const report = fairnessReport(
      set,
      scoredFromLabels(scoreAll(set.map((e) => e.text)), cfg.labels, thresholds),
    );
    fairness = { report, devTweets: flagRate(positiveTweets([3])) };
    if (!over["no-test"]) fairness.testTweets = flagRate(positiveTweets([4]));
    log(
      `fairness ${fairnessSummary(report)}; positive tweets (sentiment fold 3) flagged ${fairness.devTweets.toFixed(4)}${fairness.testTweets === undefined ? "" : `; (sentiment test split) ${fairness.testTweets.toFixed(4)}`}`,
    );
    log(
      `fairness families ${JSON.stringify(report.per_family.map((f) => [f.family, Number(f.fpr.toFixed(4)), Number(f.tpr.toFixed(4))]))}`,
    );
    log(
      `fairness worst terms ${JSON.stringify(
        [...report.per_term]
          .sort((a, b) => a.bpsn_auc - b.bpsn_auc)
          .slice(0, 12)
          .map((t) => [t.term, Number(t.bpsn_auc.toFixed(3)), Number(t.fpr.toFixed(3))]),
      )}`,
    );
  }
  if (over["no-test"]) {
    // Selection runs: the validation figures above and the probes, never the test split.
    if (over["save-state"]) {
      writeFileSync(over["save-state"], serialize(state));
      log(
        `state saved to ${over["save-state"]} (finish with the same flags and --resume=${over["save-state"]})`,
      );
    }
    for (const t of [...cfg.referenceTexts, ...(cfg.probes ?? [])]) {
      log(`${JSON.stringify(Array.from(scoreText(quantized, t), (x) => Number(x.toFixed(3))))} ${t}`);
    }
    log("--no-test: test split not scored, nothing written");
    return;
  }

  // The test split, once, on the final model.
  const testX = feat(data.test);
  const testTargets = data.test.map((r) => r.target);
  const test = {
    float: evaluateModel(model, testX, testTargets),
    int8: evaluateModel(quantized, testX, testTargets),
  };
  const testEnc = enc(data.test);
  const calibration: TextTrainingOutcome["calibration"] = [];
  const testLogits = logitMatrix(quantized, testX);
  const testScores = scoreMatrix(quantized, testX);
  for (let k = 0; k < C; k++) {
    const { y, known } = columnTruth(testEnc, k);
    const yk = y.filter((_, i) => known[i]);
    const zk = testLogits.map((z) => z[k] as number).filter((_, i) => known[i]);
    const label = columnLabel(cfg, k);
    const gated = state.gate?.column === k;
    const shipped =
      cfg.task === "multilabel"
        ? testScores.map((p) => p[k] as number).filter((_, i) => known[i])
        : zk.map(sig);
    if (deploy && !gated) {
      const sampleScores = zk.map((z) => sig(z - (shift[k] as number)));
      const w = priorWeights(yk, sampleRates[k] as number, deploy[k] as number);
      calibration.push({
        label,
        setting: "sample-prior scores (before the prior correction), test split as is",
        ...calibrationFigures(sampleScores, yk),
      });
      calibration.push({
        label,
        setting: "shipped scores, test split reweighted to the deployment prior",
        ...calibrationFigures(shipped, yk, w),
      });
      calibration.push({
        label,
        setting: "shipped scores, test split as is (sample prior)",
        ...calibrationFigures(shipped, yk),
      });
    } else if (deploy) {
      // A gated column: its score is a product of two calibrated factors (no one logit to shift).
      const w = priorWeights(yk, sampleRates[k] as number, deploy[k] as number);
      calibration.push({
        label,
        setting: "shipped scores (gated product), test split reweighted to the deployment prior",
        ...calibrationFigures(shipped, yk, w),
      });
    } else {
      calibration.push({ label, setting: "shipped scores, test split", ...calibrationFigures(shipped, yk) });
    }
    const t = thresholds[label] as number;
    const flaggedNeg = shipped.filter((v, i) => v >= t && yk[i] === 0).length;
    const flaggedPos = shipped.filter((v, i) => v >= t && yk[i] === 1).length;
    const name = cfg.task === "binary" ? "" : `_${cfg.labels[k]}`;
    test.int8[`recall_at_threshold${name}`] = flaggedPos / Math.max(1, yk.filter((v) => v === 1).length);
    test.int8[`false_positives_at_threshold${name}`] = flaggedNeg;
    if (cfg.task === "binary") {
      const pred = shipped.map((v) => (v >= t ? 1 : 0));
      test.int8.accuracy_at_threshold = accuracy(pred, yk);
      test.int8.f1_macro_at_threshold = precisionRecallF1Macro(pred, yk, 2).f1;
    }
  }
  let classTable: TextTrainingOutcome["classTable"];
  if (cfg.task === "binary") {
    const { y } = columnTruth(testEnc, 0);
    const pred = testLogits.map((z) => (sig(z[0] as number) >= 0.5 ? 1 : 0));
    classTable = cfg.labels.map((label, c) => {
      const tp = pred.filter((p, i) => p === c && y[i] === c).length;
      const pc = pred.filter((p) => p === c).length;
      const support = y.filter((v) => v === c).length;
      const precision = pc ? tp / pc : 0;
      const recall = support ? tp / support : 0;
      return {
        label,
        precision,
        recall,
        f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
        support,
      };
    });
  }
  const value = test.int8[cfg.bar.metric] as number;
  log(
    `TEST ${cfg.bar.metric} int8=${fmt(value)} float=${fmt(test.float[cfg.bar.metric])} bar=${cfg.bar.baseline} ${value >= cfg.bar.baseline ? "PASS" : "FAIL"}`,
  );
  log(`test int8 ${JSON.stringify(test.int8)}`);
  for (const c of calibration)
    log(`calibration ${c.label} ${c.setting}: brier ${fmt(c.brier)} ece15 ${fmt(c.ece15)}`);
  for (const t of [...cfg.referenceTexts, ...(cfg.probes ?? [])]) {
    log(`${JSON.stringify(Array.from(scoreText(quantized, t), (x) => Number(x.toFixed(3))))} ${t}`);
  }
  const outcome: TextTrainingOutcome = {
    selection,
    thresholds,
    validation,
    test,
    calibration,
    trainingMs,
    ...(classTable && { classTable }),
    ...(fairness && { fairness }),
    ...(state.gate && { gate: state.gate }),
  };
  if (dryRun) return;

  const manifestMetrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(test.int8))
    manifestMetrics[k === "rows" ? "test_rows" : `test_${k}`] = v;
  for (const [k, v] of Object.entries(validation)) manifestMetrics[`validation_${k}`] = v;
  manifestMetrics.train_rows = data.train.length;
  manifestMetrics.validation_rows = valRowCount;
  const { onnx, manifest } = await exportModel(quantized, {
    id: cfg.id,
    version: cfg.version,
    description: cfg.description,
    metrics: manifestMetrics,
  });
  const fullManifest = textManifestSchema.parse({
    ...manifest,
    network: "linear",
    networks: { linear: cfg.id, mlp: `${cfg.id}-mlp` },
    thresholds,
  });
  if (onnx.byteLength > 5 * 1024 * 1024)
    throw new Error(`${cfg.id}: model is ${onnx.byteLength} bytes (> 5 MB)`);
  const dir = path.join(ROOT, "models", cfg.id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "model.onnx"), onnx);
  writeFileSync(path.join(dir, "manifest.json"), `${JSON.stringify(fullManifest, null, 2)}\n`);
  const round = (xs: Float64Array): number[] => Array.from(xs, (x) => Number(x.toPrecision(9)));
  const texts = [...cfg.referenceTexts, ...(cfg.probes ?? [])];
  const reference = {
    texts,
    scores: texts.map((t) => round(scoreText(quantized, t))),
    float_scores: texts.map((t) => round(scoreText(model, t))),
  };
  writeFileSync(path.join(dir, "reference.json"), `${JSON.stringify(reference, null, 2)}\n`);
  writeFileSync(
    path.join(dir, "MODEL_CARD.md"),
    modelCard(
      cfg,
      data,
      outcome,
      onnx.byteLength,
      fullManifest.sha256,
      fullManifest.created_at,
      fitRowCount,
      valRowCount,
      shift,
      sampleRates,
    ),
  );
  log(
    `wrote models/${cfg.id}/ (${onnx.byteLength} bytes, sha256 ${fullManifest.sha256}) in ${Date.now() - t0} ms`,
  );
}
