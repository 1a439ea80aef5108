/**
 * Adversarial attacks as pure functions over GPU buffers,
 * `(rt, model, x, y, options) -> xAdv` (the caller disposes `xAdv`), and robustness curves.
 * Inputs live in [0, 1] (normalisation is inside the model) and ε is in pixel units.
 *
 * @example
 * ```ts
 * import { Runtime } from "@regula/regula/gpu";
 * import { buildModel, modelSpecFromName } from "@regula/regula/models";
 * import { fgsm, pgd } from "@regula/regula/attacks";
 *
 * const rt = await Runtime.create();
 * // (B, 1, 28, 28) -> (B, 10)
 * const model = buildModel(rt, modelSpecFromName("lenet"), { seed: 0 });
 * const x = rt.upload(new Float32Array(2 * 28 * 28).fill(0.5), [2, 1, 28, 28]); // pixels in [0, 1]
 * const y = rt.upload(new Int32Array([3, 7]), [2]);
 * const xFgsm = fgsm(rt, model, x, y, { eps: 0.1 });
 * const xPgd = pgd(rt, model, x, y, { eps: 0.1, steps: 10 });
 * console.log((await xPgd.read()).every((v) => Math.abs(v - 0.5) <= 0.1 + 1e-6)); // true
 * for (const t of [x, y, xFgsm, xPgd]) t.dispose();
 * model.dispose();
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
