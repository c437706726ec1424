/**
 * The datasets API (`PUT`/`GET`/`DELETE /api/v1/datasets…`): uploads streamed to the real R2
 * binding and validated by the jobs' parser, clear 4xx for every kind of bad upload with nothing
 * left behind, admin-only under ASAP_POLICY, and a training job reading an uploaded dataset.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, postJson, problem } from "./helpers";

const CSV = `text,label\n${Array.from({ length: 40 }, (_, i) => `"${i % 2 ? "great" : "awful"} thing ${i}",${i % 2 ? "pos" : "neg"}`).join("\n")}\n`;

function put(name: string, body: BodyInit, query = ""): Promise<Response> {
  return api(`/api/v1/datasets/${name}${query}`, { method: "PUT", body });
}

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

describe("datasets API", () => {
  it("uploads a CSV (rows, columns), lists it, refuses to replace it, deletes it", async () => {
    const res = await put("reviews.csv", CSV, "?columns=text,label");
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({
      name: "reviews.csv",
      r2_key: "datasets/reviews.csv",
      format: "csv",
      rows: 40,
      columns: ["text", "label"],
      size_bytes: CSV.length,
    });
    expect(await (await env.MODELS.get("datasets/reviews.csv"))?.text()).toBe(CSV);

    const list = (await (await api("/api/v1/datasets")).json()) as { datasets: { name: string }[] };
    expect(list.datasets.map((d) => d.name)).toContain("reviews.csv");

    const again = await put("reviews.csv", CSV);
    expect(again.status).toBe(409);
    expect((await problem(again)).code).toBe("dataset_exists");

    const deleted = await api("/api/v1/datasets/reviews.csv", { method: "DELETE" });
    expect(deleted.status).toBe(200);
    expect(await env.MODELS.head("datasets/reviews.csv")).toBeNull();
    const gone = await api("/api/v1/datasets/reviews.csv", { method: "DELETE" });
    expect(gone.status).toBe(404);
    expect((await problem(gone)).code).toBe("dataset_not_found");
  });

  it("uploads gzipped JSON Lines; a training job reads it by r2_key", async () => {
    const lines = CSV.trim()
      .split("\n")
      .slice(1)
      .map((l) => {
        const [, text, label] = /^"(.*)",(\w+)$/.exec(l) ?? [];
        return JSON.stringify({ text, label });
      })
      .join("\n");
    const res = await put("reviews.jsonl.gz", await gzip(lines));
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ format: "jsonl+gzip", rows: 40, columns: ["text", "label"] });
    const job = await postJson("/api/v1/models", {
      id: "from-upload",
      task: "binary",
      dataset: { r2_key: "datasets/reviews.jsonl.gz" },
      text_field: "text",
      label_field: "label",
    });
    expect(job.status).toBe(202);
  });

  const bad: [string, string, BodyInit, string, number, string, RegExp][] = [
    ["a name without a known extension", "data.txt", CSV, "", 400, "invalid_request", /not a dataset name/],
    ["a name with a path", "a%2F..%2Fb.csv", CSV, "", 400, "invalid_request", /not a dataset name/],
    [
      "a missing required column",
      "cols.csv",
      CSV,
      "?columns=text,target",
      422,
      "invalid_dataset",
      /no column 'target'/,
    ],
    ["a header only", "empty.csv", "text,label\n", "", 422, "invalid_dataset", /no rows/],
    [
      "JSON Lines that are not JSON",
      "bad.jsonl",
      '{"text":"a"}\nnot json\n',
      "",
      422,
      "invalid_dataset",
      /line 2 is not valid JSON/,
    ],
    ["a .gz that is not gzip", "bad.csv.gz", CSV, "", 422, "invalid_dataset", /could not be decompressed/],
    [
      "invalid UTF-8",
      "latin.csv",
      new Uint8Array([0x74, 0x0a, 0xff, 0xfe, 0x0a]),
      "",
      422,
      "invalid_dataset",
      /UTF-8/,
    ],
  ];
  for (const [what, name, body, query, status, code, detail] of bad) {
    it(`${what} → ${status} ${code}, nothing stored`, async () => {
      const res = await put(name, body, query);
      expect(res.status).toBe(status);
      const p = await problem(res);
      expect(p.code).toBe(code);
      expect(p.detail).toMatch(detail);
      const listed = await env.MODELS.list({ prefix: "datasets/" });
      expect(listed.objects.map((o) => o.key)).not.toContain(`datasets/${decodeURIComponent(name)}`);
    });
  }

  it("over MAX_DATASET_BYTES → 413 before reading; decompressing past it → 413, nothing stored", async () => {
    const big = await put("big.csv", `text,label\n${"x,y\n".repeat(4_200_000)}`);
    expect(big.status).toBe(413);
    expect((await problem(big)).code).toBe("dataset_too_large");
    const bomb = await put("bomb.csv.gz", await gzip(`text,label\n${"a,b\n".repeat(4_500_000)}`));
    expect(bomb.status).toBe(413);
    expect((await problem(bomb)).detail).toMatch(/decompresses to more than/);
    expect(await env.MODELS.head("datasets/bomb.csv.gz")).toBeNull();
  });

  it("is admin-only: a reader gets 403", async () => {
    const reader = { issuers: { "edge-inference-tests": ["models:GET"] }, default: [] };
    for (const [method, path] of [
      ["PUT", "/api/v1/datasets/x.csv"],
      ["GET", "/api/v1/datasets"],
      ["DELETE", "/api/v1/datasets/x.csv"],
    ] as const) {
      const init = { method, ...(method === "PUT" && { body: CSV }) };
      const res = await api(path, init, { vars: { ASAP_POLICY: JSON.stringify(reader) }, wait: false });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
  });
});
