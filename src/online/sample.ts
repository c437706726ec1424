/**
 * Labelled bank-transaction samples (the CSV's columns, string values) and the request formats of
 * `POST /api/v1/models/:id/samples`: a JSON array of objects or `text/csv` with a header. Parsing
 * is all-or-nothing: every bad row is reported by its 1-based position in the request, and a
 * request with any bad row is refused as a whole.
 */
import { parse as parseCsv } from "csv-parse/browser/esm/sync";
import * as z from "zod";
import { ApiError } from "../errors";

/** Longest accepted value per field, in UTF-16 units (the dataset's longest text has 179). */
export const MAX_FIELD_CHARS = { text: 1024, other: 128 } as const;

const field = (name: string, max: number, nonBlank: boolean) =>
  z
    .string({
      error: (issue) => (issue.input === undefined ? `${name} is required` : `${name} must be a string`),
    })
    .max(max, `${name} must be at most ${max} characters`)
    .refine((v) => !nonBlank || v.trim() !== "", `${name} must not be blank`);

const DATE_RE = /^\d{4}-\d{2}-\d{2}/;

/** What a prediction needs (`POST /api/v1/models/:id/predict`); other keys are ignored. */
export const bankInputSchema = z.object({
  CompanyId: field("CompanyId", MAX_FIELD_CHARS.other, true),
  BankEntryDate: field("BankEntryDate", MAX_FIELD_CHARS.other, true)
    .refine((v) => DATE_RE.test(v), "BankEntryDate must start with a YYYY-MM-DD date")
    .optional(),
  BankEntryText: field("BankEntryText", MAX_FIELD_CHARS.text, false),
  BankEntryAmount: field("BankEntryAmount", MAX_FIELD_CHARS.other, true),
});

/** A labelled sample: every CSV column is required; `AccountNumber` is the label. */
export const bankSampleSchema = bankInputSchema.extend({
  BankEntryDate: field("BankEntryDate", MAX_FIELD_CHARS.other, true).refine(
    (v) => DATE_RE.test(v),
    "BankEntryDate must start with a YYYY-MM-DD date",
  ),
  AccountName: field("AccountName", MAX_FIELD_CHARS.other, false),
  AccountNumber: field("AccountNumber", MAX_FIELD_CHARS.other, true),
  AccountTypeName: field("AccountTypeName", MAX_FIELD_CHARS.other, false),
});

/**
 * A labelled sample of an API-created model: only what the learner's features and label need is
 * required (company, text, amount, label); the date, the label's name and type may be left out.
 */
export const ownSampleSchema = bankSampleSchema.extend({
  BankEntryDate: bankInputSchema.shape.BankEntryDate.transform((v) => v ?? ""),
  AccountName: field("AccountName", MAX_FIELD_CHARS.other, false).default(""),
  AccountTypeName: field("AccountTypeName", MAX_FIELD_CHARS.other, false).default(""),
});

/** The fields `ownSampleSchema` requires. */
export const REQUIRED_OWN_COLUMNS = [
  "CompanyId",
  "BankEntryText",
  "BankEntryAmount",
  "AccountNumber",
] as const;

/** A validated prediction input. */
export type BankPredictInput = z.infer<typeof bankInputSchema>;
/** A validated labelled sample (only the seven known fields are kept). */
export type BankSample = z.infer<typeof bankSampleSchema>;

/** The columns of a labelled sample, in the dataset's order. */
export const SAMPLE_COLUMNS = [
  "CompanyId",
  "BankEntryDate",
  "BankEntryText",
  "BankEntryAmount",
  "AccountName",
  "AccountNumber",
  "AccountTypeName",
] as const;

/** One problem of one row: 1-based `row` in the request, the field (or `(row)`), the message. */
export interface RowError {
  row: number;
  path: string;
  message: string;
}

/** At most this many row errors are listed in one response. */
const MAX_LISTED_ERRORS = 50;

function refuse(errors: RowError[]): never {
  const listed = errors.slice(0, MAX_LISTED_ERRORS);
  const summary = listed
    .slice(0, 5)
    .map((e) => `row ${e.row} ${e.path}: ${e.message}`)
    .join("; ");
  throw new ApiError("invalid_request", `${errors.length} problem(s), nothing was applied: ${summary}`, {
    extensions: { errors: listed, ...(errors.length > listed.length && { errors_total: errors.length }) },
  });
}

/**
 * Validates every record as a labelled sample; returns them all or throws one 400 `invalid_request`
 * listing each bad row (`errors: [{row, path, message}]`). `maxRows` bounds the request.
 */
export function validateSamples(
  records: readonly unknown[],
  maxRows: number,
  schema: z.ZodType<BankSample, unknown> = bankSampleSchema,
): BankSample[] {
  if (records.length === 0) {
    throw new ApiError("invalid_request", "no samples: send at least one row", {
      extensions: { errors: [{ row: 0, path: "(body)", message: "at least one sample is required" }] },
    });
  }
  if (records.length > maxRows) {
    throw new ApiError(
      "batch_too_large",
      `${records.length} samples in one request; the limit is ${maxRows}`,
      {
        extensions: { limit: maxRows },
      },
    );
  }
  const samples: BankSample[] = [];
  const errors: RowError[] = [];
  records.forEach((record, i) => {
    const parsed = schema.safeParse(record);
    if (parsed.success) samples.push(parsed.data);
    else {
      for (const issue of parsed.error.issues) {
        errors.push({ row: i + 1, path: issue.path.join(".") || "(row)", message: issue.message });
      }
    }
  });
  if (errors.length > 0) refuse(errors);
  return samples;
}

/** The records of a JSON samples body: an array of objects, `{"samples": [...]}`, or one object. */
export function jsonRecords(body: unknown): unknown[] {
  if (Array.isArray(body)) return body;
  if (body !== null && typeof body === "object") {
    const samples = (body as { samples?: unknown }).samples;
    // `{"samples": [...]}`, or one sample object as the online service's `POST /sample` takes it.
    return Array.isArray(samples) ? samples : [body];
  }
  throw new ApiError("invalid_request", "expected a sample object or a JSON array of sample objects", {
    extensions: {
      errors: [{ row: 0, path: "(body)", message: "must be a sample object or an array of them" }],
    },
  });
}

/**
 * The records of a `text/csv` body with a header row. Unknown columns (such as the dataset's unnamed
 * index column) are ignored; each `required` column (the caller's names) missing from the header
 * is reported once.
 */
export function csvRecords(
  text: string,
  required: readonly string[] = SAMPLE_COLUMNS,
): Record<string, string>[] {
  let rows: string[][];
  try {
    rows = parseCsv(text, { bom: true, skip_empty_lines: true, relax_column_count: false }) as string[][];
  } catch (e) {
    const line = (e as { lines?: number }).lines;
    throw new ApiError("invalid_request", `the CSV body could not be parsed: ${(e as Error).message}`, {
      extensions: {
        errors: [
          {
            row: line === undefined ? 0 : Math.max(0, line - 1),
            path: "(csv)",
            message: (e as Error).message,
          },
        ],
      },
    });
  }
  const [header, ...data] = rows;
  if (!header) throw new ApiError("invalid_request", "the CSV body is empty: a header row is required");
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new ApiError("invalid_request", `the CSV header lacks column(s) ${missing.join(", ")}`, {
      extensions: {
        errors: missing.map((c) => ({ row: 0, path: c, message: "column missing from the header" })),
      },
    });
  }
  return data.map((cells) => {
    const record: Record<string, string> = {};
    header.forEach((name, i) => {
      if (name !== "") record[name] = cells[i] as string;
    });
    return record;
  });
}
