/**
 * Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
 * of diverse parameter-free attacks", Alg. 1) in the L∞ ball with the cross-entropy (APGD-CE) or
 * the difference-of-logits-ratio loss (APGD-DLR), following the step-size schedule and
 * checkpoints of the authors' `autoattack/autopgd_base.py`:
 *
 * - start `x0 + ε t / max|t|`, `t ~ U(-1, 1)` per sample, clipped to [0, 1]; step size `η = 2ε`;
 * - momentum step `z = P(x + η sign g)`, `x ← P(x + 0.75 (z - x) + 0.25 (x - x_prev))` (plain
 *   step first);
 * - checkpoints after `k₀ = ⌈0.22 N⌉` iterations, then every `k = max(k - ⌈0.03 N⌉, ⌈0.06 N⌉)`
 *   (integer parts as in autopgd_base.py): a sample halves η and restarts from its best-loss
 *   point (and its gradient) when its loss went up in at most 75% of the iterations since the
 *   last checkpoint, or when η was not halved at the last checkpoint and the best loss has not
 *   improved since;
 * - restarts: each sample keeps a successful restart's point (or the highest-loss one).
 *
 * Differences: the loss-increase count covers exactly the iterations since the last checkpoint
 * (autopgd_base.py's window is shifted by one iteration); a sample that is never fooled returns
 * its highest-loss point where autopgd_base.py returns the clean input (same accuracy).
 * Targeted: cross-entropy toward the target (autopgd_base.py's "ce-targeted" sign); DLR is
 * untargeted only.
 *
 * Everything is per sample on the GPU; the checkpoint iterations are fixed in advance, so no
 * decision needs a read-back.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { randomUniform } from "../ops/random.ts";
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

/** Options of {@linkcode apgd}. */
export interface ApgdOptions extends LabelOptions {
  /** L∞ radius ε (pixel units). */
  eps: number;
  /** Iterations N per restart. Default 100. */
  steps?: number;
  /** Independent restarts. Default 1. */
  restarts?: number;
  /** "ce" (default) or "dlr". */
  loss?: "ce" | "dlr";
  /** Fraction ρ of loss increases below which the step size is halved. Default 0.75. */
  rho?: number;
  /** Start from a random point of the ball (default true); false starts at x (tests, parity). */
  randomStart?: boolean;
}

/** Per-sample state columns (see shaders/attacks.wgsl, APGD state columns). */
const S = 8;

/**
 * The checkpoint iterations of autopgd_base.py for N iterations: the 0-based iterations after
 * which the check runs, each with its window length k.
 * @param n iterations N
 * @returns `[iteration, k]` pairs
 */
export function apgdCheckpoints(n: number): [number, number][] {
  const n2 = Math.max(Math.floor(0.22 * n), 1);
  const nMin = Math.max(Math.floor(0.06 * n), 1);
  const decr = Math.max(Math.floor(0.03 * n), 1);
  const out: [number, number][] = [];
  let k = n2, count = 0;
  for (let i = 0; i < n; i++) {
    if (++count === k) {
      out.push([i, k]);
      count = 0;
      k = Math.max(k - decr, nMin);
    }
  }
  return out;
}

/**
 * APGD-CE / APGD-DLR in the L∞ ball.
 * @param rt runtime
 * @param model model taking inputs in [0, 1]; eval mode during the attack, mode restored
 * @param x (B, ...) f32 clean inputs in [0, 1] (not modified)
 * @param y (B,) u32/i32 labels, or null to attack the predictions
 * @param opts ε, steps, restarts, loss, ρ, target, usePredictions, seed
 * @returns (B, ...) f32 adversarial inputs within ε of x, in [0, 1]; the caller disposes it
 * @example
 * ```ts
 * const xAdv = apgd(rt, model, x, y, { eps: 8 / 255, steps: 100, loss: "dlr" });
 * ```
 */
export function apgd(
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  y: Tensor | null,
  opts: ApgdOptions,
): Tensor {
  const op = `apgd-${opts.loss ?? "ce"}`;
  checkArgs(op, x, y);
  const eps = opts.eps;
  checkNumber(op, "eps", eps);
  const steps = opts.steps ?? 100;
  checkInt(op, "steps", steps, 1);
  const restarts = opts.restarts ?? 1;
  checkInt(op, "restarts", restarts, 1);
  const rho = opts.rho ?? 0.75;
  checkNumber(op, "rho", rho);
  const lossKind = opts.loss ?? "ce";
  if (lossKind !== "ce" && lossKind !== "dlr") {
    throw new Error(`${op}: loss must be "ce" or "dlr", got "${lossKind}"`);
  }
  if (lossKind === "dlr" && opts.target !== undefined) {
    throw new Error(`${op}: the DLR loss is untargeted here; use loss "ce" for a targeted APGD`);
  }
  const b = x.shape[0], d = sampleSize(x);
  const checks = new Map(apgdCheckpoints(steps));
  return inEvalMode(rt, model, () => {
    const { labels, target, classes, owned } = resolveLabels(rt, model, x, y, opts, op);
    const goal = target ?? labels;
    const sign = target ? -1 : 1;
    const loss = lossKind === "ce" ? 0 : 1;
    const scratch = {
      dLogits: rt.empty([b, classes], "f32", "apgd dLogits"),
      rows: rt.empty([b, 2], "f32", "apgd rows"),
    };
    const adv = rt.empty(x.shape, "f32", "apgd x");
    const old = rt.empty(x.shape, "f32", "apgd x_old");
    const grad = rt.empty(x.shape, "f32", "apgd grad");
    const xBest = rt.empty(x.shape, "f32", "apgd x_best");
    const gBest = rt.empty(x.shape, "f32", "apgd grad_best");
    const xHit = rt.empty(x.shape, "f32", "apgd x_best_adv");
    const state = rt.empty([b, S], "f32", "apgd state");
    const out = restarts > 1 ? rt.empty(x.shape, "f32", "apgd best") : null;
    const outScore = restarts > 1
      ? rt.upload(Float32Array.from({ length: 2 * b }, (_, i) => (i % 2 ? -1 : -3.4e38)), [b, 2])
      : null;
    const init = new Float32Array(b * S);
    for (let i = 0; i < b; i++) {
      init.set([2 * eps, -3.4e38, 3.4e38, 0, 0, 1, 0, 0], i * S);
    }
    const gradAt = () => {
      const g = lossInputGrad(rt, model, adv, goal, {
        loss,
        sign,
        targeted: target !== null,
        scratch,
      })!;
      rt.copy(g, grad);
    };
    const track = () =>
      runAttackKernel(
        rt,
        "apgd_track",
        {
          src0: adv,
          src1: grad,
          dst0: xBest,
          dst1: gBest,
          dst2: xHit,
          state,
          rows: scratch.rows,
        },
        { b, d, s: S },
        "sample",
      );
    for (let r = 0; r < restarts; r++) {
      rt.write(state, init);
      if (eps > 0 && (opts.randomStart ?? true)) {
        const t = randomUniform(rt, x.shape, {
          seed: opts.seed ?? 0,
          counter: r,
          low: -1,
          high: 1,
        });
        runAttackKernel(rt, "linf_init", { src0: x, src1: t, dst0: adv }, { b, d, eps }, "sample");
        t.dispose();
      } else rt.copy(x, adv);
      rt.submit();
      rt.copy(adv, xBest);
      rt.copy(adv, xHit);
      gradAt();
      rt.copy(grad, gBest);
      track();
      rt.submit();
      for (let i = 0; i < steps; i++) {
        runAttackKernel(rt, "apgd_step", { src0: x, src1: grad, dst0: adv, dst1: old, state }, {
          n: x.size,
          d,
          s: S,
          eps,
          alpha: i > 0 ? 0.75 : 1,
        }, "elementwise");
        gradAt();
        track();
        const k = checks.get(i);
        if (k !== undefined) {
          runAttackKernel(
            rt,
            "apgd_check",
            {
              src0: xBest,
              src1: gBest,
              dst0: adv,
              dst1: grad,
              state,
            },
            { b, d, s: S, f0: rho * k },
            "sample",
          );
        }
        rt.submit();
      }
      // Result of this restart: the latest fooling point if any, else the best-loss point
      // (select_best against a score no candidate beats unless it is a hit).
      const never = rt.upload(
        Float32Array.from({ length: 2 * b }, (_, i) => (i % 2 ? 0 : 3.4e38)),
        [b, 2],
      );
      runAttackKernel(rt, "select_best", { dst0: xHit, dst1: xBest, state: never, rows: state }, {
        b,
        d,
        s: S,
        c0: 1,
        c1: 6,
      }, "sample");
      rt.submit();
      never.dispose();
      if (out && outScore) {
        runAttackKernel(
          rt,
          "select_best",
          {
            dst0: xBest,
            dst1: out,
            state: outScore,
            rows: state,
          },
          { b, d, s: S, c0: 1, c1: 6 },
          "sample",
        );
        rt.submit();
      }
    }
    for (const t of [adv, old, grad, gBest, xHit, state, scratch.dLogits, scratch.rows]) {
      t.dispose();
    }
    outScore?.dispose();
    for (const t of owned) t.dispose();
    if (out) {
      xBest.dispose();
      return out;
    }
    return xBest;
  });
}
