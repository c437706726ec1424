/**
 * Training datasets in R2 under `datasets/<name>` (what a job's `dataset.r2_key` names): upload
 * with validation, list, delete.
 *
 * An upload is streamed to R2 while a second branch of the same body is parsed with the training
 * jobs' own reader and parser (src/jobs/dataset.ts): the format of the name's extension (CSV with a
 * header line or JSON Lines, optionally gzipped), at least one and at most `MAX_DATASET_ROWS` rows,
 * and the required columns in every row, within caps on line length, columns and rows checked
 * while parsing and on the inflated size (src/jobs/dataset.ts). A dataset that fails is deleted
 * again, so nothing invalid stays. Names are never replaced (409; delete first): the put is
 * create-only in R2 itself (`If-None-Match: *`), so of concurrent uploads of one name exactly one
 * is stored, a failed upload only ever deletes its own object, and a job never sees a dataset
 * change under it.
 */
import type { Config } from "../config";
import { ApiError } from "../errors";
import {
  DatasetError,
  type DatasetFormat,
  DatasetTooLargeError,
  formatOf,
  parseRecords,
  readDatasetStream,
} from "../jobs/dataset";

/** R2 prefix of datasets. */
export const DATASET_PREFIX = "datasets/";
/**
 * A dataset name: a file name whose extension gives the format (`.csv`, `.jsonl`, `.ndjson`,
 * `.json`, each optionally `.gz`), optionally in one folder (`<folder>/<file>`: the registry
 * service's `<s3bucket>/<training_object>`).
 */
export const DATASET_NAME_RE = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,99}\/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/;

/** What the API shows of a dataset. */
export interface DatasetView {
  name: string;
  /** The `dataset.r2_key` of a training job. */
  r2_key: string;
  format: string;
  size_bytes: number;
  uploaded_at: string;
}

/** The format of a dataset name, or a 400 naming the accepted extensions. */
export function datasetFormat(name: string): DatasetFormat {
  const format = DATASET_NAME_RE.test(name) ? formatOf(name, undefined) : undefined;
  if (!format) {
    throw new ApiError(
      "invalid_request",
      `'${name.slice(0, 80)}' is not a dataset name: [folder/]file of letters, digits, '_', '.', '-', ending in .csv, .jsonl, .ndjson or .json (optionally .gz)`,
      {
        extensions: {
          errors: [
            { path: "name", message: "must be [folder/]file ending in .csv, .jsonl, .ndjson or .json[.gz]" },
          ],
        },
      },
    );
  }
  return format;
}

function view(object: R2Object): DatasetView {
  const name = object.key.slice(DATASET_PREFIX.length);
  return {
    name,
    r2_key: object.key,
    format: `${formatOf(name, undefined) ?? "unknown"}${name.toLowerCase().endsWith(".gz") ? "+gzip" : ""}`,
    size_bytes: object.size,
    uploaded_at: object.uploaded.toISOString(),
  };
}

/** The columns of parsed records: the union of their keys, in first-seen order. */
function columnsOf(records: readonly Record<string, unknown>[]): string[] {
  const seen = new Set<string>();
  for (const r of records) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

/** Parses an upload's text and checks rows and required columns; returns `{ rows, columns }`. */
async function validate(
  body: ReadableStream<Uint8Array>,
  name: string,
  format: DatasetFormat,
  required: readonly string[],
  config: Config,
): Promise<{ rows: number; columns: string[] }> {
  const text = await readDatasetStream(body, name.toLowerCase().endsWith(".gz"), config.MAX_DATASET_BYTES);
  const records = parseRecords(text, format, config.MAX_DATASET_ROWS);
  if (records.length === 0) throw new DatasetError("dataset has no rows");
  for (const column of required) {
    const row = records.findIndex((r) => r[column] === undefined || r[column] === null);
    if (row >= 0) {
      throw new DatasetError(
        format === "csv"
          ? `the CSV header has no column '${column}'`
          : `row ${row + 1} has no field '${column}'`,
      );
    }
  }
  return { rows: records.length, columns: columnsOf(records) };
}

/**
 * Stores `body` (`length` bytes, as sent) at `datasets/<name>` after validating it (see the module
 * comment); `required` columns must be in every row. 413 over `MAX_DATASET_BYTES`, 409 when the
 * name exists, 422 `invalid_dataset` with the reason otherwise.
 */
export async function uploadDataset(
  bucket: R2Bucket,
  config: Config,
  upload: { name: string; body: ReadableStream<Uint8Array>; length: number; required: readonly string[] },
): Promise<DatasetView & { rows: number; columns: string[] }> {
  const format = datasetFormat(upload.name);
  const key = `${DATASET_PREFIX}${upload.name}`;
  if (upload.length > config.MAX_DATASET_BYTES) {
    throw new ApiError(
      "dataset_too_large",
      `the upload is ${upload.length} bytes; the limit is ${config.MAX_DATASET_BYTES} (MAX_DATASET_BYTES)`,
      { extensions: { limit_bytes: config.MAX_DATASET_BYTES } },
    );
  }
  if (await bucket.head(key)) {
    throw new ApiError("dataset_exists", `dataset '${upload.name}' exists; delete it first to replace it`);
  }
  const [toStore, toCheck] = upload.body.tee();
  // R2 needs the length of a streamed body up front.
  const sized = new FixedLengthStream(upload.length);
  const piped = toStore.pipeTo(sized.writable);
  // Create-only, atomically: R2 writes the object only if none exists at commit (`If-None-Match: *`),
  // else returns null. Of concurrent uploads of one name exactly one is stored.
  const stored = bucket.put(key, sized.readable, {
    httpMetadata: { contentType: format === "csv" ? "text/csv" : "application/x-ndjson" },
    onlyIf: new Headers({ "if-none-match": "*" }),
  });
  const checked = validate(toCheck, upload.name, format, upload.required, config);
  const [store, pipe, check] = await Promise.allSettled([stored, piped, checked]);
  // Only this upload's own object is ever deleted: when R2 stored nothing (another upload holds
  // the name), there is nothing of ours to remove.
  const ours = store.status === "fulfilled" ? store.value : null;
  if (check.status === "rejected" || store.status === "rejected" || pipe.status === "rejected") {
    if (ours) await bucket.delete(key);
    const error =
      check.status === "rejected"
        ? check.reason
        : store.status === "rejected"
          ? store.reason
          : (pipe as PromiseRejectedResult).reason;
    if (error instanceof DatasetTooLargeError) {
      throw new ApiError("dataset_too_large", error.message, {
        extensions: { limit_bytes: config.MAX_DATASET_BYTES },
      });
    }
    if (error instanceof DatasetError) throw new ApiError("invalid_dataset", error.message);
    if (error instanceof ApiError) throw error;
    if (pipe.status === "rejected") {
      throw new ApiError(
        "invalid_request",
        "the upload was not received whole (its length differs from Content-Length, or it was cut off)",
        { cause: error },
      );
    }
    throw error; // R2 failed: a logged 500
  }
  if (!ours) {
    throw new ApiError("dataset_exists", `dataset '${upload.name}' exists; delete it first to replace it`);
  }
  return { ...view(ours), ...check.value };
}

/** Datasets in name order, up to 1,000 per page (`cursor` pages on). */
export async function listDatasets(
  bucket: R2Bucket,
  cursor: string | undefined,
): Promise<{ datasets: DatasetView[]; next_cursor: string | null }> {
  const page = await bucket.list({ prefix: DATASET_PREFIX, limit: 1000, ...(cursor && { cursor }) });
  return {
    datasets: page.objects.map(view),
    next_cursor: page.truncated ? page.cursor : null,
  };
}

/** Deletes `datasets/<name>`; 404 when there is none. Jobs already holding it fail when they read it. */
export async function deleteDataset(bucket: R2Bucket, name: string): Promise<DatasetView> {
  datasetFormat(name);
  const key = `${DATASET_PREFIX}${name}`;
  const head = await bucket.head(key);
  if (!head) throw new ApiError("dataset_not_found", `no dataset '${name}'`);
  await bucket.delete(key);
  return view(head);
}
