/**
 * Projected gradient descent on the cross-entropy (Madry, Makelov, Schmidt, Tsipras & Vladu
 * 2018, "Towards deep learning models resistant to adversarial attacks"), in the L∞ and the L2
 * ball, with random starts and restarts that keep each sample's worst case.
 *
 * Semantics follow torchattacks' `PGD` / `PGDL2` (Kim 2020, torchattacks/attacks/pgd.py,
 * pgdl2.py): mean cross-entropy of the logits; L∞ step `x + α sign(g)`, then
 * `x0 + clip(x - x0, -ε, ε)` clipped to [0, 1]; L2 step `x + α g / ||g||`, projection by
 * `min(1, ε / ||δ||)`, clip to [0, 1]. Differences, on purpose: the L2 gradient norm has a
 * 1e-12 floor (`max`) where torchattacks adds 1e-10; the L2 random start is uniform in the ball
 * (radius `ε u^(1/D)`) where torchattacks draws the radius `ε u`; restarts (absent from
 * torchattacks' PGD) keep per sample a successful restart over an unsuccessful one and, among
 * equals, the higher loss.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { randomNormal, randomUniform } from "../ops/random.ts";
import { softmaxCrossEntropy } from "../losses/cross_entropy.ts";
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

/** Options of {@linkcode pgd} and {@linkcode pgdL2}. */
export interface PgdOptions extends LabelOptions {
  /** Radius ε of the ball (pixel units; L∞ for `pgd`, L2 for `pgdL2`). */
  eps: number;
  /** Step size α. Default `2.5 ε / steps` (Madry et al.). */
  alpha?: number;
  /** Iterations per restart. Default 10. */
  steps?: number;
  /** Start from a random point of the ball (default true); false starts at x. */
  randomStart?: boolean;
  /** Independent runs; each sample keeps its worst case. Default 1. */
  restarts?: number;
}

/**
 * PGD in the L∞ ball of radius ε.
 * @param rt runtime
 * @param model model taking inputs in [0, 1]; eval mode during the attack, mode restored
 * @param x (B, ...) f32 clean inputs in [0, 1] (not modified)
 * @param y (B,) u32/i32 true labels, or null to attack the predictions
 * @param opts ε, α, steps, randomStart, restarts, target, usePredictions, seed
 * @returns (B, ...) f32 adversarial inputs, `||x' - x||∞ <= ε`, in [0, 1]; the caller disposes it
 * @example
 * ```ts
 * import { buildModel, modelSpecFromName, pgd, Runtime } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("lenet"), { seed: 0 });
 * const x = rt.upload(new Float32Array(28 * 28).fill(0.5), [1, 1, 28, 28]); // in [0, 1]
 * const y = rt.upload(new Int32Array([7]), [1]);
 * const xAdv = pgd(rt, model, x, y, { eps: 8 / 255, alpha: 2 / 255, steps: 40 }); // |x' - x| <= ε
 * for (const t of [x, y, xAdv]) t.dispose();
 * model.dispose();
 * ```
 */
export function pgd(
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  y: Tensor | null,
  opts: PgdOptions,
): Tensor {
  return projected("pgd", "linf", rt, model, x, y, opts);
}

/**
 * PGD in the L2 ball of radius ε (per sample).
 * @param rt runtime
 * @param model model taking inputs in [0, 1]; eval mode during the attack, mode restored
 * @param x (B, ...) f32 clean inputs in [0, 1] (not modified)
 * @param y (B,) u32/i32 true labels, or null to attack the predictions
 * @param opts ε, α, steps, randomStart, restarts, target, usePredictions, seed
 * @returns (B, ...) f32 adversarial inputs, `||x' - x||₂ <= ε` per sample, in [0, 1]; the
 *   caller disposes it
 */
export function pgdL2(
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  y: Tensor | null,
  opts: PgdOptions,
): Tensor {
  return projected("pgdL2", "l2", rt, model, x, y, opts);
}

function projected(
  op: string,
  norm: "linf" | "l2",
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  y: Tensor | null,
  opts: PgdOptions,
): Tensor {
  checkArgs(op, x, y);
  const eps = opts.eps;
  checkNumber(op, "eps", eps);
  const steps = opts.steps ?? 10;
  checkInt(op, "steps", steps, 0);
  const restarts = opts.restarts ?? 1;
  checkInt(op, "restarts", restarts, 1);
  const alpha = opts.alpha ?? (steps > 0 ? 2.5 * eps / steps : 0);
  checkNumber(op, "alpha", alpha);
  const randomStart = opts.randomStart ?? true;
  const seed = opts.seed ?? 0;
  const b = x.shape[0], d = sampleSize(x);
  return inEvalMode(rt, model, () => {
    const { labels, target, classes, owned } = resolveLabels(rt, model, x, y, opts, op);
    const goal = target ?? labels;
    const dir = target ? -1 : 1;
    const adv = rt.empty(x.shape, "f32", `${op} adversarial`);
    let best: Tensor | null = null, bestScore: Tensor | null = null;
    const dLogits = rt.empty([b, classes], "f32", `${op} dLogits`);
    const rows = rt.empty([b, 2], "f32", `${op} rows`);
    if (restarts > 1) {
      best = rt.empty(x.shape, "f32", `${op} best`);
      bestScore = rt.upload(
        Float32Array.from({ length: 2 * b }, (_, i) => (i % 2 ? -1 : -3.4e38)),
        [b, 2],
      );
    }
    let ce: ReturnType<typeof softmaxCrossEntropy> | null = null;
    for (let r = 0; r < restarts; r++) {
      if (!randomStart || eps === 0) rt.copy(x, adv);
      else if (norm === "linf") {
        const u = randomUniform(rt, x.shape, { seed, counter: 2 * r, low: -eps, high: eps });
        runAttackKernel(
          rt,
          "add_clamp",
          { src0: x, src1: u, dst0: adv },
          { n: x.size },
          "elementwise",
        );
        u.dispose();
      } else {
        const n = randomNormal(rt, x.shape, { seed, counter: 2 * r });
        const u = randomUniform(rt, [b], { seed, counter: 2 * r + 1 });
        runAttackKernel(
          rt,
          "l2_init",
          { src0: x, src1: n, rows: u, dst0: adv },
          { b, d, eps },
          "sample",
        );
        n.dispose();
        u.dispose();
      }
      rt.submit();
      for (let i = 0; i < steps && eps > 0; i++) {
        ce = softmaxCrossEntropy(rt, model.forward(adv), goal, ce ? { out: ce } : {});
        const g = model.inputGrad(ce.dLogits!);
        if (norm === "linf") {
          runAttackKernel(rt, "linf_step", { src0: x, src1: g, dst0: adv }, {
            n: x.size,
            eps,
            alpha: dir * alpha,
          }, "elementwise");
        } else {
          runAttackKernel(rt, "l2_step", { src0: x, src1: g, dst0: adv }, {
            b,
            d,
            eps,
            alpha: dir * alpha,
          }, "sample");
        }
        rt.submit();
      }
      if (best && bestScore) {
        lossInputGrad(rt, model, adv, goal, {
          loss: 0,
          sign: dir,
          targeted: target !== null,
          scratch: { dLogits, rows },
          grad: false,
        });
        runAttackKernel(rt, "select_best", { dst0: adv, dst1: best, state: bestScore, rows }, {
          b,
          d,
          s: 2,
          c0: 0,
          c1: 1,
        }, "sample");
        rt.submit();
      }
    }
    ce?.dispose();
    dLogits.dispose();
    rows.dispose();
    bestScore?.dispose();
    for (const t of owned) t.dispose();
    if (best) {
      adv.dispose();
      return best;
    }
    return adv;
  });
}
