/**
 * Regularizers as pure functions over GPU buffers, each formula documented
 * next to its code: penalties on parameters (L1, L2, elastic net, soft SVB,
 * spectral), penalties on the function (Jacobian, Jacobian determinant,
 * confidence, input-gradient norm), projections after the optimizer step
 * (hard SVB, max-norm), and transforms of data and targets (noise, label
 * smoothing); each also as a {@linkcode Regularizer} hook for `train`, and
 * {@linkcode parseRegularizers} for the CLI's `--reg name:option=value`.
 *
 * @example
 * ```ts
 * import { Runtime } from "@regula/regula/gpu";
 * import { buildModel, modelSpecFromName } from "@regula/regula/models";
 * import { jacobianPenalty, l2Penalty } from "@regula/regula/regularizers";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * const x = rt.upload(new Float32Array([0.9, 1.1, -1, 1]), [2, 2]); // (B, 2)
 * const jr = jacobianPenalty(rt, model, x, { lambda: 0.01, nproj: -1 }); // adds into the grads
 * const l2 = l2Penalty(rt, model.params(), { lambda: 5e-4 });
 * console.log(await jr.value.read(), await l2.value.read()); // [1] each
 * jr.dispose();
 * l2.value.dispose();
 * x.dispose();
 * model.dispose();
 * ```
 *
 * @module
 */

export type { Regularizer, StepContext } from "../hooks/step.ts";
export * from "./penalties.ts";
export * from "./projections.ts";
export * from "./noise.ts";
export * from "./smoothing.ts";
export * from "./jacobian.ts";
export * from "./determinant.ts";
export * from "./confidence.ts";
export * from "./gradient_norm.ts";
export * from "./registry.ts";
