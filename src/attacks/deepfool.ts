/**
 * DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016, "DeepFool: a simple and accurate method to
 * fool deep neural networks", Alg. 2, multi-class, L2): at each iteration, for every class
 * `k ≠ y`, `w_k = ∇(z_k - z_y)` and `f_k = z_k - z_y`; the closest linearised boundary
 * `l = argmin |f_k| / ||w_k||` gives `r = (|f_l| + 1e-4) w_l / ||w_l||²`; the perturbations
 * accumulate, `r_tot += r`, and the overshoot applies to the accumulated perturbation,
 * `x' = clip_[0,1](x + (1 + overshoot) r_tot)`, as in the authors' code (torchattacks instead
 * applies it to every step). A sample stops once its label changes.
 *
 * Cost: one forward and K input gradients per iteration (one per class, all samples at once).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { runAttackKernel } from "./_kernels.ts";
import {
  type AttackModel,
  checkArgs,
  checkInt,
  checkNumber,
  inEvalMode,
  type LabelOptions,
  resolveLabels,
  sampleSize,
} from "./common.ts";

/** Options of {@linkcode deepfool}. */
export interface DeepfoolOptions extends Omit<LabelOptions, "target"> {
  /** Maximum iterations. Default 50. */
  steps?: number;
  /** Overshoot η. Default 0.02. */
  overshoot?: number;
}

/** Per-sample state columns: best ratio, step coefficient, active. */
const S = 3;

/**
 * DeepFool (untargeted, L2).
 * @param rt runtime
 * @param model model taking inputs in [0, 1]; eval mode during the attack, mode restored
 * @param x (B, ...) f32 clean inputs in [0, 1] (not modified)
 * @param y (B,) u32/i32 labels, or null to use the predictions (the paper's choice)
 * @param opts steps, overshoot, usePredictions
 * @returns (B, ...) f32 adversarial inputs in [0, 1]; the caller disposes it
 */
export function deepfool(
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  y: Tensor | null,
  opts: DeepfoolOptions = {},
): Tensor {
  const op = "deepfool";
  checkArgs(op, x, y);
  if ((opts as { target?: unknown }).target !== undefined) {
    throw new Error(`${op}: DeepFool is untargeted; remove the target option`);
  }
  const steps = opts.steps ?? 50;
  checkInt(op, "steps", steps, 0);
  const overshoot = opts.overshoot ?? 0.02;
  checkNumber(op, "overshoot", overshoot);
  const b = x.shape[0], d = sampleSize(x);
  return inEvalMode(rt, model, () => {
    const { labels, classes: k, owned } = resolveLabels(rt, model, x, y, opts, op);
    const adv = rt.empty(x.shape, "f32", "deepfool x");
    rt.copy(x, adv);
    const rTot = rt.zeros(x.shape, "f32", "deepfool r_tot");
    const wBest = rt.zeros(x.shape, "f32", "deepfool w");
    const dz = rt.empty([b, k], "f32", "deepfool dz");
    const logits = rt.empty([b, k], "f32", "deepfool logits");
    const init = new Float32Array(b * S);
    for (let i = 0; i < b; i++) init[i * S + 2] = 1;
    const state = rt.upload(init, [b, S]);
    for (let it = 0; it < steps; it++) {
      rt.copy(model.forward(adv), logits);
      runAttackKernel(rt, "deepfool_begin", { src1: logits, labels, state }, { b, k, s: S }, "row");
      for (let c = 0; c < k; c++) {
        runAttackKernel(rt, "onehot_diff", { dst0: dz, labels, state }, {
          n: b * k,
          k,
          s: S,
          c0: c,
        }, "elementwise");
        const w = model.inputGrad(dz);
        runAttackKernel(
          rt,
          "deepfool_cand",
          { src1: w, rows: logits, labels, dst0: wBest, state },
          {
            b,
            d,
            k,
            s: S,
            c0: c,
          },
          "sample",
        );
      }
      runAttackKernel(rt, "deepfool_step", { src0: x, dst0: adv, dst1: wBest, dst2: rTot, state }, {
        n: x.size,
        d,
        s: S,
        alpha: 1 + overshoot,
      }, "elementwise");
      rt.submit();
    }
    for (const t of [rTot, wBest, dz, logits, state, ...owned]) t.dispose();
    return adv;
  });
}
