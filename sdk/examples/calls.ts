/**
 * Example calls of the SDK. `npm run typecheck` compiles them (`tsc -p sdk/tsconfig.json`: the
 * `@ts-expect-error` lines prove the types refuse what the API refuses), and
 * test/node/sdk.test.ts runs them against the Worker.
 */
import type { EdgeInferenceClient, PredictAnswer } from "../src/index";

/** The label a predict answer ranks first, whichever kind it is (narrowed on `kind`). */
export function topLabel(answer: PredictAnswer): string | undefined {
  switch (answer.kind) {
    case "text":
      return answer.predictions[0]?.label;
    case "batch":
      return answer.results[0]?.predictions[0]?.label;
    case "image":
      return answer.predictions[0]?.label;
  }
}

/** Runs one call of each kind and returns what a caller would use. */
export async function runExamples(client: EdgeInferenceClient, imageBase64: string) {
  const health = await client.GET("/api/v1/health");

  const text = await client.POST("/api/v1/predict", {
    body: { text: "you are wonderful", model: "toxicity" },
  });
  if (!text.data) throw new Error(`predict failed: ${text.error?.detail}`);
  const answer = text.data;
  // @ts-expect-error `results` exists only on the batch answer: narrow on `kind` first.
  void answer.results;
  if (answer.kind === "text") void answer.sentiment; // narrowed: the seed-000 fields are there

  const batch = await client.POST("/api/v1/predict", {
    body: { texts: ["win cash now", "see you"], model: "spam" },
  });
  const image = await client.POST("/api/v1/predict", { body: { image: imageBase64, n_top: 2 } });

  // @ts-expect-error a body of the wrong shape does not compile (`text` is a string).
  if (Math.random() > 2) await client.POST("/api/v1/predict", { body: { text: 42 } });
  // @ts-expect-error neither does a path the API lacks.
  if (Math.random() > 2) await client.GET("/api/v1/no-such-route");

  const models = await client.GET("/api/v1/models");
  const spam = await client.GET("/api/v1/models/{id}", { params: { path: { id: "spam" } } });

  // Async prediction: 202 with a status URL, then the result.
  const submitted = await client.POST("/api/v1/predictions", { body: { text: "hello there" } });
  const id = submitted.data?.id ?? "";
  let prediction = await client.GET("/api/v1/predictions/{id}", { params: { path: { id } } });
  for (
    let i = 0;
    i < 300 && prediction.data?.status !== "done" && prediction.data?.status !== "failed";
    i++
  ) {
    await new Promise((r) => setTimeout(r, 100));
    prediction = await client.GET("/api/v1/predictions/{id}", { params: { path: { id } } });
  }

  // Open Inference Protocol v2.
  const infer = await client.POST("/v2/models/{model}/infer", {
    params: { path: { model: "spam" } },
    body: { inputs: [{ name: "text", shape: [1], datatype: "BYTES", data: ["free prize, call now"] }] },
  });

  // An error is typed too: the problem's stable code.
  const missing = await client.GET("/api/v1/models/{id}", { params: { path: { id: "no-such-model" } } });

  return {
    health: health.data?.status,
    text: topLabel(answer),
    textKind: answer.kind,
    batch: batch.data && topLabel(batch.data),
    batchKind: batch.data?.kind,
    image: image.data && topLabel(image.data),
    imageKind: image.data?.kind,
    models: models.data?.models.map((m) => m.id) ?? [],
    spamVersions: spam.data?.versions.map((v) => v.version) ?? [],
    submittedStatus: submitted.response.status,
    prediction: prediction.data?.status,
    predictionResult: prediction.data?.result,
    inferOutputs: infer.data?.outputs.map((o) => o.name) ?? [],
    missing: { status: missing.response.status, code: missing.error?.code },
  };
}
