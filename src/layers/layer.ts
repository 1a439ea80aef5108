/**
 * The layer contract (see DESIGN.md, "The layer contract"). Every layer offers
 * three passes over GPU buffers:
 *
 * 1. `forward(x)`: computes `y`, caching what `backward` and `jvp` need
 *    (the input, pre-activations, argmax indices, masks).
 * 2. `backward(dy)`: returns `dx = Aᵀ dy` (a vector-Jacobian product) and
 *    *accumulates* `dθ` into each parameter's `grad`.
 * 3. `jvp(tx)`: returns `A tx`, the input Jacobian at the cached point applied
 *    to a tangent (Linear/Conv: forward without bias; ReLU/MaxPool/Dropout: a
 *    masked copy).
 *
 * Ownership: the tensors a layer returns belong to the layer and stay valid
 * until the same pass is called again; a caller that needs to keep one copies
 * it. A step therefore allocates nothing after the first call at a given
 * batch size.
 *
 * @module
 */

import type { Tensor } from "../gpu/tensor.ts";

/** A trainable tensor and its gradient accumulator, named as in PyTorch's `state_dict`. */
export interface Param {
  /** Full `state_dict` name, e.g. "conv1.weight", "layer1.0.bn1.running_mean". */
  name: string;
  value: Tensor;
  /** Same shape as `value`; absent for buffers that are not trained (running stats). */
  grad?: Tensor;
  /** "weight" tensors are penalised by default; "bias" and "buffer" are not. */
  kind: "weight" | "bias" | "buffer";
}

/** A differentiable layer. */
export interface Layer {
  /** Module path in the model ("features.0", "fc1"); "" for the root. */
  readonly name: string;
  /** True in training mode (dropout active, BatchNorm uses batch statistics). */
  training: boolean;
  /** Output shape for an input shape (batch first); throws naming the layer on a mismatch. */
  outputShape(inputShape: readonly number[]): number[];
  /** @param x input batch; @returns layer-owned output */
  forward(x: Tensor): Tensor;
  /** @param dy gradient of the output; @returns layer-owned input gradient; accumulates param grads */
  backward(dy: Tensor): Tensor;
  /** @param tx tangent of the input; @returns layer-owned tangent of the output */
  jvp(tx: Tensor): Tensor;
  /** Parameters and buffers, PyTorch names and layouts. */
  params(): Param[];
  /** Frees every tensor the layer owns. */
  dispose(): void;
}
