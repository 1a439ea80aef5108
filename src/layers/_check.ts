/**
 * Input checks shared by the layers. Kept apart from `_util.ts` (which imports shaders) so that a
 * layer needing only these checks does not pull another layer's shaders into a bundle.
 *
 * @module
 */

import { fmtShape, type Tensor } from "../backend.ts";

/** True when both shapes have the same dimensions. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Throws, naming the layer, unless `t` is a live f32 tensor. */
export function checkTensor(layer: string, t: Tensor, what: string): void {
  if (t.disposed) throw new Error(`${layer}: ${what} ${t.describe()} was used after dispose()`);
  if (t.dtype !== "f32") throw new Error(`${layer}: ${what} must be f32, got ${t.describe()}`);
}

/**
 * The input cached by the last `forward`, checked: throws, naming the layer, when there was no
 * forward yet or that input has been disposed since.
 */
export function cachedInput(layer: string, x: Tensor | null, what: string): Tensor {
  if (!x) throw new Error(`${layer}: ${what}() before forward()`);
  if (x.disposed) {
    throw new Error(
      `${layer}: the input of the last forward (${x.describe()}) was disposed before ${what}()`,
    );
  }
  return x;
}

/** Throws, naming the layer, when the batch dimension is 0. */
export function checkBatch(layer: string, shape: readonly number[]): void {
  if (shape.length > 0 && shape[0] === 0) {
    throw new Error(
      `${layer}: got an empty batch ${fmtShape(shape)}; the batch size must be at least 1`,
    );
  }
}

/** Throws, naming the layer, unless `dy` has the shape the last forward produced. */
export function checkGradShape(
  layer: string,
  dy: Tensor,
  want: readonly number[],
  what = "gradient",
): void {
  if (!sameShape(dy.shape, want)) {
    throw new Error(
      `${layer}: ${what} shape ${fmtShape(dy.shape)} does not match the output of the last ` +
        `forward ${fmtShape(want)}`,
    );
  }
}
