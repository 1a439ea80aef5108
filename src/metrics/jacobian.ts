/**
 * Frobenius norm of the input–output Jacobian `J = ∂z/∂x` (logits `z`, C classes) per sample,
 * over a data set: exact, from the C rows `e_cᵀ J` (C input-gradient passes after one forward),
 * or estimated with `nproj` random unit vectors `v` (Hoffman, Roberts & Yaida 2019, "Robust
 * learning with Jacobian regularization", eq. 6: `‖J‖_F² ≈ (C / nproj) Σ_μ ‖v_μᵀ J‖²`, `v_μ`
 * uniform on the unit sphere of R^C). The squared row norms are summed on the GPU
 * (shaders/metrics.wgsl `sumsq_rows`); one read-back per batch.
 *
 * @module
 */

import { fittingBatchSize } from "../layers/memory.ts";
import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { randomNormal } from "../init/philox.ts";
import { runMetricsKernel } from "./_kernels.ts";
import {
  forBatches,
  inEval,
  meanStd,
  type MetricModel,
  quantile,
  type Samples,
  sampleSizeOf,
} from "./_common.ts";

/** Options of {@linkcode jacobianFrobenius}. */
export interface JacobianNormOptions {
  /** Random projections; -1 (default) = exact, C passes. */
  nproj?: number;
  /** Seed of the random projections. Default 0. */
  seed?: number;
  /** Samples per pass. Default 250. */
  batchSize?: number;
}

/**
 * Squared Frobenius norm of each sample's Jacobian for one batch, on the GPU.
 * @param rt runtime
 * @param model classifier; must be in the mode wanted (the caller sets eval)
 * @param x (B, ...) f32 inputs
 * @param opts `nproj` (-1 exact), `seed`, `stream` (random stream of this batch), `out`
 * @returns (B,) f32 `‖J(x_b)‖_F²` (exact) or its estimate; `out` or a new tensor the caller
 *   disposes
 */
export function jacobianFrobeniusSq(
  rt: Backend,
  model: MetricModel,
  x: Tensor,
  opts: { nproj?: number; seed?: number; stream?: number; out?: Tensor } = {},
): Tensor {
  const b = x.shape[0], d = x.size / b;
  const nproj = opts.nproj ?? -1;
  if (!(nproj === -1 || (Number.isInteger(nproj) && nproj >= 1))) {
    throw new Error(
      `jacobianFrobenius: nproj must be -1 (exact) or a positive integer, got ${nproj}`,
    );
  }
  const logits = model.forward(x);
  if (logits.shape.length !== 2 || logits.shape[0] !== b) {
    throw new Error(`jacobianFrobenius: model output ${logits.describe()} is not (${b}, C)`);
  }
  const c = logits.shape[1];
  const acc = opts.out ?? rt.empty([b], "f32", "jacobian norm^2");
  rt.fill0(acc);
  const dy = rt.empty([b, c], "f32", "jacobian seed");
  const passes = nproj === -1 ? c : nproj;
  for (let k = 0; k < passes; k++) {
    if (nproj === -1) {
      runMetricsKernel(rt, "onehot", { y: dy }, { n: b, k: c, cls: k }, b * c);
    } else {
      // Unit vectors from seeded float64 Gaussians, one stream per (batch, projection).
      const g = randomNormal(b * c, {
        seed: opts.seed ?? 0,
        stream: ((opts.stream ?? 0) * 4096 + k) % 2 ** 32,
      });
      const v = new Float32Array(b * c);
      for (let i = 0; i < b; i++) {
        let s = 0;
        for (let j = 0; j < c; j++) s += g[i * c + j] ** 2;
        const inv = 1 / Math.sqrt(s);
        for (let j = 0; j < c; j++) v[i * c + j] = g[i * c + j] * inv;
      }
      rt.write(dy, v);
    }
    const gx = model.inputGrad(dy);
    runMetricsKernel(
      rt,
      "sumsq_rows",
      { xa: gx, y: acc },
      { n: b, d, scale: nproj === -1 ? 1 : c / nproj },
      b,
    );
  }
  rt.submit();
  dy.dispose();
  return acc;
}

/** Jacobian norms over a data set. */
export interface JacobianNormStats {
  /** (N,) per-sample `‖J‖_F` (exact or estimated). */
  norms: Float64Array;
  /** Mean of `norms`. */
  mean: number;
  /** Sample standard deviation of `norms`. */
  std: number;
  /** Standard error of the mean. */
  se: number;
  /** Median and the 5 % / 95 % quantiles. */
  median: number;
  q05: number;
  q95: number;
  /** Root mean square `sqrt(mean ‖J‖_F²)` (what Jacobian regularization penalises). */
  rms: number;
  /** True when computed exactly (all C rows). */
  exact: boolean;
}

/**
 * Per-sample Jacobian Frobenius norms over a data set (eval mode), exact or estimated.
 * @param rt runtime
 * @param model classifier taking inputs in [0, 1]
 * @param data samples (labels unused)
 * @param opts `nproj` (-1 exact, the default), `seed`, `batchSize`
 * @returns norms and their distribution (CPU numbers)
 * @example
 * ```ts
 * import { buildModel, jacobianFrobenius, modelSpecFromName, Runtime } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("lenet"), { seed: 0 });
 * const x = new Float32Array(8 * 28 * 28).fill(0.5); // 8 samples in [0, 1]
 * const { mean, se } = await jacobianFrobenius(rt, model, { x, sampleShape: [1, 28, 28] });
 * console.log(`||J||_F = ${mean} ± ${se}`);
 * model.dispose();
 * ```
 */
export function jacobianFrobenius(
  rt: Backend,
  model: MetricModel,
  data: Samples,
  opts: JacobianNormOptions = {},
): Promise<JacobianNormStats> {
  return inEval(model, async () => {
    const d = sampleSizeOf(data.sampleShape);
    const n = data.length ?? data.x.length / d;
    const norms = new Float64Array(n);
    let batch = 0;
    await forBatches(
      rt,
      { ...data, y: undefined },
      opts.batchSize ??
        fittingBatchSize(rt, model, data.sampleShape, 250, { backward: true }),
      async (x, _y, start) => {
        const sq = jacobianFrobeniusSq(rt, model, x, {
          nproj: opts.nproj,
          seed: opts.seed,
          stream: batch++,
        });
        const v = await sq.read();
        sq.dispose();
        for (let i = 0; i < v.length; i++) norms[start + i] = Math.sqrt(Math.max(0, v[i]));
      },
      "jacobianFrobenius",
    );
    const sorted = Float64Array.from(norms).sort();
    const { mean, std, se } = meanStd(norms);
    let ms = 0;
    for (const v of norms) ms += v * v;
    return {
      norms,
      mean,
      std,
      se,
      median: quantile(sorted, 0.5),
      q05: quantile(sorted, 0.05),
      q95: quantile(sorted, 0.95),
      rms: Math.sqrt(ms / Math.max(1, n)),
      exact: (opts.nproj ?? -1) === -1,
    };
  });
}
