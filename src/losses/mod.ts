/**
 * Training losses with their gradients, fused on the GPU (`shaders/loss.wgsl`): softmax
 * cross-entropy on logits (class labels or soft targets, label smoothing), mean squared error,
 * and the number of correct argmax predictions. PyTorch 1.13 semantics; each returns the reduced
 * loss and its gradient, ready to feed a model's `backward`.
 *
 * They sit low in the tree (they need only src/gpu) because the training loop, the attacks and
 * the input-gradient-norm regularizer all differentiate them.
 *
 * @example
 * ```ts
 * import { readLoss, softmaxCrossEntropy } from "./mod.ts";
 * const ce = softmaxCrossEntropy(rt, logits, labels, { labelSmoothing: 0.1 });
 * model.backward(ce.dLogits!);
 * console.log(await readLoss(ce));
 * ce.dispose();
 * ```
 *
 * @module
 */

export type { Reduction } from "./_common.ts";
export {
  type CrossEntropyOptions,
  type CrossEntropyOutputs,
  type CrossEntropyResult,
  readLoss,
  softmaxCrossEntropy,
} from "./cross_entropy.ts";
export { mse, type MseOptions, type MseOutputs, type MseResult } from "./mse.ts";
export { accuracyCount, type AccuracyOptions } from "./accuracy.ts";
