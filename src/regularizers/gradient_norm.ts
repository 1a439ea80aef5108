/**
 * Input-gradient norm ("double backpropagation", Drucker & LeCun 1992, "Improving generalization
 * performance using double backpropagation"): per sample `R = ||∂CE_b/∂x_b||²`, the squared norm
 * of the gradient of the sample's own cross-entropy with respect to its input, and the loss term
 * `λ · mean_batch R`.
 *
 * Exact gradient by the recipe of ./_chain.ts with `v = ∂CE/∂z = p - y` (per sample, unscaled):
 * `u = Jᵀ v`, tangent pass from `r_0 = (2λ/B) u` (weight terms `b ⊗ r` and σ'' injections), and,
 * since `v` itself depends on the parameters through the logits, the softmax-Hessian term
 * `(diag(p) - p pᵀ) r_L` at the logits (`r_L = J r_0`, the tangent at the output) carried down by
 * the same primal backward as the injections (DESIGN.md, "Jacobian regularization").
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import { scale } from "../ops/elementwise.ts";
import { reduce } from "../ops/reduce.ts";
import { type CrossEntropyResult, softmaxCrossEntropy } from "../losses/cross_entropy.ts";
import type { Regularizer, StepContext } from "../hooks/step.ts";
import { KERNELS, launch } from "./_chain.ts";
import { ChainEngine, checkWeight, EngineSlot, type PenaltyResult, runOnce } from "./_engine.ts";

/** Options of {@linkcode gradientNormPenalty}. */
export interface GradientNormOptions {
  /** λ: the loss term is `λ · mean_batch ||∂CE_b/∂x_b||²`. Default 0.01. */
  lambda?: number;
  /** Label smoothing of the cross-entropy whose input gradient is penalised. Default 0. */
  labelSmoothing?: number;
  /** Add `∂/∂θ` of the loss term into the parameters' grads. Default true. */
  grad?: boolean;
  /**
   * Run `model.forward(x)` first (default true). With false, `logits` must be the output of the
   * model's last forward, which must have been on `x`.
   */
  forward?: boolean;
  /** (B, C) logits of the last forward (with `forward: false`). */
  logits?: Tensor;
}

class GradientNormEngine extends ChainEngine {
  #ce: CrossEntropyResult | null = null;

  run(model: Layer, x: Tensor, y: Tensor, opts: GradientNormOptions): void {
    const rt = this.rt, op = this.op;
    const { chain, out, b, c, d } = this.begin(model, x);
    const lambda = this.lambda(opts.lambda);
    const grad = opts.grad ?? true;
    let logits: Tensor;
    if (opts.forward ?? true) logits = model.forward(x);
    else {
      if (!opts.logits || opts.logits.disposed) {
        throw new Error(`${op}: forward: false needs the logits of the model's last forward`);
      }
      logits = opts.logits;
    }
    if (logits.shape.join() !== out.join()) {
      throw new Error(`${op}: logits ${logits.describe()} do not match the model output ${out}`);
    }
    let prev = this.#ce;
    if (prev && (prev.batch !== b || prev.classes !== c)) {
      prev.dispose();
      prev = null;
    }
    const ce = this.#ce = softmaxCrossEntropy(rt, logits, y, {
      reduction: "sum",
      labelSmoothing: opts.labelSmoothing ?? 0,
      out: prev ?? undefined,
    });
    const u = chain.vjp(ce.dLogits!);
    reduce(rt, "sumsq", u.reshape([b, d]), { axis: 1, out: this.perSample! });
    if (grad) {
      const r0 = this.scratch("tangent", x.shape);
      const gz = this.scratch("logits term", [b, c]);
      scale(rt, u, (2 * lambda) / b, { out: r0 });
      const rl = chain.tangent(r0, { output: true })!;
      launch(rt, KERNELS.softmaxHvp, [logits, rl], [gz], { n: b, c }, rt.grid(b, 64));
      chain.backpropInjections(gz);
    }
    this.finish(lambda);
  }

  override dispose(): void {
    super.dispose();
    this.#ce?.dispose();
    this.#ce = null;
  }
}

/**
 * The input-gradient-norm penalty `λ · mean_batch ||∂CE_b/∂x_b||²` and, unless `grad: false`,
 * its exact gradient added into every parameter's `grad`.
 * @param rt runtime
 * @param model the model (logits (B, C)); same layer support as the Jacobian penalty
 * @param x (B, ...) f32 input batch
 * @param y (B,) i32 or u32 labels
 * @param opts lambda (default 0.01), labelSmoothing, grad (default true), forward (default
 *   true), logits (with forward: false)
 * @returns value [1] f32 and perSample `||∂CE_b/∂x_b||²` (B,) f32; the caller disposes them
 */
export function gradientNormPenalty(
  rt: Backend,
  model: Layer,
  x: Tensor,
  y: Tensor,
  opts: GradientNormOptions = {},
): PenaltyResult {
  return runOnce(
    new GradientNormEngine(rt, "gradientNormPenalty"),
    (e) => e.run(model, x, y, opts),
  );
}

/**
 * The input-gradient norm for `train`: `logitsGrad` remembers the step's logits, `afterBackward`
 * adds the gradient over the cached forward (same dropout masks).
 * @param opts lambda (default 0.01), labelSmoothing (default 0)
 * @returns a Regularizer named "gradient-norm"
 */
export function gradientNormRegularizer(
  opts: { lambda?: number; labelSmoothing?: number } = {},
): Regularizer {
  const lambda = checkWeight("gradientNormRegularizer", "lambda", opts.lambda ?? 0.01);
  const labelSmoothing = opts.labelSmoothing ?? 0;
  const engine = new EngineSlot((rt) => new GradientNormEngine(rt, "gradient-norm regularizer"));
  let logits: Tensor | null = null;
  return {
    name: "gradient-norm",
    options: { lambda, labelSmoothing },
    logitsGrad(_ctx: StepContext, z: Tensor): null {
      logits = z;
      return null;
    },
    afterBackward(ctx: StepContext): Tensor {
      if (!logits) {
        throw new Error("gradient-norm regularizer: afterBackward() before logitsGrad()");
      }
      const e = engine.get(ctx.rt);
      e.run(ctx.model, ctx.x, ctx.y, { lambda, labelSmoothing, forward: false, logits });
      logits = null;
      return e.value!;
    },
    dispose() {
      engine.dispose();
    },
  };
}
