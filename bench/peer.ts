/**
 * The Flask + scikit-learn reference service (../shared/peers/seed000, see its README), started by
 * the bench when Debian's `python3-flask`, `python3-sklearn` and `gunicorn` are installed for
 * `/usr/bin/python3`, served by gunicorn with 2 workers like in production, and loaded exactly like
 * the Worker. It trains once at start-up (~20–40 s) and caches its model in `BENCH_PEER_MODEL`.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { root } from "../scripts/local-worker";

const PYTHON = "/usr/bin/python3";
const PEER_DIR = path.resolve(root, "../shared/peers/seed000");
const DATA = path.resolve(root, "../shared/datasets/toxicity/jigsaw_multilabel.csv.gz");

export interface Peer {
  url: string;
  /** The gunicorn master and its workers. */
  pids: Set<number>;
  stop(): Promise<void>;
}

/** Why the peer cannot run here, or undefined when it can. */
export function peerUnavailable(): string | undefined {
  if (!existsSync(path.join(PEER_DIR, "app.py"))) return `${PEER_DIR}/app.py is absent`;
  if (!existsSync(DATA)) return `${DATA} is absent`;
  if (!existsSync(PYTHON)) return `${PYTHON} is absent`;
  try {
    execFileSync(PYTHON, ["-c", "import flask, sklearn, gunicorn"], { stdio: "pipe" });
  } catch {
    return "Debian's python3-flask, python3-sklearn and gunicorn are not installed (apt-get install -y python3-flask python3-sklearn gunicorn)";
  }
  return undefined;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Starts the peer on `port` and waits until it answers (at most `timeoutMs`, training included). */
export async function startPeer(port: number, timeoutMs = 300_000): Promise<Peer> {
  const model = process.env.BENCH_PEER_MODEL ?? path.join(os.tmpdir(), "seed000_model.pkl");
  const child: ChildProcess = spawn(
    PYTHON,
    ["-m", "gunicorn", "-w", "2", "-b", `127.0.0.1:${port}`, "--log-level", "warning", "app:app"],
    {
      cwd: PEER_DIR,
      env: { ...process.env, PEER_DATA: DATA, PEER_MODEL: model, PYTHONDONTWRITEBYTECODE: "1" },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  // Should the bench fail, the peer must not outlive it (it would hold the port).
  const killOnExit = () => child.kill("SIGTERM");
  process.once("exit", killOnExit);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    process.off("exit", killOnExit);
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the peer exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/api/v1/health`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  if (Date.now() >= deadline) {
    await stop();
    throw new Error(`the peer did not answer within ${timeoutMs} ms`);
  }
  const pid = child.pid as number;
  return { url, pids: new Set([pid, ...childrenOf(pid)]), stop };
}
