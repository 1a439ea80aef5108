/**
 * The number of correct argmax predictions of a batch, counted on the GPU (`shaders/loss.wgsl`,
 * beside the losses whose logits it reads) so that a training or evaluation epoch accumulates it
 * over batches and reads it back once.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import { live, lossKernel, outFor, rowThreads } from "./_common.ts";

const ARGMAX_COUNT: Kernel = lossKernel("argmax_count", "argmax_count_main");

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
  rt: Backend,
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
