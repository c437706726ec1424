/**
 * The request bodies the online-learning service's Python client (MarosJev/online-learning-api,
 * `client/client.py`) sends, built in TypeScript exactly as pandas and `requests` build them, so
 * the workerd tests can replay the client without Python:
 *
 * - option 1: `requests.post(url + "/sample", json=pd.read_csv(path).to_dict())`;
 * - option 2: `requests.post(url + "/predict", json=[{"CompanyId", "BankEntryText", "BankEntryAmount"}])`
 *   from one input line split on `,` (the client's `map(str.strip, …)` is never consumed, so the
 *   values keep their spaces).
 *
 * `requests` serialises with `json.dumps` (`", "` and `": "` separators, `ensure_ascii`). pandas'
 * `read_csv` infers each column's dtype: int64 when every cell is an integer, float64 when every
 * cell is a number (empty cells are NaN), otherwise strings; an empty header cell becomes
 * `Unnamed: <position>`. `to_dict()` gives `{column: {row: value}}` with the RangeIndex's ints as
 * keys. test/node/pandas-bodies.test.ts compares these bytes with real pandas when Debian's
 * python3-pandas is installed.
 */
import { parse as parseCsv } from "csv-parse/browser/esm/sync";

/** pandas' default `na_values`. */
const NA_VALUES = new Set([
  "",
  "#N/A",
  "#N/A N/A",
  "#NA",
  "-1.#IND",
  "-1.#QNAN",
  "-NaN",
  "-nan",
  "1.#IND",
  "1.#QNAN",
  "<NA>",
  "N/A",
  "NA",
  "NULL",
  "NaN",
  "None",
  "n/a",
  "nan",
  "null",
]);
const INT_RE = /^\s*[+-]?\d+\s*$/;
const FLOAT_RE = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

/** A Python value as `json.dumps` sees it: int (bigint), float (number), str, dict, list. */
export type PyValue = bigint | number | string | null | PyValue[] | Map<string, PyValue>;

/** `pd.read_csv(text).to_dict()`: column → (row → value), in column order. */
export function readCsvToDict(text: string): Map<string, PyValue> {
  const [header = [], ...rows] = parseCsv(text, { bom: true, relax_column_count: false }) as string[][];
  const frame = new Map<string, PyValue>();
  header.forEach((name, c) => {
    const cells = rows.map((row) => row[c] as string);
    const present = cells.filter((v) => !NA_VALUES.has(v));
    let values: PyValue[];
    if (present.length === cells.length && cells.every((v) => INT_RE.test(v))) {
      values = cells.map((v) => BigInt(v.trim()));
    } else if (present.every((v) => FLOAT_RE.test(v))) {
      values = cells.map((v) => (NA_VALUES.has(v) ? Number.NaN : Number(v)));
    } else {
      values = cells.map((v) => (NA_VALUES.has(v) ? Number.NaN : v));
    }
    frame.set(name === "" ? `Unnamed: ${c}` : name, new Map(values.map((v, r) => [String(r), v])));
  });
  return frame;
}

/** Python's `repr(float)` for finite numbers (what `json.dumps` writes). */
function pyFloat(n: number): string {
  if (!Number.isFinite(n)) throw new Error("ValueError: Out of range float values are not JSON compliant");
  if (Object.is(n, -0)) return "-0.0";
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return `${n}.0`;
  const s = String(n);
  // JS 1e-7 is Python's 1e-07 (floats of 1e16 and more differ further; none occur here).
  return s.replace(/e([+-])(\d)$/, "e$10$2");
}

const escapeChar = (ch: string) => {
  const named: Record<string, string> = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
  };
  return named[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
};

/** `json.dumps(value, allow_nan=False)` with its defaults (`ensure_ascii=True`). */
export function pyJsonDumps(value: PyValue): string {
  if (value === null) return "null";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") return pyFloat(value);
  // Every UTF-16 unit outside printable ASCII is escaped, so astral characters become surrogate pairs.
  if (typeof value === "string") return `"${value.replace(/["\\]|[^ -~]/g, escapeChar)}"`;
  if (Array.isArray(value)) return `[${value.map(pyJsonDumps).join(", ")}]`;
  return `{${Array.from(value, ([k, v]) => `${pyJsonDumps(k)}: ${pyJsonDumps(v)}`).join(", ")}}`;
}

/** Option 1's body for a CSV file's text. */
export function sampleBody(csvText: string): string {
  return pyJsonDumps(readCsvToDict(csvText));
}

/** Option 2's body for what the user typed (`CompanyId, Bank Entry Text, Bank Entry Amount`). */
export function predictBody(line: string): string {
  const [companyId = "", text = "", amount = ""] = line.split(",");
  return pyJsonDumps([
    new Map<string, PyValue>([
      ["CompanyId", companyId],
      ["BankEntryText", text],
      ["BankEntryAmount", amount],
    ]),
  ]);
}
