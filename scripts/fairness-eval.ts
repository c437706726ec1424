/**
 * Issue #28's identity-and-address evaluation of a shipped toxicity model (models/<id>/), run with
 * onnxruntime-web in Node on the shipped int8 graph and its manifest's thresholds, as the Worker does:
 * the templated set of `src/training/fairness.ts` (overall AUC; per-term subgroup, BPSN and BNSP AUC;
 * false-positive rate per term and per template family) and the flag rate on the positive tweets of
 * the sentiment data's test split (data rows i % 5 == 4; needs ../shared/datasets).
 *
 *   npm run fairness -- [toxicity] [toxicity-mlp] [--terms (every term's row)] [--json]
 *
 * `test/predict-models.test.ts` ("identity and address evaluation") asserts the same figures through the Worker.
 */
import { feeds, loadShippedModel } from "../bench/model-time";
import { textManifestSchema } from "../src/contracts/manifest";
import {
  fairnessMarkdown,
  fairnessReport,
  identityEvalSet,
  scoredFromLabels,
} from "../src/training/fairness";
import { positiveTweets, ROOT } from "./training/catalogue";

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
        `${fairnessMarkdown(`\`${id}\` version ${manifest.version}`, report, tweetRate, tweets.length, args.includes("--terms"))}\n\n`,
      );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
