/**
 * Issue #28's identity-and-address evaluation of a shipped toxicity model (models/<id>/), run with
 * onnxruntime-web in Node on the shipped int8 graph and its manifest's thresholds, as the Worker does:
 * the templated set of `src/training/fairness.ts` (overall AUC; per-term subgroup, BPSN and BNSP AUC;
 * false-positive rate per term and per template family) and the flag rate on the positive tweets of
 * the sentiment data's test split (data rows i % 5 == 4; needs ../shared/datasets).
 *
 *   npm run fairness -- [toxicity] [toxicity-mlp] [--terms (every term's row)] [--json]
 *
 * `test/fairness.test.ts` asserts the same figures through the Worker.
 */
import { feeds, loadShippedModel } from "../bench/model-time";
import { textManifestSchema } from "../src/inference/manifest";
import {
  type FairnessReport,
  FAIRNESS_TARGETS,
  fairnessReport,
  identityEvalSet,
  scoredFromLabels,
  targetsMet,
} from "../src/training/fairness";
import { positiveTweets, ROOT } from "./train";

async function scoreShipped(id: string, texts: readonly string[]) {
  const { manifest, session } = await loadShippedModel(ROOT, id, textManifestSchema);
  const scores: Float32Array[] = [];
  const L = manifest.labels.length;
  for (let start = 0; start < texts.length; start += 256) {
    const out = await session.run(feeds(texts.slice(start, start + 256), manifest.featurizer));
    const data = out[session.outputNames[0] as string]?.data as Float32Array;
    for (let r = 0; r < data.length / L; r++) scores.push(data.slice(r * L, (r + 1) * L));
  }
  return { manifest, scores };
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const f4 = (x: number) => x.toFixed(4);

function markdown(
  id: string,
  version: string,
  r: FairnessReport,
  tweets: number,
  tweetCount: number,
  terms: boolean,
): string {
  const met = targetsMet(r, tweets);
  const mark = (k: keyof typeof met) => (met[k] ? "met" : "**missed**");
  const lines = [
    `### \`${id}\` version ${version}: ${r.sentences} sentences, ${r.terms} terms`,
    "",
    "| figure | value | target |",
    "|---|---|---|",
    `| overall ROC-AUC (\`toxic\` score) | ${f4(r.overall_auc)} | – |`,
    `| subgroup AUC, min / mean | ${f4(r.min_subgroup_auc)} / ${f4(r.mean_subgroup_auc)} | min ≥ ${FAIRNESS_TARGETS.min_subgroup_auc}: ${mark("min_subgroup_auc")} |`,
    `| BPSN AUC, min / mean | ${f4(r.min_bpsn_auc)} / ${f4(r.mean_bpsn_auc)} | min ≥ ${FAIRNESS_TARGETS.min_bpsn_auc}: ${mark("min_bpsn_auc")}; mean ≥ ${FAIRNESS_TARGETS.mean_bpsn_auc}: ${mark("mean_bpsn_auc")} |`,
    `| BNSP AUC, min / mean | ${f4(r.min_bnsp_auc)} / ${f4(r.mean_bnsp_auc)} | – |`,
    `| false-positive rate, worst term | ${pct(r.max_term_fpr)} (${r.per_term.reduce((a, b) => (b.fpr > a.fpr ? b : a)).term}) | ≤ 5 %: ${mark("max_term_fpr")} |`,
    `| false-positive rate, worst template family | ${pct(r.max_family_fpr)} | ≤ 5 %: ${mark("max_family_fpr")} |`,
    `| all benign sentences flagged / all toxic sentences flagged | ${pct(r.overall_fpr)} / ${pct(r.overall_tpr)} | – |`,
    `| held-out terms (${r.per_term.filter((t) => t.held_out).length}, never in the augmentation): BPSN min / mean, worst FPR | ${f4(r.held_out.min_bpsn_auc)} / ${f4(r.held_out.mean_bpsn_auc)}, ${pct(r.held_out.max_term_fpr)} | – |`,
    `| positive tweets flagged (sentiment test split, ${tweetCount} tweets) | ${pct(tweets)} | ≤ 2 %: ${mark("positive_tweet_flag_rate")} |`,
    "",
    "| template family | benign flagged (FPR) | toxic flagged (TPR) |",
    "|---|---|---|",
    ...r.per_family.map(
      (f) => `| ${f.family} | ${pct(f.fpr)} of ${f.benign} | ${pct(f.tpr)} of ${f.toxic} |`,
    ),
  ];
  const rows = terms ? r.per_term : [...r.per_term].sort((a, b) => a.bpsn_auc - b.bpsn_auc).slice(0, 10);
  lines.push(
    "",
    terms ? "Every term:" : "The 10 terms with the lowest BPSN AUC:",
    "",
    "| term | category | subgroup AUC | BPSN | BNSP | FPR | TPR |",
    "|---|---|---|---|---|---|---|",
    ...rows.map(
      (t) =>
        `| ${t.term}${t.held_out ? " (held out)" : ""} | ${t.category} | ${f4(t.subgroup_auc)} | ${f4(t.bpsn_auc)} | ${f4(t.bnsp_auc)} | ${pct(t.fpr)} | ${pct(t.tpr)} |`,
    ),
  );
  return lines.join("\n");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const ids = args.filter((a) => !a.startsWith("--"));
  const set = identityEvalSet();
  const tweets = positiveTweets([4]);
  for (const id of ids.length ? ids : ["toxicity", "toxicity-mlp"]) {
    const { manifest, scores } = await scoreShipped(id, [...set.map((e) => e.text), ...tweets]);
    const thresholds = manifest.thresholds ?? {};
    const scored = scoredFromLabels(scores, manifest.labels, thresholds);
    const report = fairnessReport(set, scored.slice(0, set.length));
    const tweetRate = scored.slice(set.length).filter((s) => s.flagged).length / tweets.length;
    if (args.includes("--json"))
      process.stdout.write(
        `${JSON.stringify({ id, version: manifest.version, report, positive_tweet_flag_rate: tweetRate })}\n`,
      );
    else
      process.stdout.write(
        `${markdown(id, manifest.version, report, tweetRate, tweets.length, args.includes("--terms"))}\n\n`,
      );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
