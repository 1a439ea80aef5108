/**
 * Jacobian-determinant penalty ("area preservation" of the seed study, see SEED-NOTES.md): per
 * sample, on the input→logits map `J = ∂z/∂x` (C × D),
 *
 *     square (C = D):  R = (det J - 1)²
 *     otherwise:       R = (sqrt(det G) - 1)²,  G the smaller Gram matrix
 *                      (J Jᵀ when C < D, Jᵀ J when C > D: the volume factor of the map)
 *
 * and the loss term `λ · mean_batch R`. The seed took one determinant over the whole batch's
 * Jacobian, every 100 steps, without a gradient; ours is per sample, every step, with its exact
 * gradient: the C rows of J by C VJPs, `∂R/∂J` per sample in shaders/jacobian.wgsl (`det_main`:
 * `2 (det J - 1) det J · J⁻ᵀ`, or `2 (vol - 1) vol · G⁻¹ J` resp. `J G⁻¹`), then for each row the
 * tangent pass of ./_chain.ts seeded with that row of `∂R/∂J` (DESIGN.md, step 3).
 *
 * The toy problem (2 inputs, 4 classes, SEED-NOTES.md) has C > D: R is then
 * `(sqrt(det(JᵀJ)) - 1)²`, the area factor of the 2 → 4 map against 1. The seed penalised
 * `(det(JᵀJ) - 1)²`, the squared area factor: both vanish exactly at area preservation; ours is the
 * same formula as the square and C < D cases (vol = |det J| when J is square).
 *
 * Limits: min(C, D) ≤ 16 (the per-sample elimination runs in one GPU thread); a singular J (or G)
 * makes the gradient infinite, as it is.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import type { Regularizer, StepContext } from "../hooks/step.ts";
import { KERNELS, launch, oneHot } from "./_chain.ts";
import { ChainEngine, checkWeight, EngineSlot, type PenaltyResult, runOnce } from "./_engine.ts";

/** Options of {@linkcode jacobianDeterminantPenalty}. */
export interface JacobianDeterminantOptions {
  /** λ: the loss term is `λ · mean_batch R`. Default 0.01. */
  lambda?: number;
  /** Add `∂/∂θ` of the loss term into the parameters' grads. Default true. */
  grad?: boolean;
  /** Run `model.forward(x)` first (default true); false uses the model's last forward on `x`. */
  forward?: boolean;
}

/** The largest min(C, D) the per-sample determinant kernel handles. */
export const MAX_DETERMINANT_SIZE = 16;

class DeterminantEngine extends ChainEngine {
  run(model: Layer, x: Tensor, opts: JacobianDeterminantOptions): void {
    const rt = this.rt, op = this.op;
    const { chain, b, c, d } = this.begin(model, x);
    if (Math.min(c, d) > MAX_DETERMINANT_SIZE) {
      throw new Error(
        `${op}: min(classes ${c}, input size ${d}) must be at most ${MAX_DETERMINANT_SIZE} ` +
          `(the determinant is taken per sample in one GPU thread)`,
      );
    }
    const lambda = this.lambda(opts.lambda);
    const grad = opts.grad ?? true;
    if (opts.forward ?? true) model.forward(x);
    const vmu = this.scratch("e_c", [b, c]);
    const j = this.scratch("J rows", [c, b, d]);
    const m = this.scratch("dR/dJ", [c, b, d]);
    for (let i = 0; i < c; i++) {
      oneHot(rt, vmu, c, i);
      rt.copy(chain.vjp(vmu), j, b * d, 0, i * b * d);
    }
    launch(
      rt,
      KERNELS.det,
      [j],
      [m, this.perSample!],
      { n: b, c, s: d, alpha: lambda / b },
      rt.grid(b, 1),
    );
    if (grad) {
      const r0 = this.scratch("tangent", x.shape);
      for (let i = 0; i < c; i++) {
        oneHot(rt, vmu, c, i);
        chain.vjp(vmu);
        rt.copy(m, r0, b * d, i * b * d, 0);
        chain.tangent(r0);
      }
      chain.backpropInjections();
    }
    this.finish(lambda);
  }
}

/**
 * The Jacobian-determinant penalty `λ · mean_batch R` (see the module doc) and, unless
 * `grad: false`, its exact gradient added into every parameter's `grad`.
 * @param rt runtime
 * @param model the model (logits (B, C)); same layer support as the Jacobian penalty
 * @param x (B, ...) f32 input batch, D = its per-sample size; min(C, D) ≤ 16
 * @param opts lambda (default 0.01), grad (default true), forward (default true)
 * @returns value [1] f32 and perSample R (B,) f32; the caller disposes them
 * @example
 * ```ts
 * const r = jacobianDeterminantPenalty(rt, mlp, x, { lambda: 0.1 }); // 2 -> 4 toy problem
 * r.dispose();
 * ```
 */
export function jacobianDeterminantPenalty(
  rt: Backend,
  model: Layer,
  x: Tensor,
  opts: JacobianDeterminantOptions = {},
): PenaltyResult {
  return runOnce(
    new DeterminantEngine(rt, "jacobianDeterminantPenalty"),
    (e) => e.run(model, x, opts),
  );
}

/**
 * The Jacobian-determinant penalty for `train` (`afterBackward`, over the step's cached forward).
 * @param opts lambda (default 0.01)
 * @returns a Regularizer named "jacobian-det"
 */
export function jacobianDeterminantRegularizer(
  opts: { lambda?: number } = {},
): Regularizer {
  const lambda = checkWeight("jacobianDeterminantRegularizer", "lambda", opts.lambda ?? 0.01);
  const engine = new EngineSlot((rt) => new DeterminantEngine(rt, "jacobian-det regularizer"));
  return {
    name: "jacobian-det",
    options: { lambda },
    afterBackward(ctx: StepContext): Tensor {
      const e = engine.get(ctx.rt);
      e.run(ctx.model, ctx.x, { lambda, forward: false });
      return e.value!;
    },
    dispose() {
      engine.dispose();
    },
  };
}
