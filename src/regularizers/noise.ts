/**
 * Noise injection: Gaussian noise on the inputs (Bishop 1995, "Training with noise is equivalent
 * to Tikhonov regularization") and on the weights (An 1996, "The effects of adding noise during
 * backpropagation training on a generalization performance"; Graves 2011 calls it weight noise),
 * fresh every step from the counter-based Philox generator of src/ops/random.ts, keyed by
 * `(run seed, stream name)` with the global step as substream, so a run is reproducible and
 * every step (and every parameter) draws independent noise.
 *
 * Weight noise perturbs the weights in `beforeForward` and restores the clean copy in
 * `beforeStep`: the gradient is taken at the noisy weights and applied to the clean ones, so the
 * stored (and checkpointed, and evaluated) weights never contain noise. Penalties computed in
 * `afterBackward` (L2, Jacobian, ...) see the noisy weights of that step. Unlike the seed project
 * (noise on conv1 only), every selected weight gets noise.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import type { Param } from "../layers/layer.ts";
import { axpy, binary, clamp } from "../ops/elementwise.ts";
import { randomNormal } from "../ops/random.ts";
import type { Regularizer, StepContext } from "../hooks/step.ts";
import { checkCoef, type ParamSelection, Scratch, selectParams, streamKey } from "./_params.ts";

/** Options of {@linkcode gaussianInputNoise}. */
export interface InputNoiseOptions {
  /** Standard deviation σ (pixel units, inputs in [0, 1]). */
  sigma: number;
  /** Run seed. */
  seed: number;
  /** Step: the substream (fresh noise every step). */
  step: number;
  /** Clamp the noisy batch to [0, 1]. Default false. */
  clip?: boolean;
  /** Output, x's number of elements (must not be x). */
  out?: Tensor;
}

/**
 * `x + σ ε`, ε ~ N(0, I) from the Philox stream (seed, "input-noise"), substream `step`; clamped
 * to [0, 1] with `clip`.
 * @param rt runtime
 * @param x (B, ...) f32 inputs; not modified
 * @param opts sigma, seed, step, clip (default false), out
 * @returns (B, ...) f32, `opts.out` or a new tensor the caller disposes
 */
export function gaussianInputNoise(rt: Backend, x: Tensor, opts: InputNoiseOptions): Tensor {
  checkCoef("gaussianInputNoise", "sigma", opts.sigma);
  if (opts.out && opts.out.storage === x.storage) {
    throw new Error("gaussianInputNoise: out must not be the input");
  }
  const y = randomNormal(rt, x.shape, {
    seed: streamKey(opts.seed, "input-noise"),
    counter: opts.step,
    std: opts.sigma,
    out: opts.out,
  });
  binary(rt, "add", y, x.reshape(y.shape), { out: y });
  if (opts.clip) clamp(rt, y, 0, 1, { out: y });
  return y;
}

/** Options of {@linkcode inputNoiseRegularizer}. */
export interface InputNoiseRegularizerOptions {
  /** σ. Default 0.1. */
  sigma?: number;
  /** Clamp to [0, 1]. Default false. */
  clip?: boolean;
  /** Seed; default the run seed. */
  seed?: number;
}

/**
 * Gaussian input noise for `train` (`transformInput`): the model sees `x + σ ε`, fresh ε each
 * step (see {@linkcode gaussianInputNoise}). Only during training; evaluation sees clean inputs.
 * @param opts sigma (default 0.1), clip (default false), seed (default the run seed)
 * @returns a Regularizer named "input-noise"
 */
export function inputNoiseRegularizer(opts: InputNoiseRegularizerOptions = {}): Regularizer {
  const sigma = opts.sigma ?? 0.1;
  const clip = opts.clip ?? false;
  checkCoef("inputNoiseRegularizer", "sigma", sigma);
  let scratch: Scratch | null = null;
  return {
    name: "input-noise",
    options: { sigma, clip, ...(opts.seed !== undefined ? { seed: opts.seed } : {}) },
    transformInput(ctx: StepContext, x: Tensor): Tensor {
      if (scratch?.rt !== ctx.rt) {
        scratch?.dispose();
        scratch = new Scratch(ctx.rt, "input-noise");
      }
      const out = scratch.get(`x${x.shape.join("x")}`, x.shape);
      return gaussianInputNoise(ctx.rt, x, {
        sigma,
        clip,
        seed: opts.seed ?? ctx.seed,
        step: ctx.step,
        out,
      });
    },
    dispose() {
      scratch?.dispose();
      scratch = null;
    },
  };
}

/** Options of {@linkcode perturbWeights}. */
export interface WeightNoiseOptions extends ParamSelection {
  /** Standard deviation σ. */
  sigma: number;
  /** Run seed. */
  seed: number;
  /** Step: the substream. */
  step: number;
}

/** Clean copies of perturbed weights; `restore()` puts them back. */
export interface WeightStash {
  /** Copies the clean weights back (recorded in the current step). */
  restore(): void;
  /** Frees the copies (without restoring). */
  dispose(): void;
}

/**
 * Adds `σ ε` to every selected weight in place, ε ~ N(0, I) from the Philox stream
 * (seed, "weight-noise:" + name), substream `step`, after copying the clean values aside.
 * @param rt runtime
 * @param params a model's `params()` (Linear/Conv2d weights; biases, BatchNorm γ on request)
 * @param opts sigma, seed, step, biases, norms
 * @param stash a scratch cache for the copies (reused between steps); a fresh one if omitted
 * @returns the stash; call `restore()` before the optimizer step, `dispose()` when done
 */
export function perturbWeights(
  rt: Backend,
  params: readonly Param[],
  opts: WeightNoiseOptions,
  stash?: Scratch,
): WeightStash {
  checkCoef("perturbWeights", "sigma", opts.sigma);
  const s = stash ?? new Scratch(rt, "weight noise");
  const sel = selectParams(params, opts);
  const noise = (n: number) => s.get(`noise${n}`, [n]);
  for (const p of sel) {
    const clean = s.get(`clean:${p.name}`, p.value.shape);
    rt.copy(p.value, clean);
    const e = noise(p.value.size);
    randomNormal(rt, [p.value.size], {
      seed: streamKey(opts.seed, `weight-noise:${p.name}`),
      counter: opts.step,
      std: opts.sigma,
      out: e,
    });
    axpy(rt, 1, e, p.value.reshape([p.value.size]));
  }
  return {
    restore() {
      for (const p of sel) rt.copy(s.get(`clean:${p.name}`, p.value.shape), p.value);
    },
    dispose() {
      if (!stash) s.dispose();
    },
  };
}

/** Options of {@linkcode weightNoiseRegularizer}. */
export interface WeightNoiseRegularizerOptions extends ParamSelection {
  /** σ. Default 0.01. */
  sigma?: number;
  /** Seed; default the run seed. */
  seed?: number;
}

/**
 * Gaussian weight noise for `train`: `beforeForward` adds fresh `σ ε` to every Linear/Conv2d
 * weight (biases and BatchNorm γ on request), `beforeStep` restores the clean weights, so the
 * optimizer applies the gradient taken at the noisy point to the clean weights.
 * @param opts sigma (default 0.01), biases (false), norms (false), seed (default the run seed)
 * @returns a Regularizer named "weight-noise"
 */
export function weightNoiseRegularizer(opts: WeightNoiseRegularizerOptions = {}): Regularizer {
  const sigma = opts.sigma ?? 0.01;
  checkCoef("weightNoiseRegularizer", "sigma", sigma);
  const sel = { biases: opts.biases ?? false, norms: opts.norms ?? false };
  let scratch: Scratch | null = null;
  let pending: WeightStash | null = null;
  return {
    name: "weight-noise",
    options: { sigma, ...sel, ...(opts.seed !== undefined ? { seed: opts.seed } : {}) },
    beforeForward(ctx: StepContext): void {
      if (scratch?.rt !== ctx.rt) {
        scratch?.dispose();
        scratch = new Scratch(ctx.rt, "weight-noise");
      }
      pending?.restore(); // a step that never reached beforeStep: do not stack noise
      pending = perturbWeights(ctx.rt, ctx.params, {
        ...sel,
        sigma,
        seed: opts.seed ?? ctx.seed,
        step: ctx.step,
      }, scratch);
    },
    beforeStep(): void {
      pending?.restore();
      pending = null;
    },
    dispose() {
      pending?.restore();
      pending = null;
      scratch?.dispose();
      scratch = null;
    },
  };
}
