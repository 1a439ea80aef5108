/**
 * Float64 CPU reference of {@linkcode import("../ops/matmul.ts").matmul}, with
 * the same options and shape rules: plain loops, no blocking, no reordering
 * tricks, so that it is obviously right.
 *
 * @module
 */

import type { MatmulActivation } from "../ops/matmul.ts";

/** Options of {@linkcode matmulRef} (those of `matmul`, with host arrays). */
export interface MatmulRefOptions {
  /** A is stored (K, M). */
  transA?: boolean;
  /** B is stored (N, K). */
  transB?: boolean;
  /** Default 1. */
  alpha?: number;
  /** Default 0. */
  beta?: number;
  /** (N,) */
  bias?: ArrayLike<number>;
  /** Default "none". */
  activation?: MatmulActivation;
  /** Default 0.01. */
  slope?: number;
  /** Previous C, (M, N) or (batch, M, N); required when beta != 0. */
  cOld?: ArrayLike<number>;
}

/** `act(v)` in float64, as the matmul epilogue defines it. */
export function activationRef(v: number, activation: MatmulActivation, slope = 0.01): number {
  switch (activation) {
    case "relu":
      return Math.max(v, 0);
    case "tanh":
      return Math.tanh(v);
    case "sigmoid":
      return 1 / (1 + Math.exp(-v));
    case "leaky_relu":
      return v >= 0 ? v : slope * v;
    default:
      return v;
  }
}

/**
 * `C = act(alpha · op(A) op(B) + bias + beta · C_old)` in float64.
 * @param a (M, K) | (K, M) | (batch, M, K) | (batch, K, M) row-major values
 * @param aShape shape of `a`
 * @param b (K, N) | (N, K) | (batch, K, N) | (batch, N, K) row-major values
 * @param bShape shape of `b`
 * @param opts as for `matmul`
 * @returns C (row-major) and its shape, (M, N) or (batch, M, N)
 */
export function matmulRef(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  opts: MatmulRefOptions = {},
): { data: Float64Array; shape: number[] } {
  const { transA = false, transB = false, alpha = 1, beta = 0, bias, cOld } = opts;
  const activation = opts.activation ?? "none";
  const slope = opts.slope ?? 0.01;
  const [a0, a1] = aShape.slice(-2);
  const [b0, b1] = bShape.slice(-2);
  const [m, k] = transA ? [a1, a0] : [a0, a1];
  const [kb, n] = transB ? [b1, b0] : [b0, b1];
  if (k !== kb) throw new Error(`matmulRef: K differs (${k} vs ${kb})`);
  const batchA = aShape.length === 3 ? aShape[0] : 0;
  const batchB = bShape.length === 3 ? bShape[0] : 0;
  const batch = Math.max(batchA, batchB, 1);
  const batched = aShape.length === 3 || bShape.length === 3;
  const out = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const oa = batchA ? z * m * k : 0;
    const ob = batchB ? z * k * n : 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const x = a[oa + (transA ? p * m + i : i * k + p)];
          const y = b[ob + (transB ? j * k + p : p * n + j)];
          s += x * y;
        }
        const at = (z * m + i) * n + j;
        let v = alpha * s + (bias ? bias[j] : 0);
        if (beta !== 0) v += beta * cOld![at];
        out[at] = activationRef(v, activation, slope);
      }
    }
  }
  return { data: out, shape: batched ? [batch, m, n] : [m, n] };
}
