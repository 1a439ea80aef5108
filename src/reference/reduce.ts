/**
 * Float64 CPU references of `src/ops/reduce.ts`: reductions, arg-reductions
 * and softmax along one axis of a row-major tensor, or over all of it.
 *
 * @module
 */

import type { ReduceOp } from "../ops/reduce.ts";

/** (outer, len, inner) of `shape` around `axis` (negative counts from the end). */
export function splitAxis(
  shape: readonly number[],
  axis: number,
): { outer: number; len: number; inner: number } {
  const a = axis < 0 ? axis + shape.length : axis;
  let outer = 1, inner = 1;
  for (let d = 0; d < a; d++) outer *= shape[d];
  for (let d = a + 1; d < shape.length; d++) inner *= shape[d];
  return { outer, len: shape[a], inner };
}

function fold(op: ReduceOp, vals: number[]): number {
  switch (op) {
    case "sum":
      return vals.reduce((s, v) => s + v, 0);
    case "sumsq":
      return vals.reduce((s, v) => s + v * v, 0);
    case "sumabs":
      return vals.reduce((s, v) => s + Math.abs(v), 0);
    case "mean":
      return vals.reduce((s, v) => s + v, 0) / vals.length;
    case "max":
      return vals.reduce(
        (m, v) => (Number.isNaN(m) || v > m || Number.isNaN(v) ? v : m),
        -Infinity,
      );
    case "min":
      return vals.reduce((m, v) => (Number.isNaN(m) || v < m || Number.isNaN(v) ? v : m), Infinity);
  }
}

/**
 * Reduces `x` along `axis`, or over everything when `axis` is undefined.
 * @param x values of shape `shape`
 * @returns float64 results in row-major order of the output shape
 */
export function reduceRef(
  op: ReduceOp,
  x: ArrayLike<number>,
  shape: readonly number[],
  axis?: number,
): Float64Array {
  if (axis === undefined) return Float64Array.of(fold(op, Array.from(x)));
  const { outer, len, inner } = splitAxis(shape, axis);
  const y = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const vals: number[] = [];
      for (let l = 0; l < len; l++) vals.push(x[(o * len + l) * inner + k]);
      y[o * inner + k] = fold(op, vals);
    }
  }
  return y;
}

/**
 * Index of the largest (`sign` 1) or smallest (`sign` -1) element along `axis`, the first on
 * ties and the first NaN if any (torch.argmax / torch.argmin).
 */
export function argRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  axis: number,
  sign: 1 | -1 = 1,
): Uint32Array {
  const { outer, len, inner } = splitAxis(shape, axis);
  const y = new Uint32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      let best = 0;
      for (let l = 0; l < len; l++) {
        const v = x[(o * len + l) * inner + k];
        const b = x[(o * len + best) * inner + k];
        if (Number.isNaN(b)) break;
        if (Number.isNaN(v) || sign * v > sign * b) best = l;
      }
      y[o * inner + k] = best;
    }
  }
  return y;
}

/** Softmax (or log-softmax) along `axis` in float64, max-subtracted. */
export function softmaxRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  axis = -1,
  log = false,
): Float64Array {
  const { outer, len, inner } = splitAxis(shape, axis);
  const y = new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const at = (l: number) => (o * len + l) * inner + k;
      let m = -Infinity;
      for (let l = 0; l < len; l++) m = Math.max(m, x[at(l)]);
      let s = 0;
      for (let l = 0; l < len; l++) s += Math.exp(x[at(l)] - m);
      for (let l = 0; l < len; l++) {
        const d = x[at(l)] - m;
        y[at(l)] = log ? d - Math.log(s) : Math.exp(d) / s;
      }
    }
  }
  return y;
}
