/**
 * Compressed sparse row (CSR) matrices of featurized texts: the trainer's input format.
 */

import { featurize, type SparseFeatures, type TextFeaturizerSpec } from "../featurizer/text";

/** Rows of sparse features in CSR layout. Row i spans `ids/values[rowPtr[i] .. rowPtr[i+1])`. */
export interface SparseMatrix {
  rows: number;
  /** Number of columns (the featurizer's bucket count). */
  cols: number;
  rowPtr: Int32Array;
  ids: Int32Array;
  values: Float32Array;
}

/** Builds a CSR matrix from already-featurized rows. */
export function sparseFromRows(rows: readonly SparseFeatures[], cols: number): SparseMatrix {
  const rowPtr = new Int32Array(rows.length + 1);
  let nnz = 0;
  for (let i = 0; i < rows.length; i++) {
    nnz += (rows[i] as SparseFeatures).ids.length;
    rowPtr[i + 1] = nnz;
  }
  const ids = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as SparseFeatures;
    ids.set(r.ids, rowPtr[i] as number);
    values.set(r.values, rowPtr[i] as number);
  }
  return { rows: rows.length, cols, rowPtr, ids, values };
}

/** Featurizes `texts` with `spec` into a CSR matrix (one row per text, same order). */
export function featurizeTexts(texts: readonly string[], spec: TextFeaturizerSpec): SparseMatrix {
  return sparseFromRows(
    texts.map((t) => featurize(t, spec)),
    spec.buckets,
  );
}

/**
 * A copy of `m` whose values in the columns `masked` are 0 (issue #28's `--mask-identity`: a model
 * fitted without the identity n-grams; the featurizer's normalization is left as it is at serving).
 */
export function maskColumns(m: SparseMatrix, masked: ReadonlySet<number>): SparseMatrix {
  return maskPerRow(m, () => masked);
}

/** A copy of `m` whose values in row i's columns `masked(i)` are 0 (per row; `maskColumns` for all rows). */
export function maskPerRow(m: SparseMatrix, masked: (row: number) => ReadonlySet<number>): SparseMatrix {
  const values = Float32Array.from(m.values);
  for (let i = 0; i < m.rows; i++) {
    const set = masked(i);
    if (set.size === 0) continue;
    for (let j = m.rowPtr[i] as number; j < (m.rowPtr[i + 1] as number); j++)
      if (set.has(m.ids[j] as number)) values[j] = 0;
  }
  return { ...m, values };
}

/** Row `i` of `m` as a `SparseFeatures` view (no copy). */
export function sparseRow(m: SparseMatrix, i: number): SparseFeatures {
  const s = m.rowPtr[i] as number;
  const e = m.rowPtr[i + 1] as number;
  return { ids: m.ids.subarray(s, e), values: m.values.subarray(s, e) };
}

/** The rows `rows` of `m`, in that order, as a new CSR matrix (cross-validation folds of one featurizing). */
export function sparseRows(m: SparseMatrix, rows: readonly number[]): SparseMatrix {
  return sparseFromRows(
    rows.map((r) => sparseRow(m, r)),
    m.cols,
  );
}
