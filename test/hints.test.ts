/**
 * Errors that say how to fix (#32): closest-match suggestions for unknown model names and routes,
 * a model that exists without an active version, the image limit on oversized image bodies, and
 * the token hints (missing token → `edge-inference token`, replayed jti → one token per request).
 */

import { beforeAll, describe, expect, it } from "vitest";
import { MAX_IMAGE_BODY_BYTES, MAX_IMAGE_BYTES } from "../src/image/decode";
import { api, postJson, problem, seedShippedModel, testToken } from "./helpers";
import { tinyModel, upload } from "./registry-helpers";

beforeAll(async () => {
  for (const id of ["toxicity", "spam"]) await seedShippedModel(id);
});

describe("unknown names get the closest match", () => {
  it("a mistyped model id suggests the real one (predict and async predictions)", async () => {
    for (const path of ["/api/v1/predict", "/api/v1/predictions"]) {
      const res = await postJson(path, { model: "toxicty", text: "hello" });
      expect(res.status).toBe(404);
      const p = await problem(res);
      expect(p.code).toBe("model_not_found");
      expect(p.detail).toMatch(/no model named 'toxicty'; did you mean 'toxicity'\?/);
      expect(p.suggestions).toEqual(["toxicity"]);
    }
  });

  it("a name close to nothing suggests nothing but says where the list is", async () => {
    const p = await problem(await postJson("/api/v1/predict", { model: "zzzzzzzzzz", text: "hello" }));
    expect(p.detail).toBe("no model named 'zzzzzzzzzz' (GET /api/v1/models lists the models)");
    expect(p.suggestions).toEqual([]);
  });

  it("an unknown route suggests the closest ones, the request's method first", async () => {
    const res = await postJson("/api/v1/prediction", { text: "hello" });
    expect(res.status).toBe(404);
    const p = await problem(res);
    expect(p.code).toBe("route_not_found");
    expect(p.suggestions).toContain("POST /api/v1/predictions");
    expect(p.detail).toMatch(/did you mean 'POST \/api\/v1\/predictions'/);
    const models = await problem(await api("/api/v1/model/spam"));
    expect((models.suggestions as string[])[0]).toBe("GET /api/v1/models/:id");
  });
});

describe("a model that exists but has no active version", () => {
  it("says so, lists the versions and how to activate one (not 'no model named')", async () => {
    const { manifest, bytes } = await tinyModel("parked", "1");
    expect((await upload("parked", "1", manifest, bytes)).status).toBe(201);
    const listed = (await (await api("/api/v1/models")).json()) as { models: { id: string }[] };
    expect(listed.models.map((m) => m.id)).toContain("parked");
    const res = await postJson("/api/v1/predict", { model: "parked", text: "hello" });
    expect(res.status).toBe(404);
    const p = await problem(res);
    expect(p.detail).toMatch(/model 'parked' exists but has no active version \(versions: 1\)/);
    expect(p.detail).toMatch(/edge-inference models activate parked 1/);
    expect(p.versions).toEqual(["1"]);
    // Naming the version serves it.
    expect((await postJson("/api/v1/predict", { model: "parked", version: "1", text: "hello" })).status).toBe(
      200,
    );
  });
});

describe("oversized image bodies name the image limit", () => {
  it("a body over the image body limit says how large an image may be (10 MiB)", async () => {
    const image = "A".repeat(MAX_IMAGE_BODY_BYTES + 1);
    const res = await postJson("/api/v1/predict", { model: "digits", image });
    expect(res.status).toBe(413);
    const p = await problem(res);
    expect(p.code).toBe("payload_too_large");
    expect(p.detail).toMatch(/an image may be at most 10485760 bytes \(10 MiB\) before base64/);
    expect(p.image_limit_bytes).toBe(MAX_IMAGE_BYTES);
  });
});

describe("token hints", () => {
  it("a missing token points at `edge-inference token`", async () => {
    const p = await problem(await api("/api/v1/statistics", {}, { auth: false }));
    expect(p.code).toBe("invalid_token");
    expect(p.detail).toMatch(/npx edge-inference token/);
  });

  it("a replayed jti says to mint one token per request", async () => {
    const token = await testToken();
    const headers = { authorization: `Bearer ${token}` };
    expect((await api("/api/v1/statistics", { headers })).status).toBe(200);
    const again = await api("/api/v1/statistics", { headers });
    expect(again.status).toBe(401);
    expect((await problem(again)).detail).toMatch(/mint one token per request/);
  });
});
