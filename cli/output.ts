/** Output helpers of the CLI: JSON for scripts, aligned tables and progress bars for people. */
import type { Command } from "commander";

/** Prints `value` as indented JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Rows as columns padded to the widest cell (the last column is not padded). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** `[#####-----]` for a fraction in 0..1. */
export function bar(fraction: number, width = 24): string {
  const filled = Math.round(width * Math.min(Math.max(fraction, 0), 1));
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

/**
 * A progress line on stderr: redrawn in place on a terminal; elsewhere (logs, pipes) printed only
 * when it changes and at most every `everyMs`.
 */
export class Progress {
  private last = "";
  private printed = "";
  private lastAt = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(private readonly everyMs = 2000) {}

  update(line: string): void {
    if (line === this.last) return;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (Date.now() - this.lastAt >= this.everyMs) {
      process.stderr.write(`${line}\n`);
      this.printed = line;
      this.lastAt = Date.now();
    }
    this.last = line;
  }

  /** Leaves `line` (default the last one) on screen, printed if it was held back; `""` clears it. */
  done(line = this.last): void {
    if (this.tty) process.stderr.write(line === "" ? "\r\x1b[2K" : `\r\x1b[2K${line}\n`);
    else if (line !== "" && line !== this.printed) process.stderr.write(`${line}\n`);
  }
}

/** Adds `--json` (machine-readable output) to `cmd`. */
export function withJson(cmd: Command): Command {
  return cmd.option("--json", "print the service's JSON answer (for scripts)");
}

/** A score as a fixed-width number with a 10-character bar. */
export function scoreCell(score: number): string {
  return `${score.toFixed(4)} ${bar(score, 10)}`;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
