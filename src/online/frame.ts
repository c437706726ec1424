/**
 * The records of a JSON body in any shape `pandas.DataFrame.from_dict` accepts, as the online
 * service's clients build them (`pd.read_csv(path).to_dict()`, a list of records, one record):
 *
 * - a list of records: `[{"CompanyId": …, …}, …]`;
 * - column-oriented: `{"CompanyId": {"0": …, "1": …}, …}` (the rows are the union of the inner
 *   keys, in order of first appearance) or `{"CompanyId": [ …, … ], …}` (equal lengths); a scalar
 *   next to such columns is repeated on every row, as pandas broadcasts it;
 * - one record: `{"CompanyId": "…", …}` (every value a scalar; pandas itself needs an index then).
 *
 * Cells are made strings as pandas prints them: numbers in their shortest decimal form (`9900`,
 * `12.5`; an integral float sent as `9900.0` arrives as the number 9900 and prints as `9900`),
 * booleans `True`/`False`; `null` is a missing cell. Other columns are kept as they are (the sample
 * schemas ignore unknown ones, such as pandas' unnamed index column `Unnamed: 0` or `""`).
 */
import { ApiError } from "../errors";

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** A cell as pandas prints it; non-scalar values are left for the schema to refuse. */
function printed(value: unknown): unknown {
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : value;
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null) return undefined;
  return value;
}

/** A record with its cells printed (built with `fromEntries`, so no key can reach a prototype). */
function printedRecord(entries: Iterable<[string, unknown]>): Record<string, unknown> {
  return Object.fromEntries(
    Array.from(entries, ([k, v]) => [k, printed(v)] as const).filter(([, v]) => v !== undefined),
  );
}

function refuse(message: string): never {
  throw new ApiError("invalid_request", message, {
    extensions: { errors: [{ row: 0, path: "(body)", message }] },
  });
}

/**
 * The records of `body` (see the module comment), at most `maxRows` of them (more → 400
 * `batch_too_large` before any row is built). Anything else is a 400 `invalid_request`.
 */
export function frameRecords(body: unknown, maxRows: number): Record<string, unknown>[] {
  const tooMany = (n: number) => {
    if (n > maxRows) {
      throw new ApiError("batch_too_large", `${n} samples in one request; the limit is ${maxRows}`, {
        extensions: { limit: maxRows },
      });
    }
  };
  if (Array.isArray(body)) {
    tooMany(body.length);
    return body.map((record, i) => {
      if (!isPlainObject(record)) refuse(`row ${i + 1} is not an object of column → value`);
      return printedRecord(Object.entries(record));
    });
  }
  if (!isPlainObject(body)) refuse("expected records (an array of objects), columns or one record");
  const columns = Object.entries(body);
  const vectors = columns.filter(([, v]) => v !== null && typeof v === "object");
  if (vectors.length === 0) return [printedRecord(columns)];
  // Column-oriented: the row labels of each column (index keys, or list positions).
  const index = new Map<string, number>();
  let listLength: number | undefined;
  for (const [name, column] of vectors) {
    if (Array.isArray(column)) {
      if (listLength !== undefined && column.length !== listLength) {
        refuse(`column '${name.slice(0, 80)}' has ${column.length} values, another has ${listLength}`);
      }
      listLength = column.length;
      tooMany(column.length);
      for (let i = 0; i < column.length; i++) if (!index.has(String(i))) index.set(String(i), index.size);
    } else {
      for (const key of Object.keys(column as object)) {
        if (!index.has(key)) {
          index.set(key, index.size);
          tooMany(index.size);
        }
      }
    }
  }
  const rows = Array.from(index.keys());
  return rows.map((key) =>
    printedRecord(
      columns.map(([name, column]): [string, unknown] => {
        if (column === null || typeof column !== "object") return [name, column];
        const value = Array.isArray(column)
          ? column[Number(key)]
          : Object.hasOwn(column, key)
            ? (column as Record<string, unknown>)[key]
            : undefined;
        return [name, value === undefined ? null : value];
      }),
    ),
  );
}
