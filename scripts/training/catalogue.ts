/**
 * The training catalogue: the shipped text models' configurations (`TRAINING_CATALOGUE`), the
 * project root, the seed and the dataset loading (`../shared/datasets/`, never copied into the
 * repository; data row i is TEST when `isTestRow(i)`).
 */

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { parse } from "csv-parse/sync";
import { FEATURIZER_NAME, FEATURIZER_VERSION, type TextFeaturizerSpec } from "../../src/featurizer/text";
import { cleanTweet, identityAugmentation } from "../../src/training/fairness-augment";
import { isTestRow, partOf } from "../../src/training/folds";
import type { Gate, Task, TrainingRow } from "../../src/training/index";
import type { Candidate } from "../../src/training/select";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DATASETS = path.resolve(ROOT, "../shared/datasets");
export const SEED = 20240601;

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
  /**
   * Issue #28's `--mask-identity`: every training row's feature values in the identity buckets of
   * `src/training/cap.ts` are 0 (CV folds and the final fit), so the model is fitted without them.
   */
  maskIdentity?: boolean;
  /** With `maskIdentity`: also, per row, the word bigrams that contain an identity word (`--mask-identity=bigrams`). */
  maskIdentityBigrams?: boolean;
  /** And per row every character n-gram of a chunk that is an identity word (`--mask-identity=chunks`, implies bigrams). */
  maskIdentityChunks?: boolean;
  /**
   * Issue #28's `--gate-identity-hate`: label `column` is scored as label `by`'s shipped score times
   * a conditional head, fitted (without the identity masks, uncapped) on the training rows where `by`
   * is 1, calibrated to the deployment prior of `column` given `by` (`Gate`, src/training/linear-model.ts).
   */
  gate?: Gate;
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
    (r.Sentiment ?? "").trim() === "1" && folds.includes(partOf(i)) ? [r.SentimentText ?? ""] : [],
  );
}

/**
 * Appends issue #28's augmentation rows to `data` (never in a validation fold, index −2; the
 * sample rates of the prior correction skip them). Tweets: every k-th clean positive tweet of folds
 * 0–2, labelled non-toxic on every label.
 */
export function augmentToxicity(data: Dataset, a: NonNullable<ModelConfig["augment"]>): Dataset {
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
export function loadToxicity(extraBinary: boolean): Dataset {
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

export const TRAINING_CATALOGUE: Record<string, ModelConfig> = {
  toxicity: {
    id: "toxicity",
    version: "6",
    fairness: true,
    fairnessNotes: [
      "Before and after (`npm run fairness -- toxicity`; issue #28's targets in brackets), version 4 → version 5 → **version 6**: worst term FPR (≤ 5 %) 75.7 % (gay, homosexual) → 10.8 % (nigerian) → **2.7 %** (homosexual, black, indigenous, millennial: 1 of 37 benign sentences each); worst template family FPR (≤ 5 %) 24.8 % (second person) → 1.1 % → **0.6 %**; BPSN AUC min (≥ 0.90) 0.640 → 0.908 → **0.959**; BPSN mean (≥ 0.97) 0.940 → 0.969 → **0.986**; subgroup AUC min (≥ 0.95) 0.931 → 0.946 → **0.968**; positive tweets of the sentiment test split flagged (≤ 2 %) 3.4 % → 3.0 % → **0.5 %**; benign / toxic sentences flagged 8.6 % / 74.9 % → 0.4 % / 70.2 % → **0.2 % / 77.8 %**. Every target is met.",
      "How: the identity words of the training augmentation's 77 terms are masked in every training row (their unigrams, the word bigrams containing them, every character n-gram of a chunk that is one of them), so `toxic`, `severe_toxic`, `obscene`, `threat` and `insult` are fitted around them; `identity_hate`, whose evidence is those very words, is gated: `toxic`'s score × P(identity_hate | toxic), the conditional head fitted on toxic comments only, with the words. A benign sentence about a group scores low on `toxic` and therefore on `identity_hate`.",
      "Known remaining failures: (1) the mask covers the listed terms; other identity words keep their Jigsaw lean — the 15 held-out terms are the check (worst FPR 2.7 %, BPSN min 0.959), but a set with other terms or spellings will find more; (2) short toxic phrases about a group (family `short_phrase`) are caught 44 % of the time, the third person with an occupation 74 %: with the words masked, the toxic heads rely on the insult words around them; (3) a toxic comment that names a group scores higher on `identity_hate` than one that does not, by design of the conditional head; (4) slurs are not identity terms here and keep their weight (on purpose); (5) the evaluation set was a selection criterion for every candidate of issue #28 (docs/models.md), and the public test split was looked at four times over the issue (versions 5 and 6, and two candidates that did not ship); (6) `toxicity-mlp` is unchanged (worst term FPR 56.8 %, docs/models.md says why).",
    ],
    cap: { addressScale: 0.5 },
    // Version 6 (issue #28): fitted with the identity n-grams masked (unigrams, bigrams, every
    // character n-gram of an identity chunk), trained with the augmentation, `identity_hate` gated
    // by `toxic` (its conditional head unmasked and uncapped).
    augment: { identity: true, identityWeight: 1, tweets: 5000 },
    maskIdentity: true,
    maskIdentityBigrams: true,
    maskIdentityChunks: true,
    gate: { column: 5, by: 0 },
    task: "multilabel",
    labels: TOX_LABELS,
    description:
      "Toxic comment detection (Jigsaw labels), multi-label: hashed word 1-2 + char 2-5 n-grams (word and character halves normalised apart), NB-weighted and plain logistic regression per label, calibrated to a deployment prior, int8.",
    spec: spec(2 ** 19, { norm: "l2-blocks" }),
    // Version 4's chosen parts (version 6's runs compared these four; `lr-c0.1` and `nb-c4` lost in version 4's run B).
    candidates: [
      { name: "nb-c4-a0.1", kind: "nb", c: 4, alpha: 0.1, maxIterations: 100 },
      { name: "lr-c0.03", kind: "lr", c: 0.03, maxIterations: 100 },
      { name: "nb-c1", kind: "nb", c: 1, alpha: 0.01, maxIterations: 100 },
      { name: "lr-c0.3", kind: "lr", c: 0.3, maxIterations: 100 },
    ],
    folds: 4,
    lengthBalance: true,
    borrowFrom: 0,
    selectionNotes: [
      "Version 6 (issue #28, run Q) = run R3 (identity n-grams masked in every training row: the augmentation terms' unigrams, bigrams containing them, every character n-gram of a chunk that is one of them; augmentation: `--augment-identity=1 --augment-tweets=5000`; cap E(0.5)) with `identity_hate` gated by `toxic` (`--gate-identity-hate`, below). Chosen under a rule written before its figures (issue #28's note): probes pass, CV mean ROC-AUC ≥ 0.958, no identity term's FPR above version 5's worst (10.8 %), all six fairness targets met on the train side; then the test split scored once, shipping only at mean ROC-AUC ≥ 0.955. The runs before it (B, B+cap, H, G, T, R, R2, R3; none shipped) are in docs/models.md.",
      "Command: `npm run train -- toxicity --folds=4 --no-test --candidates=nb-c4-a0.1,lr-c0.03,nb-c1,lr-c0.3 --augment-identity=1 --augment-tweets=5000 --cap=0.5 --mask-identity=chunks --gate-identity-hate --save-state=<file>`, then the same flags with `--resume=<file>` (these are also this config's defaults).",
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
      "A bag of hashed n-grams: no word order beyond bigrams, negation and sarcasm are not understood. Version 6 is fitted without the identity n-grams of the augmentation's 77 terms (`src/training/cap.ts`), so those words do not raise `toxic`, `severe_toxic`, `obscene`, `threat` or `insult`; other identity words (e.g. the evaluation's held-out terms) and slurs keep their Jigsaw lean.",
      "`identity_hate` is `toxic`'s score × P(identity_hate | toxic): it can only be as high as `toxic`, and its conditional head does use identity words (on purpose: an attack on a group names the group). A toxic comment that merely mentions an identity may score higher on `identity_hate` than one that does not.",
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
