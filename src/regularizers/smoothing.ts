/**
 * Label smoothing (Szegedy et al. 2016, "Rethinking the Inception architecture", sec. 7) as a
 * regularizer that the training loop can be handed like any other. The cross-entropy of
 * src/losses/cross_entropy.ts already implements it with PyTorch semantics
 * (`torch.nn.CrossEntropyLoss(label_smoothing=ε)`: the target is `(1 − ε) one_hot + ε / K` on
 * every class), so this regularizer has no hooks: it carries `labelSmoothing`, which `train`
 * reads (see {@linkcode labelSmoothingOf}) and passes to `softmaxCrossEntropy`.
 *
 * @module
 */

import type { Regularizer } from "../hooks/step.ts";
import { checkCoef } from "./_params.ts";

/** A regularizer that asks the training loop for label smoothing ε. */
export interface LabelSmoothingRegularizer extends Regularizer {
  /** ε in [0, 1]: the training cross-entropy uses targets `(1 − ε) one_hot + ε / K`. */
  readonly labelSmoothing: number;
}

/**
 * Label smoothing for `train`.
 * @param opts eps (default 0.1, Szegedy et al.'s value)
 * @returns a Regularizer named "label-smoothing" with a `labelSmoothing` field and no hooks
 */
export function labelSmoothingRegularizer(opts: { eps?: number } = {}): LabelSmoothingRegularizer {
  const eps = opts.eps ?? 0.1;
  checkCoef("labelSmoothingRegularizer", "eps", eps);
  if (eps > 1) throw new Error(`labelSmoothingRegularizer: eps must be in [0, 1], got ${eps}`);
  return { name: "label-smoothing", options: { eps }, labelSmoothing: eps };
}

/**
 * The label smoothing the regularizers ask for: the `labelSmoothing` of the one that has it,
 * undefined if none does.
 * @param regs the run's regularizers
 * @returns ε or undefined
 * @throws Error if two regularizers ask for label smoothing
 * @example
 * ```ts
 * const eps = options.labelSmoothing ?? labelSmoothingOf(regs); // in train
 * ```
 */
export function labelSmoothingOf(regs: readonly Regularizer[]): number | undefined {
  const asking = regs.filter((r) =>
    typeof (r as Partial<LabelSmoothingRegularizer>).labelSmoothing === "number"
  ) as LabelSmoothingRegularizer[];
  if (asking.length > 1) {
    throw new Error(
      `Label smoothing is asked for by ${asking.map((r) => `'${r.name}'`).join(" and ")}; give one`,
    );
  }
  return asking[0]?.labelSmoothing;
}
