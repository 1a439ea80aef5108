/**
 * Carlini–Wagner L2 attack (Carlini & Wagner 2017, "Towards evaluating the robustness of neural
 * networks", §V.A): minimise `||x' - x||₂² + c f(x')` over `x' = (tanh w + 1) / 2` (so x' stays in
 * [0, 1]) with Adam, `f = max(z_y - max_{i≠y} z_i, -κ)` (targeted: `max(max_{i≠t} z_i - z_t, -κ)`),
 * the "other" maximum taken over `z - 1e4·onehot(y)` as in torchattacks' `CW`, and a per-sample
 * binary search over c (×10 until the first success, then bisection), keeping the smallest
 * successful perturbation.
 *
 * Differences from torchattacks (which has no binary search): `w₀ = atanh((2x - 1)(1 - 1e-6))`
 * (finite at pixels 0 and 1, as Carlini's code, where torchattacks' atanh gives ±∞); each search
 * step restarts Adam from the clean input (Carlini's code). Samples never fooled come back
 * unchanged.
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
  lossInputGrad,
  resolveLabels,
  sampleSize,
} from "./common.ts";

/** Options of {@linkcode cw}. */
export interface CwOptions extends LabelOptions {
  /** Initial trade-off constant c. Default 1e-2 (1 in torchattacks, 1e-3 in Carlini's code). */
  c?: number;
  /** Confidence κ. Default 0. */
  kappa?: number;
  /** Adam iterations per search step. Default 100. */
  steps?: number;
  /** Binary-search steps over c. Default 5 (1: fixed c, as torchattacks). */
  searchSteps?: number;
  /** Adam learning rate. Default 0.01. */
  lr?: number;
}

/** Per-sample state columns: c, lo, hi, best squared L2, hit in this search step. */
const S = 5;

/**
 * Carlini–Wagner L2.
 * @param rt runtime
 * @param model model taking inputs in [0, 1]; eval mode during the attack, mode restored
 * @param x (B, ...) f32 clean inputs in [0, 1] (not modified)
 * @param y (B,) u32/i32 labels, or null to attack the predictions
 * @param opts c, κ, steps, searchSteps, lr, target, usePredictions, seed
 * @returns (B, ...) f32 adversarial inputs in [0, 1] (the clean input where no c succeeded);
 *   the caller disposes it
 * @example
 * ```ts
 * const xAdv = cw(rt, model, x, y, { steps: 200, searchSteps: 6 });
 * ```
 */
export function cw(
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  y: Tensor | null,
  opts: CwOptions = {},
): Tensor {
  const op = "cw";
  checkArgs(op, x, y);
  const c0 = opts.c ?? 1e-2;
  checkNumber(op, "c", c0, true);
  const kappa = opts.kappa ?? 0;
  checkNumber(op, "kappa", kappa);
  const steps = opts.steps ?? 100;
  checkInt(op, "steps", steps, 1);
  const search = opts.searchSteps ?? 5;
  checkInt(op, "searchSteps", search, 1);
  const lr = opts.lr ?? 0.01;
  checkNumber(op, "lr", lr, true);
  const b = x.shape[0], d = sampleSize(x);
  return inEvalMode(rt, model, () => {
    const { labels, target, classes, owned } = resolveLabels(rt, model, x, y, opts, op);
    const goal = target ?? labels;
    const scratch = {
      dLogits: rt.empty([b, classes], "f32", "cw dLogits"),
      rows: rt.empty([b, 2], "f32", "cw rows"),
    };
    const w = rt.empty(x.shape, "f32", "cw w");
    const m = rt.empty(x.shape, "f32", "cw adam m");
    const v = rt.empty(x.shape, "f32", "cw adam v");
    const xp = rt.empty(x.shape, "f32", "cw x'");
    const best = rt.empty(x.shape, "f32", "cw best");
    rt.copy(x, best);
    const init = new Float32Array(b * S);
    for (let i = 0; i < b; i++) init.set([c0, 0, 1e10, 3.4e38, 0], i * S);
    const state = rt.upload(init, [b, S]);
    const n = x.size;
    const evaluate = (grad: boolean) => {
      const g = lossInputGrad(rt, model, xp, goal, {
        loss: 2,
        sign: 1,
        targeted: target !== null,
        kappa,
        cState: state,
        cStride: S,
        scratch,
        grad,
      });
      runAttackKernel(
        rt,
        "cw_track",
        { src0: x, src1: xp, dst0: best, state, rows: scratch.rows },
        {
          b,
          d,
          s: S,
        },
        "sample",
      );
      return g;
    };
    for (let outer = 0; outer < search; outer++) {
      runAttackKernel(
        rt,
        "atanh_init",
        { src0: x, dst0: w, dst1: m, dst2: v },
        { n },
        "elementwise",
      );
      runAttackKernel(rt, "tanh_map", { src1: w, dst0: xp }, { n }, "elementwise");
      rt.submit();
      for (let t = 1; t <= steps; t++) {
        const g = evaluate(true)!;
        runAttackKernel(rt, "cw_step", { src0: x, src1: g, dst0: w, dst1: m, dst2: v }, {
          n,
          alpha: lr,
          f0: 1 - 0.9 ** t,
          f1: 1 - 0.999 ** t,
        }, "elementwise");
        runAttackKernel(rt, "tanh_map", { src1: w, dst0: xp }, { n }, "elementwise");
        rt.submit();
      }
      evaluate(false);
      runAttackKernel(rt, "cw_search", { state }, { b, s: S }, "row");
      rt.submit();
    }
    for (const t of [w, m, v, xp, state, scratch.dLogits, scratch.rows, ...owned]) t.dispose();
    return best;
  });
}
