/**
 * Training datasets of jobs: reading them (R2 objects, JSON lines or CSV, optionally gzipped; or
 * inline rows), and turning records into the trainer's `TrainingRow`s with the label encoding of
 * the task. Every problem is a `DatasetError` with a message fit for the job's `error`.
 *
 * CSV is parsed with csv-parse (the parser `npm run train` uses, same options), through its
 * browser build (`csv-parse/browser/esm/sync`), which bundles its own `Buffer` shim and so runs in
 * workerd without `nodejs_compat`.
 */
import { CsvError, parse as parseCsv } from "csv-parse/browser/esm/sync";
import { Gunzip } from "fflate";
import { concatBytes } from "../bytes";
import type { TrainingRow } from "../training/trainer";

/** A dataset that cannot be trained on; `message` says why (shown as the job's error). */
export class DatasetError extends Error {
  override name = "DatasetError";
}

/** A dataset over `MAX_DATASET_BYTES` (stored or decompressed). */
export class DatasetTooLargeError extends DatasetError {
  override name = "DatasetTooLargeError";
}

/** File formats of R2 datasets. */
export type DatasetFormat = "csv" | "jsonl" | "json";

/** How records map to training rows. */
export interface FieldSpec {
  task: "binary" | "multiclass" | "multilabel";
  text_field: string;
  label_field?: string | undefined;
  label_fields?: string[] | undefined;
  /** Binary/multiclass: label values in output order; multilabel: names for `label_fields`. */
  labels?: string[] | undefined;
}

/**
 * The format of `key`: `format` when given, else from the extension (`.csv`, `.jsonl`, `.ndjson`,
 * `.json`, each optionally `.gz`).
 */
export function formatOf(key: string, format: DatasetFormat | undefined): DatasetFormat | undefined {
  if (format) return format;
  const base = key.toLowerCase().replace(/\.gz$/, "");
  if (base.endsWith(".csv")) return "csv";
  if (base.endsWith(".jsonl") || base.endsWith(".ndjson")) return "jsonl";
  if (base.endsWith(".json")) return "json";
  return undefined;
}

/**
 * Reads an R2 dataset object as text: gunzipped when the key ends in `.gz`, refusing more than
 * `maxBytes` stored or decompressed bytes, and invalid UTF-8.
 */
export async function readDatasetText(object: R2ObjectBody, maxBytes: number): Promise<string> {
  if (object.size > maxBytes) {
    throw new DatasetError(`dataset is ${object.size} bytes; the limit is ${maxBytes} (MAX_DATASET_BYTES)`);
  }
  return readDatasetStream(object.body, object.key.toLowerCase().endsWith(".gz"), maxBytes);
}

/** Longest line of a CSV or JSON Lines dataset, in UTF-16 code units (a text is at most 64 KiB). */
export const MAX_DATASET_LINE_CHARS = 256 * 1024;
/** Most columns (CSV header fields, JSON keys per record and in all) of a dataset. */
export const MAX_DATASET_COLUMNS = 256;
/** Compressed bytes inflated per step: DEFLATE's best ratio (1032:1) bounds one step's output to ~264 KiB. */
const INFLATE_STEP = 256;

/**
 * Reads dataset bytes as text (gunzipped when `gzipped`), refusing more than `maxBytes` read or
 * decompressed (`DatasetTooLargeError`) and invalid UTF-8. The stream is read chunk by chunk and
 * gzip is inflated in small steps (fflate), each counted before the next, so a decompression bomb
 * costs one step past the limit, never its inflated size; memory stays within `maxBytes` plus a
 * step. Past the limit the rest of the stream is cancelled.
 */
export async function readDatasetStream(
  body: ReadableStream<Uint8Array>,
  gzipped: boolean,
  maxBytes: number,
): Promise<string> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  const gunzip = gzipped
    ? new Gunzip((data, final) => {
        size += data.length;
        if (size <= maxBytes) chunks.push(data);
        if (final) ended = true;
      })
    : undefined;
  const tooLarge = () =>
    new DatasetTooLargeError(
      `dataset ${gzipped ? "decompresses to" : "is"} more than ${maxBytes} bytes (MAX_DATASET_BYTES)`,
    );
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!gunzip) {
        size += value.byteLength;
        if (size > maxBytes) throw tooLarge();
        chunks.push(value);
        continue;
      }
      for (let i = 0; i < value.length; i += INFLATE_STEP) {
        gunzip.push(value.subarray(i, i + INFLATE_STEP), false);
        if (size > maxBytes) throw tooLarge();
      }
    }
    if (gunzip) {
      gunzip.push(new Uint8Array(0), true);
      if (size > maxBytes) throw tooLarge();
      if (!ended) throw new Error("unexpected end of gzip data");
    }
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    if (error instanceof DatasetError) throw error;
    throw new DatasetError(`dataset could not be decompressed: ${(error as Error).message}`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(concatBytes(chunks));
  } catch {
    throw new DatasetError("dataset is not valid UTF-8");
  }
}

/** Refuses a line longer than `MAX_DATASET_LINE_CHARS` (naming it) before anything is parsed. */
function checkLineLengths(text: string): void {
  let start = 0;
  for (let line = 1; start <= text.length; line++) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    if (end - start > MAX_DATASET_LINE_CHARS) {
      throw new DatasetError(
        `line ${line} is longer than ${MAX_DATASET_LINE_CHARS} characters (the limit of one dataset line)`,
      );
    }
    start = end + 1;
  }
}

function tooManyColumns(where: string, count: number): DatasetError {
  return new DatasetError(`${where} has ${count} columns; the limit is ${MAX_DATASET_COLUMNS}`);
}

function tooManyRows(maxRows: number): DatasetError {
  return new DatasetError(
    `dataset has more than ${maxRows} rows; the limit is ${maxRows} (MAX_DATASET_ROWS)`,
  );
}

/**
 * One item of a JSON array dataset as a record. spaCy's text-categorisation training data,
 * `{"text", "cats": {LABEL: score}}` or `[text, {"cats": {…}}]`, becomes `{text, label, "cats.<LABEL>"}`
 * (`label` is the highest-scoring category, for multiclass jobs; `cats.<LABEL>` for multilabel
 * ones); any other object is a record as it is.
 */
function jsonItemRecord(item: unknown, i: number): Record<string, unknown> {
  const pair = Array.isArray(item) && item.length === 2 && typeof item[0] === "string";
  const object = pair ? { text: item[0], ...(item[1] as object) } : item;
  if (typeof object !== "object" || object === null || Array.isArray(object)) {
    throw new DatasetError(`item ${i + 1} is not a JSON object or a [text, {"cats": …}] pair`);
  }
  const { cats, ...rest } = object as { cats?: unknown } & Record<string, unknown>;
  if (cats === undefined) return rest;
  if (typeof cats !== "object" || cats === null || Array.isArray(cats)) {
    throw new DatasetError(`item ${i + 1}: cats must be an object of category scores`);
  }
  const scores = Object.entries(cats as Record<string, unknown>);
  if (scores.length === 0 || !scores.every(([, v]) => typeof v === "number" || typeof v === "boolean")) {
    throw new DatasetError(`item ${i + 1}: cats must map each category to a number or boolean`);
  }
  const numeric = scores.map(([k, v]) => [k, Number(v)] as const);
  const best = numeric.reduce((a, b) => (b[1] > a[1] ? b : a));
  return { ...rest, label: best[0], ...Object.fromEntries(numeric.map(([k, v]) => [`cats.${k}`, v])) };
}

/**
 * Parses dataset text into records: CSV with a header row, one JSON object per line (`jsonl`), or
 * a JSON array (`json`: objects, or spaCy textcat items, see `jsonItemRecord`). Bounded before and
 * while parsing: lines (CSV, JSON Lines) of at most `MAX_DATASET_LINE_CHARS`, at most
 * `MAX_DATASET_COLUMNS` columns, and parsing stops past `maxRows` records (a `DatasetError`).
 */
export function parseRecords(
  text: string,
  format: DatasetFormat,
  maxRows = Number.POSITIVE_INFINITY,
): Record<string, unknown>[] {
  if (format === "json") {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new DatasetError(`dataset is not valid JSON: ${(error as Error).message.slice(0, 200)}`);
    }
    if (!Array.isArray(value)) throw new DatasetError("a .json dataset must be a JSON array");
    if (value.length > maxRows) throw tooManyRows(maxRows);
    return value.map((item, i) => {
      const record = jsonItemRecord(item, i);
      const keys = Object.keys(record).length;
      if (keys > MAX_DATASET_COLUMNS) throw tooManyColumns(`item ${i + 1}`, keys);
      return record;
    });
  }
  checkLineLengths(text);
  if (format === "csv") {
    try {
      const options = { skip_empty_lines: true, relax_quotes: true, bom: true } as const;
      const header = (parseCsv(text, { ...options, to: 1 }) as string[][])[0] ?? [];
      if (header.length > MAX_DATASET_COLUMNS) throw tooManyColumns("the CSV header", header.length);
      const records = parseCsv(text, {
        ...options,
        columns: true,
        max_record_size: MAX_DATASET_LINE_CHARS,
        ...(Number.isFinite(maxRows) && { to: maxRows + 1 }),
      }) as Record<string, string>[];
      if (records.length > maxRows) throw tooManyRows(maxRows);
      return records;
    } catch (error) {
      if (error instanceof CsvError) throw new DatasetError(`CSV could not be parsed: ${error.message}`);
      throw error;
    }
  }
  const records: Record<string, unknown>[] = [];
  const columns = new Set<string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    if (records.length === maxRows) throw tooManyRows(maxRows);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new DatasetError(`line ${i + 1} is not valid JSON`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new DatasetError(`line ${i + 1} is not a JSON object`);
    }
    for (const key of Object.keys(value)) columns.add(key);
    if (columns.size > MAX_DATASET_COLUMNS) throw tooManyColumns("the dataset's records", columns.size);
    records.push(value as Record<string, unknown>);
  });
  return records;
}

/** Training rows and label names built from records. */
export interface TrainingData {
  rows: TrainingRow[];
  labels: string[];
}

const TRUE_VALUES = new Set(["1", "true", "yes"]);
const FALSE_VALUES = new Set(["0", "false", "no"]);

/** A cell as a label string (numbers and booleans as JSON writes them); undefined when absent. */
function cell(record: Record<string, unknown>, field: string): string | undefined {
  const v = record[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v.trim();
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

/** Sorts label values numerically when they are all numbers, else by code point. */
function sortLabels(values: Iterable<string>): string[] {
  const all = [...values];
  const numeric = all.every((v) => v !== "" && Number.isFinite(Number(v)));
  return numeric ? all.sort((a, b) => Number(a) - Number(b)) : all.sort();
}

/**
 * Turns records into training rows for `spec.task`:
 * - binary/multiclass: `label_field` holds the class; `labels` (optional) fixes the classes and
 *   their order (binary: the last one is the positive class), else the distinct values sorted;
 * - multilabel: each of `label_fields` holds 0/1 (also `true`/`false`, `yes`/`no`).
 * Refuses: no rows, a missing text or label field (naming the row), an unknown label, fewer than
 * two classes (or, multilabel, a label without both values) among the rows `isTrain` selects, or
 * a binary dataset with more than two classes.
 */
export function toTrainingData(
  records: readonly Record<string, unknown>[],
  spec: FieldSpec,
  isTrain: (index: number) => boolean,
): TrainingData {
  if (records.length === 0) throw new DatasetError("dataset has no rows");
  const first = records[0] as Record<string, unknown>;
  const required = [
    spec.text_field,
    ...(spec.label_field ? [spec.label_field] : []),
    ...(spec.label_fields ?? []),
  ];
  const missing = required.filter((f) => !(f in first));
  if (missing.length > 0) {
    throw new DatasetError(
      `dataset has no field ${missing.map((f) => `'${f}'`).join(", ")} (fields of the first row: ${Object.keys(
        first,
      )
        .slice(0, 20)
        .join(", ")})`,
    );
  }
  const texts = records.map((r, i) => {
    const v = r[spec.text_field];
    if (typeof v !== "string")
      throw new DatasetError(`row ${i + 1}: '${spec.text_field}' is missing or not a string`);
    return v;
  });
  if (spec.task === "multilabel") return multilabelData(records, texts, spec, isTrain);

  const field = spec.label_field as string;
  const values = records.map((r, i) => {
    const v = cell(r, field);
    if (v === undefined || v === "") throw new DatasetError(`row ${i + 1}: '${field}' is missing`);
    return v;
  });
  const labels = spec.labels ?? sortLabels(new Set(values));
  const index = new Map(labels.map((l, i) => [l, i]));
  const rows = values.map((v, i) => {
    const target = index.get(v);
    if (target === undefined) {
      throw new DatasetError(
        `row ${i + 1}: label '${v.slice(0, 64)}' is not one of ${JSON.stringify(labels)}`,
      );
    }
    return { text: texts[i] as string, target };
  });
  const seen = new Set(rows.filter((_, i) => isTrain(i)).map((r) => r.target));
  if (seen.size < 2) {
    throw new DatasetError(
      `the training split has only one class (${JSON.stringify(labels[[...seen][0] ?? 0])}); at least two are needed`,
    );
  }
  if (spec.task === "binary" && labels.length !== 2) {
    throw new DatasetError(
      `a binary task needs exactly two classes; the dataset has ${labels.length}: ${JSON.stringify(labels.slice(0, 10))}`,
    );
  }
  return { rows, labels };
}

function multilabelData(
  records: readonly Record<string, unknown>[],
  texts: string[],
  spec: FieldSpec,
  isTrain: (index: number) => boolean,
): TrainingData {
  const fields = spec.label_fields as string[];
  const labels = spec.labels ?? fields;
  if (labels.length !== fields.length) throw new DatasetError("labels must name each of label_fields");
  const positives = new Array<number>(fields.length).fill(0);
  let trainRows = 0;
  const rows = records.map((r, i) => {
    const target = fields.map((f, k) => {
      const v = (cell(r, f) ?? "").toLowerCase();
      if (TRUE_VALUES.has(v)) {
        if (isTrain(i)) positives[k] = (positives[k] as number) + 1;
        return 1;
      }
      if (FALSE_VALUES.has(v)) return 0;
      throw new DatasetError(`row ${i + 1}: '${f}' must be 0 or 1, got '${v.slice(0, 32)}'`);
    });
    if (isTrain(i)) trainRows++;
    return { text: texts[i] as string, target };
  });
  fields.forEach((f, k) => {
    const p = positives[k] as number;
    if (p === 0 || p === trainRows) {
      throw new DatasetError(
        `label '${f}' has only one class in the training split (${p} of ${trainRows} rows positive)`,
      );
    }
  });
  return { rows, labels };
}
