import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { checkText, checkTree } from "./check-tree";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const OURS = "<".repeat(7);
const SPLIT = "=".repeat(7);
const THEIRS = ">".repeat(7);
const ONLY = "only";

describe("check:tree", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function repo(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), "check-tree-"));
    dirs.push(dir);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, ".."), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    execFileSync("git", ["init", "-q"], { cwd: dir });
    execFileSync("git", ["add", "-A"], { cwd: dir });
    return dir;
  }

  it("finds conflict markers in any tracked text file, with their lines", () => {
    const text = ["# doc", `${OURS} ours`, "a", SPLIT, "b", `${THEIRS} theirs`, ""].join("\n");
    expect(checkText("docs/x.md", text).map((f) => f.line)).toEqual([2, 4, 6]);
  });

  it("does not take a setext heading or a lone ======= for a marker", () => {
    expect(checkText("docs/x.md", `Title\n${SPLIT}\n\ntext ${OURS} inline\n`)).toEqual([]);
  });

  it("finds focused tests in test files only", () => {
    const body = `it.${ONLY}("a", () => {});\ndescribe.${ONLY}("b", () => {});\ntest.concurrent.${ONLY}("c", () => {});\nit("fine", () => {});\n`;
    expect(checkText("test/a.test.ts", body).map((f) => f.line)).toEqual([1, 2, 3]);
    expect(checkText("src/a.ts", body)).toEqual([]);
  });

  it("the command exits 1 and names the files, and 0 on a clean tree", () => {
    const bad = repo({
      "docs/testing.md": `x\n${OURS} ours\n${SPLIT}\n${THEIRS} theirs\n`,
      "test/a.test.ts": `it.${ONLY}("a", () => {});\n`,
      "src/ok.ts": "export const a = 1;\n",
    });
    const run = spawnSync(process.execPath, ["--import", "tsx", join(HERE, "check-tree.ts"), bad], {
      encoding: "utf8",
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("docs/testing.md:2: merge-conflict marker");
    expect(run.stderr).toContain("test/a.test.ts:1: focused test (.only)");
    const clean = repo({ "src/ok.ts": "export const a = 1;\n", "test/a.test.ts": 'it("a", () => {});\n' });
    expect(spawnSync(process.execPath, ["--import", "tsx", join(HERE, "check-tree.ts"), clean]).status).toBe(
      0,
    );
  });

  it("this repository is clean", () => {
    expect(checkTree(join(HERE, ".."))).toEqual([]);
  });
});
