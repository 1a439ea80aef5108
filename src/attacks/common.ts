/**
 * What every attack shares: the model interface it needs, argument checks, eval-mode
 * bracketing, the choice of labels and targets, and the input gradient of a per-row loss.
 *
 * Conventions (DESIGN.md, "Attacks"): inputs live in [0, 1] (normalisation is inside the model)
 * so ε is in pixel units; an attack puts the model in eval mode and restores its mode, never
 * writes its input, and records its whole loop on the GPU (one submit per iteration, no
 * read-back).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import { argmax, argmin } from "../ops/reduce.ts";
import { randomUniform, type Seed } from "../ops/random.ts";
import { runAttackKernel } from "./_kernels.ts";

/**
 * What an attack needs of a model: `forward`, `inputGrad` (`Jᵀ dy` at the last forward's input,
 * see `Sequential.inputGrad`) and a mode flag. `Sequential` and the models of `src/models`
 * satisfy it.
 */
export interface AttackModel {
  /** @param x (B, ...) f32; @returns logits (B, K), owned by the model */
  forward(x: Tensor): Tensor;
  /** @param dy (B, K) f32; @returns dx (B, ...), owned by the model */
  inputGrad(dy: Tensor): Tensor;
  /** Training mode flag (attacks set it to false and restore it). */
  training: boolean;
}

/** How the labels an attack works with are chosen. */
export interface LabelOptions {
  /**
   * Targeted attack: a (B,) u32/i32 tensor of target classes, `"random"` (uniform over the
   * classes other than the label, drawn on the device from `seed`) or `"least-likely"` (the
   * arg min of the clean logits). Default: untargeted.
   */
  target?: Tensor | "random" | "least-likely";
  /**
   * Attack the model's own predictions on the clean input instead of `y` (as torchattacks'
   * `set_model_training_mode`/`_get_target_label` with predicted labels). Default false; implied
   * when `y` is null.
   */
  usePredictions?: boolean;
  /**
   * Seed of every random draw of the attack (random start, random targets): an integer, or the
   * two 32-bit Philox key words (adversarial training keys each step's attack apart). Default 0.
   */
  seed?: Seed;
}

/** Labels resolved by {@linkcode resolveLabels}. */
export interface ResolvedLabels {
  /** (B,) true (or predicted) labels. */
  labels: Tensor;
  /** (B,) targets when targeted, else null. */
  target: Tensor | null;
  /** Number of classes K. */
  classes: number;
  /** Tensors allocated here (the caller disposes them). */
  owned: Tensor[];
}

/** Throws unless `x` is a live, non-empty f32 batch and `y` (if given) matches it. */
export function checkArgs(op: string, x: Tensor, y: Tensor | null): void {
  if (x.disposed) throw new Error(`${op}: input ${x.describe()} was used after dispose()`);
  if (x.dtype !== "f32" || x.shape.length < 2 || x.shape[0] < 1 || x.size === 0) {
    throw new Error(`${op}: input must be a non-empty f32 batch (B, ...), got ${x.describe()}`);
  }
  if (y) checkLabels(op, "labels", y, x.shape[0]);
}

function checkLabels(op: string, what: string, y: Tensor, b: number): void {
  if (y.disposed) throw new Error(`${op}: ${what} ${y.describe()} was used after dispose()`);
  if (y.dtype === "f32" || y.shape.length !== 1 || y.shape[0] !== b) {
    throw new Error(`${op}: ${what} must be u32 or i32 [${b}], got ${y.describe()}`);
  }
}

/** Throws unless `v` is a finite number >= 0 (or > 0 when `positive`). */
export function checkNumber(op: string, what: string, v: number, positive = false): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (positive && v === 0)) {
    throw new Error(
      `${op}: ${what} must be a finite number ${positive ? "> 0" : ">= 0"}, got ${v}`,
    );
  }
}

/** Throws unless `v` is an integer >= `min`. */
export function checkInt(op: string, what: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) {
    throw new Error(`${op}: ${what} must be an integer >= ${min}, got ${v}`);
  }
}

/** A layer or container as far as {@linkcode inEvalMode} looks into it. */
interface Inspectable {
  layers?: readonly unknown[];
  inputGrad?: unknown;
  params?: () => { grad?: Tensor }[];
}

/**
 * Gradient tensors that `inputGrad` may add to: those of layers without their own `inputGrad`
 * (whose `backward` then runs: none of regula's layers with parameters, but a user's layer may
 * be one), found by walking `layers` of containers.
 */
function touchedGrads(model: unknown): Tensor[] {
  const out: Tensor[] = [];
  const visit = (l: Inspectable) => {
    if (Array.isArray(l.layers)) {
      for (const c of l.layers) visit(c as Inspectable);
      return;
    }
    if (typeof l.inputGrad === "function" || typeof l.params !== "function") return;
    for (const p of l.params()) if (p.grad) out.push(p.grad);
  };
  visit(model as Inspectable);
  return out;
}

/**
 * Runs `body` with the model in eval mode and restores its mode afterwards (also on error).
 * Parameter gradients that the input-gradient passes would add to (a layer with parameters but
 * no `inputGrad` of its own) are saved first and restored afterwards, so an attack inside a
 * training step (adversarial training) leaves the accumulated gradients as it found them.
 * @returns what `body` returns
 */
export function inEvalMode<T>(rt: Backend, model: AttackModel, body: () => T): T {
  const was = model.training;
  const grads = touchedGrads(model);
  const saved = grads.map((g) => {
    const t = rt.empty(g.shape, g.dtype, "attack saved grad");
    rt.copy(g, t);
    return t;
  });
  model.training = false;
  try {
    return body();
  } finally {
    model.training = was;
    grads.forEach((g, i) => {
      rt.copy(saved[i], g);
      saved[i].dispose();
    });
  }
}

/** The per-sample size D of a batch (B, ...). */
export function sampleSize(x: Tensor): number {
  return x.size / x.shape[0];
}

/**
 * Picks the labels (given or predicted) and, for a targeted attack, the targets. Runs one
 * forward pass on the clean input when it needs the logits (and always, to learn K).
 * @param rt runtime
 * @param model the model (already in eval mode)
 * @param x (B, ...) f32 clean input
 * @param y (B,) u32/i32 labels, or null to use the predictions
 * @param opts target, usePredictions, seed
 * @param op attack name for errors
 * @returns labels, target and K; the caller disposes `owned`
 */
export function resolveLabels(
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  y: Tensor | null,
  opts: LabelOptions,
  op: string,
): ResolvedLabels {
  const b = x.shape[0];
  const logits = model.forward(x);
  if (logits.shape.length !== 2 || logits.shape[0] !== b) {
    throw new Error(
      `${op}: the model must return logits (B, K) = (${b}, K), got ${fmtShape(logits.shape)}`,
    );
  }
  const classes = logits.shape[1];
  const owned: Tensor[] = [];
  let labels = y;
  if (!labels || opts.usePredictions) {
    labels = argmax(rt, logits, 1);
    owned.push(labels);
  }
  let target: Tensor | null = null;
  const t = opts.target;
  if (t === "least-likely") {
    target = argmin(rt, logits, 1);
    owned.push(target);
  } else if (t === "random") {
    if (classes < 2) throw new Error(`${op}: random targets need at least 2 classes`);
    const scores = randomUniform(rt, [b, classes], { seed: opts.seed ?? 0, counter: 0x7a7 });
    runAttackKernel(rt, "mask_label", { dst0: scores, labels }, { b, k: classes }, "row");
    target = argmax(rt, scores, 1);
    scores.dispose();
    owned.push(target);
  } else if (t !== undefined) {
    if (typeof t === "string") {
      throw new Error(`${op}: target must be a tensor, "random" or "least-likely", got "${t}"`);
    }
    checkLabels(op, "target", t, b);
    target = t;
  }
  return { labels, target, classes, owned };
}

/**
 * Reusable tensors of a cross-entropy input-gradient step; see {@linkcode ceInputGrad}.
 */
export interface GradScratch {
  dLogits?: Tensor;
  rows?: Tensor;
}

/**
 * Forward, per-row loss with its logit gradient (`shaders/attacks.wgsl` loss_rows), and the
 * input gradient. The loss is summed over the batch (each sample's gradient is its own).
 * @param rt runtime
 * @param model eval-mode model
 * @param x (B, ...) f32 point to differentiate at
 * @param labels (B,) u32/i32: labels (untargeted) or targets (targeted)
 * @param opts loss (0 CE, 1 DLR, 2 CW margin), sign (+1 ascend the loss, -1 for its negative),
 *   targeted (what counts as a hit), kappa and per-sample c (CW), scratch tensors
 * @returns the input gradient (owned by the model) and `scratch.rows` (B, 2) [loss, hit]
 */
export function lossInputGrad(
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  labels: Tensor,
  opts: {
    loss: 0 | 1 | 2;
    sign: number;
    targeted: boolean;
    kappa?: number;
    cState?: Tensor;
    cStride?: number;
    scratch: Required<GradScratch>;
    grad?: boolean;
  },
): Tensor | null {
  const logits = model.forward(x);
  const [b, k] = logits.shape;
  runAttackKernel(
    rt,
    "loss_rows",
    {
      src1: logits,
      dst0: opts.scratch.dLogits,
      dst1: opts.scratch.rows,
      state: opts.cState,
      labels,
    },
    { b, k, s: opts.cStride ?? 0, alpha: opts.sign, eps: opts.kappa ?? 0 },
    "row",
    { LOSS: opts.loss, TARGETED: opts.targeted ? 1 : 0 },
  );
  if (opts.grad === false) return null;
  return model.inputGrad(opts.scratch.dLogits);
}
