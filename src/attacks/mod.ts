/**
 * Adversarial attacks as pure functions over GPU buffers,
 * `(rt, model, x, y, options) -> xAdv` (the caller disposes `xAdv`), and robustness curves.
 * Inputs live in [0, 1] (normalisation is inside the model) and ε is in pixel units.
 *
 * @example
 * ```ts
 * import { pgd } from "./mod.ts";
 * const xAdv = pgd(rt, model, x, y, { eps: 0.1, steps: 40 });
 * ```
 *
 * @module
 */

export type { AttackModel, LabelOptions } from "./common.ts";
export { fgsm, type FgsmOptions } from "./fgsm.ts";
export { pgd, pgdL2, type PgdOptions } from "./pgd.ts";
export { apgd, apgdCheckpoints, type ApgdOptions } from "./apgd.ts";
export { cw, type CwOptions } from "./cw.ts";
export { deepfool, type DeepfoolOptions } from "./deepfool.ts";
export {
  ATTACK_NORMS,
  type AttackName,
  type AttackSettings,
  type EvalData,
  robustness,
  type RobustnessOptions,
  type RobustnessResult,
  runAttack,
  type SanityCheck,
} from "./robustness.ts";
