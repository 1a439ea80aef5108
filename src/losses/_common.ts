/**
 * What the loss modules share: the reduction over the batch, the single-workgroup sum of
 * shaders/loss.wgsl, the row threading of its per-row entry points, and the checks of input and
 * `out` tensors.
 *
 * Private to src/losses.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import lossSrc from "../../shaders/loss.wgsl" with { type: "text" };

/** How a per-sample loss is reduced over the batch. */
export type Reduction = "mean" | "sum";

/** The kernel of an entry point of shaders/loss.wgsl (every entry point shares its bindings). */
export function lossKernel(name: string, entry: string): Kernel {
  return { name: `loss.${name}`, code: lossSrc, entry };
}

/** Single-workgroup sum of per-sample losses or partial sums (and the invalid-label count). */
export const SUM: Kernel = lossKernel("sum", "sum_main");

/** Invocations per row: a power of two such that each walks about 8 classes. */
export function rowThreads(k: number): number {
  let t = 1;
  while (t < 256 && t * 8 < k) t *= 2;
  return t;
}

/** Throws, naming the op and the argument, if `t` was disposed. */
export function live(op: string, what: string, t: Tensor): void {
  if (t.disposed) throw new Error(`${op}: ${what} ${t.describe()} was used after dispose()`);
}

/**
 * `given` checked against the shape and dtype `op` writes, or a new tensor when none is given.
 */
export function outFor(
  rt: Backend,
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
