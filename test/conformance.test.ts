/**
 * Conformance gaps found from outside (#27): HEAD on every GET route, and Open Inference Protocol
 * INT64 tensors beyond ±2^53 (parsed and answered exactly). The /v2 401 `reason` and
 * `"outputs": []` are in test/protocols.test.ts, the key repository's content types in
 * test/auth-keys.test.ts, the documented CLI command in cli/test/.
 */
import $protobuf from "protobufjs/minimal.js";
import { describe, expect, it } from "vitest";
import { onnx } from "../src/onnx/generated/onnx.js";
import { ROUTES } from "../src/router";
import { api, postJson, seedShippedModel } from "./helpers";
import { upload } from "./registry-helpers";

describe("HEAD works like GET without a body", () => {
  it("on every GET route: the GET's status and headers, an empty body; Allow lists HEAD", async () => {
    await seedShippedModel("toxicity");
    const paths = [
      "/api/v1/health",
      "/api/v1/openapi.json",
      "/api/v1/models",
      "/api/v1/models/toxicity",
      "/v2/models/toxicity",
    ];
    for (const path of paths) {
      const get = await api(path);
      const head = await api(path, { method: "HEAD" });
      expect(head.status, path).toBe(get.status);
      expect(head.headers.get("content-type"), path).toBe(get.headers.get("content-type"));
      expect(await head.text(), path).toBe("");
      await get.body?.cancel();
    }
    // Auth applies as to GET.
    expect((await api("/api/v1/models", { method: "HEAD" }, { auth: false })).status).toBe(401);
    const wrong = await api("/api/v1/models", { method: "PATCH" });
    expect(wrong.headers.get("allow")).toBe("GET, HEAD, POST");
    // Every GET route answers HEAD (none is 405).
    for (const route of ROUTES.filter((r) => r.method === "GET" && !r.path.includes(":"))) {
      const res = await api(route.path, { method: "HEAD" });
      expect(res.status, route.path).not.toBe(405);
      expect(await res.text(), route.path).toBe("");
    }
  });
});

/** An ONNX model: INT64 `x` [-1, 2] → `y` = x (Identity) and `z` = x + 1. */
function int64Model(): Uint8Array {
  const one = new Uint8Array(8);
  new DataView(one.buffer).setBigInt64(0, 1n, true);
  const value = (name: string) => ({
    name,
    type: { tensorType: { elemType: 7, shape: { dim: [{ dimParam: "n" }, { dimValue: 2 }] } } },
  });
  return onnx.ModelProto.encode(
    {
      irVersion: 8,
      opsetImport: [{ domain: "", version: 17 }],
      graph: {
        name: "int64",
        node: [
          { opType: "Identity", input: ["x"], output: ["y"], name: "id" },
          { opType: "Add", input: ["x", "one"], output: ["z"], name: "add" },
        ],
        initializer: [{ name: "one", dataType: 7, dims: [1], rawData: one }],
        input: [value("x")],
        output: [value("y"), value("z")],
      },
    },
    new $protobuf.Writer(),
  ).finish();
}

describe("Open Inference Protocol: INT64 beyond 2^53", () => {
  it("is parsed and answered exactly; out of int64 range or in exponent form is refused, printing the number sent", async () => {
    const manifest = {
      kind: "tensor",
      inputs: [{ name: "x", datatype: "INT64", shape: [-1, 2] }],
      outputs: [
        { name: "y", datatype: "INT64", shape: [-1, 2] },
        { name: "z", datatype: "INT64", shape: [-1, 2] },
      ],
      output: "y",
      quantization: "none",
    };
    const res = await upload("int64-echo", "1", manifest, int64Model(), "?activate=true");
    expect(res.status, await res.clone().text()).toBe(201);
    const infer = (data: string) =>
      postJson(
        "/v2/models/int64-echo/infer",
        `{"inputs":[{"name":"x","datatype":"INT64","shape":[2,2],"data":${data}}]}`,
      );
    const exact = await infer("[9007199254740993, -9223372036854775808, 9223372036854775806, 5]");
    expect(exact.status).toBe(200);
    const text = await exact.text();
    expect(text).toContain('"data":[9007199254740993,-9223372036854775808,9223372036854775806,5]');
    expect(text).toContain('"data":[9007199254740994,-9223372036854775807,9223372036854775807,6]');
    const over = await infer("[9223372036854775808, 1, 2, 3]");
    expect(over.status).toBe(400);
    expect(((await over.json()) as { error: string }).error).toMatch(
      /^input 'x': element 0 \(9223372036854775808\) is not a valid INT64/,
    );
    const exponent = await infer("[1e19, 1, 2, 3]");
    expect(((await exponent.json()) as { error: string }).error).toMatch(
      /element 0 \(10000000000000000000\) is not a valid INT64/,
    );
  });
});
