/**
 * What the metrics need of a model and of a data set, and the batching they share.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";

/**
 * A classifier as the metrics use it: `forward`, `inputGrad` (`Jᵀ dy` at the last forward's
 * input, see `Sequential.inputGrad`) and the mode flag. `Sequential` and src/models' `Model`
 * satisfy it.
 */
export interface MetricModel {
  /** @param x (B, ...) f32; @returns logits (B, K), owned by the model */
  forward(x: Tensor): Tensor;
  /** @param dy (B, K) f32; @returns dx (B, ...), owned by the model */
  inputGrad(dy: Tensor): Tensor;
  /** Training mode flag (metrics set it to false and restore it). */
  training: boolean;
}

/** Samples on the CPU: `x` holds `length` samples of `sampleShape`, labels in `y`. */
export interface Samples {
  /** (N, ...sampleShape) f32, inputs in [0, 1]. */
  x: Float32Array;
  /** (N,) labels in [0, classes). */
  y?: Int32Array | Uint32Array;
  /** Per-sample shape, e.g. [1, 28, 28] or [2]. */
  sampleShape: readonly number[];
  /** Number of samples N (default `x.length / prod(sampleShape)`). */
  length?: number;
}

/** Size of one sample. */
export function sampleSizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Number of samples of `s`, checking that `x` (and `y`) fit. */
export function countSamples(op: string, s: Samples): number {
  const d = sampleSizeOf(s.sampleShape);
  if (d === 0) throw new Error(`${op}: empty sample shape [${s.sampleShape}]`);
  const n = s.length ?? s.x.length / d;
  if (!Number.isInteger(n) || s.x.length < n * d) {
    throw new Error(
      `${op}: ${s.x.length} input values do not hold ${s.length ?? "a whole number of"} ` +
        `samples of shape [${s.sampleShape}]`,
    );
  }
  if (s.y && s.y.length < n) {
    throw new Error(`${op}: ${s.y.length} labels for ${n} samples`);
  }
  return n;
}

/** Runs `body` with the model in eval mode, restoring its mode afterwards (also on error). */
export async function inEval<T>(model: MetricModel, body: () => Promise<T>): Promise<T> {
  const was = model.training;
  model.training = false;
  try {
    return await body();
  } finally {
    model.training = was;
  }
}

/**
 * Uploads the samples batch by batch and calls `body` with each (tensors are freed after it).
 * @param rt runtime
 * @param s samples
 * @param batchSize samples per batch
 * @param body gets `x` (B, ...) f32, `y` (B,) u32 or null, the first index and the count
 */
export async function forBatches(
  rt: Backend,
  s: Samples,
  batchSize: number,
  body: (x: Tensor, y: Tensor | null, start: number, count: number) => Promise<void> | void,
  op = "metrics",
): Promise<void> {
  const n = countSamples(op, s);
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new Error(`${op}: batchSize must be a positive integer, got ${batchSize}`);
  }
  const d = sampleSizeOf(s.sampleShape);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const x = rt.upload(s.x.subarray(start * d, (start + count) * d), [count, ...s.sampleShape]);
    const y = s.y ? rt.upload(Uint32Array.from(s.y.subarray(start, start + count)), [count]) : null;
    try {
      await body(x, y, start, count);
    } finally {
      x.dispose();
      y?.dispose();
    }
  }
}

/** Mean, sample standard deviation and standard error of the mean of `v`. */
export function meanStd(v: ArrayLike<number>): { mean: number; std: number; se: number } {
  const n = v.length;
  if (n === 0) return { mean: NaN, std: NaN, se: NaN };
  let m = 0;
  for (let i = 0; i < n; i++) m += v[i];
  m /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (v[i] - m) ** 2;
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  return { mean: m, std, se: n > 1 ? std / Math.sqrt(n) : 0 };
}

/** Quantile `q` in [0, 1] of `sorted` (ascending) by linear interpolation (numpy's default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = q * (n - 1);
  const lo = Math.floor(pos), hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Equal-width histogram of `v` over [lo, hi] (values outside are clamped into the end bins). */
export function histogram(
  v: ArrayLike<number>,
  bins: number,
  lo?: number,
  hi?: number,
): { edges: number[]; counts: number[] } {
  let a = lo ?? Infinity, b = hi ?? -Infinity;
  if (lo === undefined || hi === undefined) {
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i])) continue;
      if (lo === undefined) a = Math.min(a, v[i]);
      if (hi === undefined) b = Math.max(b, v[i]);
    }
  }
  if (!Number.isFinite(a) || !Number.isFinite(b)) a = b = 0;
  if (b <= a) b = a + 1;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) continue;
    const k = Math.min(bins - 1, Math.max(0, Math.floor(((v[i] - a) / (b - a)) * bins)));
    counts[k]++;
  }
  const edges = Array.from({ length: bins + 1 }, (_, i) => a + ((b - a) * i) / bins);
  return { edges, counts };
}
