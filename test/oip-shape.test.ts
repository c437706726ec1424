/** Open Inference Protocol data must match its declared shape exactly (flat, or nested to the rank). */
import { beforeAll, describe, expect, it } from "vitest";
import { postJson, seedShippedModel } from "./helpers";

beforeAll(async () => {
  await seedShippedModel("toxicity");
});

const infer = (shape: number[], data: unknown[]) =>
  postJson("/v2/models/toxicity/infer", { inputs: [{ name: "text", datatype: "BYTES", shape, data }] });

describe("OIP data against its declared shape", () => {
  it("refuses data nested deeper than the declared shape ([2] with [['a','b']])", async () => {
    for (const [shape, data] of [
      [[2], [["a", "b"]]],
      [[1], [["a"]]],
      [
        [2, 1],
        [[["a"]], [["b"]]],
      ],
      [
        [2, 1],
        [["a"], "b"],
      ],
      [[2, 1], [["a", "b"]]],
    ] as [number[], unknown[]][]) {
      const res = await infer(shape, data);
      expect(res.status, JSON.stringify({ shape, data })).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/shape/);
    }
  });

  it("accepts flat data and data nested to exactly the declared rank", async () => {
    for (const [shape, data] of [
      [[2], ["a", "b"]],
      [
        [2, 1],
        ["a", "b"],
      ],
      [
        [2, 1],
        [["a"], ["b"]],
      ],
    ] as [number[], unknown[]][]) {
      expect((await infer(shape, data)).status, JSON.stringify({ shape, data })).toBe(200);
    }
  });
});
