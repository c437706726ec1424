/**
 * `npm start` (scripts/start.ts) for real: wrangler dev on a test port with the repository's local
 * state (.wrangler/state, .dev/keys, as `npm start` uses them) and the CLI config in a temp folder.
 * Checks that the CLI works with no flags afterwards, that SIGTERM leaves no process of wrangler's
 * group behind, and that a dead runtime makes it exit non-zero.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, runCli } from "./service";

let dir: string;

/** A loopback port free right now (wrangler dev needs a number; other checkouts run this test too). */
function freePort(): Promise<string> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(String(port)));
    });
  });
}
const started: ChildProcess[] = [];

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  configFile: string;
  port: string;
}

/** Starts scripts/start.ts and waits until it prints that the service is ready. */
async function start(): Promise<Started> {
  dir ??= await mkdtemp(path.join(tmpdir(), "edge-inference-start-"));
  const configFile = path.join(dir, "cli.json");
  const PORT = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "scripts", "start.ts")], {
    cwd: ROOT,
    env: { ...process.env, PORT, EDGE_INFERENCE_CONFIG: configFile },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(child);
  let text = "";
  child.stdout?.on("data", (d: Buffer) => {
    text += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    text += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 150_000;
  while (!text.includes("edge-inference is ready on")) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`npm start did not get ready:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { child, output: () => text, exited, configFile, port: PORT };
}

/** Every process as `{ pid, pgrp, ppid, comm }` (Linux /proc). */
async function processes(): Promise<{ pid: number; pgrp: number; ppid: number; comm: string }[]> {
  const list = [];
  for (const entry of (await readdir("/proc")).filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      list.push({
        pid: Number(entry),
        comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
        ppid: Number(fields[1]),
        pgrp: Number(fields[2]),
      });
    } catch {
      // exited meanwhile
    }
  }
  return list;
}

/** The process group of wrangler dev: the group led by a child of `pid`. */
async function wranglerGroup(pid: number): Promise<number> {
  const all = await processes();
  const leader = all.find((p) => p.ppid === pid && p.pgrp === p.pid);
  if (!leader) throw new Error("no wrangler process group under npm start");
  return leader.pgrp;
}

afterAll(async () => {
  for (const child of started) if (child.exitCode === null) child.kill("SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("npm start", () => {
  it("writes the CLI config; SIGTERM stops wrangler and workerd (no orphans)", async () => {
    const s = await start();
    const config = JSON.parse(await readFile(s.configFile, "utf8"));
    expect(config.url).toBe(`http://localhost:${s.port}`);
    const run = await runCli(["predict", "hello"], { EDGE_INFERENCE_CONFIG: s.configFile });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^model toxicity@/);

    const group = await wranglerGroup(s.child.pid as number);
    const members = (await processes()).filter((p) => p.pgrp === group);
    expect(members.filter((p) => p.comm.includes("workerd")).length).toBeGreaterThan(0);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(143);
    expect((await processes()).filter((p) => p.pgrp === group)).toEqual([]);
  });

  it("exits non-zero with a message when a workerd runtime dies", async () => {
    const s = await start();
    const group = await wranglerGroup(s.child.pid as number);
    const runtime = (await processes()).find((p) => p.pgrp === group && p.comm.includes("workerd"));
    process.kill(runtime?.pid as number, "SIGKILL");
    expect(await s.exited).toBe(1);
    expect(s.output()).toContain("workerd runtime of wrangler dev died");
    expect((await processes()).filter((p) => p.pgrp === group)).toEqual([]);
  });
});
