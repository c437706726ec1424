/**
 * ONNX Runtime graph optimization levels, and whether a graph computes the same at the level the
 * Worker uses as with optimizations disabled. ORT's optimizer rewrites graphs (fuses nodes, folds
 * constants); a rewrite that is wrong for a graph changes its answers silently — e.g. a zero `Pad`
 * fused into a following `MaxPool`, which pads with −∞ (onnxruntime 1.30, basic level and up). The
 * upload validation (src/registry/validate.ts) runs the probe inputs at each level, highest first,
 * and keeps the highest whose outputs agree with `disabled`; the manifest records it
 * (`graph_optimization_level`) and the engine creates sessions at that level.
 */
import { OPTIMIZATION_LEVELS, type OptimizationLevel } from "../contracts/manifest";

/**
 * Agreement tolerance: float outputs agree when `|a − b| ≤ ABS + REL·|b|` element-wise (fused
 * kernels reorder float arithmetic: differences of ~1e-6 are expected, a miscomputation is orders
 * larger); NaN agrees only with NaN, ±∞ only with itself; integer, boolean and string outputs must
 * be equal.
 */
export const AGREEMENT_TOLERANCE = { abs: 1e-4, rel: 1e-3 } as const;

/** An output tensor copied out of ORT (so the session that produced it can be released). */
export interface CapturedOutput {
  name: string;
  type: string;
  dims: number[];
  data: ArrayLike<number | bigint | string | boolean>;
}

/** Copies every output of a run. */
export function captureOutputs(
  outputs: Record<string, { type: string; dims: readonly number[]; data: unknown }>,
): CapturedOutput[] {
  return Object.entries(outputs).map(([name, tensor]) => {
    const data = tensor.data as ArrayLike<number | bigint | string | boolean>;
    return { name, type: tensor.type, dims: [...tensor.dims], data: Array.from(data) };
  });
}

/** How two runs' outputs differ: the first disagreement found, with the largest float difference. */
export interface Disagreement {
  output: string;
  /** What differs, in words. */
  detail: string;
  /** Largest |a − b| over float elements of that output (NaN/∞ mismatches count as Infinity). */
  max_abs_diff: number;
}

/**
 * Compares `actual` with the reference `expected` (same names); undefined when they agree within
 * `AGREEMENT_TOLERANCE`.
 */
export function compareOutputs(
  expected: readonly CapturedOutput[],
  actual: readonly CapturedOutput[],
): Disagreement | undefined {
  for (const want of expected) {
    const got = actual.find((o) => o.name === want.name);
    if (!got) return { output: want.name, detail: "missing", max_abs_diff: Number.POSITIVE_INFINITY };
    if (got.type !== want.type || got.dims.join(",") !== want.dims.join(",")) {
      return {
        output: want.name,
        detail: `${got.type} [${got.dims.join(", ")}] instead of ${want.type} [${want.dims.join(", ")}]`,
        max_abs_diff: Number.POSITIVE_INFINITY,
      };
    }
    const float = want.type === "float32" || want.type === "float64" || want.type === "float16";
    let worst = 0;
    let mismatches = 0;
    for (let i = 0; i < want.data.length; i++) {
      const a = want.data[i];
      const b = got.data[i];
      if (!float) {
        if (a !== b) mismatches++;
        continue;
      }
      const x = a as number;
      const y = b as number;
      if (Number.isNaN(x) || Number.isNaN(y) || !Number.isFinite(x) || !Number.isFinite(y)) {
        if (!Object.is(x, y) && !(Number.isNaN(x) && Number.isNaN(y))) {
          mismatches++;
          worst = Number.POSITIVE_INFINITY;
        }
        continue;
      }
      const diff = Math.abs(x - y);
      if (diff > worst) worst = diff;
      if (diff > AGREEMENT_TOLERANCE.abs + AGREEMENT_TOLERANCE.rel * Math.abs(x)) mismatches++;
    }
    if (mismatches > 0) {
      return {
        output: want.name,
        detail: float
          ? `${mismatches} of ${want.data.length} elements differ (max |diff| ${worst})`
          : `${mismatches} of ${want.data.length} elements differ`,
        max_abs_diff: float ? worst : Number.POSITIVE_INFINITY,
      };
    }
  }
  return undefined;
}

/** The levels to try, highest first, from `start` down to (excluding) `disabled`. */
export function levelsFrom(start: OptimizationLevel): OptimizationLevel[] {
  return OPTIMIZATION_LEVELS.slice(OPTIMIZATION_LEVELS.indexOf(start), -1);
}
