/**
 * Softmax cross-entropy on logits, against class labels or soft targets, with label smoothing,
 * and its gradient, fused on the GPU (`shaders/loss.wgsl`).
 *
 * Semantics follow PyTorch 1.13 `torch.nn.functional.cross_entropy`: the loss is the mean over
 * the batch (or the sum), and the returned gradient is the gradient of that reduced loss, ready
 * to feed a model's `backward`.
 *
 * Out-of-range labels: PyTorch raises "Target 12 is out of bounds". A GPU
 * kernel cannot raise, so here a label outside `[0, K)` never indexes memory:
 * that sample's loss is NaN (so the mean is NaN), its gradient row is 0, and
 * `invalid` counts such labels. {@linkcode readLoss} reads the loss and throws,
 * naming the count, when any label was invalid — use it (rather than reading
 * `loss` directly) wherever the loss is read back.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import { live, lossKernel, outFor, type Reduction, rowThreads, SUM } from "./_common.ts";

const CE_ROWS: Kernel = lossKernel("ce_rows", "ce_rows_main");

/** Tensors written by {@linkcode softmaxCrossEntropy}. */
export interface CrossEntropyOutputs {
  /** [] f32: the reduced loss. */
  loss: Tensor;
  /** (B, K) f32: gradient of `loss` with respect to the logits (null when `grad: false`). */
  dLogits: Tensor | null;
  /** (B,) f32: each sample's loss (NaN for an out-of-range label). */
  perSample: Tensor;
  /** [] u32: number of labels outside [0, K) in the batch (0 for soft targets). */
  invalid: Tensor;
}

/** Result of {@linkcode softmaxCrossEntropy}: its tensors plus what {@linkcode readLoss} needs. */
export interface CrossEntropyResult extends CrossEntropyOutputs {
  /** Batch size B. */
  readonly batch: number;
  /** Number of classes K. */
  readonly classes: number;
  /** Disposes every tensor of the result (including any that came in through `out`). */
  dispose(): void;
}

/** Options of {@linkcode softmaxCrossEntropy}. */
export interface CrossEntropyOptions {
  /** ε in [0, 1]: the target becomes (1 - ε) target + ε/K on every class. Default 0. */
  labelSmoothing?: number;
  /** "mean" (default, as torch) or "sum" over the batch. */
  reduction?: Reduction;
  /** Compute `dLogits`. Default true; false for evaluation (then `dLogits` is null). */
  grad?: boolean;
  /**
   * Tensors to write instead of allocating (e.g. the previous step's result, so
   * a training loop allocates nothing). Missing ones are allocated.
   */
  out?: Partial<CrossEntropyOutputs>;
}

/**
 * Softmax cross-entropy of logits against class labels or soft targets, and
 * its gradient, in two dispatches: one per-row kernel (stable log-sum-exp,
 * per-sample loss, gradient) and one single-workgroup reduction over the batch.
 *
 * Label smoothing follows PyTorch 1.13: the target distribution is
 * `(1 - ε) onehot(y) + ε/K` (or `(1 - ε) q + ε/K` for soft targets q), so
 * `loss_b = (1 - ε)(lse_b - z_{b,y}) + (ε/K) Σ_k (lse_b - z_bk)`.
 *
 * @param rt runtime
 * @param logits (B, K) f32
 * @param target (B,) u32 or i32 class labels in [0, K) (negative i32 labels count as
 *   out of range), or (B, K) f32 soft targets (rows are used as given, not renormalised)
 * @param opts label smoothing, reduction, whether to compute the gradient, `out` tensors
 * @returns loss [] f32, dLogits (B, K) f32, perSample (B,) f32, invalid [] u32; the caller
 *   disposes them (`result.dispose()`), unless they came in through `opts.out`
 * @throws Error on shape or dtype mismatch, an empty batch, or ε outside [0, 1]
 * @example
 * ```ts
 * const ce = softmaxCrossEntropy(rt, logits, labels, { labelSmoothing: 0.1 });
 * model.backward(ce.dLogits!);
 * console.log(await readLoss(ce)); // throws if a label was out of range
 * ce.dispose();
 * ```
 */
export function softmaxCrossEntropy(
  rt: Backend,
  logits: Tensor,
  target: Tensor,
  opts: CrossEntropyOptions = {},
): CrossEntropyResult {
  const op = "softmaxCrossEntropy";
  live(op, "logits", logits);
  live(op, "target", target);
  if (logits.dtype !== "f32" || logits.shape.length !== 2) {
    throw new Error(`${op}: logits must be f32 (B, K), got ${logits.describe()}`);
  }
  const [b, k] = logits.shape;
  if (b === 0 || k === 0) {
    throw new Error(`${op}: empty logits ${logits.describe()} (need B >= 1 and K >= 1)`);
  }
  const soft = target.dtype === "f32";
  if (soft) {
    if (target.shape.length !== 2 || target.shape[0] !== b || target.shape[1] !== k) {
      throw new Error(
        `${op}: soft targets must be f32${
          fmtShape([b, k])
        } like the logits, got ${target.describe()}`,
      );
    }
  } else if (target.shape.length !== 1 || target.shape[0] !== b) {
    throw new Error(
      `${op}: labels must be u32 or i32 [${b}] for logits ${fmtShape(logits.shape)}, ` +
        `got ${target.describe()}`,
    );
  }
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) {
    throw new Error(`${op}: labelSmoothing must be in [0, 1], got ${eps}`);
  }
  const reduction = opts.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "sum") {
    throw new Error(`${op}: reduction must be "mean" or "sum", got "${reduction}"`);
  }
  const grad = opts.grad ?? true;
  const out = opts.out ?? {};
  const scale = reduction === "mean" ? 1 / b : 1;
  const loss = outFor(rt, op, "loss", [], "f32", out.loss);
  const dLogits = grad ? outFor(rt, op, "dLogits", [b, k], "f32", out.dLogits) : null;
  const perSample = outFor(rt, op, "perSample", [b], "f32", out.perSample);
  const invalid = outFor(rt, op, "invalid", [], "u32", out.invalid);

  const t = rowThreads(k);
  rt.dispatch(CE_ROWS, {
    bindings: [
      logits,
      soft ? rt.placeholder(0) : target,
      soft ? target : rt.placeholder(1),
      dLogits ?? rt.placeholder(2),
      perSample,
      rt.placeholder(3),
    ],
    params: { b, k, n: 0, smoothing: eps, gscale: scale, lscale: 0 },
    workgroups: rt.grid(b, 256 / t),
    constants: { T: t, SOFT: soft ? 1 : 0, GRAD: grad ? 1 : 0 },
  });
  rt.dispatch(SUM, {
    bindings: [
      perSample,
      soft ? rt.placeholder(0) : target,
      rt.placeholder(1),
      rt.placeholder(2),
      loss,
      invalid,
    ],
    params: { b, k: soft ? 0 : k, n: b, smoothing: 0, gscale: 0, lscale: scale },
    workgroups: [1],
  });
  return {
    loss,
    dLogits,
    perSample,
    invalid,
    batch: b,
    classes: k,
    dispose() {
      for (const x of [loss, dLogits, perSample, invalid]) x?.dispose();
    },
  };
}

/**
 * Reads a cross-entropy loss back to the CPU, checking the labels first.
 * @param result from {@linkcode softmaxCrossEntropy}
 * @returns the loss value
 * @throws Error naming the number of labels outside [0, K) if there were any
 */
export async function readLoss(result: CrossEntropyResult): Promise<number> {
  const [bad] = await result.invalid.read();
  if (bad > 0) {
    throw new Error(
      `softmaxCrossEntropy: ${bad} of ${result.batch} labels are outside [0, ${result.classes}); ` +
        `their losses are NaN and their gradients 0`,
    );
  }
  return (await result.loss.read())[0];
}
