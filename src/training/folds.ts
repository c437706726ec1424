/**
 * The split rule, in one place, shared by `npm run train` (scripts/training/), the Worker's training
 * jobs (src/jobs/run.ts) and the benches: data row `i` (0-based, in file order, header excluded)
 * belongs to part `i % 5`. Part 4 is the TEST split (scored once, for the final figure); part 3 is
 * the fixed validation fold; parts 0–3 are the folds of 4-fold cross-validation.
 */

/** The part (0–4) of data row `i`. */
export const partOf = (i: number): number => i % 5;

/** True when data row `i` is a test row (`i % 5 == 4`). */
export const isTestRow = (i: number): boolean => partOf(i) === 4;

/** True when data row `i` belongs to the fixed validation fold (`i % 5 == 3`; never a test row). */
export const isValidationRow = (i: number): boolean => partOf(i) === 3;

/**
 * The validation fold of data row `i` (file order; −1 for rows that only fit, including rows
 * without a data index): `k = 1`, the fixed fold `isValidationRow`; `k = 4`, 4-fold CV, fold
 * `i % 5` ∈ {0, 1, 2, 3}. Test rows (`i % 5 == 4`) are never in a fold.
 */
export function validationFoldOf(i: number, k: 1 | 4): number {
  if (i < 0 || isTestRow(i)) return -1;
  if (k === 1) return isValidationRow(i) ? 0 : -1;
  return partOf(i);
}
