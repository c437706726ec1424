/**
 * Deterministic pseudo-random numbers for training (shuffling, sampling). SplitMix32-style mixing of
 * a 32-bit counter: same seed → same sequence on every runtime (Node, workerd, browsers), unlike
 * `Math.random`.
 */

/** A seeded generator. */
export interface Rng {
  /** Next uniform float in [0, 1) with 32 bits of randomness. */
  next(): number;
  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number;
  /** Uniform integer in [0, n) (n ≥ 1). */
  nextInt(n: number): number;
}

/** Creates a generator from a 32-bit seed (any number; only its low 32 bits are used). */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const nextUint32 = (): number => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  };
  return {
    nextUint32,
    next: () => nextUint32() / 0x100000000,
    nextInt: (n) => Math.floor((nextUint32() / 0x100000000) * n),
  };
}

/** Fisher–Yates shuffle in place, driven by `rng`. Returns `array`. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(array: T, rng: Rng): T {
  for (let i = array.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const tmp = array[i];
    array[i] = array[j];
    array[j] = tmp;
  }
  return array;
}
