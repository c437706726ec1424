/**
 * Writes a shipped binary text model's test-split predictions (0/1 at 0.5, file order) as JSON, for
 * paired comparisons with another system on the same rows (`mcnemar.py`). Runs the shipped int8
 * graph with onnxruntime-web, as the Worker does. Only for reporting a final figure: model
 * selection never reads the test split.
 *
 *   npx tsx scripts/explore/test-predictions.ts sentiment > /tmp/sentiment-test.json
 */
import { feeds, loadShippedModel } from "../../bench/model-time";
import { textManifestSchema } from "../../src/contracts/manifest";
import { ROOT, TRAINING_CATALOGUE } from "../training/catalogue";

const id = process.argv[2] ?? "sentiment";
const cfg = TRAINING_CATALOGUE[id];
if (cfg?.task !== "binary") throw new Error(`${id} is not a shipped binary text model`);
const { manifest, session } = await loadShippedModel(ROOT, id, textManifestSchema);
const texts = cfg.load().test.map((r) => r.text);
const predictions: number[] = [];
for (let start = 0; start < texts.length; start += 256) {
  const out = await session.run(feeds(texts.slice(start, start + 256), manifest.featurizer));
  // The binary graph's scores are [1 − p, p] per row.
  const scores = out[session.outputNames[0] as string]?.data as Float32Array;
  for (let r = 1; r < scores.length; r += 2) predictions.push((scores[r] as number) >= 0.5 ? 1 : 0);
}
process.stdout.write(`${JSON.stringify({ model: id, version: manifest.version, predictions })}\n`);
