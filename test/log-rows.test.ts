/**
 * Issue 25, item 2: the prediction log tells the same story on every path. One text and one image
 * go through native sync (`POST /api/v1/predict`), async (`POST /api/v1/predictions` → the queue
 * consumer), the Open Inference Protocol (`/v2/models/{m}/infer`) and a replaced service's route
 * (the registry service's `GET /prediction` for the text, the image service's `/inference/image` for
 * the image); every row of one input holds the same model version and every label's score, however
 * each answer was shaped (`n_top: 1` is asked wherever a path takes it).
 */
import { env } from "cloudflare:test";
import { encode as encodePng } from "fast-png";
import { beforeAll, describe, expect, it } from "vitest";
import { api, postJson, seedShippedModel } from "./helpers";
import { waitFor, waitForStatus } from "./registry-helpers";

interface Row {
  kind: string;
  model_id: string;
  model_version: string;
  item: number;
  top_label: string;
  top_score: number;
  scores: string;
}

const TEXT = "what a lovely idea, thank you";

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** A 32×24 RGB gradient (not the model's input size, so it is resized on every path alike). */
function image(): string {
  const data = new Uint8Array(32 * 24 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256;
  return base64(encodePng({ width: 32, height: 24, data, channels: 3, depth: 8 }));
}

async function rowsOf(model: string, count: number): Promise<Row[]> {
  return waitFor(async () => {
    const { results } = await env.DB.prepare(
      "SELECT kind, model_id, model_version, item, top_label, top_score, scores FROM prediction_log WHERE model_id = ? ORDER BY seq",
    )
      .bind(model)
      .all<Row>();
    return results.length >= count ? results : undefined;
  });
}

/** What must be equal across paths: everything but how and when the row was written. */
function story(row: Row) {
  return {
    model: `${row.model_id}@${row.model_version}`,
    item: row.item,
    top: [row.top_label, row.top_score],
    scores: JSON.parse(row.scores) as Record<string, number>,
  };
}

beforeAll(async () => {
  await seedShippedModel("toxicity");
  await seedShippedModel("moderation-image");
});

describe("prediction log rows are the same on every path", () => {
  it("a text: native sync, async, Open Inference Protocol, the registry service's GET /prediction", async () => {
    expect((await postJson("/api/v1/predict", { text: TEXT, n_top: 1 })).status).toBe(200);
    const submitted = await postJson("/api/v1/predictions", { text: TEXT, n_top: 1 });
    expect(submitted.status).toBe(202);
    await waitForStatus(`/api/v1/predictions/${((await submitted.json()) as { id: string }).id}`, ["done"]);
    const infer = await postJson("/v2/models/toxicity/infer", {
      inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [TEXT] }],
      outputs: [{ name: "labels" }],
    });
    expect(infer.status).toBe(200);
    expect((await postJson("/prediction", { model_id: "toxicity", text: TEXT, n_top: "1" })).status).toBe(
      200,
    );

    const rows = await rowsOf("toxicity", 4);
    expect(rows.map((r) => r.kind).sort()).toEqual(["async", "sync", "sync", "sync"]);
    const first = story(rows[0] as Row);
    expect(Object.keys(first.scores)).toHaveLength(6);
    for (const row of rows) expect(story(row)).toEqual(first);
  });

  it("an image: native sync, async, Open Inference Protocol, the image service's /inference/image", async () => {
    const png = image();
    expect((await postJson("/api/v1/predict", { image: png, n_top: 1 })).status).toBe(200);
    const submitted = await postJson("/api/v1/predictions", { image: png, n_top: 1 });
    expect(submitted.status).toBe(202);
    await waitForStatus(`/api/v1/predictions/${((await submitted.json()) as { id: string }).id}`, ["done"]);
    const infer = await postJson("/v2/models/moderation-image/infer", {
      inputs: [{ name: "image", datatype: "BYTES", shape: [1], data: [png] }],
    });
    expect(infer.status).toBe(200);
    const compat = await api("/inference/image", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ name: "gradient", data: png }),
    });
    expect(compat.status).toBe(200);
    const { uuid } = (await compat.json()) as { uuid: string };
    await waitFor(async () => ((await api(`/predictions/${uuid}`)).status === 200 ? true : undefined));

    const rows = await rowsOf("moderation-image", 4);
    expect(rows.map((r) => r.kind).sort()).toEqual(["async", "async", "sync", "sync"]);
    const first = story(rows[0] as Row);
    expect(Object.keys(first.scores)).toHaveLength(5);
    for (const row of rows) expect(story(row)).toEqual(first);
  });
});
