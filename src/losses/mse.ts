/**
 * Mean squared error and its gradient, fused on the GPU (`shaders/loss.wgsl`), with the
 * semantics of PyTorch 1.13 `torch.nn.functional.mse_loss`: the mean over all elements (or the
 * sum), and the gradient of that reduced loss.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import { live, lossKernel, outFor, type Reduction, SUM } from "./_common.ts";

const MSE: Kernel = lossKernel("mse", "mse_main");

/** Elements per workgroup of `mse_main` (256 invocations x 8). */
const MSE_CHUNK = 2048;

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
export function mse(rt: Backend, pred: Tensor, target: Tensor, opts: MseOptions = {}): MseResult {
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
