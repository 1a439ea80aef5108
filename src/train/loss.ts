/**
 * Training losses with their gradients, fused on the GPU (`shaders/loss.wgsl`):
 * softmax cross-entropy on logits (class labels or soft targets, label
 * smoothing), mean squared error, and the number of correct argmax
 * predictions.
 *
 * Semantics follow PyTorch 1.13 `torch.nn.functional.cross_entropy` and
 * `mse_loss`: the loss is the mean over the batch (or the sum), and the
 * returned gradient is the gradient of that reduced loss, ready to feed a
 * model's `backward`.
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

import type { Runtime } from "../gpu/runtime.ts";
import type { Kernel } from "../gpu/kernel.ts";
import { fmtShape, type Tensor } from "../gpu/tensor.ts";
import lossSrc from "../../shaders/loss.wgsl" with { type: "text" };

const CE_ROWS: Kernel = { name: "loss.ce_rows", code: lossSrc, entry: "ce_rows_main" };
const SUM: Kernel = { name: "loss.sum", code: lossSrc, entry: "sum_main" };
const MSE: Kernel = { name: "loss.mse", code: lossSrc, entry: "mse_main" };
const ARGMAX_COUNT: Kernel = {
  name: "loss.argmax_count",
  code: lossSrc,
  entry: "argmax_count_main",
};

/** Elements per workgroup of `mse_main` (256 invocations x 8). */
const MSE_CHUNK = 2048;

/** How a per-sample loss is reduced over the batch. */
export type Reduction = "mean" | "sum";

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

/** Invocations per row: a power of two such that each walks about 8 classes. */
function rowThreads(k: number): number {
  let t = 1;
  while (t < 256 && t * 8 < k) t *= 2;
  return t;
}

function live(op: string, what: string, t: Tensor): void {
  if (t.disposed) throw new Error(`${op}: ${what} ${t.describe()} was used after dispose()`);
}

function outFor(
  rt: Runtime,
  op: string,
  what: string,
  shape: readonly number[],
  dtype: "f32" | "u32",
  given: Tensor | null | undefined,
): Tensor {
  if (!given) return rt.empty(shape, dtype, `${op} ${what}`);
  live(op, `out.${what}`, given);
  let n = 1;
  for (const d of shape) n *= d;
  if (given.size !== n || given.dtype !== dtype) {
    throw new Error(
      `${op}: out.${what} must be ${dtype}${fmtShape(shape)}, got ${given.describe()}`,
    );
  }
  return given;
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
  rt: Runtime,
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

/** Tensors written by {@linkcode mse}. */
export interface MseOutputs {
  /** [] f32: the reduced loss. */
  loss: Tensor;
  /** f32, shape of `pred`: gradient of `loss` with respect to `pred` (null when `grad: false`). */
  dPred: Tensor | null;
}

/** Result of {@linkcode mse}. */
export interface MseResult extends MseOutputs {
  /** Disposes every tensor of the result (including any that came in through `out`). */
  dispose(): void;
}

/** Options of {@linkcode mse}. */
export interface MseOptions {
  /** "mean" (default, over all elements as torch) or "sum". */
  reduction?: Reduction;
  /** Compute `dPred`. Default true. */
  grad?: boolean;
  /** Tensors to write instead of allocating. */
  out?: Partial<MseOutputs>;
}

/**
 * Mean squared error `Σ (pred - target)² / n` (torch `mse_loss`) and its
 * gradient `2 (pred - target) / n`, in two dispatches (a fused elementwise
 * pass writing the gradient and per-workgroup partial sums, then one
 * single-workgroup sum).
 *
 * @param rt runtime
 * @param pred (...) f32
 * @param target f32, same shape as `pred`
 * @param opts reduction, whether to compute the gradient, `out` tensors
 * @returns loss [] f32 and dPred (pred's shape) f32; the caller disposes them
 * @throws Error on a shape or dtype mismatch or empty input
 */
export function mse(rt: Runtime, pred: Tensor, target: Tensor, opts: MseOptions = {}): MseResult {
  const op = "mse";
  live(op, "pred", pred);
  live(op, "target", target);
  if (pred.dtype !== "f32" || target.dtype !== "f32") {
    throw new Error(
      `${op}: pred and target must be f32, got ${pred.describe()}, ${target.describe()}`,
    );
  }
  if (fmtShape(pred.shape) !== fmtShape(target.shape)) {
    throw new Error(
      `${op}: pred ${fmtShape(pred.shape)} and target ${fmtShape(target.shape)} differ in shape`,
    );
  }
  const n = pred.size;
  if (n === 0) throw new Error(`${op}: empty input ${pred.describe()}`);
  const reduction = opts.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "sum") {
    throw new Error(`${op}: reduction must be "mean" or "sum", got "${reduction}"`);
  }
  const grad = opts.grad ?? true;
  const out = opts.out ?? {};
  const scale = reduction === "mean" ? 1 / n : 1;
  const loss = outFor(rt, op, "loss", [], "f32", out.loss);
  const dPred = grad ? outFor(rt, op, "dPred", pred.shape, "f32", out.dPred) : null;
  const groups = Math.ceil(n / MSE_CHUNK);
  const partials = rt.empty([groups], "f32", "mse partials");
  rt.dispatch(MSE, {
    bindings: [
      pred,
      rt.placeholder(0),
      target,
      dPred ?? rt.placeholder(1),
      partials,
      rt.placeholder(2),
    ],
    params: { b: 0, k: 0, n, smoothing: 0, gscale: scale, lscale: 0 },
    workgroups: rt.grid(groups, 1),
    constants: { GRAD: grad ? 1 : 0 },
  });
  rt.dispatch(SUM, {
    bindings: [
      partials,
      rt.placeholder(0),
      rt.placeholder(1),
      rt.placeholder(2),
      loss,
      rt.placeholder(3),
    ],
    params: { b: 0, k: 0, n: groups, smoothing: 0, gscale: 0, lscale: scale },
    workgroups: [1],
  });
  // Safe to free at once: its later reuse is recorded after these dispatches on the same queue.
  partials.dispose();
  return {
    loss,
    dPred,
    dispose() {
      loss.dispose();
      dPred?.dispose();
    },
  };
}

/** Options of {@linkcode accuracyCount}. */
export interface AccuracyOptions {
  /** [] u32 counter to write (or add to). */
  out?: Tensor;
  /**
   * Add to `out` instead of overwriting it, so an epoch's count accumulates on
   * the GPU over batches and is read once. Requires `out`.
   */
  accumulate?: boolean;
}

/**
 * Number of rows whose argmax (first maximal class; NaN counts as maximal, as
 * `torch.argmax`) equals the label, counted on the GPU. Read it back rarely.
 * A label outside [0, K) never matches.
 *
 * @param rt runtime
 * @param logits (B, K) f32
 * @param labels (B,) u32 or i32
 * @param opts `out` counter and `accumulate`
 * @returns [] u32 count: `opts.out` if given, else a new tensor the caller disposes
 * @example
 * ```ts
 * const correct = rt.zeros([], "u32");
 * for (const [x, y] of batches) accuracyCount(rt, model.forward(x), y, { out: correct, accumulate: true });
 * const acc = (await correct.read())[0] / n;
 * ```
 */
export function accuracyCount(
  rt: Runtime,
  logits: Tensor,
  labels: Tensor,
  opts: AccuracyOptions = {},
): Tensor {
  const op = "accuracyCount";
  live(op, "logits", logits);
  live(op, "labels", labels);
  if (logits.dtype !== "f32" || logits.shape.length !== 2) {
    throw new Error(`${op}: logits must be f32 (B, K), got ${logits.describe()}`);
  }
  const [b, k] = logits.shape;
  if (labels.dtype === "f32" || labels.shape.length !== 1 || labels.shape[0] !== b) {
    throw new Error(
      `${op}: labels must be u32 or i32 [${b}] for logits ${fmtShape(logits.shape)}, ` +
        `got ${labels.describe()}`,
    );
  }
  if (opts.accumulate && !opts.out) throw new Error(`${op}: accumulate requires an out counter`);
  const count = outFor(rt, op, "out", [], "u32", opts.out);
  if (!opts.accumulate) rt.fill0(count);
  if (b === 0 || k === 0) return count;
  const t = rowThreads(k);
  rt.dispatch(ARGMAX_COUNT, {
    bindings: [logits, labels, rt.placeholder(0), rt.placeholder(1), rt.placeholder(2), count],
    params: { b, k, n: 0, smoothing: 0, gscale: 0, lscale: 0 },
    workgroups: rt.grid(b, 256 / t),
    constants: { T: t },
  });
  return count;
}
