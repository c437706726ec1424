/**
 * A real local service for the CLI tests: the deployable bundle (`wrangler deploy --dry-run`) run
 * in workerd through Miniflare's API with wrangler.toml's dev bindings (R2, D1, Durable Objects,
 * Queues), on loopback, with the D1 migrations applied, models/ seeded into R2, and a fresh ASAP
 * identity whose public key is in R2 and whose CLI config file is in a temp folder. The CLI runs
 * as a child process (`node cli/bin.mjs`, the built bundle) against it.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { exportPKCS8, exportSPKI, generateKeyPair } from "jose";
import type { Miniflare } from "miniflare";
import { putShippedModels } from "../../scripts/local-r2";
import { build, startWorker } from "../../scripts/local-worker";
import { PEM_CONTENT_TYPE, R2_KEY_PREFIX } from "../../src/auth/asap";
import type { CliConfigFile } from "../config";

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const BIN = path.join(ROOT, "cli", "bin.mjs");
export const ISSUER = "edge-inference-cli-tests";

/** A running service and a CLI configured for it. */
export interface TestService {
  url: string;
  /** Folder of the CLI config file and the key. */
  dir: string;
  kid: string;
  mf: Miniflare;
  /** Runs the CLI with `args`; `env` adds environment variables. */
  cli(args: string[], env?: Record<string, string>): Promise<CliRun>;
  stop(): Promise<void>;
}

/** What a CLI run printed and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node cli/bin.mjs …args` with `env` (no inherited EDGE_INFERENCE_* variables). */
export function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("EDGE_INFERENCE_")),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...base, ...env }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Builds the CLI and the Worker, starts the service on `port` (loopback) and configures a CLI for it. */
export async function startService(port: number): Promise<TestService> {
  execFileSync(process.execPath, [path.join(ROOT, "scripts", "build-cli.mjs")], { cwd: ROOT });
  const dir = await mkdtemp(path.join(tmpdir(), "edge-inference-cli-"));
  const bundle = await build(path.join(dir, "bundle"));
  const { mf, url } = await startWorker(
    bundle,
    { LOG_LEVEL: "error", REQUEST_LOG: "off" },
    { host: "127.0.0.1", port },
  );
  const bucket = await mf.getR2Bucket("MODELS");
  await putShippedModels(bucket);
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = `${ISSUER}/key-1`;
  await bucket.put(`${R2_KEY_PREFIX}${kid}`, await exportSPKI(publicKey), {
    httpMetadata: { contentType: PEM_CONTENT_TYPE },
  });
  const keyFile = path.join(dir, "key.pem");
  await writeFile(keyFile, await exportPKCS8(privateKey), { mode: 0o600 });
  const config: CliConfigFile = { url, issuer: ISSUER, kid, key_file: keyFile, aud: "edge-inference" };
  const configFile = path.join(dir, "cli.json");
  await writeFile(configFile, JSON.stringify(config));
  return {
    url,
    dir,
    kid,
    mf,
    cli: (args, env = {}) => runCli(args, { EDGE_INFERENCE_CONFIG: configFile, ...env }),
    async stop() {
      await mf.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
