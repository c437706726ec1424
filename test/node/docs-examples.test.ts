/**
 * Every shell example of README.md and docs/*.md runs against the Worker (#32), so a doc cannot go
 * stale silently. Each ```sh block is run by bash (`set -euo pipefail`) in a scratch folder laid out
 * like the repository (its entries symlinked, `../shared` beside it), with:
 * - the Worker's deployable bundle in workerd (scripts/local-worker.ts) with the shipped models,
 *   and `localhost:8787` in the example rewritten to its address;
 * - `npx edge-inference`, `edge-inference` and `npm run -s cli` configured for it (a fresh ASAP
 *   identity in EDGE_INFERENCE_CONFIG), and `$TOKEN` a fresh token of that identity;
 * - `curl` failing on any HTTP error (a shim adding `--fail-with-body`), so a 4xx is a failure;
 * - the files the examples name (spam.csv, rows.jsonl, digit.png, photo.jpg, big.jsonl.gz).
 * A block preceded by `<!-- doc-example: <reason> -->` is not run: `cloudflare` (needs an
 * account), `setup` (installs or starts the project), `local-dev` (writes `wrangler dev`'s local
 * state), `writes-repo`, `covered` (run by another test, named in the reason), `needs-files`
 * (files from earlier prose steps), `shared-data` (run only when ../shared exists).
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { encode as encodePng } from "fast-png";
import { exportPKCS8, exportSPKI, generateKeyPair, importPKCS8 } from "jose";
import jpeg from "jpeg-js";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { putShippedModels } from "../../scripts/local-r2";
import { build, startWorker } from "../../scripts/local-worker";
import { mintToken, PEM_CONTENT_TYPE, R2_KEY_PREFIX } from "../../src/auth/asap";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const SHARED = path.resolve(ROOT, "..", "shared");
const ISSUER = "edge-inference-docs";
const SKIP_REASONS = [
  "cloudflare",
  "setup",
  "local-dev",
  "writes-repo",
  "covered",
  "needs-files",
  "shared-data",
];

/** One ```sh block: where it is, its text, and the marker before it (if any). */
interface Example {
  where: string;
  script: string;
  marker?: { reason: string; note: string };
}

/** The ```sh blocks of README.md and docs/*.md, in file order. */
function shellExamples(): Example[] {
  const files = ["README.md", ...readdirSync(path.join(ROOT, "docs")).map((f) => `docs/${f}`)].filter((f) =>
    f.endsWith(".md"),
  );
  const examples: Example[] = [];
  for (const file of files.sort()) {
    const lines = readFileSync(path.join(ROOT, file), "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (!/^```(sh|bash|shell)\s*$/.test(lines[i] as string)) continue;
      let end = i + 1;
      while (end < lines.length && !(lines[end] as string).startsWith("```")) end++;
      let before = i - 1;
      while (before >= 0 && (lines[before] as string).trim() === "") before--;
      const mark = /^<!-- doc-example: ([a-z-]+)\s*(.*?)\s*-->$/.exec((lines[before] ?? "").trim());
      examples.push({
        where: `${file}:${i + 1}`,
        script: lines.slice(i + 1, end).join("\n"),
        ...(mark && { marker: { reason: mark[1] as string, note: mark[2] as string } }),
      });
      i = end;
    }
  }
  return examples;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let mf: Miniflare | undefined;
let url = "";
let dir = "";
let work = "";
let env: Record<string, string> = {};
let signingKey: CryptoKey;

function bash(script: string, extraEnv: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      "bash",
      ["-c", `set -euo pipefail\n${script}`],
      { cwd: work, env: { ...env, ...extraEnv }, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "edge-inference-docs-"));
  const bundle = await build(path.join(dir, "bundle"));
  const started = await startWorker(
    bundle,
    { LOG_LEVEL: "error", REQUEST_LOG: "off" },
    { host: "127.0.0.1", port: 0 },
  );
  mf = started.mf;
  url = started.url;
  const bucket = await mf.getR2Bucket("MODELS");
  await putShippedModels(bucket as never);
  // A dataset the training example names by R2 key.
  const reviews = Array.from(
    { length: 40 },
    (_, i) => `"${i % 2 ? "great" : "awful"} thing ${i}",${i % 2 ? "pos" : "neg"}`,
  );
  await bucket.put("datasets/reviews.csv", `text,label\n${reviews.join("\n")}\n`);

  // The identity of the examples' CLI and $TOKEN.
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = `${ISSUER}/key-1`;
  await bucket.put(`${R2_KEY_PREFIX}${kid}`, await exportSPKI(publicKey), {
    httpMetadata: { contentType: PEM_CONTENT_TYPE },
  });
  const pem = await exportPKCS8(privateKey);
  signingKey = await importPKCS8(pem, "ES256");
  const keyFile = path.join(dir, "key.pem");
  await writeFile(keyFile, pem, { mode: 0o600 });
  const config = path.join(dir, "cli.json");
  await writeFile(
    config,
    JSON.stringify({ url, issuer: ISSUER, kid, key_file: keyFile, aud: "edge-inference" }),
  );

  // A folder laid out like the repository: its entries symlinked, ../shared beside it.
  const parent = path.join(dir, "checkout");
  work = path.join(parent, "edge-inference");
  await mkdir(work, { recursive: true });
  for (const entry of readdirSync(ROOT)) {
    if (entry === ".git" || entry === ".dev") continue;
    await symlink(path.join(ROOT, entry), path.join(work, entry));
  }
  if (existsSync(SHARED)) await symlink(SHARED, path.join(parent, "shared"));

  // Shims: curl fails on HTTP errors; edge-inference is the built CLI.
  const bin = path.join(dir, "bin");
  await mkdir(bin);
  await writeFile(path.join(bin, "curl"), '#!/bin/sh\nexec /usr/bin/curl --fail-with-body -sS "$@"\n');
  await writeFile(
    path.join(bin, "edge-inference"),
    `#!/bin/sh\nexec "${process.execPath}" "${ROOT}/cli/bin.mjs" "$@"\n`,
  );
  await chmod(path.join(bin, "curl"), 0o755);
  await chmod(path.join(bin, "edge-inference"), 0o755);
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => v !== undefined && !k.startsWith("EDGE_INFERENCE_")),
  ) as Record<string, string>;
  env = { ...inherited, PATH: `${bin}:${process.env.PATH}`, EDGE_INFERENCE_CONFIG: config };

  // The files the examples name.
  const words = ["great", "fine", "good", "awful", "bad", "poor"];
  const spam = Array.from({ length: 60 }, (_, i) => {
    const pos = i % 2 === 0;
    return `"${words[(i % 3) + (pos ? 0 : 3)]} item number ${i}",${pos ? "spam" : "ham"}`;
  });
  await writeFile(path.join(work, "spam.csv"), `text,label\n${spam.join("\n")}\n`);
  const tags = Array.from({ length: 60 }, (_, i) =>
    JSON.stringify({
      text: `${["red", "green", "blue"][i % 3]} thing ${i}`,
      a: i % 3 === 0 ? 1 : 0,
      b: i % 3 === 1 ? 1 : 0,
      c: i % 3 === 2 ? 1 : 0,
    }),
  );
  await writeFile(path.join(work, "rows.jsonl"), `${tags.join("\n")}\n`);
  await writeFile(path.join(work, "big.jsonl.gz"), gzipSync(`${tags.join("\n")}\n`));
  const digit = new Uint8Array(28 * 28);
  for (let y = 4; y < 24; y++) digit[y * 28 + 14] = 255;
  await writeFile(
    path.join(work, "digit.png"),
    encodePng({ width: 28, height: 28, data: digit, channels: 1, depth: 8 }),
  );
  const rgba = new Uint8Array(64 * 64 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7) % 256));
  await writeFile(path.join(work, "photo.jpg"), jpeg.encode({ width: 64, height: 64, data: rgba }, 85).data);
}, 240_000);

afterAll(async () => {
  await mf?.dispose();
  // The scratch folder holds symlinks into the repository: remove the links, never their targets.
  if (dir) await rm(dir, { recursive: true, force: true });
});

const examples = shellExamples();

describe("docs examples", () => {
  it("every shell example is run or marked with a known reason", () => {
    for (const e of examples) if (e.marker) expect(SKIP_REASONS, e.where).toContain(e.marker.reason);
    expect(examples.length).toBeGreaterThan(20);
  });

  for (const example of examples) {
    const reason = example.marker?.reason;
    const runs = reason === undefined || (reason === "shared-data" && existsSync(SHARED));
    it.runIf(runs)(`${example.where} runs against the Worker`, async () => {
      const host = new URL(url).host;
      const script = example.script
        .replaceAll("http://localhost:8787", url)
        .replaceAll("localhost:8787", host);
      const token = await mintToken({
        issuer: ISSUER,
        kid: `${ISSUER}/key-1`,
        alg: "ES256",
        privateKey: signingKey,
        audience: "edge-inference",
        ttlS: 300,
      });
      const run = await bash(script, { TOKEN: token });
      expect(
        run.code,
        `${example.where} exited ${run.code}\n--- stdout\n${run.stdout.slice(-2000)}\n--- stderr\n${run.stderr.slice(-3000)}`,
      ).toBe(0);
    });
  }
});
