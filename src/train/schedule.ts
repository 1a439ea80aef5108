/**
 * Learning-rate schedules: pure functions from a step (or epoch) index `t`,
 * counted from 0, to the learning rate in effect during that step. They are
 * closed forms, so any step can be asked in any order (resuming needs no
 * replay), and the optimizer takes the result as a uniform per step (no
 * recompilation).
 *
 * The unit of `t` is the caller's: call with the step index and give
 * milestones in steps, or with the epoch index and give them in epochs.
 * Closed forms are PyTorch 1.13's `_get_closed_form_lr` of MultiStepLR,
 * CosineAnnealingLR and LinearLR (torch/optim/lr_scheduler.py).
 *
 * @example
 * ```ts
 * // Hoffman et al. 2019: lr / 10 at 1/3 and 2/3 of training.
 * const lr = stepDecay(0.1, { stepAt: [1 / 3, 2 / 3], total: epochs });
 * for (let e = 0; e < epochs; e++) for (const batch of data) opt.step(params, lr(e));
 * ```
 *
 * @module
 */

/** Learning rate in effect during step (or epoch) `t = 0, 1, 2, ...`. */
export type Schedule = (t: number) => number;

function checkT(name: string, t: number): void {
  if (!(Number.isInteger(t) && t >= 0)) {
    throw new Error(`${name}: step ${t} must be an integer >= 0`);
  }
}

function checkLr(name: string, lr: number): void {
  if (!(Number.isFinite(lr) && lr >= 0)) throw new Error(`${name}: invalid learning rate ${lr}`);
}

/**
 * The same learning rate at every step.
 * @param lr learning rate (>= 0)
 * @returns the schedule
 */
export function constantLr(lr: number): Schedule {
  checkLr("constantLr", lr);
  return (t) => {
    checkT("constantLr", t);
    return lr;
  };
}

/** Options of {@linkcode stepDecay}. */
export interface StepDecayOptions {
  /**
   * Milestones, increasing: either all fractions in (0, 1) of `total` (then
   * milestone = round(fraction * total)), or all integers >= 1 (steps or epochs
   * themselves, as MultiStepLR's `milestones`).
   */
  stepAt: readonly number[];
  /** Factor applied at each milestone. Default 0.1. */
  gamma?: number;
  /** Length of training in the unit of `t`; required for fractional milestones. */
  total?: number;
}

/**
 * Step decay (PyTorch MultiStepLR): `lr * gamma^(number of milestones <= t)`.
 * Hoffman, Roberts & Yaida 2019 train with `stepAt: [1/3, 2/3]`, `gamma: 0.1`.
 * @param lr initial learning rate
 * @param opts milestones, gamma, total
 * @returns the schedule
 * @throws Error for mixed or unordered milestones, or fractions without `total`
 */
export function stepDecay(lr: number, opts: StepDecayOptions): Schedule {
  const name = "stepDecay";
  checkLr(name, lr);
  const gamma = opts.gamma ?? 0.1;
  if (!(Number.isFinite(gamma) && gamma >= 0)) throw new Error(`${name}: invalid gamma ${gamma}`);
  const at = opts.stepAt;
  const fractions = at.length > 0 && at.every((f) => f > 0 && f < 1);
  let milestones: number[];
  if (fractions) {
    const total = opts.total;
    if (total === undefined || !(Number.isInteger(total) && total > 0)) {
      throw new Error(`${name}: fractional stepAt [${at}] needs total, a positive integer`);
    }
    milestones = at.map((f) => Math.round(f * total));
  } else if (at.every((m) => Number.isInteger(m) && m >= 1)) {
    milestones = [...at];
  } else {
    throw new Error(
      `${name}: stepAt [${at}] must be all fractions in (0, 1) or all integers >= 1`,
    );
  }
  for (let i = 1; i < milestones.length; i++) {
    if (milestones[i] < milestones[i - 1]) {
      throw new Error(`${name}: stepAt [${at}] must be increasing`);
    }
  }
  return (t) => {
    checkT(name, t);
    let k = 0;
    while (k < milestones.length && milestones[k] <= t) k++;
    return lr * gamma ** k;
  };
}

/** Options of {@linkcode cosineAnnealing}. */
export interface CosineOptions {
  /** Half-period T_max (steps or epochs). */
  tMax: number;
  /** Minimum learning rate. Default 0. */
  etaMin?: number;
}

/**
 * Cosine annealing (PyTorch CosineAnnealingLR, closed form):
 * `etaMin + (lr - etaMin) (1 + cos(pi t / tMax)) / 2`. Like torch's closed
 * form it keeps following the cosine past `tMax` (back up towards `lr`); stop
 * training at `tMax` for the usual single decay.
 * @param lr initial learning rate
 * @param opts tMax and etaMin
 * @returns the schedule
 */
export function cosineAnnealing(lr: number, opts: CosineOptions): Schedule {
  const name = "cosineAnnealing";
  checkLr(name, lr);
  const { tMax, etaMin = 0 } = opts;
  if (!(Number.isInteger(tMax) && tMax > 0)) {
    throw new Error(`${name}: tMax ${tMax} must be a positive integer`);
  }
  checkLr(name, etaMin);
  return (t) => {
    checkT(name, t);
    return etaMin + (lr - etaMin) * (1 + Math.cos(Math.PI * t / tMax)) / 2;
  };
}

/** Options of {@linkcode linearWarmup}. */
export interface WarmupOptions {
  /** Warmup length in the unit of `t`. */
  steps: number;
  /** Factor of the first step. Default 1/3 (PyTorch LinearLR's `start_factor`). */
  startFactor?: number;
}

/**
 * Linear warmup in front of another schedule: during `t < steps` the rate is
 * `after(0) * (startFactor + (1 - startFactor) t / steps)` (PyTorch LinearLR
 * with end_factor 1), then `after(t - steps)` (as SequentialLR hands over: the
 * next schedule starts from its own step 0).
 * @param after the schedule that follows
 * @param opts warmup length and start factor
 * @returns the schedule
 */
export function linearWarmup(after: Schedule, opts: WarmupOptions): Schedule {
  const name = "linearWarmup";
  const { steps, startFactor = 1 / 3 } = opts;
  if (!(Number.isInteger(steps) && steps >= 0)) {
    throw new Error(`${name}: steps ${steps} must be an integer >= 0`);
  }
  if (!(startFactor > 0 && startFactor <= 1)) {
    throw new Error(`${name}: startFactor ${startFactor} must be in (0, 1]`);
  }
  return (t) => {
    checkT(name, t);
    if (t >= steps) return after(t - steps);
    return after(0) * (startFactor + (1 - startFactor) * t / steps);
  };
}
