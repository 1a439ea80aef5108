/**
 * Jacobian regularization (Hoffman, Roberts & Yaida 2019, "Robust learning with Jacobian
 * regularization", arXiv:1908.02729): penalise the Frobenius norm of the input–output Jacobian
 * `J = ∂z/∂x` of the logits, estimated by random projections. Per sample
 *
 *     R(x) = (C / nproj) Σ_μ ||v_μᵀ J(x)||²,   v_μ uniform on the unit sphere of R^C,
 *
 * an unbiased estimate of `||J||_F²` (E[v vᵀ] = I / C), drawn fresh every call; `nproj = -1` is
 * the exact norm (the C one-hot vectors). Training loss: `L = CE + (λ/2) · mean_batch R`, as in
 * the paper's algorithm 1 (`J2 += C ||Jv||² / (nproj B)`, `R = J2 / 2`, `loss = CE + λ R`).
 *
 * Unlike the seed project (which detached `Jᵀ v`, so the term never trained anything, and used
 * the number of input channels as C), the gradient here is exact: see ./_chain.ts for the
 * recipe (VJP of v, tangent pass from `∂R/∂u`, weight gradients `b ⊗ r`, σ'' injections).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import { axpy, scale } from "../ops/elementwise.ts";
import { reduce } from "../ops/reduce.ts";
import type { Regularizer, StepContext } from "../hooks/step.ts";
import { oneHot, randomUnitRows } from "./_chain.ts";
import { ChainEngine, checkWeight, EngineSlot, type PenaltyResult, runOnce } from "./_engine.ts";

export type { PenaltyResult } from "./_engine.ts";

/** Options shared by {@linkcode jacobianPenalty} and {@linkcode jacobianNorm}. */
export interface JacobianOptions {
  /** Number of random projections per sample; -1 for the exact norm (C one-hot vectors). Default 1. */
  nproj?: number;
  /** Seed of the projection stream. Default 0. */
  seed?: number;
  /** Step: substream of the projections (fresh directions every step). Default 0. */
  step?: number;
  /**
   * Given projection vectors instead of random ones: (nproj, B, C) f32, used as they are (not
   * normalised); overrides `nproj` (for tests against PyTorch with the same v).
   */
  v?: Tensor;
  /**
   * Run `model.forward(x)` first (default true). False uses the model's last forward, which must
   * have been on `x` (a training step's forward, with its dropout masks).
   */
  forward?: boolean;
}

/** Options of {@linkcode jacobianPenalty}. */
export interface JacobianPenaltyOptions extends JacobianOptions {
  /** λ: the loss term is `(λ/2) · mean_batch R`. Default 0.01 (the seed study's value). */
  lambda?: number;
  /** Add `∂/∂θ` of the loss term into the parameters' grads. Default true. */
  grad?: boolean;
}

/**
 * The reusable state of the Jacobian penalty (the chain's scratch, the projections, the outputs);
 * the pure functions build one per call, {@linkcode jacobianRegularizer} keeps one.
 */
class JacobianEngine extends ChainEngine {
  /**
   * @param top with `grad`: a (B, C) gradient at the logits whose backward is shared with the
   *   penalty's final backward (a training step's data-loss gradient), or null
   */
  run(
    model: Layer,
    x: Tensor,
    opts: JacobianPenaltyOptions,
    grad: boolean,
    top: Tensor | null = null,
  ): void {
    const rt = this.rt, op = this.op;
    const { chain, out, b, c, d } = this.begin(model, x);
    const lambda = this.lambda(opts.lambda);
    let n: number;
    const exact = !opts.v && opts.nproj === -1;
    if (opts.v) {
      const v = opts.v;
      if (v.disposed) throw new Error(`${op}: v ${v.describe()} was used after dispose()`);
      if (v.shape.length !== 3 || v.shape[1] !== b || v.shape[2] !== c || v.shape[0] < 1) {
        throw new Error(
          `${op}: v must be (nproj, ${b}, ${c}) for logits ${fmtShape(out)}, got ${v.describe()}`,
        );
      }
      n = v.shape[0];
    } else if (exact) n = c;
    else {
      n = opts.nproj ?? 1;
      if (!Number.isInteger(n) || n < 1) {
        throw new Error(`${op}: nproj must be a positive integer or -1 (exact), got ${n}`);
      }
    }
    if (opts.forward ?? true) model.forward(x);

    const vmu = this.scratch("v", [b, c]);
    let vall: Tensor | null = null;
    if (opts.v) vall = opts.v;
    else if (!exact) {
      vall = this.scratch("projections", [n, b, c]);
      randomUnitRows(rt, vall, c, {
        seed: opts.seed ?? 0,
        step: opts.step ?? 0,
        stream: "jacobian",
      });
    }
    const perSample = this.perSample!;
    const tmp = this.scratch("tmp", [b]);
    const r0 = grad ? this.scratch("tangent", x.shape) : null;
    rt.fill0(perSample);
    for (let mu = 0; mu < n; mu++) {
      if (vall) rt.copy(vall, vmu, b * c, mu * b * c, 0);
      else oneHot(rt, vmu, c, mu);
      const u = chain.vjp(vmu);
      reduce(rt, "sumsq", u.reshape([b, d]), { axis: 1, out: tmp });
      axpy(rt, c / n, tmp, perSample);
      if (r0) {
        // r_0 = ∂/∂u of (λ/2)(1/B) Σ_b (C/n) ||u_b||² = λ C / (n B) · u.
        scale(rt, u, (lambda * c) / (n * b), { out: r0 });
        chain.tangent(r0);
      }
    }
    if (grad) chain.backpropInjections(top);
    this.finish(lambda / 2);
  }
}

/**
 * The Jacobian penalty `(λ/2) · mean_batch R(x)` and, unless `grad: false`, its exact gradient
 * added into every parameter's `grad` (a Sequential of Linear, Conv2d, activations, pools,
 * Dropout — with the masks of the cached forward —, Flatten, Normalize, BatchNorm — in training
 * mode batch-coupled, as PyTorch's double backprop —, LayerNorm, GroupNorm, BasicBlock).
 *
 * @param rt runtime
 * @param model the model (logits (B, C))
 * @param x (B, ...) f32 input batch
 * @param opts nproj (default 1; -1 exact), seed and step of the projections, given `v`, lambda
 *   (default 0.01), grad (default true), forward (default true)
 * @returns value [1] f32 and perSample R (B,) f32; the caller disposes them
 * @throws Error for an unsupported layer or bad options
 * @example
 * ```ts
 * import { buildModel, jacobianPenalty, modelSpecFromName, Runtime } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 }); // 2 → 64 → 64 → 4
 * const x = rt.upload(new Float32Array([0.9, 1.1, -1, 1]), [2, 2]); // (B, 2)
 * const jr = jacobianPenalty(rt, model, x, { nproj: 1, seed: 1, step: 0, lambda: 0.01 });
 * console.log((await jr.value.read())[0], await jr.perSample.read()); // (λ/2) mean R, R per sample
 * jr.dispose();
 * x.dispose();
 * model.dispose();
 * ```
 */
export function jacobianPenalty(
  rt: Backend,
  model: Layer,
  x: Tensor,
  opts: JacobianPenaltyOptions = {},
): PenaltyResult {
  return runOnce(
    new JacobianEngine(rt, "jacobianPenalty"),
    (e) => e.run(model, x, opts, opts.grad ?? true),
  );
}

/**
 * Per-sample Jacobian norms for metrics: `R(x) = (C / nproj) Σ_μ ||v_μᵀ J(x)||²`, an unbiased
 * estimate of `||∂z/∂x||_F²` (exact with `nproj: -1`). No parameter gradient changes.
 * @param rt runtime
 * @param model the model (logits (B, C))
 * @param x (B, ...) f32 input batch
 * @param opts nproj (default 1; -1 exact), seed, step, v, forward (default true)
 * @returns (B,) f32 the caller disposes
 */
export function jacobianNorm(
  rt: Backend,
  model: Layer,
  x: Tensor,
  opts: JacobianOptions = {},
): Tensor {
  const r = runOnce(
    new JacobianEngine(rt, "jacobianNorm"),
    (e) => e.run(model, x, { ...opts, lambda: 1 }, false),
  );
  r.value.dispose();
  return r.perSample;
}

/** Options of {@linkcode jacobianRegularizer}. */
export interface JacobianRegularizerOptions {
  /** λ (loss term `(λ/2) mean R`). Default 0.01. */
  lambda?: number;
  /** Projections per sample; -1 exact. Default 1. */
  nproj?: number;
  /** Seed of the projections; default the run seed. */
  seed?: number;
}

/**
 * Jacobian regularization for `train`: in `afterBackward` it adds the exact gradient of
 * `(λ/2) mean_batch R` over the step's cached forward (same dropout masks), with fresh
 * projections keyed by (seed, step). Its `backward` hook, which `train` uses, does the same and
 * the step's backward of the data loss in one: the recipe's final backward starts from the
 * data loss's gradient at the logits and picks up the penalty's injections on its way down, so a
 * regularized step runs one ordinary backward, not two.
 * @param opts lambda (0.01), nproj (1), seed
 * @returns a Regularizer named "jacobian"
 * @example
 * ```ts
 * import {
 *   buildModel,
 *   jacobianRegularizer,
 *   modelSpecFromName,
 *   Runtime,
 *   toy2d,
 *   train,
 * } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * const regularizers = [jacobianRegularizer({ lambda: 0.01, nproj: 1 })];
 * const options = { epochs: 1, batchSize: 64, lr: 0.05, regularizers };
 * const result = await train(model, { train: toy2d() }, options);
 * console.log(result.history[0].penalties.jacobian); // mean (λ/2) R over the epoch
 * model.dispose();
 * ```
 */
export function jacobianRegularizer(opts: JacobianRegularizerOptions = {}): Regularizer {
  const lambda = checkWeight("jacobianRegularizer", "lambda", opts.lambda ?? 0.01);
  const nproj = opts.nproj ?? 1;
  if (nproj !== -1 && !(Number.isInteger(nproj) && nproj >= 1)) {
    throw new Error(`jacobianRegularizer: nproj must be a positive integer or -1, got ${nproj}`);
  }
  const engine = new EngineSlot((rt) => new JacobianEngine(rt, "jacobian regularizer"));
  const run = (ctx: StepContext, dLogits: Tensor | null): Tensor => {
    const e = engine.get(ctx.rt);
    e.run(
      ctx.model,
      ctx.x,
      {
        lambda,
        nproj,
        seed: opts.seed ?? ctx.seed,
        step: ctx.step,
        forward: false,
      },
      true,
      dLogits,
    );
    return e.value!;
  };
  return {
    name: "jacobian",
    options: { lambda, nproj, ...(opts.seed !== undefined ? { seed: opts.seed } : {}) },
    afterBackward(ctx: StepContext): Tensor {
      return run(ctx, null);
    },
    backward(ctx: StepContext, dLogits: Tensor): Tensor {
      return run(ctx, dLogits);
    },
    dispose() {
      engine.dispose();
    },
  };
}
