/**
 * `npm run check:tree` (first step of `npm test`, so CI runs it): refuses a tree that holds
 * - merge-conflict markers (a `<<<<<<<` or `>>>>>>>` line, and a `=======` line between them) in any
 *   tracked text file, or
 * - focused tests (`it.only(`, `describe.only(`, `test.only(`, `bench.only(`, also with `.concurrent`/
 *   `.skipIf(…)` chains) in any test file,
 * printing `path:line: what` for each. Files are those git tracks (or, outside a checkout, every
 * file below the folder except node_modules, .git and dist).
 *
 * Usage: tsx scripts/check-tree.ts [DIR]   (exit 0 clean, 1 findings)
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

export interface Finding {
  path: string;
  line: number;
  what: string;
}

// Built from parts so that this file does not match its own patterns.
const OURS = "<".repeat(7);
const SPLIT = "=".repeat(7);
const THEIRS = ">".repeat(7);
const FOCUSED = new RegExp(
  `\\b(?:it|test|describe|suite|bench)(?:\\.(?:concurrent|sequential|skipIf\\([^)]*\\)|runIf\\([^)]*\\)))*\\.${"only"}\\s*\\(`,
);
const TEST_FILE = /(^|\/)(test|tests|__tests__)\/|\.(test|spec)\.[cm]?[jt]sx?$/;
const SKIPPED_DIRS = new Set(["node_modules", ".git", "dist", ".wrangler", "test-artifacts"]);

function isMarker(line: string, marker: string): boolean {
  return line === marker || line.startsWith(`${marker} `);
}

/** Findings in one file's text. */
export function checkText(path: string, text: string): Finding[] {
  if (text.includes("\u0000")) return [];
  const findings: Finding[] = [];
  const lines = text.split(/\r?\n/);
  let open = 0;
  const testFile = TEST_FILE.test(path) && /\.[cm]?[jt]sx?$/.test(path);
  lines.forEach((line, i) => {
    if (isMarker(line, OURS)) {
      open = i + 1;
      findings.push({ path, line: i + 1, what: "merge-conflict marker" });
    } else if (isMarker(line, THEIRS)) {
      open = 0;
      findings.push({ path, line: i + 1, what: "merge-conflict marker" });
    } else if (open && line === SPLIT) {
      findings.push({ path, line: i + 1, what: "merge-conflict marker" });
    }
    if (testFile && FOCUSED.test(line)) findings.push({ path, line: i + 1, what: "focused test (.only)" });
  });
  return findings;
}

function walk(dir: string, root: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    if (SKIPPED_DIRS.has(name)) continue;
    const full = join(dir, name);
    const stat = statSync(full);
    if (stat.isDirectory()) walk(full, root, out);
    else if (stat.isFile()) out.push(relative(root, full));
  }
}

/** The files to check below `dir`: git's tracked files, or every file outside a checkout. */
export function listFiles(dir: string): string[] {
  try {
    const out = execFileSync("git", ["ls-files", "-z"], {
      cwd: dir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return out.split("\0").filter((p) => p !== "");
  } catch {
    const files: string[] = [];
    walk(dir, dir, files);
    return files;
  }
}

/** Every finding below `dir`. */
export function checkTree(dir: string): Finding[] {
  const findings: Finding[] = [];
  for (const path of listFiles(dir)) {
    let text: string;
    try {
      const full = join(dir, path);
      if (statSync(full).size > 8 * 1024 * 1024) continue;
      text = readFileSync(full, "utf8");
    } catch {
      continue; // deleted in the work tree, or not readable: nothing to check
    }
    findings.push(...checkText(path, text));
  }
  return findings;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2] ?? process.cwd();
  const findings = checkTree(dir);
  for (const f of findings) console.error(`${f.path}:${f.line}: ${f.what}`);
  if (findings.length > 0) {
    console.error(
      `check:tree: ${findings.length} problem(s); resolve the conflict / remove .only before committing`,
    );
    process.exit(1);
  }
  console.log("check:tree: no merge-conflict markers, no focused tests");
}
