/**
 * The training loop: minibatch SGD/Adam over a dataset with a learning-rate
 * schedule, regularizers plugged in through their hooks
 * (src/hooks/step.ts), per-epoch history, early stopping
 * (Prechelt 1998, src/train/early_stopping.ts) and restoring the best
 * weights; and {@linkcode evaluate}, loss and accuracy of a model on a
 * dataset.
 *
 * One step records, into one command encoder and one `queue.submit`:
 * `transformInput` -> `beforeForward` -> forward -> cross-entropy ->
 * `logitsGrad` -> backward (or a regularizer's `backward`, which shares it) -> `afterBackward` -> (gradient norm, on sampled
 * steps) -> `beforeStep` -> optimizer (which also zeroes the gradients) ->
 * `afterStep`. With adversarial training (src/train/adversarial.ts) the step's
 * PGD/FGSM attack comes first, one submit per attack iteration. The dataset is uploaded once (src/data/batches.ts) and each
 * batch is gathered (and augmented) on the GPU by a dispatch of the same step. Losses, correct counts and penalty values are summed on the GPU
 * (weighted by the batch size) and read back together every `logEvery` steps
 * and at the end of each epoch, never per step; so are the per-layer trajectory samples
 * (src/train/_trajectory.ts), packed into the same read.
 *
 * Randomness is explicit: the shuffle and augmentation of epoch `e` are
 * functions of `(seed, e)` (src/data/batches.ts), and dropout and the regularizers' streams are keyed by the
 * global step (`model.setCounter(step)`, `ctx.step`).
 *
 * No Deno APIs: runs in browsers too.
 *
 * @example
 * ```ts
 * import {
 *   buildModel,
 *   modelSpecFromName,
 *   Runtime,
 *   splitDataset,
 *   toy2d,
 *   train,
 * } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * const { train: trainSet, val: valSet } = splitDataset(toy2d(), { valFraction: 0.25 });
 * const result = await train(model, { train: trainSet, val: valSet }, {
 *   epochs: 10,
 *   batchSize: 64,
 *   lr: 0.05,
 *   optimizer: { algorithm: "sgd", momentum: 0.9 },
 *   schedule: "step",
 *   earlyStopping: { kind: "gl", alpha: 5 },
 * });
 * console.log(result.history.at(-1)?.valAccuracy, result.stopReason);
 * model.dispose();
 * ```
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { Param } from "../layers/layer.ts";
import type { Sequential } from "../layers/sequential.ts";
import { fittingBatchSize } from "../layers/memory.ts";
import { axpy } from "../ops/elementwise.ts";
import { argmax, reduce } from "../ops/reduce.ts";
import type { Regularizer, StepContext } from "../hooks/step.ts";
import { labelSmoothingOf } from "../regularizers/smoothing.ts";
import { bestEpoch, shouldStop, type StoppingRule } from "./early_stopping.ts";
import { accuracyCount } from "../losses/accuracy.ts";
import { type CrossEntropyResult, softmaxCrossEntropy } from "../losses/cross_entropy.ts";
import { createOptimizer, type Optimizer, type OptimizerSpec } from "./optim.ts";
import type { AugmentSpec } from "../data/augment.ts";
import { type Batch, Batches, DeviceDataset } from "../data/batches.ts";
import { checkDataset, type Dataset, subset } from "../data/dataset.ts";
import { type LabelNoiseOptions, randomizeLabels } from "../data/label_noise.ts";
import { Trajectory, type TrajectoryRecord } from "./_trajectory.ts";

export type { TrajectoryRecord };
import { constantLr, cosineAnnealing, type Schedule, stepDecay } from "./schedule.ts";
import {
  adversarialBatch,
  type AdversarialTraining,
  type AdversarialTrainingResolved,
  resolveAdversarialTraining,
} from "./adversarial.ts";

/** A labelled dataset in host memory (src/data's `Dataset`). */
export type TrainDataset = Dataset;

/** The data of a run: a training set and, for history and early stopping, a validation set. */
export interface TrainData {
  /** Samples to train on. */
  train: TrainDataset;
  /** Held-out samples for the per-epoch validation loss, early stopping and best weights. */
  val?: TrainDataset;
  /**
   * Test samples, evaluated after every epoch and only recorded (`testLoss`, `testAccuracy`:
   * the memorisation curve of `labelNoise` runs); never used for stopping or best weights.
   */
  test?: TrainDataset;
}

/** Learning-rate schedule by name, in steps over the whole run. */
export type ScheduleName =
  /** The same rate throughout. */
  | "constant"
  /** ÷10 at 1/3 and 2/3 of training (Hoffman, Roberts & Yaida 2019). */
  | "step"
  /** Cosine annealing to 0 over the run. */
  | "cosine";

/** Options of {@linkcode train}. */
export interface TrainOptions {
  /** Passes over the training set. */
  epochs: number;
  /** Samples per step. Default 64. */
  batchSize?: number;
  /** Initial learning rate. Default 0.05. */
  lr?: number;
  /** Update rule and hyperparameters. Default SGD with momentum 0.9. */
  optimizer?: OptimizerSpec;
  /**
   * Schedule: a name, or a function from the global step (from 0) to the rate.
   * Default "constant".
   */
  schedule?: ScheduleName | Schedule;
  /** Run seed: shuffling, and the key of the regularizers' random streams. Default 0. */
  seed?: number;
  /** Regularizers, their hooks called in list order. Default none. */
  regularizers?: readonly Regularizer[];
  /** Label smoothing ε of the cross-entropy (PyTorch semantics). Default 0. */
  labelSmoothing?: number;
  /** Stopping rules (any one stops training); needs `data.val`. Default none. */
  earlyStopping?: StoppingRule | readonly StoppingRule[];
  /** Validation quantity the rules and "best" watch. Default "loss" (cross-entropy). */
  monitor?: "loss" | "error";
  /**
   * Put the weights of the best validation epoch back at the end (kept on the GPU by copy).
   * Default: true when `earlyStopping` is set.
   */
  restoreBest?: boolean;
  /** Steps between read-backs of the running loss for `onProgress`. Default 50. */
  logEvery?: number;
  /** Steps between samples of the gradient norm (each costs a reduction per tensor). Default 10. */
  gradNormEvery?: number;
  /**
   * Batch size of the validation, test and memorisation passes. Default 500, or fewer where the
   * backend's memory cap needs it (`fittingBatchSize`, src/layers/memory.ts).
   */
  evalBatchSize?: number;
  /** Random augmentation of image batches (src/data/augment.ts), drawn per epoch. Default none. */
  augment?: AugmentSpec;
  /** Stop after this many steps in all (for smoke tests). Default no limit. */
  maxSteps?: number;
  /**
   * Randomized labels (Zhang et al. 2017): this fraction of the training set's labels replaced
   * by seeded uniformly random other classes before training (src/data/label_noise.ts; `seed`
   * defaults to the run's). `data.val` and `data.test` keep their labels. Each epoch then also
   * records the `memorization` curve. Default none.
   */
  labelNoise?: LabelNoiseOptions;
  /**
   * Global steps between samples of the per-layer trajectory (‖θ‖, ‖∇θ‖, ‖θ − θ_0‖; 1: every
   * step, 0: none). Each sample costs three reductions per parameter tensor, read back with
   * the running sums; the run keeps a copy of θ_0 (and one scratch per distinct tensor size).
   * Default: about 200 samples per run, `max(1, ceil(totalSteps / 200))`.
   */
  trajectoryEvery?: number;
  /** Called every `logEvery` steps and at the end of each epoch. */
  onProgress?: (p: Progress) => void;
  /** Called after each epoch with its record. */
  onEpoch?: (r: EpochRecord) => void;
  /** Stops training after the current step when aborted (the result is still returned). */
  signal?: AbortSignal;
  /**
   * The model's mode during the training steps. Default true (training mode: BatchNorm on batch
   * statistics, dropout active). false: eval mode — BatchNorm on its running statistics (γ and
   * β still trained, the statistics frozen), dropout off — which the Jacobian penalties need to
   * differentiate through BatchNorm (a ResNet-18), since in training mode it couples the batch.
   */
  trainMode?: boolean;
  /**
   * Adversarial training (src/train/adversarial.ts): each step first replaces the batch (or the
   * share `ratio` of it) by PGD or FGSM adversarial examples against the current weights, the
   * attack run in eval mode; the loss, the regularizers (input noise on top, penalties at the
   * adversarial points) and the recorded training loss and accuracy are then those of that batch.
   * Default none.
   */
  adversarial?: AdversarialTraining;
}

/** Where training is, for progress bars. */
export interface Progress {
  /** Epoch, from 1. */
  epoch: number;
  /** Epochs in the run. */
  epochs: number;
  /** Step within the epoch, from 1. */
  step: number;
  /** Steps in one epoch. */
  stepsPerEpoch: number;
  /** Global step, from 1. */
  globalStep: number;
  /** Steps in the run (without early stopping). */
  totalSteps: number;
  /** Mean training loss and accuracy of this epoch so far (NaN before the first read-back). */
  loss: number;
  /** See `loss`. */
  accuracy: number;
  /** Training samples per second since the start of the epoch. */
  samplesPerSecond: number;
  /** Seconds since training started. */
  elapsed: number;
  /** Estimated seconds left (without early stopping). */
  eta: number;
  /** Learning rate of the latest step. */
  lr: number;
}

/** What one epoch did. */
export interface EpochRecord {
  /** Epoch, from 1. */
  epoch: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  /**
   * Mean data loss (cross-entropy, with label smoothing if set) over the epoch's samples (with
   * adversarial training: over the batches trained on, adversarial examples included).
   */
  trainLoss: number;
  /**
   * Fraction of training samples classified correctly during the epoch (train mode; with
   * adversarial training, of the batches trained on).
   */
  trainAccuracy: number;
  /** Mean value of each regularizer's penalty by name (what it added to the loss). */
  penalties: Record<string, number>;
  /** Validation cross-entropy and accuracy in eval mode (absent without `data.val`). */
  valLoss?: number;
  /** See `valLoss`. */
  valAccuracy?: number;
  /** L2 norm of all trained parameters (weights and biases) at the end of the epoch. */
  paramNorm: number;
  /**
   * Root mean square, over the sampled steps of the epoch, of the L2 norm of the full
   * gradient (data loss plus penalties) before the optimizer step.
   */
  gradNorm: number;
  /** Test cross-entropy and accuracy in eval mode after the epoch (with `data.test`). */
  testLoss?: number;
  /** See `testLoss`. */
  testAccuracy?: number;
  /**
   * With `labelNoise`: the training set evaluated in eval mode after the epoch, against the
   * labels it is trained on (noisy) and against the original ones (clean).
   */
  memorization?: MemorizationRecord;
  /** Per-layer norms at the epoch's sampled steps (absent with `trajectoryEvery: 0`). */
  trajectory?: TrajectoryRecord;
  /** Wall-clock seconds of the epoch (training and validation). */
  seconds: number;
  /** Training samples per second (training steps only). */
  samplesPerSecond: number;
  /** Steps taken in the epoch. */
  steps: number;
}

/** The memorisation curve's point of one epoch (Zhang et al. 2017, fig. 1). */
export interface MemorizationRecord {
  /** Cross-entropy on the training set against the noisy labels it is trained on. */
  noisyLoss: number;
  /** Accuracy on the training set against the noisy labels. */
  noisyAccuracy: number;
  /** Accuracy on the training set against the original (clean) labels. */
  cleanAccuracy: number;
  /** Of the samples whose label was replaced, the fraction predicted as the replacement. */
  memorized: number;
  /** Of the samples whose label was replaced, the fraction predicted as their true class. */
  corruptedClean: number;
}

/** What {@linkcode train} did to the labels with `labelNoise` (for checkpoint metadata). */
export interface LabelNoiseRecord {
  /** The fraction asked for. */
  fraction: number;
  /** Seed of the draws. */
  seed: number;
  /** Samples relabelled (`round(fraction · N)`), and N. */
  corrupted: number;
  /** See `corrupted`. */
  samples: number;
  /** The rule (src/data/label_noise.ts `LABEL_NOISE_RULE`). */
  rule: string;
}

/** Result of {@linkcode train}. */
export interface TrainResult {
  /** One record per finished epoch. */
  history: EpochRecord[];
  /** Global steps taken. */
  steps: number;
  /** Why training ended early (early stopping, non-finite loss, abort, maxSteps), if it did. */
  stopReason?: string;
  /** Epoch (from 1) with the best validation value; 0 without validation. */
  bestEpoch: number;
  /** True when the weights of `bestEpoch` were put back. */
  restoredBest: boolean;
  /** Seconds in all. */
  seconds: number;
  /** With `labelNoise`: how many labels were replaced, by which rule and seed. */
  labelNoise?: LabelNoiseRecord;
}

/** Result of {@linkcode evaluate}. */
export interface EvalResult {
  /** Mean cross-entropy. */
  loss: number;
  /** Fraction classified correctly. */
  accuracy: number;
  /** Samples evaluated. */
  count: number;
  /** Accuracy per class (NaN for a class without samples), with `perClass: true`. */
  perClassAccuracy?: number[];
  /** Predicted class of every sample, with `perClass: true`. */
  predictions?: Uint32Array;
}

/** Options of {@linkcode evaluate}. */
export interface EvalOptions {
  /** Samples per forward pass. Default 500, or fewer where the memory cap needs it (`fittingBatchSize`). */
  batchSize?: number;
  /** Also return per-class accuracy and the predictions (one extra read-back). Default false. */
  perClass?: boolean;
  /** Evaluate only the first `limit` samples. */
  limit?: number;
}

/** `now()` in seconds, wherever it runs. */
function now(): number {
  return performance.now() / 1000;
}

function checkData(what: string, ds: TrainDataset, model: Sequential): void {
  if (!(ds.length > 0)) throw new Error(`train: the ${what} set '${ds.name}' is empty`);
  try {
    checkDataset(ds);
  } catch (e) {
    throw new Error(`train: ${what} set: ${(e as Error).message}`);
  }
  let out: number[];
  try {
    out = model.outputShape([1, ...ds.sampleShape]);
  } catch (e) {
    throw new Error(
      `train: the model does not take ${what} samples of shape ${fmtShape(ds.sampleShape)}: ` +
        (e as Error).message,
    );
  }
  if (out.length !== 2 || out[1] !== ds.classes) {
    throw new Error(
      `train: the model outputs ${fmtShape(out)} for one sample, but the ${what} set has ` +
        `${ds.classes} classes (expected [1,${ds.classes}])`,
    );
  }
}

/**
 * Sums that stay on the GPU and are read back together: f32 scalars and one u32 counter,
 * packed into one buffer by copies before a single read.
 */
class GpuSums {
  readonly f: Tensor[];
  readonly correct: Tensor;
  #packed: Tensor;

  /**
   * @param n f32 sums
   * @param extra room for floats of another tensor read with the sums (the trajectory ring)
   */
  constructor(readonly rt: Backend, n: number, extra = 0) {
    this.f = Array.from({ length: n }, (_, i) => rt.zeros([1], "f32", `sum ${i}`));
    this.correct = rt.zeros([], "u32", "correct");
    this.#packed = rt.empty([n + 1 + extra], "f32", "sums packed");
  }

  clear(): void {
    for (const t of this.f) this.rt.fill0(t);
    this.rt.fill0(this.correct);
  }

  /**
   * @param extra the first `count` floats of `src` to read in the same read-back
   * @returns the f32 sums, the counter, and the extra floats
   */
  async read(
    extra?: { src: Tensor; count: number },
  ): Promise<{ f: number[]; correct: number; extra: Float32Array }> {
    const n = this.f.length;
    this.f.forEach((t, i) => this.rt.copy(t, this.#packed, 1, 0, i));
    this.rt.copy(this.correct, this.#packed, 1, 0, n);
    if (extra?.count) this.rt.copy(extra.src, this.#packed, extra.count, 0, n + 1);
    const data = await this.#packed.read() as Float32Array;
    const correct = new Uint32Array(data.buffer, data.byteOffset, n + 1)[n];
    return {
      f: Array.from(data.subarray(0, n)),
      correct,
      extra: data.slice(n + 1, n + 1 + (extra?.count ?? 0)),
    };
  }

  dispose(): void {
    for (const t of this.f) t.dispose();
    this.correct.dispose();
    this.#packed.dispose();
  }
}

/**
 * Loss and accuracy of a model on a dataset, in eval mode (restored afterwards), summed on the
 * GPU and read back once.
 * @param model a classifier: (B, ...sampleShape) -> (B, classes) logits
 * @param data the samples
 * @param opts batch size, per-class accuracy, limit
 * @returns mean cross-entropy, accuracy, count (and per-class accuracy, predictions)
 * @throws Error if the model does not fit the data
 * @example
 * ```ts
 * import { buildModel, evaluate, modelSpecFromName, Runtime, toy2d } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * const r = await evaluate(model, toy2d({ split: "test" }), { perClass: true });
 * console.log(r.loss, r.accuracy, r.perClassAccuracy);
 * model.dispose();
 * ```
 */
export async function evaluate(
  model: Sequential,
  data: TrainDataset,
  opts: EvalOptions = {},
): Promise<EvalResult> {
  checkData("evaluation", data, model);
  if (opts.limit !== undefined && opts.limit < data.length) {
    if (!(Number.isInteger(opts.limit) && opts.limit >= 1)) {
      throw new Error(`evaluate: limit must be a positive integer, got ${opts.limit}`);
    }
    data = subset(data, Array.from({ length: opts.limit }, (_, i) => i));
  }
  const bs = Math.max(
    1,
    Math.min(
      opts.batchSize ?? fittingBatchSize(model.rt, model, data.sampleShape, 500),
      data.length,
    ),
  );
  const loader = new Batches(model.rt, data, { batchSize: bs, shuffle: false });
  try {
    return await evaluateBatches(model, loader, data, opts.perClass ?? false);
  } finally {
    loader.dispose();
  }
}

/** {@linkcode evaluate} over a loader that visits `data` in storage order (reused by train). */
async function evaluateBatches(
  model: Sequential,
  loader: Batches,
  data: TrainDataset,
  perClass: boolean,
): Promise<EvalResult> {
  const rt = model.rt;
  const n = data.length;
  const wasTraining = model.training;
  model.eval();
  const sums = new GpuSums(rt, 1);
  const preds = perClass ? rt.empty([n], "u32", "predictions") : null;
  const ces = new Map<number, CrossEntropyResult>();
  let pred: Tensor | null = null;
  try {
    for (const { x, y, count, offset } of loader.epoch(0)) {
      const logits = model.forward(x);
      const ce = softmaxCrossEntropy(rt, logits, y, {
        grad: false,
        reduction: "sum",
        out: ces.get(count),
      });
      ces.set(count, ce);
      axpy(rt, 1, ce.loss, sums.f[0]);
      accuracyCount(rt, logits, y, { out: sums.correct, accumulate: true });
      if (preds) {
        if (pred?.size !== count) {
          pred?.dispose();
          pred = rt.empty([count], "u32", "batch predictions");
        }
        argmax(rt, logits, 1, { out: pred });
        rt.copy(pred, preds, count, 0, offset);
      }
      rt.submit();
    }
    const { f, correct } = await sums.read();
    const result: EvalResult = { loss: f[0] / n, accuracy: correct / n, count: n };
    if (preds) {
      const p = await preds.read() as Uint32Array;
      const hit = new Float64Array(data.classes), tot = new Float64Array(data.classes);
      for (let i = 0; i < n; i++) {
        tot[data.y[i]]++;
        if (p[i] === data.y[i]) hit[data.y[i]]++;
      }
      result.perClassAccuracy = Array.from(hit, (h, c) => (tot[c] ? h / tot[c] : NaN));
      result.predictions = p;
    }
    return result;
  } finally {
    model.training = wasTraining;
    for (const ce of ces.values()) ce.dispose();
    pred?.dispose();
    preds?.dispose();
    sums.dispose();
  }
}

function makeSchedule(
  schedule: TrainOptions["schedule"],
  lr: number,
  totalSteps: number,
): Schedule {
  if (typeof schedule === "function") return schedule;
  switch (schedule ?? "constant") {
    case "constant":
      return constantLr(lr);
    case "step":
      return stepDecay(lr, { stepAt: [1 / 3, 2 / 3], gamma: 0.1, total: Math.max(totalSteps, 3) });
    case "cosine":
      return cosineAnnealing(lr, { tMax: Math.max(totalSteps, 1) });
    default:
      throw new Error(
        `train: unknown schedule '${schedule}' (use "constant", "step" or "cosine")`,
      );
  }
}

function positiveInt(what: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 1)) {
    throw new Error(`train: ${what} must be a positive integer, got ${v}`);
  }
  return v;
}

/** A run's settings: the options checked, with their defaults filled in. */
interface TrainPlan {
  epochs: number;
  batchSize: number;
  seed: number;
  rules: StoppingRule[];
  restoreBest: boolean;
  monitor: "loss" | "error";
  logEvery: number;
  gradNormEvery: number;
  regs: readonly Regularizer[];
  adversarial: AdversarialTrainingResolved | null;
  labelSmoothing: number | undefined;
  stepsPerEpoch: number;
  /** Steps in the run (epochs × steps per epoch, or maxSteps when fewer). */
  totalSteps: number;
  schedule: Schedule;
  /** Global steps between trajectory samples; 0: none. */
  trajectoryEvery: number;
  /** The label noise to apply, with its seed filled in; null: none. */
  labelNoise: { fraction: number; seed: number } | null;
}

/** Checks the data and options of {@linkcode train} and fills in the defaults. */
function planTraining(model: Sequential, data: TrainData, options: TrainOptions): TrainPlan {
  const epochs = positiveInt("epochs", options.epochs);
  const trainSet = data.train, valSet = data.val;
  checkData("training", trainSet, model);
  if (valSet) {
    checkData("validation", valSet, model);
    if (valSet.classes !== trainSet.classes) {
      throw new Error(
        `train: the validation set has ${valSet.classes} classes, the training set ` +
          `${trainSet.classes}`,
      );
    }
  }
  const batchSize = positiveInt("batchSize", options.batchSize ?? 64);
  const lr0 = options.lr ?? 0.05;
  if (!(Number.isFinite(lr0) && lr0 >= 0)) throw new Error(`train: invalid lr ${lr0}`);
  const seed = options.seed ?? 0;
  const rules: StoppingRule[] = options.earlyStopping === undefined
    ? []
    : Array.isArray(options.earlyStopping)
    ? [...options.earlyStopping]
    : [options.earlyStopping as StoppingRule];
  if (rules.length && !valSet) {
    throw new Error("train: early stopping needs a validation set (data.val)");
  }
  for (const r of rules) shouldStop(r, { train: [], val: [] }); // validates the rule
  const restoreBest = options.restoreBest ?? rules.length > 0;
  if (restoreBest && !valSet) {
    throw new Error("train: restoreBest needs a validation set (data.val)");
  }
  const monitor = options.monitor ?? "loss";
  const logEvery = positiveInt("logEvery", options.logEvery ?? 50);
  const gradNormEvery = positiveInt("gradNormEvery", options.gradNormEvery ?? 10);
  const regs = options.regularizers ?? [];
  // Label smoothing is a property of the loss: given directly or by a `label-smoothing` regularizer.
  const labelSmoothing = options.labelSmoothing ?? labelSmoothingOf(regs);
  const names = new Set<string>();
  for (const r of regs) {
    if (names.has(r.name)) throw new Error(`train: regularizer '${r.name}' is given twice`);
    names.add(r.name);
  }
  let adversarial: AdversarialTrainingResolved | null = null;
  if (options.adversarial) {
    try {
      adversarial = resolveAdversarialTraining(options.adversarial);
    } catch (e) {
      throw new Error(`train: ${(e as Error).message}`);
    }
  }
  const stepsPerEpoch = Math.ceil(trainSet.length / batchSize);
  const totalSteps = Math.min(epochs * stepsPerEpoch, options.maxSteps ?? Infinity);
  const trajectoryEvery = options.trajectoryEvery ?? Math.max(1, Math.ceil(totalSteps / 200));
  if (!(Number.isInteger(trajectoryEvery) && trajectoryEvery >= 0)) {
    throw new Error(`train: trajectoryEvery must be an integer >= 0, got ${trajectoryEvery}`);
  }
  let labelNoise: TrainPlan["labelNoise"] = null;
  if (options.labelNoise) {
    const { fraction, seed: noiseSeed = seed } = options.labelNoise;
    if (!(fraction >= 0 && fraction <= 1)) {
      throw new Error(`train: labelNoise.fraction must be in [0, 1], got ${fraction}`);
    }
    labelNoise = { fraction, seed: noiseSeed };
  }
  if (data.test) {
    checkData("test", data.test, model);
    if (data.test.classes !== trainSet.classes) {
      throw new Error(
        `train: the test set has ${data.test.classes} classes, the training set ` +
          `${trainSet.classes}`,
      );
    }
  }
  return {
    epochs,
    batchSize,
    seed,
    rules,
    restoreBest,
    monitor,
    logEvery,
    gradNormEvery,
    regs,
    adversarial,
    labelSmoothing,
    stepsPerEpoch,
    totalSteps,
    schedule: makeSchedule(options.schedule, lr0, totalSteps),
    trajectoryEvery,
    labelNoise,
  };
}

/** What a run holds between steps and epochs: its plan, its GPU resources and its counters. */
interface TrainRun {
  readonly rt: Backend;
  readonly model: Sequential;
  readonly options: TrainOptions;
  readonly plan: TrainPlan;
  readonly valSet?: TrainDataset;
  readonly params: Param[];
  /** The params the optimizer updates (with a gradient, not buffers). */
  readonly trained: Param[];
  readonly opt: Optimizer;
  /** f32 sums: 0 loss·B, 1 Σ‖g‖² over sampled steps, 2 ‖θ‖², 3.. penalty·B per regularizer. */
  readonly sums: GpuSums;
  /** (1,) f32 partial sum of squares. */
  readonly scratch: Tensor;
  /** Copies of the params at the best validation epoch (with `restoreBest`). */
  readonly best: Tensor[] | null;
  readonly loader: Batches;
  readonly valLoader: Batches | null;
  readonly testSet?: TrainDataset;
  readonly testLoader: Batches | null;
  /**
   * With label noise: the training set as trained on (noisy labels), its clean labels and
   * corrupted indices, and an unshuffled loader over it for the memorisation curve.
   */
  readonly noise: {
    data: TrainDataset;
    clean: Int32Array;
    corrupted: Uint32Array;
    loader: Batches;
    record: LabelNoiseRecord;
  } | null;
  /** The noisy training set on the device, shared by `loader` and `noise.loader`. */
  readonly device: DeviceDataset | null;
  /** Per-layer trajectory sampler (null with `trajectoryEvery: 0`). */
  readonly trajectory: Trajectory | null;
  /** The current epoch's trajectory samples, filled at each read-back. */
  trajectoryRecord: TrajectoryRecord;
  /** Cross-entropy outputs by batch size, reused across steps. */
  readonly ces: Map<number, CrossEntropyResult>;
  readonly history: EpochRecord[];
  /** Start of training, seconds. */
  readonly t0: number;
  /** Global steps taken. */
  step: number;
  /** Learning rate of the latest step. */
  lr: number;
  stopReason?: string;
  /** Best validation epoch (from 1; 0 none yet) and its monitored value. */
  bestAt: number;
  bestValue: number;
  /** The epoch's running means at the latest read-back, and when the epoch started. */
  running: { loss: number; accuracy: number; seen: number; since: number };
}

/** Allocates what a run needs; {@linkcode closeRun} frees it. */
function openRun(
  model: Sequential,
  data: TrainData,
  options: TrainOptions,
  plan: TrainPlan,
  t0: number,
): TrainRun {
  const rt = model.rt;
  const params = model.params();
  const opt = createOptimizer(rt, {
    ...(options.optimizer ?? { algorithm: "sgd", momentum: 0.9 }),
    zeroGrad: true,
  } as OptimizerSpec);
  const trained = params.filter((p) => p.kind !== "buffer" && p.grad);
  // Enough ring for the samples between two read-backs (every logEvery steps and at epoch
  // ends); trainEpoch reads early should it fill anyway.
  const trajectory = plan.trajectoryEvery > 0
    ? new Trajectory(rt, trained, Math.ceil(plan.logEvery / plan.trajectoryEvery) + 1)
    : null;
  const sums = new GpuSums(
    rt,
    3 + plan.regs.length,
    trajectory ? trajectory.capacity * trajectory.width : 0,
  );
  const scratch = rt.empty([1], "f32", "norm scratch");
  const best = plan.restoreBest
    ? params.map((p) => rt.empty(p.value.shape, p.value.dtype, `best ${p.name}`))
    : null;
  // Evaluation batches: 500 samples, or what fits under the backend's memory cap (Wasm) beside
  // the parameters, the optimizer state and the data already there.
  const evalBatch = options.evalBatchSize ??
    fittingBatchSize(rt, model, data.train.sampleShape, 500);
  let trainSet = data.train;
  let noise: TrainRun["noise"] = null;
  let device: DeviceDataset | null = null;
  if (plan.labelNoise) {
    const r = randomizeLabels(trainSet, plan.labelNoise);
    trainSet = r.dataset;
    // One upload shared by the training loader and the memorisation pass, when it fits.
    if (DeviceDataset.fits(rt, trainSet)) device = DeviceDataset.upload(rt, trainSet);
    noise = {
      data: trainSet,
      clean: r.cleanLabels,
      corrupted: r.corrupted,
      loader: new Batches(rt, device ?? trainSet, {
        batchSize: Math.min(evalBatch, trainSet.length),
        shuffle: false,
      }),
      record: {
        ...plan.labelNoise,
        corrupted: r.corrupted.length,
        samples: trainSet.length,
        rule: r.rule,
      },
    };
  }
  const loader = new Batches(rt, device ?? trainSet, {
    batchSize: plan.batchSize,
    seed: plan.seed,
    augment: options.augment,
  });
  const valSet = data.val;
  const valLoader = valSet
    ? new Batches(rt, valSet, {
      batchSize: Math.min(evalBatch, valSet.length),
      shuffle: false,
    })
    : null;
  const testSet = data.test;
  const testLoader = testSet
    ? new Batches(rt, testSet, {
      batchSize: Math.min(evalBatch, testSet.length),
      shuffle: false,
    })
    : null;
  return {
    rt,
    model,
    options,
    plan,
    valSet,
    params,
    trained,
    opt,
    sums,
    scratch,
    best,
    loader,
    valLoader,
    testSet,
    testLoader,
    noise,
    device,
    trajectory,
    trajectoryRecord: { steps: [], layers: {} },
    ces: new Map(),
    history: [],
    t0,
    step: 0,
    lr: 0,
    bestAt: 0,
    bestValue: Infinity,
    running: { loss: NaN, accuracy: NaN, seen: 0, since: t0 },
  };
}

function closeRun(run: TrainRun): void {
  for (const ce of run.ces.values()) ce.dispose();
  run.best?.forEach((t) => t.dispose());
  run.loader.dispose();
  run.valLoader?.dispose();
  run.testLoader?.dispose();
  run.noise?.loader.dispose();
  run.device?.dispose();
  run.trajectory?.dispose();
  run.sums.dispose();
  run.scratch.dispose();
  run.opt.dispose();
}

/** Adds Σ‖t‖² over the params' values (or gradients) into `into`. */
function addSq(
  run: TrainRun,
  list: readonly Param[],
  which: "value" | "grad",
  into: Tensor,
): void {
  for (const p of list) {
    reduce(run.rt, "sumsq", which === "grad" ? p.grad! : p.value, { out: run.scratch });
    axpy(run.rt, 1, run.scratch, into);
  }
}

/**
 * Records one training step into the command encoder and submits it (no read-back): the
 * regularizers' hooks around forward, cross-entropy, backward and the optimizer, and the loss,
 * correct count, penalties and (on sampled steps) gradient norm summed on the GPU.
 * @returns whether this is the epoch's (or the run's) last step, and whether it sampled the
 *   gradient norm
 */
function trainStep(
  run: TrainRun,
  batch: Batch,
  epoch: number,
): { last: boolean; sampled: boolean } {
  const { rt, model, params, plan, sums } = run;
  const { regs, stepsPerEpoch, totalSteps } = plan;
  const { y, count, index: s } = batch;
  const step = run.step;
  run.lr = plan.schedule(step);
  // Adversarial training: the batch is replaced before anything else sees it, so the hooks'
  // ctx.x, the forward and the recorded loss are all at the adversarial points.
  const adv = plan.adversarial
    ? adversarialBatch(rt, model, batch.x, y, plan.adversarial, { seed: plan.seed, step })
    : null;
  const x = adv ?? batch.x;
  const ctx: StepContext = {
    rt,
    model,
    params,
    x,
    y,
    step,
    epoch,
    stepsPerEpoch,
    seed: plan.seed,
  };
  let xin = x;
  for (const r of regs) if (r.transformInput) xin = r.transformInput(ctx, xin);
  for (const r of regs) r.beforeForward?.(ctx);
  model.setCounter(step);
  const logits = model.forward(xin);
  const ce = softmaxCrossEntropy(rt, logits, y, {
    labelSmoothing: plan.labelSmoothing,
    out: run.ces.get(count),
  });
  run.ces.set(count, ce);
  axpy(rt, count, ce.loss, sums.f[0]);
  accuracyCount(rt, logits, y, { out: sums.correct, accumulate: true });
  regs.forEach((r, i) => {
    const v = r.logitsGrad?.(ctx, logits, ce.dLogits!);
    if (v) axpy(rt, count, v, sums.f[3 + i]);
  });
  // A regularizer with a `backward` hook (Jacobian) shares the step's backward.
  const owner = regs.findIndex((r) => r.backward);
  const shared = owner >= 0 ? regs[owner].backward!(ctx, ce.dLogits!) : null;
  if (owner < 0) model.backwardParams(ce.dLogits!);
  else if (shared) axpy(rt, count, shared, sums.f[3 + owner]);
  regs.forEach((r, i) => {
    const v = i === owner ? null : r.afterBackward?.(ctx);
    if (v) axpy(rt, count, v, sums.f[3 + i]);
  });
  const last = s === stepsPerEpoch - 1 || step + 1 >= totalSteps;
  const sampled = s % plan.gradNormEvery === 0 || last;
  if (sampled) addSq(run, run.trained, "grad", sums.f[1]);
  for (const r of regs) r.beforeStep?.(ctx);
  // After beforeStep (weight noise has put the clean weights back): the weights and gradient
  // the optimizer is about to combine.
  if (run.trajectory && step % plan.trajectoryEvery === 0) run.trajectory.record(step);
  run.opt.step(params, run.lr);
  for (const r of regs) r.afterStep?.(ctx);
  rt.submit();
  adv?.dispose();
  run.step++;
  return { last, sampled };
}

/**
 * One pass over the training set (ending early at maxSteps, an abort or a non-finite running
 * loss, with `run.stopReason` set), the sums read back every `logEvery` steps and at the end,
 * then the validation pass.
 * @returns the epoch's record, or undefined when it took no step
 */
async function trainEpoch(run: TrainRun, epoch: number): Promise<EpochRecord | undefined> {
  const { options, plan, sums } = run;
  const te = now();
  sums.clear();
  let seen = 0, sampled = 0, stepsThisEpoch = 0;
  run.running = { loss: NaN, accuracy: NaN, seen: 0, since: te };
  for (const batch of run.loader.epoch(epoch)) {
    if (run.step >= plan.totalSteps) {
      run.stopReason = `reached maxSteps ${options.maxSteps}`;
      break;
    }
    if (options.signal?.aborted) {
      run.stopReason = "aborted";
      break;
    }
    if (run.trajectory?.full) await readSums(run);
    const done = trainStep(run, batch, epoch);
    if (done.sampled) sampled++;
    stepsThisEpoch++;
    seen += batch.count;
    if (!done.last && run.step % plan.logEvery === 0) {
      const got = await readSums(run);
      run.running = { loss: got.f[0] / seen, accuracy: got.correct / seen, seen, since: te };
      if (!Number.isFinite(run.running.loss)) {
        run.stopReason = `the training loss became ${run.running.loss} at step ${run.step}`;
        break;
      }
      options.onProgress?.(progressOf(run));
    }
  }
  const trainSeconds = now() - te;
  if (stepsThisEpoch === 0) return undefined;
  addSq(run, run.trained, "value", sums.f[2]);
  const got = await readSums(run);
  const trainSecondsSynced = now() - te;
  run.running = { loss: got.f[0] / seen, accuracy: got.correct / seen, seen, since: te };
  const penalties: Record<string, number> = {};
  plan.regs.forEach((r, i) => (penalties[r.name] = got.f[3 + i] / seen));
  const rec: EpochRecord = {
    epoch: epoch + 1,
    lr: run.lr,
    trainLoss: run.running.loss,
    trainAccuracy: run.running.accuracy,
    penalties,
    paramNorm: Math.sqrt(got.f[2]),
    gradNorm: Math.sqrt(got.f[1] / Math.max(sampled, 1)),
    seconds: 0,
    samplesPerSecond: seen / Math.max(trainSecondsSynced, trainSeconds, 1e-9),
    steps: stepsThisEpoch,
  };
  if (run.trajectory) {
    rec.trajectory = run.trajectoryRecord;
    run.trajectoryRecord = { steps: [], layers: {} };
  }
  await validateEpoch(run, rec);
  await observeEpoch(run, rec);
  rec.seconds = now() - te;
  return rec;
}

/**
 * Reads the running sums back, and with them the trajectory samples taken since the last
 * read-back (one read in all), which go into the epoch's trajectory record.
 */
async function readSums(run: TrainRun): Promise<{ f: number[]; correct: number }> {
  const tr = run.trajectory;
  const got = await run.sums.read(tr ? { src: tr.ring, count: tr.pendingFloats } : undefined);
  tr?.take(got.extra, run.trajectoryRecord);
  return got;
}

/**
 * What is only recorded after an epoch: the test set's loss and accuracy, and with label noise
 * the memorisation curve (the training set in eval mode against its noisy and clean labels).
 */
async function observeEpoch(run: TrainRun, rec: EpochRecord): Promise<void> {
  if (run.noise) {
    const { data, clean, corrupted, loader } = run.noise;
    const r = await evaluateBatches(run.model, loader, data, true);
    const p = r.predictions!;
    let hitClean = 0, memorized = 0, corruptedClean = 0;
    for (let i = 0; i < p.length; i++) if (p[i] === clean[i]) hitClean++;
    for (const i of corrupted) {
      if (p[i] === data.y[i]) memorized++;
      else if (p[i] === clean[i]) corruptedClean++;
    }
    const nc = Math.max(corrupted.length, 1);
    rec.memorization = {
      noisyLoss: r.loss,
      noisyAccuracy: r.accuracy,
      cleanAccuracy: hitClean / p.length,
      memorized: corrupted.length ? memorized / nc : NaN,
      corruptedClean: corrupted.length ? corruptedClean / nc : NaN,
    };
  }
  if (run.testSet) {
    const t = await evaluateBatches(run.model, run.testLoader!, run.testSet, false);
    rec.testLoss = t.loss;
    rec.testAccuracy = t.accuracy;
  }
}

/** Validation loss and accuracy (eval mode) into the epoch's record, when there is a val set. */
async function validateEpoch(run: TrainRun, rec: EpochRecord): Promise<void> {
  if (!run.valSet) return;
  const v = await evaluateBatches(run.model, run.valLoader!, run.valSet, false);
  rec.valLoss = v.loss;
  rec.valAccuracy = v.accuracy;
}

/**
 * After a validated epoch: keeps the best epoch (and a copy of its weights with `restoreBest`)
 * and asks the stopping rules, setting `run.stopReason` when one says stop.
 */
function watchValidation(run: TrainRun, rec: EpochRecord): void {
  if (!run.valSet) return;
  const { rt, params, best, history } = run;
  const monitor = run.plan.monitor;
  const value = monitor === "loss" ? rec.valLoss! : 1 - rec.valAccuracy!;
  if (value < run.bestValue) {
    run.bestValue = value;
    run.bestAt = rec.epoch;
    if (best) params.forEach((p, i) => rt.copy(p.value, best[i]));
    rt.submit();
  }
  const curves = {
    train: history.map((h) => monitor === "loss" ? h.trainLoss : 1 - h.trainAccuracy),
    val: history.map((h) => monitor === "loss" ? h.valLoss! : 1 - h.valAccuracy!),
  };
  for (const r of run.plan.rules) {
    const d = shouldStop(r, curves);
    if (d.stop && run.stopReason === undefined) run.stopReason = d.reason;
  }
}

/** Where the run is, for `onProgress` (at the end of an epoch: that epoch's totals). */
function progressOf(run: TrainRun, endOfEpoch = false): Progress {
  const { step, plan, running } = run;
  const { stepsPerEpoch, totalSteps } = plan;
  const elapsed = now() - run.t0;
  const done = step;
  const h = run.history.at(-1);
  return {
    epoch: endOfEpoch ? h!.epoch : Math.floor((step - 1) / stepsPerEpoch) + 1,
    epochs: plan.epochs,
    step: endOfEpoch ? h!.steps : ((step - 1) % stepsPerEpoch) + 1,
    stepsPerEpoch,
    globalStep: step,
    totalSteps,
    loss: running.loss,
    accuracy: running.accuracy,
    samplesPerSecond: endOfEpoch
      ? h!.samplesPerSecond
      : running.seen / Math.max(now() - running.since, 1e-9),
    elapsed,
    eta: done > 0 ? elapsed / done * (totalSteps - done) : NaN,
    lr: plan.schedule(Math.max(0, Math.min(step, totalSteps) - 1)),
  };
}

/**
 * Trains a classifier with softmax cross-entropy.
 *
 * @param model a {@linkcode Sequential} (B, ...sampleShape) -> (B, classes); trained in place.
 *   Left in eval mode at the end.
 * @param data training set and optional validation set
 * @param options epochs, batch size, optimizer, schedule, regularizers, early stopping, ...
 * @returns the per-epoch history, the steps taken, why it stopped early, the best epoch
 * @throws Error for data that does not fit the model, bad options, or early stopping without a
 *   validation set
 */
export async function train(
  model: Sequential,
  data: TrainData,
  options: TrainOptions,
): Promise<TrainResult> {
  const rt = model.rt;
  const t0 = now();
  const plan = planTraining(model, data, options);
  const run = openRun(model, data, options, plan, t0);
  const { history } = run;
  try {
    model.training = options.trainMode ?? true;
    model.zeroGrad();
    run.lr = plan.schedule(0);
    for (let epoch = 0; epoch < plan.epochs && run.stopReason === undefined; epoch++) {
      const rec = await trainEpoch(run, epoch);
      if (!rec) break;
      history.push(rec);
      options.onProgress?.(progressOf(run, true));
      options.onEpoch?.(rec);
      if (!Number.isFinite(rec.trainLoss)) {
        run.stopReason ??= `the training loss became ${rec.trainLoss} in epoch ${epoch + 1}`;
        break;
      }
      watchValidation(run, rec);
    }
    let restored = false;
    if (run.best && run.bestAt > 0 && run.bestAt !== history.length) {
      const best = run.best;
      run.params.forEach((p, i) => rt.copy(best[i], p.value));
      rt.submit();
      restored = true;
    }
    await rt.sync();
    if (run.valSet && run.bestAt === 0 && history.length) {
      run.bestAt = bestEpoch(history.map((h) => h.valLoss!));
    }
    return {
      history,
      steps: run.step,
      stopReason: run.stopReason,
      bestEpoch: run.bestAt,
      restoredBest: restored,
      seconds: now() - t0,
      ...(run.noise ? { labelNoise: run.noise.record } : {}),
    };
  } finally {
    model.eval();
    closeRun(run);
  }
}
