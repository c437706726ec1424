/**
 * `npm start`: the service locally, no Cloudflare account or network needed.
 *
 * 1. applies the D1 migrations to the local database, seeds local R2 from models/ (the registry
 *    imports those models on first use) and makes sure the dev ASAP issuer has a keypair
 *    (.dev/keys/, git-ignored) whose public key is in local R2;
 * 2. writes the CLI config (.dev/cli.json, or $EDGE_INFERENCE_CONFIG): URL, issuer, key, audience,
 *    so every `edge-inference` command works with no flags;
 * 3. runs `wrangler dev` on `PORT` (default 8787; arguments after `--` go to wrangler dev) with both
 *    Workers (wrangler.toml and workers/byom/wrangler.toml, where uploaded models run) in its
 *    own process group, waits until it answers, and prints a curl line, the CLI and the dashboard
 *    login URL (when the service has a dashboard).
 *
 * Stopping: Ctrl-C or SIGTERM stops the whole group (wrangler and workerd; SIGKILL after 5 s).
 * If `wrangler dev` exits, or its workerd runtime dies while wrangler stays up, this exits
 * non-zero with a message (and stops what is left) instead of serving nothing.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { configPath, DEV_AUDIENCE, writeConfigFile } from "../cli/config";
import { DEV_ISSUER, ensureDevIdentity } from "../cli/dev-identity";
import { putPublicKeys, ROOT } from "../cli/keys";
import { putShippedModels, withLocalR2 } from "./local-r2";

const PORT = process.env.PORT ?? "8787";
if (!/^\d{1,5}$/.test(PORT) || Number(PORT) < 1 || Number(PORT) > 65535) {
  console.error(`PORT must be a port number (1-65535), not '${PORT}'`);
  process.exit(2);
}
const url = `http://localhost:${PORT}`;
/** How long wrangler dev may take to answer its first request. */
const READY_TIMEOUT_MS = 120_000;
/** How long the runtime may be missing (a config reload restarts it) before it counts as dead. */
const RUNTIME_GONE_MS = 3_000;
const cliBin = path.join(ROOT, "cli", "bin.mjs");

// The registry's D1 schema (migrations/) in the local database `wrangler dev` uses.
const migrated = spawnSync("npx", ["wrangler", "d1", "migrations", "apply", "edge-inference", "--local"], {
  stdio: "inherit",
  env: { ...process.env, CI: "1" },
});
if (migrated.status !== 0) {
  console.error("Applying the D1 migrations failed (see above).");
  process.exit(migrated.status ?? 1);
}

// One platform-proxy session for both uploads: models, then the dev issuer's public key.
const { seeded, identity } = await withLocalR2(async (bucket) => ({
  seeded: await putShippedModels(bucket),
  identity: await ensureDevIdentity(DEV_ISSUER, (keys) => putPublicKeys(bucket, keys)),
}));
console.log(`Seeded local R2 with ${seeded.map((m) => `${m.id}@${m.version}`).join(", ") || "no models"}.`);
console.log(
  `${identity.created ? "Created" : "Using"} dev ASAP issuer '${identity.issuer}' (key ${identity.kid}, ${identity.privateKeyPath}).`,
);
await writeConfigFile({
  url,
  issuer: identity.issuer,
  kid: identity.kid,
  key_file: identity.privateKeyPath,
  aud: DEV_AUDIENCE,
});
console.log(
  `Wrote the CLI config ${path.relative(process.cwd(), configPath()) || configPath()} (url ${url}).`,
);

// Its own process group (detached), so that stopping kills wrangler and workerd together; stdin
// is not passed: a background group reading the terminal would be stopped (SIGTTIN).
const child: ChildProcess = spawn(
  process.execPath,
  [
    path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"),
    "dev",
    // Both Workers in one session: the main one (first: its port, its bindings) and the isolated
    // BYOM Worker its BYOM service binding calls (uploaded models run there; docs/byom.md#isolation).
    "-c",
    "wrangler.toml",
    "-c",
    "workers/byom/wrangler.toml",
    "--port",
    PORT,
    "--show-interactive-dev-session=false",
    ...process.argv.slice(2),
  ],
  { stdio: ["ignore", "inherit", "inherit"], detached: true, cwd: ROOT },
);
const group = child.pid as number;
let stopping = false;

/** Signals every process of the child's group; false when none is left. */
function signalGroup(signal: NodeJS.Signals): boolean {
  try {
    process.kill(-group, signal);
    return true;
  } catch {
    return false;
  }
}

/** Pids of workerd processes in the child's process group (Linux /proc; empty elsewhere). */
function runtimePids(): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return pids;
  }
  for (const pid of entries) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      // Fields after the command: state, ppid, pgrp, …
      const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (pgrp === group && comm.includes("workerd")) pids.push(Number(pid));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Stops the group: SIGTERM, then SIGKILL for whatever is left after 5 s; exits with `code`. */
function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  signalGroup("SIGTERM");
  const deadline = Date.now() + 5_000;
  const timer = setInterval(() => {
    // Signal 0 probes the group; wrangler's exit alone leaves workerd behind otherwise.
    if (!signalGroup(0 as unknown as NodeJS.Signals)) {
      clearInterval(timer);
      process.exit(code);
    }
    if (Date.now() > deadline) {
      signalGroup("SIGKILL");
      clearInterval(timer);
      process.exit(code);
    }
  }, 100);
}

for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
] as const) {
  // wrangler's platform proxy (used for seeding) leaves handlers that exit at once; this one stops
  // the group first.
  process.removeAllListeners(signal);
  process.on(signal, () => {
    console.error(`\n${signal}: stopping wrangler dev and workerd…`);
    stop(code);
  });
}
// npm runs this under `sh -c`, which dies on SIGTERM without passing it on: a new parent means
// whoever started us is gone, so stop as for SIGHUP.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent && !stopping) {
    console.error("\nnpm start was stopped: stopping wrangler dev and workerd…");
    stop(129);
  }
}, 500).unref();
// Last resort (an uncaught error here): never leave the group running.
process.on("exit", () => {
  signalGroup("SIGKILL");
});

child.on("exit", (code, signal) => {
  if (stopping) return;
  console.error(
    `\nwrangler dev exited (${signal ?? `code ${code}`}); edge-inference is no longer served on ${url}.`,
  );
  stop(code === 0 || code === null ? 1 : code);
});

/** Waits until the service answers its health route; false on timeout or when stopping. */
async function waitReady(): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && !stopping) {
    try {
      const res = await fetch(`${url}/api/v1/health`);
      await res.arrayBuffer();
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

/**
 * Watches the runtime: wrangler dev runs workerd processes (its proxy and the Worker); fewer of
 * them than when the service became ready, for `RUNTIME_GONE_MS` (a reload restarts one), means
 * one died and wrangler did not replace it: the service no longer answers, so stop.
 */
function watchRuntime(expected: number): void {
  let goneSince: number | undefined;
  const timer = setInterval(() => {
    if (stopping) return clearInterval(timer);
    if (runtimePids().length >= expected) {
      goneSince = undefined;
      return;
    }
    goneSince ??= Date.now();
    if (Date.now() - goneSince >= RUNTIME_GONE_MS) {
      clearInterval(timer);
      console.error(
        `\nA workerd runtime of wrangler dev died and was not restarted; edge-inference is no longer served on ${url}. Stopping.`,
      );
      stop(1);
    }
  }, 500);
  timer.unref();
}

if (!(await waitReady())) {
  if (!stopping) {
    console.error(`edge-inference did not answer on ${url} within ${READY_TIMEOUT_MS / 1000} s; stopping.`);
    stop(1);
  }
} else {
  const runtimes = runtimePids().length;
  if (runtimes > 0) watchRuntime(runtimes);
  const dashboard = spawnSync(process.execPath, [cliBin, "dashboard"], { encoding: "utf8" });
  const body = JSON.stringify({ request_id: 1234, text: "hello", model: "toxicity" });
  console.log(`
edge-inference is ready on ${url}   (PORT=… npm start for another port; Ctrl-C stops it)
Try:
  curl -s ${url}/api/v1/health
  curl -s -X POST ${url}/api/v1/predict -H 'Content-Type: application/json' -H "Authorization: Bearer $(node cli/bin.mjs token)" -d '${body}'
  node cli/bin.mjs predict "hello"        # the CLI (npx edge-inference …; docs/cli.md), no flags needed
${dashboard.status === 0 ? `Dashboard (one-time login, valid 15 min): ${dashboard.stdout.trim().split("\n")[0]}\n  a fresh link at any time: npx edge-inference dashboard --open\n` : ""}`);
}
