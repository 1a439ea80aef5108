/**
 * Weight statistics per layer: histogram, sparsity at a threshold, norms and singular values
 * (float64 Jacobi on the smaller Gram side of the weight viewed as `out × (in·kh·kw)`, the view
 * SVB regularization uses; Jia et al. 2017, "Improving training of deep neural networks via
 * singular value bounding").
 *
 * @module
 */

import type { Param } from "../layers/layer.ts";
import { histogram, meanStd } from "./_common.ts";
import { singularValues } from "./_linalg.ts";

/** Statistics of one parameter tensor. */
export interface WeightStats {
  name: string;
  shape: number[];
  count: number;
  mean: number;
  std: number;
  /** Σ|w|, sqrt(Σw²), max|w|. */
  l1: number;
  l2: number;
  maxAbs: number;
  /** Fraction of entries with |w| <= threshold. */
  sparsity: number;
  threshold: number;
  histogram: { edges: number[]; counts: number[] };
  /** Singular values of the (out, rest) view, descending; absent for vectors or huge matrices. */
  singularValues?: number[];
  /** Largest singular value (operator 2-norm) and the ratio largest / smallest. */
  spectralNorm?: number;
  condition?: number;
}

/** Options of {@linkcode weightStats}. */
export interface WeightStatsOptions {
  /** |w| at or below this counts as zero. Default 1e-3. */
  threshold?: number;
  /** Histogram bins. Default 50. */
  bins?: number;
  /** Include biases. Default false. */
  biases?: boolean;
  /** Skip singular values when min(out, rest) exceeds this (CPU cost ~ n³). Default 512. */
  maxSvdSize?: number;
}

/**
 * Statistics of every weight tensor (biases optional, buffers never).
 * @param params the model's parameters (`model.params()`); values are read back
 * @param opts threshold, bins, biases, maxSvdSize
 * @returns one entry per tensor, in parameter order
 */
export async function weightStats(
  params: readonly Param[],
  opts: WeightStatsOptions = {},
): Promise<WeightStats[]> {
  const thr = opts.threshold ?? 1e-3;
  const out: WeightStats[] = [];
  for (const p of params) {
    if (p.kind === "buffer" || (p.kind === "bias" && !opts.biases)) continue;
    if (p.value.dtype !== "f32") continue;
    const w = (await p.value.read()) as Float32Array;
    const shape = [...p.value.shape];
    let l1 = 0, l2 = 0, maxAbs = 0, zeros = 0;
    for (const v of w) {
      const a = Math.abs(v);
      l1 += a;
      l2 += v * v;
      if (a > maxAbs) maxAbs = a;
      if (a <= thr) zeros++;
    }
    const { mean, std } = meanStd(w);
    const s: WeightStats = {
      name: p.name,
      shape,
      count: w.length,
      mean,
      std,
      l1,
      l2: Math.sqrt(l2),
      maxAbs,
      sparsity: w.length ? zeros / w.length : 0,
      threshold: thr,
      histogram: histogram(w, opts.bins ?? 50),
    };
    if (shape.length >= 2 && !p.elementwise) {
      const m = shape[0], n = w.length / m;
      if (Math.min(m, n) <= (opts.maxSvdSize ?? 512)) {
        const sv = Array.from(singularValues(w, m, n));
        s.singularValues = sv;
        s.spectralNorm = sv[0];
        s.condition = sv[sv.length - 1] > 0 ? sv[0] / sv[sv.length - 1] : Infinity;
      }
    }
    out.push(s);
  }
  return out;
}
