import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { judge, LIMITS, measure } from "./deploy-check";

const MiB = 1024 * 1024;
const size = (bytes: number, gzipBytes: number) => ({
  files: [{ name: "index.js", bytes }],
  bytes,
  gzipBytes,
});
let dir: string | undefined;

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("deploy:check", () => {
  it("names the plan a bundle needs and fails over the paid plan's limits", () => {
    expect(judge(size(2 * MiB, 1 * MiB))).toMatchObject({ ok: true, plan: "free" });
    expect(judge(size(15 * MiB, 3.9 * MiB))).toMatchObject({ ok: true, plan: "paid" });
    expect(judge(size(40 * MiB, LIMITS.paidGzipBytes + 1))).toMatchObject({ ok: false, plan: "none" });
    expect(judge(size(LIMITS.rawBytes + 1, 5 * MiB))).toMatchObject({ ok: false, plan: "none" });
    expect(judge(size(LIMITS.rawBytes + 1, 5 * MiB)).lines.at(-1)).toMatch(/^FAIL/);
  });

  it("measures what wrangler uploads: no source maps, no README", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "deploy-check-"));
    await writeFile(path.join(dir, "index.js"), "x".repeat(10_000));
    await writeFile(path.join(dir, "index.js.map"), "y".repeat(50_000));
    await writeFile(path.join(dir, "README.md"), "z");
    const measured = await measure(dir);
    expect(measured.files.map((f) => f.name)).toEqual(["index.js"]);
    expect(measured.bytes).toBe(10_000);
    expect(measured.gzipBytes).toBeLessThan(1_000);
  });
});
