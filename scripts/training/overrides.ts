import type { TextFeaturizerSpec } from "../../src/featurizer/text";
import type { Candidate } from "../../src/training/select";
import { loadToxicity, type ModelConfig } from "./catalogue";

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

export function applyOverrides(cfg: ModelConfig, over: Record<string, string>): ModelConfig {
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
    ...(over["mask-identity"] !== undefined && {
      maskIdentity: over["mask-identity"] !== "0",
      maskIdentityBigrams: over["mask-identity"] === "bigrams" || over["mask-identity"] === "chunks",
      maskIdentityChunks: over["mask-identity"] === "chunks",
    }),
    // `--gate-identity-hate`: identity_hate = toxic's score × P(identity_hate | toxic) (issue #28).
    ...(over["gate-identity-hate"] !== undefined &&
      over["gate-identity-hate"] !== "0" && {
        gate: { column: cfg.labels.indexOf("identity_hate"), by: cfg.labels.indexOf("toxic") },
      }),
    // `--cap=none` trains without issue #28's weight cap, `--cap=<address scale>` with another scale.
    ...(over.cap !== undefined && {
      cap: over.cap === "none" ? undefined : { addressScale: Number(over.cap) },
    }),
  };
  if (over.extra && cfg.id === "toxicity") return { ...base, load: () => loadToxicity(over.extra === "1") };
  return base;
}
