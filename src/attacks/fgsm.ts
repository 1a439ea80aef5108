/**
 * Fast gradient sign method (Goodfellow, Shlens & Szegedy 2015, "Explaining and harnessing
 * adversarial examples"), torchattacks' `FGSM` semantics: `x' = clip_[0,1](x + ε sign(∇ₓ CE))`,
 * or `x - ε sign(∇ₓ CE(target))` when targeted.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { softmaxCrossEntropy } from "../losses/cross_entropy.ts";
import { runAttackKernel } from "./_kernels.ts";
import {
  type AttackModel,
  checkArgs,
  checkNumber,
  inEvalMode,
  type LabelOptions,
  resolveLabels,
} from "./common.ts";

/** Options of {@linkcode fgsm}. */
export interface FgsmOptions extends LabelOptions {
  /** L∞ radius ε in pixel units (inputs in [0, 1]). */
  eps: number;
}

/**
 * One signed-gradient step of size ε on the cross-entropy of the logits, clipped to [0, 1].
 * @param rt runtime
 * @param model model taking inputs in [0, 1]; set to eval mode during the attack and restored
 * @param x (B, ...) f32 clean inputs in [0, 1] (not modified)
 * @param y (B,) u32/i32 true labels, or null to attack the model's predictions
 * @param opts ε, targeted mode (`target`), `usePredictions`, `seed` (random targets)
 * @returns (B, ...) f32 adversarial inputs; the caller disposes it
 * @example
 * ```ts
 * import { buildModel, fgsm, modelSpecFromName, Runtime } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("lenet"), { seed: 0 });
 * const x = rt.upload(new Float32Array(28 * 28).fill(0.5), [1, 1, 28, 28]); // in [0, 1]
 * const y = rt.upload(new Int32Array([7]), [1]);
 * const xAdv = fgsm(rt, model, x, y, { eps: 0.1 }); // every pixel 0.4, 0.5 or 0.6
 * for (const t of [x, y, xAdv]) t.dispose();
 * model.dispose();
 * ```
 */
export function fgsm(
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  y: Tensor | null,
  opts: FgsmOptions,
): Tensor {
  const op = "fgsm";
  checkArgs(op, x, y);
  checkNumber(op, "eps", opts.eps);
  return inEvalMode(rt, model, () => {
    const { labels, target, owned } = resolveLabels(rt, model, x, y, opts, op);
    const adv = rt.empty(x.shape, "f32", "fgsm adversarial");
    rt.copy(x, adv);
    if (opts.eps > 0) {
      const ce = softmaxCrossEntropy(rt, model.forward(x), target ?? labels);
      const g = model.inputGrad(ce.dLogits!);
      runAttackKernel(rt, "linf_step", { src0: x, src1: g, dst0: adv }, {
        n: x.size,
        eps: opts.eps,
        alpha: target ? -opts.eps : opts.eps,
      }, "elementwise");
      ce.dispose();
    }
    rt.submit();
    for (const t of owned) t.dispose();
    return adv;
  });
}
