/**
 * Trains, quantizes, evaluates and exports the shipped models (`digits`, the image classifier, is
 * trained by `scripts/train-digits.ts`).
 *
 *   npm run train -- <toxicity|sentiment|spam|digits|all> [--dry-run] [--epochs=12 (digits)] [--c=4] [--buckets=262144]
 *                    [--word=1,2|none] [--char=2,5|none] [--tf=sublinear|binary] [--norm=l2|none]
 *                    [--class-weight=none|balanced] [--max-iter=300] [--idf=1] [--column-c=…] [--extra]
 *                    [--folds=1|4 (fixed validation fold or 4-fold CV)] [--candidates=lr-c0.1,nb-c4-a0.1,… (configured or parsed names)]
 *                    [--no-test (selection runs: validation figures and probes only; the test split is not scored)]
 *                    [--save-state=<file> (with --no-test) | --resume=<file> (same flags: score that run's test split)]
 *                    [--augment-identity=<weight> --augment-tweets=<n> (toxicity, issue #28)] [--cap=none|<address scale>]
 *
 * Reads `../shared/datasets/` (relative to the project root; never copied into the repository),
 * applies the split rule (data row i is TEST when i % 5 == 4), trains on the train split with a
 * fixed seed, measures the float and int8 models on the test split and writes
 * `models/<id>/{model.onnx,manifest.json,MODEL_CARD.md,reference.json}` (unless --dry-run).
 * Overrides are for experiments; the committed models use the defaults in MODELS below.
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { deserialize, serialize } from "node:v8";
import { gunzipSync } from "node:zlib";
import { parse } from "csv-parse/sync";
import { textManifestSchema } from "../src/contracts/manifest";
import {
  FEATURIZER_NAME,
  FEATURIZER_VERSION,
  normalizeText,
  type TextFeaturizerSpec,
  wordTokens,
} from "../src/featurizer/text";
import { exportModel } from "../src/onnx/text";
import {
  bestF1Threshold,
  LENGTH_BUCKETS,
  lengthBalancedWeights,
  priorWeights,
} from "../src/training/calibration";
import { capIdentityAndAddress } from "../src/training/cap";
import {
  type FairnessReport,
  fairnessMarkdown,
  fairnessReport,
  fairnessSummary,
  identityEvalSet,
  scoredFromLabels,
} from "../src/training/fairness";
import { cleanTweet, identityAugmentation } from "../src/training/fairness-augment";
import {
  accuracy,
  encodeTargets,
  evaluateModel,
  featurizeTexts,
  finiteMean,
  precisionRecallF1Macro,
  quantizeInt8,
  scoreText,
  sparseRows,
  type Task,
  type TrainingRow,
} from "../src/training/index";
import { logitOf, priorShift } from "../src/training/nb";
import {
  assembleSelected,
  type Candidate,
  calibrationFigures,
  columnTruth,
  type Fold,
  logitMatrix,
  type Selection,
  selectLinear,
  validationFoldOf,
} from "../src/training/select";
import { isTestRow } from "../src/training/split";
import type { EncodedTargets } from "../src/training/trainer";
import { trainDigits } from "./train-digits";
import { trainMlp } from "./train-mlp";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DATASETS = path.resolve(ROOT, "../shared/datasets");
export const SEED = 20240601;

export { isTestRow };

/** Reads a gzipped CSV with a header into records. */
export function readCsvGz(rel: string): Record<string, string>[] {
  const text = gunzipSync(readFileSync(path.join(DATASETS, rel))).toString("utf8");
  return parse(text, { columns: true, skip_empty_lines: false, relax_quotes: true }) as Record<
    string,
    string
  >[];
}

export interface Dataset {
  train: TrainingRow[];
  /** Data-row index (file order) of each train row: decides the validation fold. */
  trainIndex: number[];
  test: TrainingRow[];
  notes: string[];
  /** Generated or borrowed rows (issue #28's augmentation): fit only, and not in the sample rates. */
  augmented?: WeakSet<TrainingRow>;
}

/**
 * Validation folds as train-row indices. `k = 1`: the fixed fold (`isValidationRow`, data rows with
 * i % 5 == 3); `k = 4`: 4-fold CV, fold f validates on the data rows with i % 5 == f (the test rows,
 * i % 5 == 4, are never in a fold). Rows without a data index (extra data, index −1) only ever fit.
 */
export function validationFolds(data: Dataset, k: number): { fit: number[]; val: number[] }[] {
  if (k !== 1 && k !== 4)
    throw new Error(`folds must be 1 (fixed validation fold) or 4 (4-fold CV), not ${k}`);
  return Array.from({ length: k }, (_, f) => {
    const fit: number[] = [];
    const val: number[] = [];
    data.trainIndex.forEach((i, t) => {
      (validationFoldOf(i, k) === f ? val : fit).push(t);
    });
    return { fit, val };
  });
}

/** The train split cut into the rows that fit and the fixed validation fold (`isValidationRow`). */
export function validationSplit(data: Dataset): { fitRows: TrainingRow[]; valRows: TrainingRow[] } {
  const [{ fit, val }] = validationFolds(data, 1) as [{ fit: number[]; val: number[] }];
  const rowsOf = (idx: number[]) => idx.map((t) => data.train[t] as TrainingRow);
  return { fitRows: rowsOf(fit), valRows: rowsOf(val) };
}

/** The targets of `rows`, encoded for `cfg`'s task and labels. */
export function encodeRows(cfg: Pick<ModelConfig, "task" | "labels">, rows: readonly TrainingRow[]) {
  return encodeTargets(
    cfg.task,
    cfg.labels.length,
    rows.map((r) => r.target),
    "none",
  );
}

export interface ModelConfig {
  id: string;
  /** Registry version written to the manifest; a retrained model gets a new one (versions are immutable). */
  version: string;
  task: Task;
  labels: string[];
  description: string;
  spec: TextFeaturizerSpec;
  /** Linear variants compared on the validation fold (see `src/training/select.ts`). */
  candidates: Candidate[];
  /** Label rates the shipped scores are corrected to (multilabel), instead of the training sample's. */
  deploymentPrior?: { rates: number[]; source: string };
  /** Validation folds for selection: 1 = the fixed fold (default), 4 = 4-fold CV (`validationFolds`). */
  folds?: 1 | 4;
  /** Multilabel: columns may borrow this column's logit (`selectLinear`'s `borrowFrom`). */
  borrowFrom?: number;
  /** Training rows weighted so no word-count bucket leans to a label (`lengthBalancedWeights`). */
  lengthBalance?: boolean;
  /**
   * Issue #28's augmentation (toxicity): `identity` adds `identityAugmentation()`'s generated rows
   * with loss weight `identityWeight`; `tweets` adds that many benign positive tweets of the
   * sentiment data's train split (folds 0–2 only: fold 3 is the selection's check, fold 4 its test).
   */
  augment?: { identity: boolean; identityWeight: number; tweets: number };
  /** Multilabel models scored on the identity evaluation (`src/training/fairness.ts`) in every run. */
  fairness?: boolean;
  /** The card's fairness section: before/after and the known remaining failures. */
  fairnessNotes?: string[];
  /**
   * Issue #28's weight cap on the int8 model (`src/training/cap.ts`): identity buckets' positive
   * weights to 0, address buckets' scaled by `addressScale`. Version 5 was made from version 4's files
   * by `scripts/cap-identity.ts`; a full `npm run train -- toxicity` applies the same cap.
   */
  cap?: { addressScale: number };
  /** How the flagging threshold per label is chosen on the validation fold. */
  thresholdRule: "f1" | "f1-no-false-positive" | "accuracy";
  /** Extra hand-written texts whose scores go into reference.json (the probes test reads them). */
  probes?: string[];
  /** Earlier selection runs on the same validation fold (variants not repeated in the final run). */
  selectionNotes?: string[];
  /** The quality bar: metric name, baseline value (scikit-learn TF-IDF + LogisticRegression C=4). */
  bar: { metric: string; baseline: number; reference?: Record<string, number> };
  /** Issue #16's target for `bar.metric` on the test split. */
  target: number;
  source: string[];
  load: () => Dataset;
  referenceTexts: string[];
  limitations: string[];
}

const spec = (buckets: number, over: Partial<TextFeaturizerSpec> = {}): TextFeaturizerSpec => ({
  name: FEATURIZER_NAME,
  version: FEATURIZER_VERSION,
  buckets,
  word_ngrams: [1, 2],
  char_ngrams: [2, 5],
  seed: 0,
  tf: "sublinear",
  norm: "l2",
  ...over,
});

const TOX_LABELS = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"];
const sameText = (t: string): string => t.trim().replace(/\s+/g, " ");

/**
 * Positive tweets of the sentiment data whose data row i has `i % 5` in `folds` (4 = its test
 * split; 3 = the fold the toxicity selection checks its flag rate on; 0–2 = the augmentation's).
 */
export function positiveTweets(folds: readonly number[]): string[] {
  return readCsvGz("sentiment/tweets_sentiment.csv.gz").flatMap((r, i) =>
    (r.Sentiment ?? "").trim() === "1" && folds.includes(i % 5) ? [r.SentimentText ?? ""] : [],
  );
}

/**
 * Appends issue #28's augmentation rows to `data` (never in a validation fold, index −2; the
 * sample rates of the prior correction skip them). Tweets: every k-th clean positive tweet of folds
 * 0–2, labelled non-toxic on every label.
 */
function augmentToxicity(data: Dataset, a: NonNullable<ModelConfig["augment"]>): Dataset {
  const augmented = new WeakSet<TrainingRow>();
  const add = (row: TrainingRow) => {
    data.train.push(row);
    data.trainIndex.push(-2);
    augmented.add(row);
  };
  const notes = [...data.notes];
  if (a.identity) {
    const rows = identityAugmentation();
    for (const r of rows) add({ text: r.text, target: r.target });
    notes.push(
      `Identity augmentation (issue #28, \`src/training/fairness-augment.ts\`): ${rows.length} generated sentences (${rows.filter((r) => r.target[0] === 0).length} benign, ${rows.filter((r) => r.target[0] === 1).length} toxic), loss weight ${a.identityWeight}; other templates and filler words than the evaluation, and none of its held-out terms.`,
    );
  }
  if (a.tweets > 0) {
    const clean = positiveTweets([0, 1, 2]).filter(cleanTweet);
    const step = Math.max(1, Math.floor(clean.length / a.tweets));
    const picked = clean.filter((_, i) => i % step === 0).slice(0, a.tweets);
    for (const text of picked) add({ text, target: [0, 0, 0, 0, 0, 0] });
    notes.push(
      `Benign tweets (issue #28): ${picked.length} positive tweets from \`sentiment/tweets_sentiment.csv.gz\` (data rows with i % 5 ∈ {0, 1, 2} only; every ${step}th of the ${clean.length} without a profanity word), labelled non-toxic on every label.`,
    );
  }
  return { ...data, notes, augmented };
}

/**
 * `extraBinary` adds jigsaw_toxic_binary rows to the `toxic` head (texts not in the multi-label set;
 * other labels unknown). On for the shipped model: with length-balanced weights and the prior
 * correction it raised the `toxic` validation AUC without pushing short benign texts up (alone, its
 * 50 % toxic prior did).
 */
function loadToxicity(extraBinary: boolean): Dataset {
  const rows = readCsvGz("toxicity/jigsaw_multilabel.csv.gz");
  const train: TrainingRow[] = [];
  const trainIndex: number[] = [];
  const test: TrainingRow[] = [];
  const multilabelTexts = new Set<string>();
  rows.forEach((r, i) => {
    const row = { text: r.comment_text ?? "", target: TOX_LABELS.map((l) => Number(r[l])) };
    multilabelTexts.add(sameText(row.text));
    if (isTestRow(i)) test.push(row);
    else {
      train.push(row);
      trainIndex.push(i);
    }
  });
  // Extra data for the `toxic` head only (other labels unknown = -1). Texts that appear anywhere in
  // the multilabel set are skipped: test-split ones would leak, train-split ones are already there.
  if (!extraBinary) {
    return {
      train,
      trainIndex,
      test,
      notes: [
        `jigsaw_multilabel.csv.gz: ${rows.length} rows → ${train.length} train / ${test.length} test.`,
        "jigsaw_toxic_binary.csv.gz is not used (`--extra=0`; the shipped model uses it for the `toxic` head).",
      ],
    };
  }
  const binary = readCsvGz("toxicity/jigsaw_toxic_binary.csv.gz");
  let added = 0;
  let skipped = 0;
  for (const r of binary) {
    const text = r.comment_text ?? "";
    if (multilabelTexts.has(sameText(text))) {
      skipped++;
      continue;
    }
    train.push({ text, target: [Number(r.toxic), -1, -1, -1, -1, -1] });
    // Never in the validation fold: it would mix a different prior into the fold's figures.
    trainIndex.push(-1);
    added++;
  }
  return {
    train,
    trainIndex,
    test,
    notes: [
      `jigsaw_multilabel.csv.gz: ${rows.length} rows → ${rows.length - test.length} train / ${test.length} test.`,
      `jigsaw_toxic_binary.csv.gz: ${added} rows added to the \`toxic\` head's training data (other labels unknown); ${skipped} rows skipped because their text also appears in the multi-label set (no test-split leakage).`,
    ],
  };
}

function splitRows(
  rows: Record<string, string>[],
  toRow: (r: Record<string, string>) => TrainingRow,
): Dataset {
  const train: TrainingRow[] = [];
  const trainIndex: number[] = [];
  const test: TrainingRow[] = [];
  rows.forEach((r, i) => {
    if (isTestRow(i)) test.push(toRow(r));
    else {
      train.push(toRow(r));
      trainIndex.push(i);
    }
  });
  return {
    train,
    trainIndex,
    test,
    notes: [`${rows.length} rows → ${train.length} train / ${test.length} test.`],
  };
}

function labelIndex(value: string | undefined, labels: string[], raw: string[]): number {
  const i = raw.indexOf((value ?? "").trim());
  if (i < 0)
    throw new Error(`unexpected label ${JSON.stringify(value)} (expected ${raw.join("/")} for ${labels})`);
  return i;
}

export const MODELS: Record<string, ModelConfig> = {
  toxicity: {
    id: "toxicity",
    version: "5",
    fairness: true,
    cap: { addressScale: 0.5 },
    task: "multilabel",
    labels: TOX_LABELS,
    description:
      "Toxic comment detection (Jigsaw labels), multi-label: hashed word 1-2 + char 2-5 n-grams (word and character halves normalised apart), NB-weighted and plain logistic regression per label, calibrated to a deployment prior, int8.",
    spec: spec(2 ** 19, { norm: "l2-blocks" }),
    candidates: [
      { name: "lr-c0.1", kind: "lr", c: 0.1, maxIterations: 100 },
      { name: "nb-c1", kind: "nb", c: 1, alpha: 0.01, maxIterations: 100 },
      { name: "nb-c4", kind: "nb", c: 4, alpha: 0.01, maxIterations: 100 },
      { name: "nb-c4-a0.1", kind: "nb", c: 4, alpha: 0.1, maxIterations: 100 },
      { name: "lr-c0.03", kind: "lr", c: 0.03, maxIterations: 100 },
      { name: "lr-c0.3", kind: "lr", c: 0.3, maxIterations: 100 },
    ],
    folds: 4,
    lengthBalance: true,
    borrowFrom: 0,
    selectionNotes: [
      "Version 5 (issue #28) = version 4's selection with the identity/address weight cap (`cap`, `src/training/cap.ts`) on the int8 weights; made from version 4's files by `scripts/cap-identity.ts --write` (its card explains the choice). A full run of this script reproduces version 4's fit and applies the same cap.",
      "Version 4 is chosen by 4-fold CV on the train split, as issue #16 asks; decided before any 4-fold figure existed: version 4 is the 4-fold pick (probes must pass), scored once on the test split and shipped whatever that figure. Version 3 was chosen on the fixed fold `i % 5 == 3`, where `threat` has 18 positives: it ranked `nb-c1` above `lr-c0.1` for `threat` (0.9502 against 0.9446); over four folds (86 positives) the order is reversed (0.9225 against 0.9564) — the fixed fold's noise that cost version 3 0.027 on `threat` in its test figure.",
      "4-fold runs (`npx tsx scripts/train.ts toxicity --folds=4 --no-test [--candidates=…]`; none scored the test split): (A) version 3's four candidates: CV mean ROC-AUC 0.9614; max benign 0.064 (`Hello there!`). (B) + `lr-c0.03` and `lr-c0.3` (this card's candidates): 0.9620 (`threat` 0.9590, `identity_hate` 0.9427 with `lr-c0.3`); max benign 0.064 (`Hello there!`); lowest toxic-probe `toxic` score 0.942. Shipped: (B).",
      "Earlier runs for version 3 on the fixed fold `i % 5 == 3` (not comparable in level with 4-fold figures), in order (validation mean ROC-AUC; `max benign` = the highest score of the 20 benign probes on any label, from the refitted model; none of these runs scored the test split):",
      "(1) version 2 as shipped before (joint L2, no extra data, no length balancing): 0.9586; max benign 0.236 (`Hello there!`).",
      "(2) + jigsaw_toxic_binary rows for the `toxic` head (`--extra`): 0.9591 (`toxic` 0.9785); max benign 0.193 — more data, but short greetings still lean toxic.",
      "(3) + length-balanced row weights (`--length-balance=1`, no extra data): 0.9587; max benign 0.156.",
      "(4) extra data + length balancing: 0.9586 (`toxic` 0.9762); max benign 0.093 — the first run to pass the probes.",
      "(5) (4) + labels borrowing the `toxic` logit (`--borrow=0`): 0.9605.",
      "(6) (5) + word and character halves normalised apart (`--norm=l2-blocks`) and candidate `nb-c4-a0.1`: 0.9630; max benign 0.042. Shipped as version 3 (test mean ROC-AUC 0.9574).",
      "Earlier runs (previous model version): nb-c16 (C=16) 0.9584; binary tf 0.9641 but its `toxic` threshold flagged a benign probe.",
    ],
    deploymentPrior: {
      rates: [0.0958, 0.01, 0.0529, 0.003, 0.0494, 0.0088],
      source:
        "label rates of the full public Jigsaw 2018 training data (159,571 comments): toxic 9.58 %, severe_toxic 1.00 %, obscene 5.29 %, threat 0.30 %, insult 4.94 %, identity_hate 0.88 %",
    },
    thresholdRule: "f1",
    probes: (() => {
      const probes = JSON.parse(
        readFileSync(path.join(ROOT, "test/fixtures/toxicity-probes.json"), "utf8"),
      ) as {
        benign: string[];
        toxic: string[];
      };
      return [...probes.benign, ...probes.toxic];
    })(),
    bar: { metric: "roc_auc_mean", baseline: 0.9531 },
    target: 0.96,
    source: [
      "`toxicity/jigsaw_multilabel.csv.gz` — Jigsaw Toxic Comment Classification Challenge (2018) rows, merged from several public samples. Licence: Jigsaw data CC0; comment text CC BY-SA 3.0 (Wikipedia talk pages).",
      "`toxicity/jigsaw_toxic_binary.csv.gz` — a balanced binary split of Jigsaw comments (RobTest), used for the `toxic` head only. Licence: as above.",
    ],
    load: () => loadToxicity(true),
    referenceTexts: [
      "Thanks for fixing the citation on the bridge article, much appreciated.",
      "You are a complete idiot and nobody wants you editing here.",
      "I will find where you live and make you regret this.",
      "What a load of crap, this whole section is garbage.",
      "I disagree with the merge proposal; the two topics are distinct.",
      "People like you from that country are all worthless trash.",
      "Shut up, you pathetic moron.",
      "hello",
    ],
    limitations: [
      "Trained on English Wikipedia talk-page comments; other domains, languages and dialects are out of distribution.",
      "`threat`, `severe_toxic` and `identity_hate` are rare in the data (tens of test positives): their per-label AUCs are noisy.",
      "A bag of hashed n-grams: no word order beyond bigrams, negation and sarcasm are not understood; identity terms may raise scores on their own (known Jigsaw bias).",
      "Scores are calibrated to the deployment prior (Jigsaw 2018 label rates), not to any particular site's; the manifest's thresholds were chosen for that prior.",
      "Version 4 was chosen by 4-fold CV and the probes before its test split was scored: mean ROC-AUC 0.9580 (version 3: 0.9574, version 2: 0.9598). Against version 3 per label: toxic −0.0002, severe_toxic +0.0015, obscene −0.0003, threat +0.0052, insult −0.0001, identity_hate −0.0029. Issue #16's 0.960 is not met; per the protocol the test figure does not change the choice.",
    ],
  },
  sentiment: {
    id: "sentiment",
    version: "3",
    task: "binary",
    labels: ["negative", "positive"],
    description:
      "Tweet sentiment (negative/positive): hashed word 1-3 + char 2-5 n-grams (word and character halves normalised apart), NB-weighted logistic regression, int8.",
    spec: spec(2 ** 22, { word_ngrams: [1, 3], norm: "l2-blocks" }),
    // Few and short fits: 54k rows, and training shares two cores with other work.
    candidates: [
      { name: "lr-c0.1", kind: "lr", c: 0.1, maxIterations: 50 },
      { name: "nb-c4-a0.1", kind: "nb", c: 4, alpha: 0.1, maxIterations: 60 },
      { name: "nb-c16-a0.1", kind: "nb", c: 16, alpha: 0.1, maxIterations: 60 },
      { name: "nb-c4-a0.3", kind: "nb", c: 4, alpha: 0.3, maxIterations: 60 },
    ],
    thresholdRule: "accuracy",
    selectionNotes: [
      "Runs on the same validation fold, in order (validation ROC-AUC / accuracy at 0.5; none scored the test split):",
      "(1) version 2 as shipped before (2^20 buckets, joint L2, word 1-2; lr-c0.1, nb-c1/c4/c16 with α=0.01): 0.8599 / 0.7814. Before it: 200 L-BFGS iterations 0.8592; binary tf 0.8584.",
      "(2) 2^22 buckets (`--buckets=4194304`; a binary model is one int8 column, so 4 MiB): nb-c4 0.8612 / 0.7843.",
      "(3) (2) + word 1-3 (`--word=1,3`; nb-c4, nb-c16): avg(nb-c4, nb-c16) 0.8629 / 0.7849.",
      "(4) (3) + word and character halves normalised apart (`--norm=l2-blocks`), NB smoothing α ∈ {0.01, 0.1, 1} at C=4: 0.8589, **0.8664**, 0.8574 (accuracy 0.7875 for α=0.1).",
      "(5) (4) with lr-c0.1 0.8492, nb-c4-a0.1 0.8664, nb-c16-a0.1 0.8633, nb-c4-a0.3 0.8656: avg(nb-c4-a0.1, nb-c4-a0.3) 0.8676 / 0.7889 — the candidates of this card's run. Shipped.",
      "(6) (4) with nb-c2-a0.1 0.8660 and nb-c4-a0.1 at 150 iterations 0.8670 / 0.7877: below (5).",
    ],
    bar: { metric: "accuracy", baseline: 0.7869, reference: { roc_auc: 0.8688 } },
    target: 0.792,
    source: [
      "`sentiment/tweets_sentiment.csv.gz` — Twitter sentiment corpus (Sentiment140 / UMich mix). Licence: research use.",
    ],
    load: () =>
      splitRows(readCsvGz("sentiment/tweets_sentiment.csv.gz"), (r) => ({
        text: r.SentimentText ?? "",
        target: labelIndex(r.Sentiment, ["negative", "positive"], ["0", "1"]),
      })),
    referenceTexts: [
      "I love this new phone, best purchase all year!",
      "Ugh, stuck in traffic again and my coffee is cold.",
      "Just finished the marathon, so proud of everyone :)",
      "This is the worst customer service I have ever had.",
      "Meh, the movie was okay I guess.",
      "can't wait for the weekend!!! 🎉",
      "Missing my friends so much today :(",
      "The bus leaves at seven tomorrow morning.",
    ],
    limitations: [
      "Trained on short, informal English tweets (2009-era); long or formal text is out of distribution.",
      "Two classes only: neutral text gets a score near whichever side its words lean to.",
      "Sarcasm, negation scope and emoji semantics are handled only through n-gram statistics.",
    ],
  },
  spam: {
    id: "spam",
    version: "3",
    task: "binary",
    labels: ["ham", "spam"],
    description:
      "SMS spam detection (ham/spam): hashed word 1-2 + char 2-5 n-grams, logistic regression, int8.",
    spec: spec(2 ** 20),
    candidates: [
      { name: "lr-c1", kind: "lr", c: 1 },
      { name: "lr-c4", kind: "lr", c: 4 },
      { name: "nb-c1", kind: "nb", c: 1, alpha: 0.01, maxIterations: 100 },
      { name: "nb-c4", kind: "nb", c: 4, alpha: 0.01, maxIterations: 100 },
    ],
    folds: 4,
    thresholdRule: "f1-no-false-positive",
    selectionNotes: [
      "Version 2 (shipped before) was chosen on the fixed validation fold (data rows i % 5 == 3, 994 rows): lr-c1 0.9943, lr-c4 0.9943, nb-c1 0.9950, nb-c4 0.9946 → nb-c1, threshold 0.9232 (above the fold's 862 hams).",
      "Version 3 (this card) is chosen by 4-fold CV on the same candidates: the CV ranking differs (lr-c1 first, nb-c1 last), and the no-false-positive threshold now has to clear every one of the train split's 3,453 out-of-fold hams rather than one fold's 862 — fewer spam caught at it, but a threshold that held on four times as many hams.",
    ],
    bar: { metric: "f1_macro_at_threshold", baseline: 0.9811, reference: { accuracy: 0.9909 } },
    target: 0.985,
    source: ["`spam/sms_spam.csv.gz` — UCI SMS Spam Collection. Licence: CC BY 4.0."],
    load: () =>
      splitRows(readCsvGz("spam/sms_spam.csv.gz"), (r) => ({
        text: r.SMS ?? "",
        target: labelIndex(r.Label, ["ham", "spam"], ["ham", "spam"]),
      })),
    referenceTexts: [
      "Hey, are we still meeting for lunch at noon tomorrow?",
      "CONGRATULATIONS! You have won a £1000 prize. Call 09061234567 now to claim. T&Cs apply.",
      "Free entry to win a brand new car! Text WIN to 80085 now, 18+ only.",
      "Running late, save me a seat please",
      "Your account has been selected for a cash reward, reply YES to receive it",
      "Can you pick up some milk on the way home?",
      "URGENT: your mobile number has been awarded a bonus. Call now!",
      "ok see you there",
    ],
    limitations: [
      "Trained on a small (≈5k) English/Singaporean SMS corpus from around 2011; modern spam (links, crypto, delivery scams) may be missed.",
      "≈13 % spam in the data: scores are calibrated to that prior.",
      "Phone numbers and prices are seen only as character n-grams.",
    ],
  },
};

function parseArgs(argv: string[]): { ids: string[]; dryRun: boolean; over: Record<string, string> } {
  const ids: string[] = [];
  const over: Record<string, string> = {};
  let dryRun = false;
  for (const a of argv) {
    if (a === "--dry-run") dryRun = true;
    else if (a.startsWith("--")) {
      const [k, v] = a.slice(2).split("=", 2);
      over[k as string] = v ?? "1";
    } else ids.push(a);
  }
  if (ids.length === 0)
    throw new Error("usage: npm run train -- <toxicity|sentiment|spam|digits|all> [--dry-run]");
  const all = [...Object.keys(MODELS), ...Object.keys(MODELS).map((id) => `${id}-mlp`), "digits"];
  return { ids: ids.includes("all") ? all : ids, dryRun, over };
}

/** A candidate from its name, for experiments: `lr-c<C>` or `nb-c<C>[-a<α>]` (100 L-BFGS iterations). */
function parseCandidate(name: string): Candidate {
  const m = /^(lr|nb)-c([0-9.]+)(?:-a([0-9.]+))?$/.exec(name);
  if (!m) throw new Error(`unknown candidate ${name} (a configured one, lr-c<C> or nb-c<C>[-a<alpha>])`);
  const kind = m[1] as Candidate["kind"];
  return {
    name,
    kind,
    c: Number(m[2]),
    maxIterations: 100,
    ...(kind === "nb" && { alpha: m[3] === undefined ? 0.01 : Number(m[3]) }),
  };
}

function applyOverrides(cfg: ModelConfig, over: Record<string, string>): ModelConfig {
  const s = { ...cfg.spec };
  const range = (v: string): [number, number] | null =>
    v === "none" ? null : (v.split(",").map(Number) as [number, number]);
  if (over.buckets) s.buckets = Number(over.buckets);
  if (over.word) s.word_ngrams = range(over.word);
  if (over.char) s.char_ngrams = range(over.char);
  if (over.tf) s.tf = over.tf as TextFeaturizerSpec["tf"];
  if (over.norm) s.norm = over.norm as TextFeaturizerSpec["norm"];
  const candidates = over.candidates
    ? over.candidates
        .split(",")
        .map((name) => cfg.candidates.find((c) => c.name === name) ?? parseCandidate(name))
    : cfg.candidates;
  const lengthBalance = over["length-balance"] ? over["length-balance"] === "1" : cfg.lengthBalance;
  const augment =
    over["augment-identity"] !== undefined || over["augment-tweets"] !== undefined
      ? {
          identity: (over["augment-identity"] ?? "0") !== "0",
          identityWeight: Number(over["augment-identity"] ?? "0") || 1,
          tweets: Number(over["augment-tweets"] ?? 0),
        }
      : cfg.augment;
  const borrow =
    over.borrow === undefined ? {} : { borrowFrom: over.borrow === "none" ? undefined : Number(over.borrow) };
  const base = {
    ...cfg,
    spec: s,
    candidates,
    ...(lengthBalance !== undefined && { lengthBalance }),
    ...borrow,
    ...(augment && { augment }),
    // `--cap=none` trains without issue #28's weight cap, `--cap=<address scale>` with another scale.
    ...(over.cap !== undefined && {
      cap: over.cap === "none" ? undefined : { addressScale: Number(over.cap) },
    }),
  };
  if (over.extra && cfg.id === "toxicity") return { ...base, load: () => loadToxicity(over.extra === "1") };
  return base;
}

const fmt = (x: number | undefined, d = 4): string => (x === undefined ? "–" : x.toFixed(d));
const sig = (z: number): number => 1 / (1 + Math.exp(-z));

/** The label whose score a column's threshold applies to (binary: the last label). */
export const columnLabel = (cfg: ModelConfig, k: number): string =>
  cfg.task === "binary" ? (cfg.labels[cfg.labels.length - 1] as string) : (cfg.labels[k] as string);

export function chooseThreshold(
  rule: ModelConfig["thresholdRule"],
  p: number[],
  y: number[],
  weight?: Float64Array,
): number {
  if (rule === "f1") return bestF1Threshold(p, y, weight).threshold;
  if (rule === "accuracy") {
    // Calibrated probabilities: 0.5 maximises expected accuracy; keep it unless the fold disagrees clearly.
    let best = {
      t: 0.5,
      acc: accuracy(
        p.map((v) => (v >= 0.5 ? 1 : 0)),
        y,
      ),
    };
    for (let t = 0.3; t <= 0.7001; t += 0.01) {
      const acc = accuracy(
        p.map((v) => (v >= t ? 1 : 0)),
        y,
      );
      if (acc > best.acc + 0.002) best = { t: Number(t.toFixed(2)), acc };
    }
    return best.t;
  }
  // Spam: never flag a validation ham; the threshold sits halfway between the highest ham score and
  // the next spam score above it, and at least at the F1-best threshold.
  const maxHam = Math.max(...p.filter((_, i) => y[i] === 0));
  const above = p.filter((v, i) => y[i] === 1 && v > maxHam);
  const noFp = above.length ? (maxHam + Math.min(...above)) / 2 : maxHam + (1 - maxHam) / 2;
  return Math.max(noFp, bestF1Threshold(p, y, weight).threshold);
}

interface TextTrainingOutcome {
  selection: Selection;
  thresholds: Record<string, number>;
  validation: Record<string, number>;
  test: { float: Record<string, number>; int8: Record<string, number> };
  calibration: { label: string; setting: string; brier: number; ece15: number }[];
  classTable?: { label: string; precision: number; recall: number; f1: number; support: number }[];
  trainingMs: number;
  fairness?: { report: FairnessReport; devTweets: number; testTweets?: number };
}

async function trainOne(cfg: ModelConfig, dryRun: boolean, over: Record<string, string>): Promise<void> {
  const t0 = Date.now();
  const data = cfg.augment ? augmentToxicity(cfg.load(), cfg.augment) : cfg.load();
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
  /** What selection and the final fit hand to the test-split scoring (`--save-state` / `--resume`). */
  interface RunState {
    selection: Selection;
    thresholds: Record<string, number>;
    validation: Record<string, number>;
    shift: number[];
    sampleRates: number[];
    model: ReturnType<typeof assembleSelected>;
    trainingMs: number;
    fitRowCount: number;
    valRowCount: number;
  }
  const selectAndFit = (): RunState => {
    const trainX = feat(data.train);
    const cuts = validationFolds(data, Number(over.folds ?? cfg.folds ?? 1));
    const rowsOf = (idx: readonly number[]) => idx.map((t) => data.train[t] as TrainingRow);
    const folds: Fold[] = cuts.map(({ fit, val }) => ({
      fitX: sparseRows(trainX, fit),
      fitTargets: forFitting(rowsOf(fit), enc(rowsOf(fit))),
      valX: sparseRows(trainX, val),
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
    const sampleRates = Array.from({ length: C }, (_, k) => {
      const { y, known } = columnTruth(allTargets, k);
      const ys = y.filter((_, i) => known[i] && !data.augmented?.has(data.train[i] as TrainingRow));
      return ys.reduce((a, b) => a + b, 0) / ys.length;
    });
    const deploy = cfg.deploymentPrior?.rates;
    const shift = deploy ? priorShift(sampleRates, deploy) : new Array<number>(C).fill(0);
    const thresholds: Record<string, number> = {};
    const validation: Record<string, number> = {};
    for (let k = 0; k < C; k++) {
      const { y, known } = columnTruth(valTargets, k);
      const p = valProbabilities
        .map((row) =>
          sig(logitOf(Math.min(1 - 1e-12, Math.max(1e-12, row[k] as number))) + (shift[k] as number)),
        )
        .filter((_, i) => known[i]);
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
    };
  };
  // `--resume=<file>`: a selection run's state saved by `--no-test --save-state=<file>` (same flags),
  // so the chosen run's test split is scored without repeating its cross-validation.
  const state: RunState = over.resume ? (deserialize(readFileSync(over.resume)) as RunState) : selectAndFit();
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
  const quantized = cfg.cap
    ? capIdentityAndAddress(quantizeInt8(model), cfg.cap.addressScale)
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
  for (let k = 0; k < C; k++) {
    const { y, known } = columnTruth(testEnc, k);
    const yk = y.filter((_, i) => known[i]);
    const zk = testLogits.map((z) => z[k] as number).filter((_, i) => known[i]);
    const label = columnLabel(cfg, k);
    const shipped = zk.map(sig);
    if (deploy) {
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

function modelCard(
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

Validation figures: ${Object.entries(o.validation)
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

async function main(): Promise<void> {
  const { ids, dryRun, over } = parseArgs(process.argv.slice(2));
  for (const id of ids) {
    if (id === "digits") {
      await trainDigits(dryRun, over);
      continue;
    }
    if (id.endsWith("-mlp")) {
      await trainMlp(id.slice(0, -4), dryRun);
      continue;
    }
    const cfg = MODELS[id];
    if (!cfg) throw new Error(`unknown model ${id} (known: ${Object.keys(MODELS).join(", ")}, digits, all)`);
    await trainOne(applyOverrides(cfg, over), dryRun, over);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
