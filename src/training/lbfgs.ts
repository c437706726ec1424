/**
 * Limited-memory BFGS for smooth unconstrained minimisation (full batch), with a backtracking
 * Armijo line search. Deterministic: no randomness, fixed iteration order.
 */

/** Evaluates the objective at `x`, writing its gradient into `grad`; returns the value. */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

/** L-BFGS settings. */
export interface LbfgsOptions {
  /** Number of correction pairs kept (memory = 2·m·x.length doubles). */
  memory: number;
  /** Maximum number of iterations. */
  maxIterations: number;
  /** Stop when max |grad_i| ≤ this. */
  gradientTolerance: number;
  /** Stop when the relative decrease of the objective over one iteration is ≤ this. */
  relativeTolerance: number;
  /** Called after every iteration (progress reporting). */
  onIteration?: (iteration: number, value: number) => void;
}

/** Outcome of a minimisation. */
export interface LbfgsResult {
  value: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/** Minimises `f` starting from `x` (updated in place). */
export function minimizeLbfgs(f: Objective, x: Float64Array, options: LbfgsOptions): LbfgsResult {
  const n = x.length;
  const m = Math.max(1, options.memory);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(m);
  let g = new Float64Array(n);
  let gNew = new Float64Array(n);
  const d = new Float64Array(n);
  const xNew = new Float64Array(n);
  let fx = f(x, g);
  let evaluations = 1;
  let iterations = 0;
  let converged = false;
  let smallSteps = 0;

  const maxAbs = (v: Float64Array): number => {
    let mx = 0;
    for (let i = 0; i < v.length; i++) mx = Math.max(mx, Math.abs(v[i] as number));
    return mx;
  };

  while (iterations < options.maxIterations) {
    if (maxAbs(g) <= options.gradientTolerance) {
      converged = true;
      break;
    }
    // Two-loop recursion: d = -H·g.
    for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
    const k = S.length;
    for (let j = k - 1; j >= 0; j--) {
      const a = (rho[j] as number) * dot(S[j] as Float64Array, d);
      alpha[j] = a;
      const y = Y[j] as Float64Array;
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) - a * (y[i] as number);
    }
    let step = 1;
    if (k > 0) {
      const sLast = S[k - 1] as Float64Array;
      const yLast = Y[k - 1] as Float64Array;
      const gamma = dot(sLast, yLast) / dot(yLast, yLast);
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) * gamma;
    } else {
      step = 1 / Math.max(1, Math.sqrt(dot(g, g)));
    }
    for (let j = 0; j < k; j++) {
      const b = (rho[j] as number) * dot(Y[j] as Float64Array, d);
      const s = S[j] as Float64Array;
      const a = alpha[j] as number;
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) + (a - b) * (s[i] as number);
    }
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      S.length = 0;
      Y.length = 0;
      rho.length = 0;
      for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
      slope = -dot(g, g);
      step = 1 / Math.max(1, Math.sqrt(-slope));
    }
    // Backtracking Armijo line search.
    let fNew = Number.POSITIVE_INFINITY;
    let accepted = false;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < n; i++) xNew[i] = (x[i] as number) + step * (d[i] as number);
      fNew = f(xNew, gNew);
      evaluations++;
      if (Number.isFinite(fNew) && fNew <= fx + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    iterations++;
    if (!accepted) break;
    // Correction pair.
    const s = S.length === m ? (S.shift() as Float64Array) : new Float64Array(n);
    const y = Y.length === m ? (Y.shift() as Float64Array) : new Float64Array(n);
    if (rho.length === m) rho.shift();
    for (let i = 0; i < n; i++) {
      s[i] = (xNew[i] as number) - (x[i] as number);
      y[i] = (gNew[i] as number) - (g[i] as number);
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    x.set(xNew);
    const tmp = g;
    g = gNew;
    gNew = tmp;
    const decrease = (fx - fNew) / Math.max(Math.abs(fx), Math.abs(fNew), 1e-12);
    fx = fNew;
    options.onIteration?.(iterations, fx);
    smallSteps = decrease <= options.relativeTolerance ? smallSteps + 1 : 0;
    if (smallSteps >= 3) {
      converged = true;
      break;
    }
  }
  return { value: fx, iterations, evaluations, converged };
}
