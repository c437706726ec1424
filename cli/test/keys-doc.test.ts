/**
 * Step 1 of docs/auth.md, exactly as documented, from the bundled CLI (cli/dist/, built by
 * `npm run build:cli`): `npm run -s cli -- keys generate --issuer my-service`. It writes the keypair
 * under the repository's .dev/keys/ (removed afterwards) and uploads the public key to the local R2
 * of `wrangler dev` (.wrangler/state), which needs the repository root's wrangler.toml: the bundle
 * must resolve the root from cli/dist/, one level deeper than the sources.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");

describe("docs/auth.md step 1", () => {
  it("npm run -s cli -- keys generate --issuer my-service exits 0 and prints the kid", async () => {
    const doc = readFileSync(path.join(ROOT, "docs/auth.md"), "utf8");
    expect(doc).toContain("npm run -s cli -- keys generate --issuer my-service");
    expect(existsSync(path.join(ROOT, "cli/dist/index.mjs")), "run npm run build:cli first").toBe(true);
    // Whatever the run writes under .dev/keys/my-service/ is removed afterwards, even on failure.
    const dir = path.join(ROOT, ".dev/keys/my-service");
    const existed = existsSync(dir);
    const before = new Set(existed ? readdirSync(dir) : []);
    try {
      const { stdout } = await promisify(execFile)(
        "npm",
        ["run", "-s", "cli", "--", "keys", "generate", "--issuer", "my-service"],
        { cwd: ROOT, timeout: 120_000 },
      );
      const kid = /my-service\/key-[a-z0-9]+/.exec(stdout)?.[0];
      expect(kid, stdout).toBeDefined();
      for (const f of [`${kid}.pem`, `${kid}.pub.pem`])
        expect(existsSync(path.join(ROOT, ".dev/keys", f)), f).toBe(true);
      expect(stdout).toMatch(/upload|R2|asap-keys/i);
    } finally {
      for (const f of existsSync(dir) ? readdirSync(dir) : [])
        if (!before.has(f)) rmSync(path.join(dir, f), { force: true });
      if (!existed) rmSync(dir, { recursive: true, force: true });
    }
  });
});
