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
 * import { Runtime } from "@regula/regula/gpu";
 * import { readLoss, softmaxCrossEntropy } from "@regula/regula/losses";
 *
 * const rt = await Runtime.create();
 * const logits = rt.upload(new Float32Array([2, 0, -1, 0, 1, 0]), [2, 3]); // (B, K)
 * const labels = rt.upload(new Int32Array([0, 1]), [2]);
 * const ce = softmaxCrossEntropy(rt, logits, labels, { labelSmoothing: 0.1 });
 * console.log(await readLoss(ce)); // mean over the batch; ce.dLogits feeds model.backward
 * ce.dispose();
 * logits.dispose();
 * labels.dispose();
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
