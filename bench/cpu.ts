import { readdirSync, readFileSync } from "node:fs";

/**
 * User + system CPU time (ms) of this process's workerd children (Miniflare's runtime), from /proc;
 * only of `pids` when given (one service's processes).
 */
export function workerdCpuMs(pids?: ReadonlySet<number>): number {
  let total = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[1] = ppid, fields[11] = utime, fields[12] = stime, in clock ticks (100 per second).
    const mine = pids ? pids.has(Number(pid)) : comm.includes("workerd") && Number(fields[1]) === process.pid;
    if (mine) {
      total += (Number(fields[11]) + Number(fields[12])) * 10;
    }
  }
  return total;
}
