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
 * `models/<id>/{model.onnx,manifest.json,MODEL_CARD.md,reference.json,profile.json}` (unless --dry-run;
 * profile.json: the reference profile for drift, `scripts/profile-models.ts`).
 * Overrides are for experiments; the committed models use the defaults in
 * `TRAINING_CATALOGUE` (`scripts/training/catalogue.ts`); the library is `scripts/training/`.
 */

import { pathToFileURL } from "node:url";
import { writeProfile } from "./profile-models";
import { trainDigits } from "./train-digits";
import { TRAINING_CATALOGUE } from "./training/catalogue";
import { trainMlp } from "./training/mlp";
import { applyOverrides } from "./training/overrides";
import { trainTextModel } from "./training/text";

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
  const all = [
    ...Object.keys(TRAINING_CATALOGUE),
    ...Object.keys(TRAINING_CATALOGUE).map((id) => `${id}-mlp`),
    "digits",
  ];
  return { ids: ids.includes("all") ? all : ids, dryRun, over };
}

async function main(): Promise<void> {
  const { ids, dryRun, over } = parseArgs(process.argv.slice(2));
  for (const id of ids) {
    if (id === "digits") await trainDigits(dryRun, over);
    else if (id.endsWith("-mlp")) await trainMlp(id.slice(0, -4), dryRun);
    else {
      const cfg = TRAINING_CATALOGUE[id];
      if (!cfg)
        throw new Error(
          `unknown model ${id} (known: ${Object.keys(TRAINING_CATALOGUE).join(", ")}, digits, all)`,
        );
      await trainTextModel(applyOverrides(cfg, over), dryRun, over);
    }
    // The new model's reference profile over its train split (docs/drift.md).
    // (Not after a `--no-test` selection run: it writes no model.)
    if (!dryRun && !over["no-test"])
      console.log(`${id}: models/${id}/profile.json, ${await writeProfile(id)} bytes`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
