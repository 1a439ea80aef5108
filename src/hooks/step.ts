/**
 * The regularizer contract: how a penalty, a projection or a transform plugs into a training
 * step. Every hook is optional; a regularizer implements the ones its kind needs and records
 * GPU work into the current step (no readback). The training loop calls the hooks in this
 * order, once per step:
 *
 * 1. `transformInput(ctx, x)` — input noise: returns the batch the model sees.
 * 2. `beforeForward(ctx)` — weight noise: perturbs the weights (keeping a clean copy).
 * 3. forward, data loss, then `logitsGrad(ctx, logits, dLogits)` — penalties on the output
 *    distribution (confidence penalty) add `∂R/∂logits` into `dLogits` before backward.
 * 4. backward, then `afterBackward(ctx)` — penalties on parameters (L1, L2, soft SVB) and on
 *    the function (Jacobian, determinant, input-gradient norm) add `∂R/∂θ` into each
 *    `param.grad`; the latter run their own passes over the cached forward. A regularizer that
 *    offers `backward(ctx, dLogits)` (the Jacobian penalty) may take over the step's backward
 *    instead: the loop then calls it in place of the model's backward and skips that
 *    regularizer's `afterBackward`, so the data loss's gradient and the penalty's share one
 *    backward pass (the first such regularizer in the list does; the others run as usual).
 * 5. `beforeStep(ctx)` — weight noise restores the clean weights (the gradient taken at the
 *    noisy weights is applied to the clean ones).
 * 6. optimizer step, then `afterStep(ctx)` — projections (hard SVB, max-norm).
 *
 * Hooks that compute a penalty return a one-element f32 tensor holding its value for this step
 * (already multiplied by its coefficient, i.e. what it adds to the loss), owned by the
 * regularizer and valid until its next call; the loop accumulates it on the GPU and reads it
 * back with the loss.
 *
 * Why here, in a folder of its own low in the tree: the contract has one caller, the training
 * loop (src/train), and implementers on two sides of it, the regularizers (src/regularizers) and
 * augmentation (src/data/augment.ts). Each of them imports it, so it sits below all three and
 * imports only types from src/gpu and src/layers; implementing a hook pulls in nothing above the
 * layers. The file is named for what it describes: the hooks of one training step and what they
 * see of it (`StepContext`).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import type { Param } from "../layers/layer.ts";
import type { Sequential } from "../layers/sequential.ts";

/** What a hook sees of the current step. */
export interface StepContext {
  readonly rt: Backend;
  /** The model being trained (a {@linkcode Sequential} root with PyTorch names). */
  readonly model: Sequential;
  /** Its parameters and buffers (`model.params()`), in order. */
  readonly params: readonly Param[];
  /** (B, ...) f32 inputs in [0, 1], as the data pipeline delivered them (after augmentation). */
  readonly x: Tensor;
  /** (B,) i32 class labels. */
  readonly y: Tensor;
  /** Global step, from 0. Random streams are keyed by (seed, step). */
  readonly step: number;
  /** Epoch, from 0. */
  readonly epoch: number;
  /** Steps in one epoch (projections every T steps default to one epoch). */
  readonly stepsPerEpoch: number;
  /** Run seed. */
  readonly seed: number;
}

/** A regularizer that plugs into `train` (see the module doc for the order of the hooks). */
export interface Regularizer {
  /** Short name as on the command line: "l2", "jacobian", "hard-svb". */
  readonly name: string;
  /** Its settings with defaults filled in, recorded in checkpoint metadata. */
  readonly options: Readonly<Record<string, number | string | boolean>>;
  /** @returns the batch the model sees (owned by the regularizer), or `x` itself */
  transformInput?(ctx: StepContext, x: Tensor): Tensor;
  beforeForward?(ctx: StepContext): void;
  /** Adds `∂R/∂logits` into `dLogits` (B, K); @returns the penalty value [1] f32 or null */
  logitsGrad?(ctx: StepContext, logits: Tensor, dLogits: Tensor): Tensor | null;
  /** Adds `∂R/∂θ` into the params' grads; @returns the penalty value [1] f32 or null */
  afterBackward?(ctx: StepContext): Tensor | null;
  /**
   * The step's backward and this regularizer's `afterBackward` in one: accumulates into the
   * params' grads both the model's backward of `dLogits` (the data loss's gradient, as
   * `model.backwardParams(dLogits)` would) and `∂R/∂θ`. Optional; a regularizer with it also
   * offers `afterBackward`, which callers that run their own backward use.
   * @param dLogits (B, K) f32 gradient of the data loss at the logits (not modified)
   * @returns the penalty value [1] f32 or null
   */
  backward?(ctx: StepContext, dLogits: Tensor): Tensor | null;
  beforeStep?(ctx: StepContext): void;
  afterStep?(ctx: StepContext): void;
  /** Frees what the regularizer owns. */
  dispose?(): void;
}
