/**
 * Writes a shipped binary text model's test-split predictions (0/1 at 0.5, file order) as JSON, for
 * paired comparisons with another system on the same rows (`mcnemar.py`). Runs the shipped int8
 * graph with onnxruntime-web, as the Worker does. Only for reporting a final figure: model
 * selection never reads the test split.
 *
 *   npx tsx scripts/explore/test-predictions.ts sentiment > /tmp/sentiment-test.json
 */
import * as ort from "onnxruntime-web";
import { loadShippedModel } from "../../bench/model-time";
import { featurizeBatch } from "../../src/featurizer/text";
import { textManifestSchema } from "../../src/inference/manifest";
import { isTestRow } from "../../src/training/split";
import { ROOT, readCsvGz } from "../train";

const SOURCES: Record<string, { file: string; text: string }> = {
  sentiment: { file: "sentiment/tweets_sentiment.csv.gz", text: "SentimentText" },
  spam: { file: "spam/sms_spam.csv.gz", text: "SMS" },
};

const id = process.argv[2] ?? "sentiment";
const source = SOURCES[id];
if (!source) throw new Error(`unknown model ${id} (known: ${Object.keys(SOURCES).join(", ")})`);
const { manifest, session } = await loadShippedModel(ROOT, id, textManifestSchema);
const texts = readCsvGz(source.file)
  .filter((_, i) => isTestRow(i))
  .map((r) => r[source.text] ?? "");
const predictions: number[] = [];
for (let start = 0; start < texts.length; start += 256) {
  const batch = featurizeBatch(texts.slice(start, start + 256), manifest.featurizer);
  const out = await session.run({
    ids: new ort.Tensor("int64", batch.ids, batch.dims),
    values: new ort.Tensor("float32", batch.values, batch.dims),
  });
  const scores = out[session.outputNames[0] as string]?.data as Float32Array;
  const width = scores.length / batch.dims[0];
  for (let r = 0; r < batch.dims[0]; r++)
    predictions.push((scores[r * width + width - 1] as number) >= 0.5 ? 1 : 0);
}
process.stdout.write(`${JSON.stringify({ model: id, version: manifest.version, predictions })}\n`);
