/**
 * The per-request work budget (src/inference/budget.ts): every protocol's batch is bounded in
 * image model runs, decoded pixels and text bytes, and refused with 413 naming the limit before
 * any decode (docs/configuration.md "Work budget").
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { encode as encodePng } from "fast-png";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../src/index";
import { postJson, problem, seedShippedModel, testToken } from "./helpers";

beforeAll(async () => {
  for (const id of ["toxicity", "digits"]) await seedShippedModel(id);
});

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** A real 28×28 gray PNG. */
const smallPng = base64(
  encodePng({ width: 28, height: 28, data: new Uint8Array(784), channels: 1, depth: 8 }),
);

/**
 * A PNG signature and IHDR claiming `width` × `height` and nothing else: decoding it would be a
 * 400 `invalid_image`, so a 413 `work_budget_exceeded` shows the budget was checked before decoding.
 */
function headerOnlyPng(width: number, height: number): string {
  const bytes = new Uint8Array(8 + 25);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, 13);
  bytes.set([0x49, 0x48, 0x44, 0x52], 12);
  view.setUint32(16, width);
  view.setUint32(20, height);
  bytes.set([8, 0, 0, 0, 0], 24);
  return base64(bytes);
}

async function infer(model: string, input: unknown): Promise<Response> {
  return postJson(`/v2/models/${model}/infer`, { inputs: [input] });
}

describe("per-request work budget", () => {
  it("OIP BYTES images: more images than MAX_REQUEST_IMAGES (8) is 413 naming the limit; 8 are scored", async () => {
    const nine = await infer("digits", {
      name: "image",
      datatype: "BYTES",
      shape: [9],
      data: Array.from({ length: 9 }, () => smallPng),
    });
    expect(nine.status).toBe(413);
    expect(((await nine.json()) as { error: string }).error).toMatch(/limit is 8 \(MAX_REQUEST_IMAGES\)/);
    const eight = await infer("digits", {
      name: "image",
      datatype: "BYTES",
      shape: [8],
      data: Array.from({ length: 8 }, () => smallPng),
    });
    expect(eight.status).toBe(200);
  });

  it("OIP UINT8 [64,1,1,1] (204 bytes, 64 model runs) is 413", async () => {
    const res = await infer("digits", {
      name: "image",
      datatype: "UINT8",
      shape: [64, 1, 1, 1],
      data: new Array(64).fill(0),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/MAX_REQUEST_IMAGES/);
  });

  it("decoded pixels: two 2048² headers (2 × the native route's largest image) are 413 before any decode", async () => {
    const res = await infer("digits", {
      name: "image",
      datatype: "BYTES",
      shape: [2],
      data: [headerOnlyPng(2048, 2048), headerOnlyPng(2048, 2048)],
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(/limit is 4194304 .*MAX_REQUEST_PIXELS/);
    // One such header is within the budget: the decoder then refuses the missing image data.
    const one = await infer("digits", {
      name: "image",
      datatype: "BYTES",
      shape: [1],
      data: [headerOnlyPng(2048, 2048)],
    });
    expect(one.status).toBe(400);
  });

  it("UINT8 pixel tensors count their pixels: [5, 1024, 1024, 1] (5 Mpx) is over the 4 Mpx pixel budget", async () => {
    // The check needs the shape only; the data is refused for its length after the budget.
    const res = await infer("digits", {
      name: "image",
      datatype: "UINT8",
      shape: [5, 1024, 1024, 1],
      data: [],
    });
    expect(res.status).toBe(413);
  });

  it("the native route answers the same problem (work_budget_exceeded, limit_pixels)", async () => {
    const small = { ...env, MAX_REQUEST_PIXELS: "100" } as Env;
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request("http://edge.test/api/v1/predict", {
        method: "POST",
        headers: { authorization: `Bearer ${await testToken()}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "digits", image: smallPng }),
      }),
      small,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(413);
    expect(await problem(res)).toMatchObject({ code: "work_budget_exceeded", limit_pixels: 100 });
  });

  it("texts: more UTF-8 in one request than MAX_REQUEST_TEXT_BYTES is 413 on every protocol", async () => {
    const small = { ...env, MAX_REQUEST_TEXT_BYTES: "1000" } as Env;
    const call = async (path: string, body: unknown) => {
      const ctx = createExecutionContext();
      const res = await worker.fetch(
        new Request(`http://edge.test${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${await testToken()}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
        small,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return res;
    };
    const texts = Array.from({ length: 4 }, () => "x".repeat(300));
    const native = await call("/api/v1/predict", { texts });
    expect(native.status).toBe(413);
    expect(await problem(native)).toMatchObject({ code: "work_budget_exceeded", limit_bytes: 1000 });
    const oip = await call("/v2/models/toxicity/infer", {
      inputs: [{ name: "text", datatype: "BYTES", shape: [4], data: texts }],
    });
    expect(oip.status).toBe(413);
    const asyncPrediction = await call("/api/v1/predictions", { texts });
    expect(asyncPrediction.status).toBe(413);
    expect((await call("/api/v1/predict", { texts: texts.slice(0, 3) })).status).toBe(200);
  });
});
