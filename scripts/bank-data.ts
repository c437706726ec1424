/**
 * The bank-transaction dataset (`../shared/datasets/bank/bank_expenses_obfuscated.csv.gz`), read
 * in place for the online-learning evaluation, its ingest benchmark and tests (never copied into
 * the repository). Rows are kept in file order: the online protocol streams them in that order.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { parse } from "csv-parse/sync";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Absolute path of the dataset file. */
export const BANK_DATASET = path.resolve(ROOT, "../shared/datasets/bank/bank_expenses_obfuscated.csv.gz");

/** Whether the dataset is present (a fresh clone has no `../shared`). */
export function bankDatasetPresent(): boolean {
  return existsSync(BANK_DATASET);
}

/** The dataset's CSV text with the header and data rows `[from, from + count)` only. */
export function bankCsvSlice(from: number, count: number): string {
  const text = gunzipSync(readFileSync(BANK_DATASET)).toString("utf8");
  // No quoted newlines in this file: one line per row.
  const lines = text.split("\n");
  return `${[lines[0], ...lines.slice(1 + from, 1 + from + count)].join("\n")}\n`;
}

/** Data rows `[from, from + count)` as records keyed by the header (the index column is ""). */
export function bankRows(from: number, count: number): Record<string, string>[] {
  return parse(bankCsvSlice(from, count), { columns: true, skip_empty_lines: true }) as Record<
    string,
    string
  >[];
}
