/**
 * Robustness evaluation: accuracy under a list of attacks as a function of ε and of the number
 * of iterations, the per-sample worst case across attacks, and the sanity checks of Carlini et
 * al. 2019 ("On evaluating adversarial robustness", §5: iterative attacks beat single-step ones,
 * accuracy falls as ε grows and reaches about 0 when the ball covers the whole box, and more
 * iterations or restarts leave the verdict unchanged), reported with the result rather than
 * asserted, so a masked-gradient model is flagged instead of praised.
 *
 * ε-bounded attacks (fgsm, pgd, pgd-l2, apgd-ce, apgd-dlr) run once per ε. The minimum-norm
 * attacks (cw, deepfool; L2) run once; a sample counts as robust at ε when the attack failed or
 * needed an L2 perturbation larger than ε. All attacks of one evaluation share a threat model
 * (`norm`). Read-backs happen once per attack and batch (predictions, and the perturbation norms
 * of minimum-norm attacks), never inside an attack.
 *
 * @module
 */

import { fittingBatchSize } from "../layers/memory.ts";
import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { type AttackModel, checkInt } from "./common.ts";
import { fgsm } from "./fgsm.ts";
import { pgd, pgdL2 } from "./pgd.ts";
import { apgd } from "./apgd.ts";
import { cw } from "./cw.ts";
import { deepfool } from "./deepfool.ts";

/** Attack names understood by {@linkcode robustness}. */
export type AttackName = "fgsm" | "pgd" | "pgd-l2" | "apgd-ce" | "apgd-dlr" | "cw" | "deepfool";

/** Threat model of each attack. */
export const ATTACK_NORMS: Record<AttackName, "linf" | "l2"> = {
  fgsm: "linf",
  pgd: "linf",
  "apgd-ce": "linf",
  "apgd-dlr": "linf",
  "pgd-l2": "l2",
  cw: "l2",
  deepfool: "l2",
};

const MIN_NORM = new Set<AttackName>(["cw", "deepfool"]);

/** A labelled dataset in memory, the shape of src/data's `Dataset` (inputs in [0, 1]). */
export interface EvalData {
  /** length × prod(sampleShape) floats in [0, 1]. */
  readonly x: Float32Array;
  /** Class of each sample. */
  readonly y: Int32Array;
  /** Per-sample shape, e.g. [1, 28, 28]. */
  readonly sampleShape: readonly number[];
}

/** Per-attack settings shared by an evaluation. */
export interface AttackSettings {
  /** Iterations of pgd / pgd-l2 (default 40), apgd (default 100), cw (100), deepfool (50). */
  steps?: number;
  /** Restarts of pgd, pgd-l2 and apgd. Default 1. */
  restarts?: number;
  /** Random start of pgd, pgd-l2 and apgd; false starts at x. Default true. */
  randomStart?: boolean;
  /** PGD step size as a multiple of ε/steps. Default 2.5 (Madry et al.). */
  alphaFactor?: number;
  /**
   * PGD / PGD-L2 step size in pixel units, the same at every ε (torchattacks' `alpha`, e.g.
   * 2/255); overrides `alphaFactor`.
   */
  alpha?: number;
  /** Binary-search steps of cw. Default 5. */
  searchSteps?: number;
  /** Seed of every random draw. Default 0. */
  seed?: number;
}

/**
 * Runs one attack by name on a batch.
 * @param rt runtime
 * @param name attack
 * @param model model (inputs in [0, 1])
 * @param x (B, ...) f32
 * @param y (B,) labels
 * @param eps radius (ignored by cw and deepfool)
 * @param s settings
 * @returns (B, ...) f32 adversarial batch; the caller disposes it
 */
export function runAttack(
  rt: Backend,
  name: AttackName,
  model: AttackModel,
  x: Tensor,
  y: Tensor,
  eps: number,
  s: AttackSettings = {},
): Tensor {
  const seed = s.seed ?? 0, restarts = s.restarts ?? 1;
  switch (name) {
    case "fgsm":
      return fgsm(rt, model, x, y, { eps });
    case "pgd":
    case "pgd-l2": {
      const steps = s.steps ?? 40;
      const o = {
        eps,
        steps,
        alpha: s.alpha ?? (s.alphaFactor ?? 2.5) * eps / Math.max(steps, 1),
        restarts,
        randomStart: s.randomStart ?? true,
        seed,
      };
      return name === "pgd" ? pgd(rt, model, x, y, o) : pgdL2(rt, model, x, y, o);
    }
    case "apgd-ce":
    case "apgd-dlr":
      return apgd(rt, model, x, y, {
        eps,
        steps: s.steps ?? 100,
        restarts,
        seed,
        randomStart: s.randomStart ?? true,
        loss: name === "apgd-ce" ? "ce" : "dlr",
      });
    case "cw":
      return cw(rt, model, x, y, { steps: s.steps ?? 100, searchSteps: s.searchSteps ?? 5 });
    case "deepfool":
      return deepfool(rt, model, x, y, { steps: s.steps ?? 50 });
    default:
      throw new Error(
        `robustness: unknown attack '${name}'; known: ${Object.keys(ATTACK_NORMS).join(", ")}`,
      );
  }
}

/** Options of {@linkcode robustness}. */
export interface RobustnessOptions extends AttackSettings {
  /** Attacks to run (one threat model). */
  attacks: AttackName[];
  /** Radii, in pixel units, ascending. */
  eps: number[];
  /** Samples per batch. Default 256. */
  batchSize?: number;
  /** Evaluate only the first N samples. */
  limit?: number;
  /**
   * Iteration counts for the accuracy-vs-iterations curve of the iterative ε-bounded attacks,
   * at `iterationsEps` (default: none).
   */
  iterations?: number[];
  /** ε of the iterations curve. Default: the middle of `eps`. */
  iterationsEps?: number;
  /** Run the sanity checks (extra attacks at a large ε and with 2× iterations). Default true. */
  sanityChecks?: boolean;
  /** Called after each batch with the samples done so far (for progress output). */
  onProgress?: (done: number, total: number) => void;
}

/** One of Carlini et al.'s checks, with what was measured. */
export interface SanityCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** Result of {@linkcode robustness}. */
export interface RobustnessResult {
  /** Number of samples evaluated. */
  count: number;
  /** Clean accuracy. */
  clean: number;
  norm: "linf" | "l2";
  eps: number[];
  /** Accuracy under each attack at each ε. */
  accuracy: Record<string, number[]>;
  /** Accuracy under the per-sample worst case across the attacks, at each ε. */
  worstCase: number[];
  /** Accuracy vs iterations (when asked). */
  iterations?: { eps: number; steps: number[]; accuracy: Record<string, number[]> };
  /** Sanity checks (Carlini et al. 2019). */
  checks: SanityCheck[];
  /** Milliseconds per attack (all ε and batches). */
  ms: Record<string, number>;
}

function argmaxRows(logits: Float32Array, k: number, i: number): number {
  let am = 0;
  for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + am]) am = j;
  return am;
}

async function correctOf(model: AttackModel, x: Tensor, y: Int32Array): Promise<boolean[]> {
  const was = model.training;
  model.training = false;
  try {
    const logits = model.forward(x);
    const k = logits.shape[1];
    const z = await logits.read() as Float32Array;
    return Array.from(y, (c, i) => argmaxRows(z, k, i) === c);
  } finally {
    model.training = was;
  }
}

async function l2Norms(adv: Tensor, x: Float32Array, d: number): Promise<number[]> {
  const a = await adv.read() as Float32Array;
  const out: number[] = [];
  for (let i = 0; i * d < a.length; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += (a[i * d + j] - x[i * d + j]) ** 2;
    out.push(Math.sqrt(s));
  }
  return out;
}

/**
 * Accuracy under attack vs ε (and vs iterations), the per-sample worst case, and sanity checks.
 * @param rt runtime
 * @param model model taking inputs in [0, 1] (its mode is restored)
 * @param data inputs in [0, 1], labels, sample shape
 * @param opts attacks, ε list, batch size, limit, iteration curve, attack settings
 * @returns accuracies and checks (plain numbers; nothing to dispose)
 * @example
 * ```ts
 * const r = await robustness(rt, model, testSet, { attacks: ["fgsm", "pgd"], eps: [0.1, 0.2, 0.3] });
 * console.table(r.accuracy);
 * ```
 */
export async function robustness(
  rt: Backend,
  model: AttackModel,
  data: EvalData,
  opts: RobustnessOptions,
): Promise<RobustnessResult> {
  const op = "robustness";
  if (!opts.attacks.length) throw new Error(`${op}: give at least one attack`);
  for (const a of opts.attacks) {
    if (!(a in ATTACK_NORMS)) {
      throw new Error(
        `${op}: unknown attack '${a}'; known: ${Object.keys(ATTACK_NORMS).join(", ")}`,
      );
    }
  }
  const norms = new Set(opts.attacks.map((a) => ATTACK_NORMS[a]));
  if (norms.size > 1) {
    throw new Error(
      `${op}: attacks ${opts.attacks.join(", ")} mix L∞ and L2 threat models; evaluate them ` +
        `separately`,
    );
  }
  const norm = [...norms][0];
  const eps = opts.eps;
  if (!eps.length || eps.some((e) => !(Number.isFinite(e) && e >= 0))) {
    throw new Error(`${op}: eps must be a non-empty list of finite numbers >= 0, got [${eps}]`);
  }
  const d = data.sampleShape.reduce((a, b) => a * b, 1);
  const total = Math.min(data.y.length, opts.limit ?? Infinity);
  if (total < 1 || data.x.length < total * d) {
    throw new Error(`${op}: data holds ${data.y.length} samples of ${d} values; need at least 1`);
  }
  const bs = opts.batchSize ??
    fittingBatchSize(rt, model, data.sampleShape, 256, { backward: true });
  checkInt(op, "batchSize", bs, 1);
  const attacks = opts.attacks;
  const robust: Record<string, boolean[][]> = {}; // [attack][eps][sample]
  for (const a of attacks) robust[a] = eps.map(() => []);
  const clean: boolean[] = [];
  const ms: Record<string, number> = {};
  const itEps = opts.iterationsEps ?? eps[Math.floor(eps.length / 2)];
  const itSteps = opts.iterations ?? [];
  const iterative = attacks.filter((a) => a !== "fgsm" && !MIN_NORM.has(a));
  const itCorrect: Record<string, number[]> = {};
  for (const a of iterative) itCorrect[a] = itSteps.map(() => 0);
  // sanity: strongest iterative attack at a ball covering the box, and with 2x steps + restarts
  const check = opts.sanityChecks ?? true;
  const strong = iterative[0];
  const bigEps = norm === "linf" ? 1 : Math.sqrt(d);
  const midEps = eps[Math.floor(eps.length / 2)];
  let bigCorrect = 0, moreCorrect = 0, baseCorrect = 0;

  for (let start = 0; start < total; start += bs) {
    const n = Math.min(bs, total - start);
    const xs = data.x.subarray(start * d, (start + n) * d);
    const ys = data.y.subarray(start, start + n);
    const x = rt.upload(xs, [n, ...data.sampleShape]);
    const y = rt.upload(ys, [n]);
    try {
      clean.push(...await correctOf(model, x, ys));
      const cleanB = clean.slice(start);
      for (const a of attacks) {
        const t0 = performance.now();
        if (MIN_NORM.has(a)) {
          const adv = runAttack(rt, a, model, x, y, 0, opts);
          const ok = await correctOf(model, adv, ys);
          const l2 = await l2Norms(adv, xs, d);
          adv.dispose();
          eps.forEach((e, i) =>
            robust[a][i].push(...ok.map((c, j) => cleanB[j] && (c || l2[j] > e)))
          );
        } else {
          for (let i = 0; i < eps.length; i++) {
            const adv = runAttack(rt, a, model, x, y, eps[i], opts);
            const ok = await correctOf(model, adv, ys);
            adv.dispose();
            robust[a][i].push(...ok.map((c, j) => c && cleanB[j]));
          }
        }
        ms[a] = (ms[a] ?? 0) + performance.now() - t0;
      }
      for (const a of iterative) {
        for (let i = 0; i < itSteps.length; i++) {
          const adv = runAttack(rt, a, model, x, y, itEps, {
            ...opts,
            steps: itSteps[i],
            alphaFactor: (opts.alphaFactor ?? 2.5) * itSteps[i] / (opts.steps ?? 40),
          });
          const ok = await correctOf(model, adv, ys);
          adv.dispose();
          itCorrect[a][i] += ok.filter((c, j) => c && cleanB[j]).length;
        }
      }
      if (check && strong) {
        // A fixed step (opts.alpha) is scaled with ε here, keeping alpha/ε as at the middle ε:
        // the check asks whether the attack succeeds when the ball covers the box, and a step
        // sized for a small ε could not cross it in the given iterations.
        const big = runAttack(rt, strong, model, x, y, bigEps, {
          ...opts,
          alpha: opts.alpha !== undefined && midEps > 0 ? opts.alpha * bigEps / midEps : undefined,
        });
        bigCorrect += (await correctOf(model, big, ys)).filter((c, j) => c && cleanB[j]).length;
        big.dispose();
        const base = runAttack(rt, strong, model, x, y, midEps, opts);
        baseCorrect += (await correctOf(model, base, ys)).filter((c, j) => c && cleanB[j]).length;
        base.dispose();
        const steps = 2 * (opts.steps ?? (strong.startsWith("apgd") ? 100 : 40));
        const more = runAttack(rt, strong, model, x, y, midEps, {
          ...opts,
          steps,
          restarts: (opts.restarts ?? 1) + 1,
          seed: (opts.seed ?? 0) + 1,
          alphaFactor: opts.alphaFactor,
        });
        moreCorrect += (await correctOf(model, more, ys)).filter((c, j) => c && cleanB[j]).length;
        more.dispose();
      }
    } finally {
      x.dispose();
      y.dispose();
    }
    opts.onProgress?.(start + n, total);
  }

  const frac = (v: boolean[]) => v.filter(Boolean).length / v.length;
  const accuracy: Record<string, number[]> = {};
  for (const a of attacks) accuracy[a] = robust[a].map(frac);
  const worstCase = eps.map((_, i) =>
    frac(clean.map((_, j) => attacks.every((a) => robust[a][i][j])))
  );
  const checks: SanityCheck[] = [];
  const slack = 1 / total + 1e-12; // one sample
  if (attacks.includes("fgsm") && iterative.length) {
    const bad = eps.map((e, i) => ({ e, i })).filter(({ i }) =>
      iterative.some((a) => accuracy[a][i] > accuracy.fgsm[i] + slack)
    );
    checks.push({
      name: "iterative <= single-step",
      ok: bad.length === 0,
      detail: bad.length
        ? `an iterative attack is weaker than FGSM at eps ${bad.map((b) => b.e).join(", ")}`
        : `every iterative attack is at least as strong as FGSM at every eps`,
    });
  }
  const sorted = eps.every((e, i) => i === 0 || e >= eps[i - 1]);
  if (sorted && eps.length > 1) {
    const bad = attacks.filter((a) =>
      accuracy[a].some((v, i) => i > 0 && v > accuracy[a][i - 1] + slack)
    );
    checks.push({
      name: "accuracy non-increasing in eps",
      ok: bad.length === 0,
      detail: bad.length ? `not monotone: ${bad.join(", ")}` : "monotone for every attack",
    });
  }
  if (check && strong) {
    const big = bigCorrect / total;
    checks.push({
      name: "accuracy ~0 at large eps",
      ok: big <= 0.02,
      detail: `${strong} at eps ${+bigEps.toFixed(4)} (${
        norm === "linf" ? "the whole box" : "sqrt(D)"
      }): accuracy ${(100 * big).toFixed(2)}%`,
    });
    const base = baseCorrect / total, more = moreCorrect / total;
    checks.push({
      name: "more iterations/restarts do not change the verdict",
      ok: Math.abs(base - more) <= Math.max(0.02, 2 / total),
      detail: `${strong} at eps ${midEps}: ${(100 * base).toFixed(2)}% -> ${
        (100 * more).toFixed(2)
      }% with 2x iterations and one more restart`,
    });
  }
  const result: RobustnessResult = {
    count: total,
    clean: frac(clean),
    norm,
    eps: [...eps],
    accuracy,
    worstCase,
    checks,
    ms,
  };
  if (itSteps.length) {
    const acc: Record<string, number[]> = {};
    for (const a of iterative) acc[a] = itCorrect[a].map((c) => c / total);
    result.iterations = { eps: itEps, steps: [...itSteps], accuracy: acc };
  }
  return result;
}
