/**
 * Adversarial training: each training step replaces its batch (or a share of it) by adversarial
 * examples computed against the current weights, then takes the usual step on them — loss,
 * backward, the regularizers' hooks, optimizer.
 *
 * - `pgd` is Madry, Makelov, Schmidt, Tsipras & Vladu 2018, "Towards deep learning models
 *   resistant to adversarial attacks": the inner maximisation of `min_θ E max_{‖δ‖∞≤ε}
 *   CE(f(x + δ), y)` by L∞ PGD with a random start (their MNIST run: ε 0.3, 40 steps of 0.01;
 *   CIFAR-10: ε 8/255, 7 steps of 2/255), the batch wholly adversarial. Hoffman, Roberts & Yaida
 *   2019 compare it with the Jacobian penalty; here the two combine (`--reg jacobian` with
 *   `--adv-train pgd:...`), the penalty then taken at the adversarial points.
 * - `fgsm` is the one-step case (Goodfellow, Shlens & Szegedy 2015, "Explaining and harnessing
 *   adversarial examples"), `x + ε sign ∇ₓ CE`. (Wong, Rice & Kolter 2020's "fast" adversarial
 *   training, FGSM from a random start with step 1.25 ε, is `pgd:steps=1,alpha=...`.)
 * - `ratio` < 1 replaces only that share of each batch (its first `round(ratio · B)` samples; the
 *   batches are shuffled, so a random subset) and keeps the rest clean, all weighted alike in the
 *   mean cross-entropy: Kurakin, Goodfellow & Bengio 2017 ("Adversarial machine learning at
 *   scale") replace k of the m samples of a batch (ratio k/m, with their weight λ of the
 *   adversarial part set to 1). Goodfellow et al. 2015's `α CE(x) + (1 − α)
 *   CE(x')` over a doubled batch is ratio 0.5 with twice the batch size, up to which samples pair.
 *   Default 1, Madry's pure adversarial batches.
 *
 * The attacks are the library's own `pgd()` and `fgsm()` (src/attacks; inputs in [0, 1], ε in
 * pixel units, clipped to [0, 1]), and like every attack of regula they run with the model in
 * eval mode: BatchNorm on its running statistics, dropout off, so an adversarial example depends
 * on its own sample only. The training step that follows is in the run's mode (training mode by
 * default: batch statistics, dropout on). Madry et al.'s models differ here: their MNIST network
 * has neither BatchNorm nor dropout (the question does not arise), while their CIFAR-10 code
 * (MadryLab/cifar10_challenge, `Model(mode='train')` shared by train.py and the attack) attacks
 * through training-mode BatchNorm. The parameter gradients are untouched by the attack (its
 * passes save and restore them, src/attacks/common.ts `inEvalMode`), so the step sees only its
 * own.
 *
 * The random start of step `t` is drawn from the Philox stream keyed by (run seed,
 * "adv-train:t"), so a run is reproducible and each step's start is fresh.
 *
 * No Deno APIs: runs in browsers too.
 *
 * @example
 * ```ts
 * import {
 *   buildModel,
 *   modelSpecFromName,
 *   parseAdversarialTraining,
 *   Runtime,
 *   toy2d,
 *   train,
 * } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * // The toy problem moved into [0, 1], where the attacks work (ε in pixel units)
 * const centres = [[0.75, 0.75], [0.25, 0.75], [0.25, 0.25], [0.75, 0.25]] as const;
 * const data = toy2d({ centres, std: 0.05 });
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * await train(model, { train: data }, {
 *   epochs: 20,
 *   adversarial: parseAdversarialTraining("pgd:eps=0.1,steps=7,alpha=0.03"),
 * });
 * model.dispose();
 * ```
 *
 * @module
 */

import type { Backend, Tensor } from "../backend.ts";
import { fgsm } from "../attacks/fgsm.ts";
import { pgd } from "../attacks/pgd.ts";
import type { AttackModel } from "../attacks/common.ts";
import { streamKey } from "../regularizers/_params.ts";

/** The attacks adversarial training can use. */
export const ADVERSARIAL_ATTACKS = ["pgd", "fgsm"] as const;

/** Adversarial training's settings (the `adversarial` option of `train`). */
export interface AdversarialTraining {
  /** "pgd" (L∞ PGD, Madry et al. 2018) or "fgsm" (one signed step of ε, Goodfellow et al. 2015). */
  attack: (typeof ADVERSARIAL_ATTACKS)[number];
  /** L∞ radius ε in pixel units (inputs in [0, 1]). */
  eps: number;
  /** PGD iterations. Default 10 (pgd() 's). */
  steps?: number;
  /** PGD step size α. Default `2.5 ε / steps` (pgd()'s, after Madry et al.). */
  alpha?: number;
  /** PGD starts from a uniform point of the ε-ball (Madry et al.). Default true. */
  randomStart?: boolean;
  /** Share of each batch replaced by adversarial examples, in [0, 1]. Default 1 (Madry et al.). */
  ratio?: number;
}

/** {@linkcode AdversarialTraining} with every default filled in, as recorded in checkpoints. */
export type AdversarialTrainingResolved =
  | {
    attack: "pgd";
    eps: number;
    steps: number;
    alpha: number;
    randomStart: boolean;
    ratio: number;
  }
  | { attack: "fgsm"; eps: number; ratio: number };

const OPTIONS = {
  pgd: ["eps", "steps", "alpha", "random-start", "ratio"],
  fgsm: ["eps", "ratio"],
} as const;

/**
 * Checks the settings and fills in the defaults.
 * @param a the settings
 * @returns the settings with defaults (pgd: 10 steps, α = 2.5 ε / steps, random start; ratio 1)
 * @throws Error (one line) for an unknown attack, a missing or negative ε, a bad step count, step
 *   size or ratio, or PGD options given to FGSM
 */
export function resolveAdversarialTraining(a: AdversarialTraining): AdversarialTrainingResolved {
  const where = "adversarial training";
  if (!(ADVERSARIAL_ATTACKS as readonly string[]).includes(a.attack)) {
    throw new Error(
      `${where}: unknown attack '${a.attack}'; use one of ${ADVERSARIAL_ATTACKS.join(", ")}`,
    );
  }
  if (typeof a.eps !== "number" || !(Number.isFinite(a.eps) && a.eps >= 0)) {
    throw new Error(`${where}: eps must be a finite number >= 0 (pixel units), got ${a.eps}`);
  }
  const ratio = a.ratio ?? 1;
  if (typeof ratio !== "number" || !(ratio >= 0 && ratio <= 1)) {
    throw new Error(`${where}: ratio must be in [0, 1], got ${ratio}`);
  }
  if (a.attack === "fgsm") {
    for (const k of ["steps", "alpha", "randomStart"] as const) {
      if (a[k] !== undefined) {
        throw new Error(
          `${where}: fgsm takes eps and ratio only, got ${k} (a multi-step or randomly started ` +
            `attack is pgd:...)`,
        );
      }
    }
    return { attack: "fgsm", eps: a.eps, ratio };
  }
  const steps = a.steps ?? 10;
  if (!(Number.isInteger(steps) && steps >= 1)) {
    throw new Error(`${where}: steps must be an integer >= 1, got ${steps}`);
  }
  const alpha = a.alpha ?? 2.5 * a.eps / steps;
  if (typeof alpha !== "number" || !(Number.isFinite(alpha) && alpha >= 0)) {
    throw new Error(`${where}: alpha must be a finite number >= 0, got ${alpha}`);
  }
  const randomStart = a.randomStart ?? true;
  if (typeof randomStart !== "boolean") {
    throw new Error(`${where}: randomStart must be true or false, got ${randomStart}`);
  }
  return { attack: "pgd", eps: a.eps, steps, alpha, randomStart, ratio };
}

function parseNumber(spec: string, key: string, raw: string): number {
  const v = raw.trim();
  const n = Number(v);
  if (v === "" || !Number.isFinite(n)) {
    throw new Error(`Adversarial training '${spec}': ${key} needs a number, got '${raw}'`);
  }
  return n;
}

/**
 * Parses a command-line spec: `pgd:eps=0.3,steps=40,alpha=0.01,random-start=false,ratio=1` or
 * `fgsm:eps=0.1,ratio=0.5` (a bare value is ε: `fgsm:0.1`).
 * @param spec the text after `--adv-train`
 * @returns the settings, defaults filled in
 * @throws Error (one line) naming the attack, option or value that is wrong and what is valid
 * @example
 * ```ts
 * import { parseAdversarialTraining } from "./adversarial.ts";
 * parseAdversarialTraining("pgd:eps=0.3,steps=40,alpha=0.01");
 * // { attack: "pgd", eps: 0.3, steps: 40, alpha: 0.01, randomStart: true, ratio: 1 }
 * ```
 */
export function parseAdversarialTraining(spec: string): AdversarialTrainingResolved {
  const colon = spec.indexOf(":");
  const name = (colon < 0 ? spec : spec.slice(0, colon)).trim().toLowerCase();
  const rest = colon < 0 ? "" : spec.slice(colon + 1);
  if (!(name in OPTIONS)) {
    throw new Error(
      `Unknown adversarial training attack '${name}' in '${spec}'; use pgd:eps=...,steps=...,` +
        `alpha=...,random-start=true|false,ratio=... or fgsm:eps=...,ratio=...`,
    );
  }
  const attack = name as keyof typeof OPTIONS;
  const valid: readonly string[] = OPTIONS[attack];
  const got: Record<string, string> = {};
  for (const part of rest.split(",")) {
    if (!part.trim()) continue;
    const eq = part.indexOf("=");
    const key = eq < 0 ? "eps" : part.slice(0, eq).trim().toLowerCase();
    const raw = eq < 0 ? part : part.slice(eq + 1);
    if (!valid.includes(key)) {
      throw new Error(
        `Adversarial training '${spec}': ${attack} has no option '${key}'; valid: ` +
          valid.join(", "),
      );
    }
    if (key in got) throw new Error(`Adversarial training '${spec}': ${key} is given twice`);
    got[key] = raw;
  }
  if (got.eps === undefined) {
    throw new Error(`Adversarial training '${spec}' needs eps, e.g. ${attack}:eps=0.1`);
  }
  const a: AdversarialTraining = { attack, eps: parseNumber(spec, "eps", got.eps) };
  if (got.steps !== undefined) a.steps = parseNumber(spec, "steps", got.steps);
  if (got.alpha !== undefined) a.alpha = parseNumber(spec, "alpha", got.alpha);
  if (got.ratio !== undefined) a.ratio = parseNumber(spec, "ratio", got.ratio);
  if (got["random-start"] !== undefined) {
    const t = got["random-start"].trim().toLowerCase();
    if (t === "true") a.randomStart = true;
    else if (t === "false") a.randomStart = false;
    else {
      throw new Error(
        `Adversarial training '${spec}': random-start needs true or false, got ` +
          `'${got["random-start"]}'`,
      );
    }
  }
  try {
    return resolveAdversarialTraining(a);
  } catch (e) {
    const why = (e as Error).message.replace(/^adversarial training: /, "");
    throw new Error(`Adversarial training '${spec}': ${why}`);
  }
}

/**
 * The batch one adversarial training step trains on.
 * @param rt runtime
 * @param model the model being trained, at the step's weights (put in eval mode for the attack,
 *   its mode and parameter gradients restored)
 * @param x (B, ...) f32 the step's clean batch in [0, 1] (not modified)
 * @param y (B,) i32 its labels
 * @param a resolved settings
 * @param key the run seed and the global step, which key the random start
 * @returns (B, ...) f32: the first `round(ratio · B)` samples adversarial, the others copies of
 *   `x`; the caller disposes it
 */
export function adversarialBatch(
  rt: Backend,
  model: AttackModel,
  x: Tensor,
  y: Tensor,
  a: AdversarialTrainingResolved,
  key: { seed: number; step: number },
): Tensor {
  const b = x.shape[0];
  const k = Math.round(a.ratio * b);
  if (k === 0) {
    const clean = rt.empty(x.shape, "f32", "adversarial training batch");
    rt.copy(x, clean);
    return clean;
  }
  const adv = a.attack === "fgsm" ? fgsm(rt, model, x, y, { eps: a.eps }) : pgd(rt, model, x, y, {
    eps: a.eps,
    steps: a.steps,
    alpha: a.alpha,
    randomStart: a.randomStart,
    seed: streamKey(key.seed, `adv-train:${key.step}`),
  });
  if (k < b) {
    // The clean tail; an attack on those samples was wasted work, but one batch-wide attack
    // keeps the shapes (and so the pipelines' buffers) fixed.
    const d = x.size / b;
    rt.copy(x, adv, (b - k) * d, k * d, k * d);
  }
  return adv;
}
