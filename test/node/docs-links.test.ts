/**
 * Every relative link in README.md, docs/ and the model cards points at a file that exists, and
 * every `#anchor` at a heading of that file (GitHub's slugs: lower case, punctuation dropped,
 * spaces to hyphens); and every tracked test file is named in docs/testing.md's table.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { root } from "../../scripts/local-worker";

function slugs(file: string): Set<string> {
  const out = new Set<string>();
  let code = false;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.startsWith("```")) code = !code;
    const heading = !code && /^#+ (.*)$/.exec(line);
    if (heading?.[1]) {
      out.add(
        heading[1]
          .trim()
          .toLowerCase()
          .replace(/[^\p{L}\p{N}\- _]/gu, "")
          .replace(/ /g, "-"),
      );
    }
  }
  return out;
}

const files = [
  "README.md",
  ...readdirSync(path.join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
  ...readdirSync(path.join(root, "models"))
    .filter((m) => existsSync(path.join(root, "models", m, "MODEL_CARD.md")))
    .map((m) => `models/${m}/MODEL_CARD.md`),
];

describe("documentation links", () => {
  it.each(files)("%s: every relative link resolves", (file) => {
    const text = readFileSync(path.join(root, file), "utf8");
    const broken: string[] = [];
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = match[1] as string;
      if (/^[a-z]+:/i.test(link)) continue;
      const [target = "", anchor] = link.split("#");
      const resolved = target
        ? path.resolve(path.dirname(path.join(root, file)), target)
        : path.join(root, file);
      if (!existsSync(resolved)) broken.push(`${link} (no such file)`);
      else if (anchor && resolved.endsWith(".md") && !slugs(resolved).has(anchor))
        broken.push(`${link} (no such heading)`);
    }
    expect(broken).toEqual([]);
  });

  it("docs/testing.md names every tracked test file", () => {
    const testing = readFileSync(path.join(root, "docs/testing.md"), "utf8");
    const tracked = execFileSync("git", ["ls-files", "*.test.ts"], { cwd: root, encoding: "utf8" })
      .split("\n")
      .filter((f) => f !== "");
    expect(tracked.length).toBeGreaterThan(0);
    const missing = tracked.filter((f) => !testing.includes(f));
    expect(missing, `test files without a row in docs/testing.md: ${missing.join(", ")}`).toEqual([]);
  });
});
