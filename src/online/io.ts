/**
 * Request parsing and response shapes shared by the native online routes (src/routes/online.ts)
 * and the online service's compatibility routes (src/protocols/compat.ts).
 */
import * as z from "zod";
import { OnlinePredictionSchema } from "../answers";
import type { Config } from "../config";
import { ApiError } from "../errors";
import { readBodyBytes, readJsonBody, reply } from "../http";
import { frameRecords } from "./frame";
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
 * the `required` columns (default: the bank CSV's). `frame`: a JSON body may also be any shape
 * `pandas.DataFrame.from_dict` takes, numbers printed as strings (`frameRecords`), as the online
 * service's compatibility routes accept it.
 */
export async function readSampleRecords(
  request: Request,
  config: Config,
  shape: "native" | "frame" = "native",
  required?: readonly string[],
): Promise<unknown[]> {
  if (CSV_TYPE.test(request.headers.get("content-type") ?? "")) {
    return csvRecords(await readCsvBody(request, config.MAX_BODY_BYTES), required);
  }
  const body = await readJsonBody(request, config.MAX_BODY_BYTES);
  if (shape === "native" || isSamplesEnvelope(body)) return jsonRecords(body);
  return frameRecords(body, config.ONLINE_MAX_SAMPLES);
}

/** `{"samples": [...]}`, the native envelope, also taken by the compatibility route. */
const isSamplesEnvelope = (body: unknown): boolean =>
  body !== null &&
  typeof body === "object" &&
  !Array.isArray(body) &&
  Object.keys(body).length === 1 &&
  Array.isArray((body as { samples?: unknown }).samples);

/** The query of a predict call, as the document shows it (`predictOptions` parses it). */
export const onlinePredictQuerySchema = z.strictObject({
  n_top: z
    .string()
    .regex(/^\d+$/)
    .optional()
    .describe('1..4096: answer the top n as [{AccountNumber, score}] instead of ["<AccountNumber>"]'),
  source: z
    .enum(["snapshot", "learner"])
    .optional()
    .describe("who predicts: the edge snapshot (native default) or the learner (compatibility default)"),
});

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
  // A learner with no accounts yet has no top one: `[null]` (what `[undefined]` always serialised to).
  if (nTop === undefined) return reply(OnlinePredictionSchema, [top[0]?.AccountNumber ?? null], 200, headers);
  if (labelKey === "AccountNumber") return reply(OnlinePredictionSchema, top, 200, headers);
  return reply(
    OnlinePredictionSchema,
    top.map((t) => ({ [labelKey]: t.AccountNumber, score: t.score })),
    200,
    headers,
  );
}
