/**
 * Confidence penalty (Pereyra, Tucker, Chorowski, Kaiser & Hinton 2017, "Regularizing neural
 * networks by penalizing confident output distributions", eq. 2 and sec. 3.1): the loss is
 * `CE − β H(p)`, with `H(p) = −Σ_j p_j log p_j` of the softmax output, i.e. the penalty
 * `R = −β H(p)` per sample; hinged form (their "annealing and thresholding"):
 * `R = β · max(0, Γ − H(p))`, which only acts below an entropy Γ. Batch mean.
 *
 * The seed project added `+β H`, which rewards confidence (SEED-NOTES.md); ours follows the paper.
 *
 * Gradient at the logits: `∂H/∂z_j = −p_j (log p_j + H)`, so where the penalty is active
 * `∂R/∂z_j = β p_j (log p_j + H)` (shaders/jacobian.wgsl, `confidence_main`); it is added into the
 * cross-entropy's logit gradient before the one backward pass (the `logitsGrad` hook).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { reduce } from "../ops/reduce.ts";
import { checkWeight, type PenaltyResult, penaltyResult } from "./_engine.ts";
import type { Regularizer, StepContext } from "../hooks/step.ts";
import { KERNELS, launch, reuse } from "./_chain.ts";

/** Options of {@linkcode confidencePenalty}. */
export interface ConfidencePenaltyOptions {
  /** β ≥ 0. Default 0.1. */
  beta?: number;
  /** Γ: hinge the penalty at this entropy (nats), `β max(0, Γ − H)`. Default none. */
  hinge?: number;
  /** (B, C) f32 logit gradient to add `∂(mean R)/∂z` into (e.g. the cross-entropy's). */
  dLogits?: Tensor;
}

function check(op: string, logits: Tensor, opts: ConfidencePenaltyOptions): [number, number] {
  if (logits.disposed) throw new Error(`${op}: logits ${logits.describe()} used after dispose()`);
  if (logits.dtype !== "f32" || logits.shape.length !== 2) {
    throw new Error(`${op}: logits must be f32 (B, C), got ${logits.describe()}`);
  }
  checkWeight(op, "beta", opts.beta ?? 0.1);
  if (opts.hinge !== undefined && !Number.isFinite(opts.hinge)) {
    throw new Error(`${op}: hinge must be finite, got ${opts.hinge}`);
  }
  const d = opts.dLogits;
  if (d && (d.disposed || d.shape.join() !== logits.shape.join())) {
    throw new Error(`${op}: dLogits ${d.describe()} must match logits ${logits.describe()}`);
  }
  return [logits.shape[0], logits.shape[1]];
}

function record(
  rt: Backend,
  logits: Tensor,
  opts: ConfidencePenaltyOptions,
  perSample: Tensor,
  value: Tensor,
): void {
  const [b, c] = logits.shape;
  const beta = opts.beta ?? 0.1;
  launch(
    rt,
    KERNELS.confidence,
    [logits],
    [opts.dLogits ?? rt.placeholder(0), perSample],
    {
      n: b,
      c,
      s: opts.dLogits ? 1 : 0,
      len: opts.hinge === undefined ? 0 : 1,
      alpha: beta / b,
      beta: opts.hinge ?? 0,
      coef: beta,
    },
    rt.grid(b, 64),
  );
  reduce(rt, "mean", perSample, { out: value });
}

/**
 * The confidence penalty `mean_batch R`, `R = −β H(p)` (or `β max(0, Γ − H)`), and its gradient
 * added into `opts.dLogits` when given.
 * @param rt runtime
 * @param logits (B, C) f32
 * @param opts beta (default 0.1), hinge Γ, dLogits (B, C) to accumulate into
 * @returns value [1] f32 and perSample R (B,) f32 (β included); the caller disposes them
 * @example
 * ```ts
 * const ce = softmaxCrossEntropy(rt, logits, y);
 * const cp = confidencePenalty(rt, logits, { beta: 0.1, dLogits: ce.dLogits! });
 * model.backward(ce.dLogits!);
 * ```
 */
export function confidencePenalty(
  rt: Backend,
  logits: Tensor,
  opts: ConfidencePenaltyOptions = {},
): PenaltyResult {
  const op = "confidencePenalty";
  if (opts.dLogits && opts.dLogits === logits) {
    throw new Error(`${op}: dLogits must be a different tensor from the logits`);
  }
  const [b] = check(op, logits, opts);
  const perSample = rt.empty([b], "f32", `${op} per sample`);
  const value = rt.empty([1], "f32", `${op} value`);
  record(rt, logits, opts, perSample, value);
  return penaltyResult(value, perSample);
}

/**
 * The confidence penalty for `train` (`logitsGrad` hook).
 * @param opts beta (default 0.1), hinge Γ (default none)
 * @returns a Regularizer named "confidence"
 */
export function confidencePenaltyRegularizer(
  opts: { beta?: number; hinge?: number } = {},
): Regularizer {
  const beta = checkWeight("confidencePenaltyRegularizer", "beta", opts.beta ?? 0.1);
  let perSample: Tensor | null = null;
  let value: Tensor | null = null;
  return {
    name: "confidence",
    options: { beta, ...(opts.hinge !== undefined ? { hinge: opts.hinge } : {}) },
    logitsGrad(ctx: StepContext, logits: Tensor, dLogits: Tensor): Tensor {
      const o = { beta, hinge: opts.hinge, dLogits };
      const [b] = check("confidence regularizer", logits, o);
      perSample = reuse(ctx.rt, perSample, [b], "confidence per sample");
      value = reuse(ctx.rt, value, [1], "confidence value");
      record(ctx.rt, logits, o, perSample, value);
      return value;
    },
    dispose() {
      perSample?.dispose();
      value?.dispose();
      perSample = value = null;
    },
  };
}
