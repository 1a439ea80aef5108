/**
 * Projections applied to the weights after the optimizer step: hard SVB (singular value
 * bounding) and the max-norm constraint, as pure functions over GPU buffers (in place) and as
 * {@linkcode Regularizer} factories for `train` (their `afterStep` hook).
 *
 * Both act on the weights of Linear and Conv2d layers only (`kind: "weight"`, two or more
 * dimensions), a conv weight (out, in, kh, kw) read as the matrix (out, in·kh·kw).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Param } from "../layers/layer.ts";
import { clipSingularValues, type JacobiOptions } from "../linalg/svd.ts";
import type { Regularizer, StepContext } from "../hooks/step.ts";
import { asMatrix, checkCoef, KERNELS, launch, selectParams } from "./_params.ts";

/** Options of {@linkcode hardSvb}. */
export interface HardSvbOptions extends JacobiOptions {
  /** ε: singular values are clipped to [1/(1+ε), 1+ε]. Default 0.5. */
  eps?: number;
}

/**
 * Hard singular value bounding (Jia, Tao, Gao & Xu 2017, "Improving training of deep neural
 * networks via singular value bounding", CVPR, alg. 1): for every weight matrix W (conv weights
 * as (out, in·kh·kw)), `W ← U clip(Σ, 1/(1+ε), 1+ε) Vᵀ`. The SVD is one-sided Jacobi on the GPU
 * (src/linalg/svd.ts); singular values already inside the band leave W exactly unchanged.
 * @param rt runtime
 * @param params a model's `params()` (weights with ≥ 2 dimensions are projected in place)
 * @param opts eps (default 0.5), maxSweeps, tol
 * @throws Error for ε < 0
 * @example
 * ```ts
 * import { buildModel, hardSvb, modelSpecFromName, Runtime, weightStats } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * hardSvb(rt, model.params(), { eps: 0.5 });
 * const stats = await weightStats(model.params());
 * console.log(stats.map((s) => [s.name, Math.max(...s.singularValues!)])); // each <= 1.5
 * model.dispose();
 * ```
 */
export function hardSvb(rt: Backend, params: readonly Param[], opts: HardSvbOptions = {}): void {
  const eps = opts.eps ?? 0.5;
  checkCoef("hardSvb", "eps", eps);
  for (const p of selectParams(params, {}, true)) {
    clipSingularValues(rt, p.value, 1 / (1 + eps), 1 + eps, opts);
  }
}

/**
 * Max-norm constraint (Srivastava et al. 2014, "Dropout: a simple way to prevent neural networks
 * from overfitting", JMLR 15, sec. 5.1): every output unit's incoming weight vector (a row of
 * W, a whole filter of a conv) is rescaled to norm c when longer:
 * `w_i ← w_i · c / (||w_i|| + 1e-7)` if `||w_i|| > c` (the scale of `torch.renorm`).
 * @param rt runtime
 * @param params a model's `params()` (weights with ≥ 2 dimensions are projected in place)
 * @param opts c, the largest norm (> 0)
 */
export function maxNorm(rt: Backend, params: readonly Param[], opts: { c: number }): void {
  checkCoef("maxNorm", "c", opts.c, true);
  for (const p of selectParams(params, {}, true)) {
    const w = asMatrix(p.value);
    const [m, k] = w.shape;
    launch(rt, KERNELS.maxNorm, { out: w }, { m, k, c1: opts.c }, rt.grid(m, 1));
  }
}

/** Options of {@linkcode hardSvbRegularizer}. */
export interface HardSvbRegularizerOptions {
  /** ε, band [1/(1+ε), 1+ε]. Default 0.5. */
  eps?: number;
  /** Project after every T optimizer steps; "epoch" (default) = the steps of one epoch. */
  every?: number | "epoch";
  /** Jacobi sweeps recorded per SVD (see src/linalg/svd.ts). Default 12. */
  sweeps?: number;
}

/**
 * Hard SVB for `train`: after optimizer step t (from 0), when (t + 1) is a multiple of T, every
 * weight matrix gets its singular values clipped to [1/(1+ε), 1+ε] (see {@linkcode hardSvb}).
 * Jia et al. 2017 project every T iterations with ε small (0.05 in the seed study, with T = 600
 * steps and orthogonal init); ε = 0.5 every epoch is a gentler default.
 * @param opts eps (0.5), every ("epoch"), sweeps (12)
 * @returns a Regularizer named "hard-svb"
 */
export function hardSvbRegularizer(opts: HardSvbRegularizerOptions = {}): Regularizer {
  const eps = opts.eps ?? 0.5;
  const every = opts.every ?? "epoch";
  const sweeps = opts.sweeps ?? 12;
  checkCoef("hardSvbRegularizer", "eps", eps);
  if (every !== "epoch" && !(Number.isInteger(every) && every >= 1)) {
    throw new Error(
      `hardSvbRegularizer: every must be a positive integer or "epoch", got ${every}`,
    );
  }
  if (!(Number.isInteger(sweeps) && sweeps >= 1)) {
    throw new Error(`hardSvbRegularizer: sweeps must be a positive integer, got ${sweeps}`);
  }
  return {
    name: "hard-svb",
    options: { eps, every, sweeps },
    afterStep(ctx: StepContext): void {
      const t = every === "epoch" ? Math.max(1, ctx.stepsPerEpoch) : every;
      if ((ctx.step + 1) % t !== 0) return;
      hardSvb(ctx.rt, ctx.params, { eps, maxSweeps: sweeps });
    },
  };
}

/**
 * Max-norm constraint for `train`, after every optimizer step (see {@linkcode maxNorm}).
 * @param opts c (default 3: Srivastava et al. 2014 report c between 3 and 4)
 * @returns a Regularizer named "max-norm"
 */
export function maxNormRegularizer(opts: { c?: number } = {}): Regularizer {
  const c = opts.c ?? 3;
  checkCoef("maxNormRegularizer", "c", c, true);
  return {
    name: "max-norm",
    options: { c },
    afterStep(ctx: StepContext): void {
      maxNorm(ctx.rt, ctx.params, { c });
    },
  };
}
