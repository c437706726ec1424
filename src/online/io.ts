/**
 * Request parsing and response shapes shared by the native online routes (src/routes/online.ts)
 * and the online service's compatibility routes (src/protocols/seeds.ts).
 */
import type { Config } from "../config";
import { ApiError } from "../errors";
import { json, readBodyBytes, readJsonBody } from "../http";
import { csvRecords, jsonRecords } from "./sample";
import type { OnlinePrediction } from "./service";

const CSV_TYPE = /^text\/csv\s*(;|$)/i;

/** Reads a `text/csv` body (same size limits as JSON bodies) as UTF-8 text. */
async function readCsvBody(request: Request, maxBytes: number): Promise<string> {
  const bytes = await readBodyBytes(request, maxBytes);
  if (bytes.byteLength === 0) throw new ApiError("invalid_request", "request body is empty");
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("invalid_request", "the CSV body is not valid UTF-8");
  }
}

/**
 * The sample records of a JSON (array or one object) or `text/csv` body; a CSV header must have
 * the `required` columns (default: the bank CSV's).
 */
export async function readSampleRecords(
  request: Request,
  config: Config,
  required?: readonly string[],
): Promise<unknown[]> {
  return CSV_TYPE.test(request.headers.get("content-type") ?? "")
    ? csvRecords(await readCsvBody(request, config.MAX_BODY_BYTES), required)
    : jsonRecords(await readJsonBody(request, config.MAX_BODY_BYTES));
}

/** `n_top` and `source` of a predict call. */
export function predictOptions(
  url: URL,
  defaultSource: "snapshot" | "learner" = "snapshot",
): { nTop: number | undefined; source: "snapshot" | "learner" } {
  const raw = url.searchParams.get("n_top");
  const errors: { path: string; message: string }[] = [];
  let nTop: number | undefined;
  if (raw !== null) {
    nTop = Number(raw);
    if (!/^\d+$/.test(raw) || nTop < 1 || nTop > 4096) {
      errors.push({ path: "n_top", message: "n_top must be a whole number in 1..4096" });
    }
  }
  const source = url.searchParams.get("source") ?? defaultSource;
  if (source !== "snapshot" && source !== "learner") {
    errors.push({
      path: "source",
      message: `source must be 'snapshot' or 'learner' (default '${defaultSource}')`,
    });
  }
  if (errors.length > 0) {
    throw new ApiError("invalid_request", errors.map((e) => e.message).join("; "), {
      extensions: { errors },
    });
  }
  return { nTop, source: source as "snapshot" | "learner" };
}

/**
 * The online service's answer shape: `["<AccountNumber>"]`, or the top n with scores, keyed
 * `labelKey` (an API-created model's label field; default `AccountNumber`).
 */
export function onlinePredictionResponse(
  { top, version }: OnlinePrediction,
  nTop: number | undefined,
  labelKey = "AccountNumber",
): Response {
  const headers = { "x-model-version": version };
  if (nTop === undefined) return json([top[0]?.AccountNumber], 200, headers);
  if (labelKey === "AccountNumber") return json(top, 200, headers);
  return json(
    top.map((t) => ({ [labelKey]: t.AccountNumber, score: t.score })),
    200,
    headers,
  );
}
