/**
 * Explanations (issue #31 item 1, docs/explanations.md) through the Worker with the shipped models,
 * real R2 and onnxruntime-web in workerd. The judge of "exact" is the graph itself: each model's
 * ONNX graph is re-run with its internal `logits` tensor exposed as an output, and the answer's
 * contributions plus bias must add up to that logit within 1e-4.
 */
import $protobuf from "protobufjs/minimal.js";
import { beforeAll, describe, expect, it } from "vitest";
import { textManifestSchema } from "../src/contracts/manifest";
import { ngramOccurrences } from "../src/featurizer/spans";
import {
  featurize,
  normalizeText,
  padRows,
  type SparseFeatures,
  type TextFeaturizerSpec,
  wordTokens,
} from "../src/featurizer/text";
import { explainTexts } from "../src/inference/explain";
import { createSession, ort } from "../src/inference/ort";
import { onnx } from "../src/onnx/generated/onnx.js";
import { api, fixtureBytes, postJson, problem, seedShippedModel, testToken } from "./helpers";

interface Contribution {
  ngram: string;
  kind: "word" | "char";
  contribution: number;
  spans: [number, number][];
}
interface LabelExplanation {
  label: string;
  logit: number;
  bias?: number;
  other?: number;
  top: Contribution[];
  gated_by?: string;
}
interface Explanation {
  method: string;
  approximate: boolean;
  labels: LabelExplanation[];
}
interface TextResult {
  predictions: { label: string; score: number }[];
  explanation: Explanation;
}

const LINEAR = ["toxicity", "sentiment", "spam"] as const;
const NETWORKS = ["toxicity-mlp", "sentiment-mlp", "spam-mlp"] as const;
const TEXTS = [
  "You are a complete idiot and everybody in this thread knows it, stop posting your garbage opinions here.",
  // Repeated n-grams: "so" ×3, "good" ×2 (sublinear tf: one bucket's term shared by its occurrences).
  "so so so good, really good",
  // "bee" and "0617" hash into one bucket in all three models (found by enumerating n-grams).
  "a bee called 0617",
  "WINNER!! You have been selected to receive a £1000 cash prize. Call 09061701461 now to claim, T&C apply.",
  // Unicode: fullwidth letters (NFKC), a decomposed é, an emoji (surrogate pair), a ligature, Greek.
  "Ｔｈｉｓ cafe\u0301 is naïve 😀 ﬁne ΟΔΟΣ — I LOVE it",
];

const manifests: Record<string, { labels: string[]; featurizer: TextFeaturizerSpec }> = {};
const logitSessions: Record<string, ort.InferenceSession> = {};

/** The model's graph with its `logits` tensor as a second output. */
async function logitSession(id: string): Promise<ort.InferenceSession> {
  const model = onnx.ModelProto.decode(await fixtureBytes(`models/${id}/model.onnx`));
  const graph = model.graph as onnx.GraphProto;
  graph.output.push(
    onnx.ValueInfoProto.create({
      name: "logits",
      type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: "batch" }, { dimParam: "c" }] } } },
    }),
  );
  return createSession(onnx.ModelProto.encode(model, new $protobuf.Writer()).finish());
}

/** The graph's own logits for `text` (one row per logit column). */
async function graphLogits(id: string, text: string): Promise<number[]> {
  const spec = manifests[id]?.featurizer as TextFeaturizerSpec;
  const batch = padRows([featurize(text, spec)]);
  const session = logitSessions[id] as ort.InferenceSession;
  const out = await session.run({
    ids: new ort.Tensor("int64", batch.ids, batch.dims),
    values: new ort.Tensor("float32", batch.values, batch.dims),
  });
  return [...((out.logits as ort.Tensor).data as Float32Array)];
}

/** The graph logit a label reads (a two-label binary graph has one logit: label 0 is its negative). */
function labelLogit(id: string, logits: number[], k: number): number {
  const labels = manifests[id]?.labels ?? [];
  if (logits.length === 1 && labels.length === 2)
    return k === 1 ? (logits[0] as number) : -(logits[0] as number);
  return logits[k] as number;
}

async function explain(body: Record<string, unknown>): Promise<Response> {
  return postJson("/api/v1/predict", { explain: true, ...body });
}

beforeAll(async () => {
  for (const id of [...LINEAR, ...NETWORKS, "digits"]) await seedShippedModel(id);
  for (const id of [...LINEAR, ...NETWORKS]) {
    manifests[id] = JSON.parse(new TextDecoder().decode(await fixtureBytes(`models/${id}/manifest.json`)));
  }
  for (const id of [...LINEAR, ...NETWORKS]) logitSessions[id] = await logitSession(id);
});

describe("exact explanations of the linear models", () => {
  for (const id of LINEAR) {
    it(`${id}: bias + every n-gram's contribution = the graph's logit (1e-4), top + other too`, async () => {
      for (const text of TEXTS) {
        const [all, cut] = await Promise.all([
          explain({ model: id, text, explain_top: 200 }),
          explain({ model: id, text }),
        ]);
        expect(all.status).toBe(200);
        const full = ((await all.json()) as TextResult).explanation;
        const ten = ((await cut.json()) as TextResult).explanation;
        expect(full.method).toBe("exact-linear");
        expect(full.approximate).toBe(false);
        const logits = await graphLogits(id, text);
        const distinct = new Set(
          ngramOccurrences(text, manifests[id]?.featurizer as TextFeaturizerSpec).map(
            (o) => `${o.kind}:${o.ngram}`,
          ),
        );
        full.labels.forEach((l, k) => {
          const graph = labelLogit(id, logits, k);
          const sum = (l.bias as number) + l.top.reduce((s, c) => s + c.contribution, 0);
          expect(Math.abs(l.logit - graph)).toBeLessThan(1e-4);
          const withOther = sum + (l.other as number);
          expect(Math.abs(withOther - graph), `${id} ${l.label} "${text}"`).toBeLessThan(1e-4);
          if (distinct.size <= 200) {
            // Every n-gram listed: bias + Σ contributions alone is the logit.
            expect(l.top.length).toBe(distinct.size);
            expect(Math.abs(l.other as number)).toBeLessThan(1e-9);
            expect(Math.abs(sum - graph), `${id} ${l.label} "${text}"`).toBeLessThan(1e-4);
          }
          const t = ten.labels[k] as LabelExplanation;
          expect(t.top.length).toBe(10);
          const cutSum =
            (t.bias as number) + t.top.reduce((s, c) => s + c.contribution, 0) + (t.other as number);
          expect(Math.abs(cutSum - graph)).toBeLessThan(1e-4);
          // Largest |contribution| first.
          for (let i = 1; i < t.top.length; i++) {
            expect(Math.abs((t.top[i - 1] as Contribution).contribution)).toBeGreaterThanOrEqual(
              Math.abs((t.top[i] as Contribution).contribution),
            );
          }
        });
      }
    });
  }

  it("toxicity's identity_hate is gated by toxic (issue #28): marked, and its score = σ(logit) · σ(toxic's logit)", async () => {
    const res = await explain({ model: "toxicity", text: TEXTS[0] });
    const body = (await res.json()) as TextResult;
    const labels = body.explanation.labels;
    expect(labels.map((l) => l.gated_by)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      "toxic",
    ]);
    const toxic = labels[0] as LabelExplanation;
    const hate = labels[5] as LabelExplanation;
    const sig = (z: number) => 1 / (1 + Math.exp(-z));
    const score = body.predictions.find((p) => p.label === "identity_hate")?.score as number;
    expect(score).toBeCloseTo(sig(hate.logit) * sig(toxic.logit), 5);
    expect(score).toBeLessThanOrEqual(body.predictions.find((p) => p.label === "toxic")?.score as number);
  });

  it("a bucket two n-grams share is split between them; repeated n-grams keep every span", async () => {
    const text = "a bee called 0617";
    const res = (await (await explain({ model: "spam", text, explain_top: 200 })).json()) as TextResult;
    const spam = res.explanation.labels[1] as LabelExplanation;
    const bee = spam.top.find((c) => c.kind === "char" && c.ngram === "bee") as Contribution;
    const other = spam.top.find((c) => c.kind === "char" && c.ngram === "0617") as Contribution;
    expect(bee.contribution).not.toBe(0);
    expect(bee.contribution).toBeCloseTo(other.contribution, 12);
    const repeated = (await (
      await explain({ model: "toxicity", text: TEXTS[1], explain_top: 200 })
    ).json()) as TextResult;
    const so = (repeated.explanation.labels[0] as LabelExplanation).top.find(
      (c) => c.kind === "word" && c.ngram === "so",
    );
    expect(so?.spans).toEqual([
      [0, 2],
      [3, 5],
      [6, 8],
    ]);
  });

  it("spans point at the n-gram's text in the input (UTF-16 offsets), unicode included", async () => {
    for (const text of TEXTS) {
      const res = (await (await explain({ model: "toxicity", text, explain_top: 200 })).json()) as TextResult;
      for (const c of (res.explanation.labels[0] as LabelExplanation).top) {
        for (const [s, e] of c.spans) {
          expect(s).toBeGreaterThanOrEqual(0);
          expect(e).toBeLessThanOrEqual(text.length);
          const covered = normalizeText(text.slice(s, e));
          const ok =
            c.kind === "char" ? covered.includes(c.ngram.trim()) : wordTokens(covered).join(" ") === c.ngram;
          expect(ok, `${c.kind} '${c.ngram}' at [${s}, ${e}) of "${text}"`).toBe(true);
        }
      }
    }
    const unicode = TEXTS[4] as string;
    const occurrences = ngramOccurrences(unicode, manifests.toxicity?.featurizer as TextFeaturizerSpec);
    const span = (g: string): [number, number] => {
      const o = occurrences.find((c) => c.kind === "word" && c.ngram === g);
      return [o?.start ?? -1, o?.end ?? -1];
    };
    expect(unicode.slice(...span("this"))).toBe("Ｔｈｉｓ");
    expect(unicode.slice(...span("café"))).toBe("cafe\u0301");
    expect(unicode.slice(...span("fine"))).toBe("ﬁne");
    // A context-dependent lowercase (final sigma) falls back to whitespace-separated segments.
    expect(unicode.slice(...span(normalizeText("ΟΔΟΣ")))).toBe("ΟΔΟΣ");
    expect(unicode.slice(...span("i love"))).toBe("I LOVE");
    expect(unicode.slice(...span("love"))).toBe("LOVE");
  });

  it("the featurizer's buckets are exactly those of the enumerated n-grams, with their counts", () => {
    for (const id of LINEAR) {
      const spec = { ...(manifests[id]?.featurizer as TextFeaturizerSpec), norm: "none" as const };
      for (const text of TEXTS) {
        const counts = new Map<number, number>();
        for (const o of ngramOccurrences(text, spec)) counts.set(o.bucket, (counts.get(o.bucket) ?? 0) + 1);
        const f = featurize(text, spec);
        expect([...f.ids]).toEqual([...counts.keys()].sort((a, b) => a - b));
        f.ids.forEach((b, j) => {
          expect(f.values[j]).toBeCloseTo(1 + Math.log(counts.get(b) as number), 5);
        });
      }
    }
  });
});

describe("explain: other shapes and refusals", () => {
  it("mlp variants: linearized at the text's ReLU pattern, labelled approximate, summing to the graph's logit", async () => {
    for (const id of NETWORKS) {
      for (const text of TEXTS) {
        const res = await explain({ model: id, text, explain_top: 200 });
        expect(res.status).toBe(200);
        const body = (await res.json()) as TextResult;
        expect(body.explanation.method).toBe("linearized");
        expect(body.explanation.approximate).toBe(true);
        const logits = await graphLogits(id, text);
        body.explanation.labels.forEach((l, k) => {
          const graph = labelLogit(id, logits, k);
          const sum =
            (l.bias as number) + l.top.reduce((x, c) => x + c.contribution, 0) + (l.other as number);
          expect(Math.abs(sum - graph), `${id} ${l.label} "${text}"`).toBeLessThan(1e-4);
          expect(Math.abs(l.logit - graph)).toBeLessThan(1e-4);
        });
      }
    }
    const text = "You are a complete idiot, stop posting";
    const res = await explain({ model: "toxicity", network: "mlp", text, explain_top: 200 });
    const body = (await res.json()) as TextResult & { model: { id: string } };
    expect(body.model.id).toBe("toxicity-mlp");
    const toxic = body.explanation.labels[0] as LabelExplanation;
    const idiot = toxic.top.find((c) => c.kind === "word" && c.ngram === "idiot");
    expect(idiot?.contribution).toBeGreaterThan(0);
  });

  it("leave-one-out (graphs of no known family): one batched run of the text without each word; budgeted", async () => {
    const id = "toxicity-mlp";
    const manifest = textManifestSchema.parse(
      JSON.parse(new TextDecoder().decode(await fixtureBytes(`models/${id}/manifest.json`))),
    );
    const session = await createSession(await fixtureBytes(`models/${id}/model.onnx`));
    const runs: number[] = [];
    const run = async (rows: readonly SparseFeatures[]): Promise<Float32Array[]> => {
      runs.push(rows.length);
      const batch = padRows(rows);
      const out = await session.run({
        ids: new ort.Tensor("int64", batch.ids, batch.dims),
        values: new ort.Tensor("float32", batch.values, batch.dims),
      });
      const data = (out.scores as ort.Tensor).data as Float32Array;
      return rows.map((_, i) => data.slice(i * 6, (i + 1) * 6));
    };
    const texts = ["You are a complete idiot, stop posting", "so so so good"];
    const features = texts.map((t) => featurize(t, manifest.featurizer));
    const scores = await run(features);
    const budget = { MAX_REQUEST_TEXT_BYTES: 1 << 20, MAX_REQUEST_IMAGES: 1, MAX_REQUEST_PIXELS: 1 };
    const [a, b] = await explainTexts(budget, manifest, null, texts, features, scores, {}, run);
    expect(runs).toEqual([2, 7 + 2]); // the texts, then every variant of both in one run
    expect(a?.method).toBe("leave-one-out");
    expect(a?.approximate).toBe(true);
    const toxic = a?.labels[0] as LabelExplanation;
    expect(toxic.bias).toBeUndefined();
    expect(toxic.top.length).toBe(7);
    const score = (scores[0] as Float32Array)[0] as number;
    expect(toxic.logit).toBeCloseTo(Math.log(score / (1 - score)), 3);
    // Removing "idiot" lowers the toxic logit most.
    expect(toxic.top[0]?.ngram).toBe("idiot");
    expect(texts[0]?.slice(...(toxic.top[0]?.spans[0] as [number, number]))).toBe("idiot");
    expect((b?.labels[0] as LabelExplanation).top.find((c) => c.ngram === "so")?.spans).toEqual([
      [0, 2],
      [3, 5],
      [6, 8],
    ]);
    // Each text once more per distinct word counts in the work budget: 413 before any extra run.
    const long = [Array.from({ length: 30 }, (_, i) => `word${i}`).join(" ")];
    const small = { ...budget, MAX_REQUEST_TEXT_BYTES: 2000 };
    const over = explainTexts(
      small,
      manifest,
      null,
      long,
      [featurize(long[0] as string, manifest.featurizer)],
      scores,
      {},
      run,
    );
    await expect(over).rejects.toMatchObject({ code: "work_budget_exceeded", status: 413 });
    await session.release();
  });

  it("a batch explains each text", async () => {
    const res = await explain({ model: "sentiment", texts: [TEXTS[0], TEXTS[1]] });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: TextResult[] };
    expect(results).toHaveLength(2);
    for (const [i, r] of results.entries()) {
      const logits = await graphLogits("sentiment", TEXTS[i] as string);
      expect(
        Math.abs((r.explanation.labels[1] as LabelExplanation).logit - (logits[0] as number)),
      ).toBeLessThan(1e-4);
    }
    const plain = (await (
      await postJson("/api/v1/predict", { model: "sentiment", texts: [TEXTS[0]] })
    ).json()) as {
      results: Record<string, unknown>[];
    };
    expect(plain.results[0]?.explanation).toBeUndefined();
  });

  it("a long text between two short ones: each explained as alone (reused scratch buffers), the long one exact too", async () => {
    // ≈ 14,000 characters: over 32,768 n-gram occurrences and 1,024 buckets, past the buffers an
    // explanation keeps between texts; the short text after it must come out as it did before.
    const long = Array.from({ length: 1200 }, (_, i) => `w${i} z${(i * 7919) % 10007}`).join(" ");
    const short = TEXTS[0] as string;
    for (const id of ["toxicity-mlp", "toxicity"]) {
      const res = await explain({ model: id, texts: [short, long, short], explain_top: 200 });
      expect(res.status).toBe(200);
      const { results } = (await res.json()) as { results: TextResult[] };
      expect(results[2]?.explanation).toEqual(results[0]?.explanation);
      const logits = await graphLogits(id, long);
      results[1]?.explanation.labels.forEach((l, k) => {
        const graph = labelLogit(id, logits, k);
        const sum = (l.bias as number) + l.top.reduce((x, c) => x + c.contribution, 0) + (l.other as number);
        expect(Math.abs(sum - graph), `${id} ${l.label}`).toBeLessThan(1e-4);
      });
    }
  });

  it("Open Inference Protocol: parameters.explain adds an explanation output equal to the native one", async () => {
    const text = TEXTS[0] as string;
    const res = await postJson("/v2/models/toxicity/infer", {
      parameters: { explain: true, explain_top: 5 },
      inputs: [{ name: "text", shape: [1], datatype: "BYTES", data: [text] }],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { outputs: { name: string; shape: number[]; data: string[] }[] };
    const out = body.outputs.find((o) => o.name === "explanation");
    expect(out?.shape).toEqual([1]);
    const native = (await (await explain({ model: "toxicity", text, explain_top: 5 })).json()) as TextResult;
    expect(JSON.parse(out?.data[0] as string)).toEqual(native.explanation);
    const bad = await postJson("/v2/models/toxicity/infer", {
      parameters: { explain: "yes" },
      inputs: [{ name: "text", shape: [1], datatype: "BYTES", data: [text] }],
    });
    expect(bad.status).toBe(400);
  });

  it("an image model → 400 explain_unsupported naming the text models", async () => {
    for (const body of [{ image: "iVBORw0KGgo=" }, { model: "digits", text: "hello" }]) {
      const res = await explain(body);
      expect(res.status).toBe(400);
      const p = await problem(res);
      expect(p.code).toBe("explain_unsupported");
      expect(p.detail).toContain("'toxicity'");
      expect(p.detail).toContain("'sentiment'");
      expect(p.explainable_models).toContain("spam");
      expect(p.explainable_models).not.toContain("digits");
    }
    const oip = await postJson("/v2/models/digits/infer", {
      parameters: { explain: true },
      inputs: [{ name: "image", shape: [1, 28, 28, 1], datatype: "UINT8", data: new Array(784).fill(0) }],
    });
    expect(oip.status).toBe(400);
  });
});

describe("the dashboard's Explain a text box", () => {
  /** A dashboard session cookie of the test issuer (login URL → 303 with the cookie). */
  async function sessionCookie(): Promise<string> {
    const login = await api("/api/v1/dashboard/login", { method: "POST" });
    const { url } = (await login.json()) as { url: string };
    const exchanged = await api(url, { redirect: "manual" }, { auth: false });
    expect(exchanged.status).toBe(303);
    return (exchanged.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  }
  const post = (body: unknown, headers: Record<string, string>) =>
    api(
      "/dashboard/api/explain",
      {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      },
      { auth: false },
    );

  it("explains a text for a session, as predict with explain: true does; refuses without one", async () => {
    const cookie = await sessionCookie();
    const text = "You are an idiot";
    const res = await post({ text, model: "toxicity" }, { cookie });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { explanation: Explanation; flagged: string[] };
    const native = (await (await explain({ model: "toxicity", text })).json()) as TextResult & {
      flagged: string[];
    };
    expect(body.explanation).toEqual(native.explanation);
    expect(body.flagged).toEqual(native.flagged);
    expect((await post({ text }, {})).status).toBe(401);
    const bearer = await post({ text }, { authorization: `Bearer ${await testToken()}` });
    expect(bearer.status).toBe(401);
    const image = await post({ text, model: "digits" }, { cookie });
    expect(image.status).toBe(400);
    expect((await problem(image)).code).toBe("explain_unsupported");
    expect((await post({ text, extra: 1 }, { cookie })).status).toBe(400);
  });
});

describe("explain elsewhere", () => {
  it("async predictions refuse explain (400 listing it) instead of ignoring it", async () => {
    const res = await postJson("/api/v1/predictions", { text: "hello", explain: true });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await problem(res))).toContain("explain");
  });
});
