/**
 * The held-out split rule shared by `npm run train` and the Worker's training jobs: data row `i`
 * (0-based, in file order, header excluded) is a TEST row iff `i % 5 == 4`.
 */
export const isTestRow = (i: number): boolean => i % 5 === 4;
