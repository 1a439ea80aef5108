/**
 * `Flatten`: `torch.nn.Flatten(start_dim = 1, end_dim = -1)`, a reshape (B, C, H, W) -> (B, C·H·W).
 * Every pass returns a view of its argument (no copy, no kernel); views do not own their buffer.
 *
 * @module
 */

import { fmtShape, type Tensor } from "../backend.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import { checkBatch, checkGradShape, checkTensor } from "./_util.ts";

/** Flattens every dimension after the first (the batch). */
export class Flatten implements Layer {
  training = true;
  /** Plain in the Jacobian recipe: a reshape. */
  readonly jacobian: JacobianRole = {};
  #inputShape: number[] | null = null;

  /** @param name module path ("flatten", "features.6") */
  constructor(readonly name: string) {}

  /** "flatten (Flatten)" */
  describe(): string {
    return `${this.name || "flatten"} (Flatten)`;
  }

  /** (B, d1, d2, ...) -> (B, d1·d2·...). */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 1) {
      throw new Error(`${this.describe()}: expected input [B,...], got ${fmtShape(inputShape)}`);
    }
    checkBatch(this.describe(), inputShape);
    return [inputShape[0], inputShape.slice(1).reduce((a, b) => a * b, 1)];
  }

  /** @param x (B, ...) f32; @returns a (B, n) view of x */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    const shape = this.outputShape(x.shape);
    this.#inputShape = [...x.shape];
    return x.reshape(shape);
  }

  /** @param dy (B, n) f32; @returns a view of dy with the input's shape */
  backward(dy: Tensor): Tensor {
    if (!this.#inputShape) throw new Error(`${this.describe()}: backward() before forward()`);
    checkTensor(this.describe(), dy, "gradient");
    checkGradShape(this.describe(), dy, this.outputShape(this.#inputShape));
    return dy.reshape(this.#inputShape);
  }

  /** @param tx (B, ...) f32; @returns a (B, n) view of tx */
  jvp(tx: Tensor): Tensor {
    checkTensor(this.describe(), tx, "tangent");
    return tx.reshape(this.outputShape(tx.shape));
  }

  /** None. */
  params(): Param[] {
    return [];
  }

  /** Nothing to free. */
  dispose(): void {}
}
