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
 * A layer that the penalties on the function (Jacobian, Jacobian determinant,
 * input-gradient norm) may differentiate through also says how it takes part
 * in their exact gradient: {@linkcode Layer.jacobian}, a
 * {@linkcode JacobianRole}.
 *
 * @module
 */

import type { Tensor } from "../backend.ts";

/** A trainable tensor and its gradient accumulator, named as in PyTorch's `state_dict`. */
export interface Param {
  /** Full `state_dict` name, e.g. "conv1.weight", "layer1.0.bn1.running_mean". */
  name: string;
  value: Tensor;
  /** Same shape as `value`; absent for buffers that are not trained (running stats). */
  grad?: Tensor;
  /** "weight" tensors are penalised by default; "bias" and "buffer" are not. */
  kind: "weight" | "bias" | "buffer";
  /**
   * A per-unit scale stored with singleton dimensions (weight normalization's `weight_g`,
   * (O, 1) or (O, 1, 1, 1)): selected like a one-dimensional weight (BatchNorm γ), not as a
   * matrix, by the regularizers; initialized to the row norms of the matching `weight_v`.
   */
  scale?: boolean;
  /**
   * An elementwise affine scale of a normalization layer (LayerNorm's γ, shaped like its
   * `normalized_shape`, possibly several dimensions): selected like a one-dimensional weight
   * (BatchNorm γ), not as a matrix, by the regularizers, and initialized to 1 (its bias to 0).
   */
  elementwise?: boolean;
}

/**
 * How a layer takes part in the exact parameter gradient of the penalties on the function
 * (DESIGN.md, "Jacobian regularization"; run by src/regularizers/_chain.ts). The model is seen as
 * a chain of leaf layers `h_k = f_k(h_{k-1})` with input Jacobians `A_k`; for a penalty on
 * `u = Jᵀ v` the recipe needs, per leaf, the backward signal `b_k` at its output (from
 * `b_{k-1} = A_kᵀ b_k`), the tangent `r_{k-1}` at its input (from `r_k = A_k r_{k-1}`, the
 * layer's `jvp`), and whatever depends on both, then one ordinary `backward` down to the lowest
 * layer with trained parameters.
 *
 * Every member is optional: `{}` is a layer whose `backward` touches no parameters and whose
 * Jacobian is locally constant in its input (ReLU, LeakyReLU, pools, Dropout, Flatten,
 * Normalize), so only its `backward` and `jvp` are called. A layer without a role is refused,
 * naming it.
 */
export interface JacobianRole {
  /**
   * Containers (Sequential): the layers it chains, in forward order; the chain is made of their
   * leaves and the other members are not used.
   */
  readonly children?: readonly Layer[];
  /**
   * Sums of parallel paths (a residual block's main path and its shortcut): the layer computes
   * `y = Σ_j branches[j](x)`, every branch fed the same input; an empty Sequential is the
   * identity (the skip connection). The chain runs each pass down every branch and adds what
   * arrives at the shared input; the other members are not used.
   */
  readonly branches?: readonly Layer[];
  /**
   * Throws, naming the layer and what to do, where the layer cannot take part at the point the
   * next forward will take. Called before every evaluation of a penalty.
   * @param op the penalty's name, to start the message with
   */
  check?(op: string): void;
  /**
   * `b_{k-1} = A_kᵀ b_k` without touching any parameter gradient; absent: `backward`, which for
   * such a layer has no parameters to accumulate. The result is read again during the tangent
   * pass, so it must not be the buffer `jvp` returns.
   * @param b the backward signal at the output (like the output)
   * @returns layer-owned signal at the input, valid until the next call
   */
  vjp?(b: Tensor): Tensor;
  /**
   * The terms that need both signals, called once per tangent pass with `b = b_k` (from the last
   * `vjp` pass) and `r = r_{k-1}`, before `jvp(r)`. Adds into the parameter gradients what
   * depends on the parameters through `A_k` itself (Linear, Conv2d: `dW += b ⊗ r`, the ordinary
   * weight-gradient kernel without the bias term; eval-mode BatchNorm: `dγ += Σ b r / σ`;
   * training-mode BatchNorm: `dγ += Σ b ⊙ P r`), and
   * returns what depends on the primal input through `A_k`, as a gradient at the layer's input
   * that the final backward carries down (curved activations: `σ''(a) ⊙ b ⊙ r`), or null.
   * @param b (like the output) f32 backward signal
   * @param r (like the input) f32 tangent
   * @returns layer-owned tensor shaped like the input, valid until the next call of `tangent`
   *   (the chain reads it after the layer's final `backward`, so no other method may write it);
   *   or null
   */
  tangent?(b: Tensor, r: Tensor): Tensor | null;
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
  /**
   * How the layer takes part in the exact gradient of the Jacobian penalties; absent: those
   * penalties refuse the layer, naming it.
   */
  readonly jacobian?: JacobianRole;
  /** Frees every tensor the layer owns. */
  dispose(): void;
}
