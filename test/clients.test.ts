/**
 * The clients people already have, unchanged apart from the token, against the real Worker: the
 * official `openai` package (`moderations.create`) and `@huggingface/inference`
 * (`textClassification`, `imageClassification` with `endpointUrl`). Each client gets a `fetch` that
 * puts a fresh ASAP token on every request and hands it to the Worker's own fetch handler.
 */
import { exports } from "cloudflare:workers";
import { InferenceClient, imageClassification, textClassification } from "@huggingface/inference";
import { encode as encodePng } from "fast-png";
import OpenAI from "openai";
import { beforeAll, describe, expect, it } from "vitest";
import { syntheticImage } from "../src/image/synthetic";
import { api, postJson, problem, seedShippedModel, testToken } from "./helpers";

const ORIGIN = "http://edge.test";

/** A fetch into the Worker with a fresh token (new jti) on every request, as a real deployment needs. */
const workerFetch: typeof fetch = async (input, init) => {
  const request = new Request(input, init);
  const headers = new Headers(request.headers);
  headers.set("authorization", `Bearer ${await testToken()}`);
  return exports.default.fetch(new Request(request, { headers }));
};

function pngBytes(seed: number, index: number): Uint8Array {
  const image = syntheticImage(seed, index, 224, 224);
  return encodePng({ width: image.width, height: image.height, data: image.data, channels: 3, depth: 8 });
}

const toBase64 = (bytes: Uint8Array) => {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};

interface NativeText {
  predictions: { label: string; score: number }[];
  flagged: string[];
}

beforeAll(async () => {
  await seedShippedModel("toxicity");
  await seedShippedModel("moderation-image");
  await seedShippedModel("spam");
});

describe("openai: moderations.create with baseURL at the Worker", () => {
  const client = new OpenAI({
    apiKey: "unused: ASAP tokens are minted per request",
    baseURL: `${ORIGIN}/v1`,
    fetch: workerFetch,
    maxRetries: 0,
  });

  it("a string: the OpenAI shape, our labels and OpenAI's names, flagged by the calibrated thresholds", async () => {
    const text = "you are a stupid idiot and I will kill you";
    const answer = await client.moderations.create({ input: text });
    expect(answer.id).toMatch(/^modr-/);
    expect(answer.model).toBe("toxicity");
    expect(answer.results).toHaveLength(1);
    const [result] = answer.results;
    if (!result) throw new Error("no result");
    const native = (await (
      await postJson("/api/v1/predict", { model: "toxicity", text })
    ).json()) as NativeText;
    const score = (label: string) => native.predictions.find((p) => p.label === label)?.score as number;
    for (const label of ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]) {
      expect(result.category_scores[label as keyof typeof result.category_scores]).toBeCloseTo(
        score(label),
        6,
      );
      expect(result.categories[label as keyof typeof result.categories]).toBe(native.flagged.includes(label));
    }
    expect(result.category_scores.harassment).toBeCloseTo(score("insult"), 6);
    expect(result.category_scores.hate).toBeCloseTo(score("identity_hate"), 6);
    expect(result.category_scores["harassment/threatening"]).toBeCloseTo(score("threat"), 6);
    expect(result.category_scores.violence).toBeCloseTo(score("threat"), 6);
    expect(result.categories.harassment).toBe(native.flagged.includes("insult"));
    expect(result.flagged).toBe(native.flagged.length > 0);
    expect(result.flagged).toBe(true);
    expect(result.category_applied_input_types.harassment).toEqual(["text"]);
    // A category we have no model for is absent, never a made-up 0.
    expect("self-harm" in result.category_scores).toBe(false);
  });

  it("a batch: one result per string, in order; a harmless text is not flagged", async () => {
    const answer = await client.moderations.create({
      model: "omni-moderation-latest",
      input: ["thank you, have a lovely day", "you are a stupid idiot and I will kill you"],
    });
    expect(answer.results.map((r) => r.flagged)).toEqual([false, true]);
  });

  it("an image as a data: URL part (with a text part): one result over both input types", async () => {
    const png = pngBytes(11, 2);
    const answer = await client.moderations.create({
      input: [
        { type: "text", text: "hello there" },
        { type: "image_url", image_url: { url: `data:image/png;base64,${toBase64(png)}` } },
      ],
    });
    expect(answer.model).toBe("toxicity+moderation-image");
    expect(answer.results).toHaveLength(1);
    const [result] = answer.results;
    if (!result) throw new Error("no result");
    const native = (await (await postJson("/api/v1/predict", { image: toBase64(png) })).json()) as NativeText;
    const score = (label: string) => native.predictions.find((p) => p.label === label)?.score as number;
    const scores = result.category_scores as unknown as Record<string, number>;
    expect(scores.Porn).toBeCloseTo(score("Porn"), 6);
    expect(scores.sexual).toBeCloseTo(score("Porn") + score("Hentai"), 6);
    expect("Neutral" in scores).toBe(false);
    const top = native.predictions[0]?.label as string;
    expect(result.categories.sexual).toBe(top === "Porn" || top === "Hentai");
    expect(result.category_applied_input_types.sexual).toEqual(["image"]);
    expect(result.category_applied_input_types.harassment).toEqual(["text"]);
  });

  it("refusals: an http image URL (nothing is fetched), an unknown model, a text model for an image", async () => {
    const remote = await postJson("/v1/moderations", {
      input: [{ type: "image_url", image_url: { url: "https://example.com/x.png" } }],
    });
    expect((await problem(remote)).detail).toBe("input.0.image_url.url must be a data: URL");
    await expect(client.moderations.create({ input: "hi", model: "no-such-model" })).rejects.toMatchObject({
      status: 404,
    });
    const spam = await client.moderations.create({ input: "WIN a FREE prize now!!! call", model: "spam" });
    expect(spam.model).toBe("spam");
    expect(Object.keys(spam.results[0]?.category_scores ?? {}).sort()).toEqual(["ham", "spam"]);
    const image = {
      type: "image_url",
      image_url: { url: `data:image/png;base64,${toBase64(pngBytes(11, 1))}` },
    };
    const mismatch = await postJson("/v1/moderations", { model: "spam", input: [image] });
    expect((await problem(mismatch)).code).toBe("model_input_mismatch");
  });
});

describe("@huggingface/inference: textClassification and imageClassification with endpointUrl", () => {
  const endpoint = (model: string, task: string) => `${ORIGIN}/hf/models/${model}/pipeline/${task}`;
  const accessToken = "unused: ASAP tokens are minted per request";

  it("textClassification: every label best first, top_k cuts; the same scores as the native route", async () => {
    const text = "WIN a FREE prize now!!! call";
    const all = await textClassification(
      { endpointUrl: endpoint("spam", "text-classification"), accessToken, inputs: text },
      { fetch: workerFetch },
    );
    const native = (await (await postJson("/api/v1/predict", { model: "spam", text })).json()) as NativeText;
    expect(all).toEqual(native.predictions);
    const top = await textClassification(
      {
        endpointUrl: endpoint("toxicity", "text-classification"),
        accessToken,
        inputs: "you are an idiot",
        parameters: { top_k: 2 },
      },
      { fetch: workerFetch },
    );
    expect(top).toHaveLength(2);
    expect((top[0]?.score ?? 0) >= (top[1]?.score ?? 0)).toBe(true);
    // The InferenceClient class takes the same endpoint.
    const client = new InferenceClient(accessToken, {
      endpointUrl: endpoint("spam", "text-classification"),
      fetch: workerFetch,
    });
    expect(await client.textClassification({ inputs: text })).toEqual(native.predictions);
  });

  it("a batch of inputs answers one list per input ([[…], […]])", async () => {
    const res = await postJson("/hf/models/spam/pipeline/text-classification", {
      inputs: ["hello mum, see you at dinner", "WIN a FREE prize now!!! call"],
      parameters: { top_k: 1 },
    });
    const lists = (await res.json()) as { label: string }[][];
    expect(lists.map((l) => l.map((p) => p.label))).toEqual([["ham"], ["spam"]]);
  });

  it("imageClassification: raw bytes (a Blob) → [{label, score}], 5 best; JSON base64 and base64 text also taken", async () => {
    const png = pngBytes(11, 0);
    const answer = await imageClassification(
      {
        endpointUrl: endpoint("moderation-image", "image-classification"),
        accessToken,
        data: new Blob([png]),
      },
      { fetch: workerFetch },
    );
    const native = (await (await postJson("/api/v1/predict", { image: toBase64(png) })).json()) as NativeText;
    expect(answer).toEqual(native.predictions.slice(0, 5));
    const json = await postJson("/hf/models/moderation-image/pipeline/image-classification", {
      inputs: toBase64(png),
      parameters: { top_k: 2 },
    });
    expect(await json.json()).toEqual(native.predictions.slice(0, 2));
    const text = await api("/hf/models/moderation-image/pipeline/image-classification", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: toBase64(png),
    });
    expect(await text.json()).toEqual(native.predictions.slice(0, 5));
  });

  it("errors reach the client with their detail; a text model refuses an image", async () => {
    await expect(
      textClassification(
        { endpointUrl: endpoint("no-such-model", "text-classification"), accessToken, inputs: "x" },
        { fetch: workerFetch },
      ),
    ).rejects.toThrow(/no-such-model/);
    await expect(
      imageClassification(
        {
          endpointUrl: endpoint("spam", "image-classification"),
          accessToken,
          data: new Blob([pngBytes(11, 0)]),
        },
        { fetch: workerFetch },
      ),
    ).rejects.toThrow(/Failed to perform inference/);
  });
});
