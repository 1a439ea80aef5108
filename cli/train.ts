/**
 * `cli.ts train`: trains a model on a dataset and writes a checkpoint.
 * Defaults train LeNet on MNIST for one epoch, so `deno run -A cli.ts train`
 * alone works. Also the shared pieces of `train` and `eval`: resolving model,
 * data and regularizer names, and formatting.
 *
 * @module
 */

import type { Command, Io, ParsedArgs } from "./args.ts";
import { didYouMean, UsageError } from "./args.ts";
import { checkWritable, readFileOrFail, writeFileAtomic } from "./fs.ts";
import type { Backend } from "../src/backend.ts";
import { BACKEND_FLAGS, createBackend } from "./backend.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import type { Regularizer } from "../src/hooks/step.ts";
import { encodeCheckpoint } from "../src/io/checkpoint.ts";
import { parseStoppingRule, type StoppingRule } from "../src/train/early_stopping.ts";
import type { OptimizerSpec } from "../src/train/optim.ts";
import {
  type EpochRecord,
  evaluate,
  type Progress,
  train,
  type TrainDataset,
  type TrainOptions,
} from "../src/train/train.ts";
import { describeRegularizers } from "../src/regularizers/registry.ts";
import {
  type AdversarialTrainingResolved,
  parseAdversarialTraining,
} from "../src/train/adversarial.ts";
import * as seams from "./_seams.ts";

/**
 * Defaults chosen to reach >= 97 % test accuracy with LeNet on MNIST in one epoch: SGD with
 * momentum 0.9, lr 0.05, batch 64 gave 98.0 % test accuracy (seed 0, 54k training samples) in
 * under two minutes on a 2-core software adapter (llvmpipe).
 */
export const TRAIN_DEFAULTS = {
  model: "lenet",
  data: "mnist",
  epochs: 1,
  batchSize: 64,
  lr: 0.05,
  optimizer: "sgd",
  momentum: 0.9,
  weightDecay: 0,
  schedule: "constant",
  seed: 0,
  valFraction: 0.1,
} as const;

const OPTIMIZERS = ["sgd", "adam", "adamw"] as const;
const SCHEDULES = ["constant", "step", "cosine"] as const;

/** Seconds as `1:02:03` or `2:03`. */
export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(sec).padStart(2, "0")}`;
}

function pct(v: number | undefined): string {
  return v === undefined ? "-" : `${(100 * v).toFixed(2)}%`;
}

/** One plain line per epoch. */
export function fmtEpoch(r: EpochRecord, epochs: number): string {
  const parts = [
    `epoch ${r.epoch}/${epochs}`,
    `loss ${r.trainLoss.toFixed(4)}`,
    `acc ${pct(r.trainAccuracy)}`,
  ];
  for (const [k, v] of Object.entries(r.penalties)) parts.push(`${k} ${v.toPrecision(3)}`);
  if (r.valLoss !== undefined) {
    parts.push(`val_loss ${r.valLoss.toFixed(4)}`, `val_acc ${pct(r.valAccuracy)}`);
  }
  if (r.memorization) {
    parts.push(
      `noisy_acc ${pct(r.memorization.noisyAccuracy)}`,
      `clean_acc ${pct(r.memorization.cleanAccuracy)}`,
      `memorized ${pct(r.memorization.memorized)}`,
    );
  }
  if (r.testAccuracy !== undefined) parts.push(`test_acc ${pct(r.testAccuracy)}`);
  parts.push(
    `lr ${r.lr.toPrecision(3)}`,
    `|θ| ${r.paramNorm.toPrecision(4)}`,
    `|g| ${r.gradNorm.toPrecision(3)}`,
    `${Math.round(r.samplesPerSecond)} samples/s`,
    `${r.seconds.toFixed(1)}s`,
  );
  return parts.join("  ");
}

/** A progress bar line: `epoch 1/3 [=====>    ] 52% 1234 samples/s ETA 0:42 loss 0.31`. */
export function fmtProgress(p: Progress, width = 24): string {
  const frac = p.step / p.stepsPerEpoch;
  const fill = Math.min(width, Math.round(frac * width));
  const bar = "=".repeat(Math.max(0, fill - 1)) + (fill ? (fill === width ? "=" : ">") : "") +
    " ".repeat(width - fill);
  const loss = Number.isFinite(p.loss) ? `  loss ${p.loss.toFixed(4)}` : "";
  const acc = Number.isFinite(p.accuracy) ? `  acc ${pct(p.accuracy)}` : "";
  return `epoch ${p.epoch}/${p.epochs} [${bar}] ${String(Math.floor(frac * 100)).padStart(3)}%` +
    `  ${Math.round(p.samplesPerSecond)} samples/s  ETA ${fmtDuration(p.eta)}${loss}${acc}`;
}

function num(flags: ParsedArgs["flags"], name: string): number {
  return flags[name] as number;
}

function checkPositiveInt(name: string, v: number): void {
  if (!(Number.isInteger(v) && v >= 1)) {
    throw new UsageError(`Flag '--${name}' needs a positive integer, got ${v}`);
  }
}

/** The optimizer spec from the flags. */
function optimizerFrom(flags: ParsedArgs["flags"]): OptimizerSpec {
  const name = String(flags.optimizer).toLowerCase();
  if (!(OPTIMIZERS as readonly string[]).includes(name)) {
    throw new UsageError(
      `Unknown optimizer '${flags.optimizer}'${didYouMean(name, OPTIMIZERS)}; ` +
        `use one of ${OPTIMIZERS.join(", ")}`,
    );
  }
  const wd = num(flags, "weight-decay");
  if (!(wd >= 0)) throw new UsageError(`Flag '--weight-decay' must be >= 0, got ${wd}`);
  if (name === "sgd") {
    const momentum = num(flags, "momentum");
    if (!(momentum >= 0)) throw new UsageError(`Flag '--momentum' must be >= 0, got ${momentum}`);
    return { algorithm: "sgd", momentum, nesterov: flags.nesterov === true, weightDecay: wd };
  }
  return { algorithm: name as "adam" | "adamw", weightDecay: wd };
}

const trainFlags = {
  ...BACKEND_FLAGS,
  model: {
    type: "string",
    help:
      "Model: lenet, lenet-relu, ddnet, resnet18, mlp, or a JSON model spec (inline or a .json file).",
    default: TRAIN_DEFAULTS.model,
  },
  dropout: {
    type: "number",
    help:
      "Dropout probability of the model's dropout layers (mlp, lenet: after hidden fc layers; ddnet: default 0.5).",
  },
  data: {
    type: "string",
    help: "Dataset name (mnist, fashion-mnist, cifar10, toy2d, ...).",
    default: TRAIN_DEFAULTS.data,
  },
  "data-path": { type: "string", help: "Directory holding the dataset's files." },
  limit: { type: "number", help: "Use only the first N training samples (quick runs)." },
  epochs: { type: "number", help: "Passes over the training set.", default: TRAIN_DEFAULTS.epochs },
  "batch-size": { type: "number", help: "Samples per step.", default: TRAIN_DEFAULTS.batchSize },
  lr: { type: "number", help: "Initial learning rate.", default: TRAIN_DEFAULTS.lr },
  optimizer: {
    type: "string",
    help: "sgd, adam or adamw.",
    default: TRAIN_DEFAULTS.optimizer,
  },
  momentum: { type: "number", help: "SGD momentum.", default: TRAIN_DEFAULTS.momentum },
  nesterov: { type: "boolean", help: "Nesterov momentum (SGD)." },
  "weight-decay": {
    type: "number",
    help: "Weight decay (L2 in SGD/Adam, decoupled in AdamW).",
    default: TRAIN_DEFAULTS.weightDecay,
  },
  schedule: {
    type: "string",
    help: "Learning-rate schedule: constant, step (÷10 at 1/3 and 2/3), cosine.",
    default: TRAIN_DEFAULTS.schedule,
  },
  seed: { type: "number", help: "Seed of init, split, shuffling and noise.", default: 0 },
  "val-fraction": {
    type: "number",
    help: "Fraction of the training set held out for validation (0: none).",
    default: TRAIN_DEFAULTS.valFraction,
  },
  "early-stopping": {
    type: "string",
    metavar: "rule",
    help: "Stop by Prechelt's gl:ALPHA, pq:ALPHA, up:S, or patience:EPOCHS (comma list).",
  },
  reg: {
    type: "string",
    metavar: "spec",
    multiple: true,
    help: "Regularizer, e.g. l2:lambda=5e-4, jacobian:lambda=0.01 (dropout: see --dropout).",
  },
  "adv-train": {
    type: "string",
    metavar: "spec",
    help: "Adversarial training: pgd:eps=E,steps=10,alpha=2.5E/steps,random-start=true,ratio=1 " +
      "(Madry et al. 2018) or fgsm:eps=E,ratio=1 (Goodfellow et al. 2015); the attack in eval " +
      "mode, ratio = share of each batch replaced; combines with --reg.",
  },
  "eval-mode": {
    type: "boolean",
    help: "Train in eval mode: BatchNorm on running statistics, no dropout (the penalties on " +
      "the function then see per-sample Jacobians instead of the batch-coupled ones).",
  },
  "label-noise": {
    type: "number",
    metavar: "p",
    help: "Replace a seeded fraction p of the training labels by random other classes " +
      "(Zhang et al. 2017); records the memorisation curve (noisy/clean train, test accuracy).",
  },
  "trajectory-every": {
    type: "number",
    metavar: "N",
    help: "Record per-layer |θ|, |∇θ|, |θ-θ0| every N steps (0: off; default ~200 per run).",
  },
  augment: {
    type: "boolean",
    help: "Augment images: ±10° rotations and 10% shifts; CIFAR: crop (pad 4) and flips.",
  },
  test: {
    type: "boolean",
    help: "Evaluate on the test set at the end (--no-test to skip).",
    default: true,
  },
  out: { type: "string", metavar: "path", help: "Write the checkpoint (.safetensors) here." },
  force: { type: "boolean", help: "Overwrite --out if it exists." },
  json: { type: "boolean", help: "Print one JSON object (history, test metrics) at the end." },
  quiet: { type: "boolean", short: "q", help: "Print nothing but errors (and --json output)." },
} as const;

/** Parses the comma-separated --early-stopping rules. */
function stoppingRules(text: string | undefined): StoppingRule[] {
  if (text === undefined) return [];
  try {
    return text.split(",").filter((s) => s.trim()).map(parseStoppingRule);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The --adv-train spec, checked (null without the flag). */
function adversarialFrom(text: string | undefined): AdversarialTrainingResolved | null {
  if (text === undefined) return null;
  try {
    return parseAdversarialTraining(text);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** `pgd ε 0.3, 40 steps of 0.01, random start` and the like, for the header line. */
export function fmtAdversarial(a: AdversarialTrainingResolved): string {
  const share = a.ratio < 1 ? `, ${100 * a.ratio}% of each batch` : "";
  if (a.attack === "fgsm") return `fgsm ε ${a.eps}${share}`;
  return `pgd ε ${a.eps}, ${a.steps} steps of ${Number(a.alpha.toPrecision(6))}` +
    `${a.randomStart ? ", random start" : ""}${share}`;
}

async function runTrain({ flags }: ParsedArgs, io: Io): Promise<number> {
  for (const f of ["epochs", "batch-size"]) checkPositiveInt(f, num(flags, f));
  if (flags.limit !== undefined) checkPositiveInt("limit", num(flags, "limit"));
  const lr = num(flags, "lr");
  if (!(lr >= 0)) throw new UsageError(`Flag '--lr' must be >= 0, got ${lr}`);
  const valFraction = num(flags, "val-fraction");
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new UsageError(`Flag '--val-fraction' must be in [0, 1), got ${valFraction}`);
  }
  const schedule = String(flags.schedule);
  if (!(SCHEDULES as readonly string[]).includes(schedule)) {
    throw new UsageError(
      `Unknown schedule '${schedule}'${didYouMean(schedule, SCHEDULES)}; ` +
        `use one of ${SCHEDULES.join(", ")}`,
    );
  }
  const optimizer = optimizerFrom(flags);
  const rules = stoppingRules(flags["early-stopping"] as string | undefined);
  if (rules.length && valFraction === 0) {
    throw new UsageError("--early-stopping needs a validation set: set --val-fraction > 0");
  }
  const seed = num(flags, "seed");
  if (!(Number.isSafeInteger(seed) && seed >= 0)) {
    throw new UsageError(`Flag '--seed' needs an integer >= 0, got ${seed}`);
  }
  const labelNoise = flags["label-noise"] as number | undefined;
  if (labelNoise !== undefined && !(labelNoise >= 0 && labelNoise <= 1)) {
    throw new UsageError(`Flag '--label-noise' must be in [0, 1], got ${labelNoise}`);
  }
  const trajectoryEvery = flags["trajectory-every"] as number | undefined;
  if (
    trajectoryEvery !== undefined && !(Number.isInteger(trajectoryEvery) && trajectoryEvery >= 0)
  ) {
    throw new UsageError(
      `Flag '--trajectory-every' needs an integer >= 0, got ${trajectoryEvery}`,
    );
  }
  const out = flags.out as string | undefined;
  const force = flags.force === true;
  const json = flags.json === true, quiet = flags.quiet === true || json;
  // Fail before any work: a bad output path, model, dataset or regularizer.
  if (out !== undefined) await checkWritable(out, force);
  const modelName = String(flags.model);
  // A .json file holding a model spec, as `report --model spec.json` reads one.
  const modelArg = !modelName.trim().startsWith("{") && modelName.endsWith(".json")
    ? new TextDecoder().decode(await readFileOrFail(modelName, "model spec file"))
    : modelName;
  if (modelArg !== modelName && !modelArg.trim().startsWith("{")) {
    throw new UsageError(`--model ${modelName}: not a JSON model spec (an object {...})`);
  }
  seams.checkModelName(modelArg);
  const dropout = flags.dropout as number | undefined;
  if (dropout !== undefined && !(dropout >= 0 && dropout < 1)) {
    throw new UsageError(`Flag '--dropout' must be in [0, 1), got ${dropout}`);
  }
  // Parsed (and so checked) before loading data; nothing is allocated on the GPU yet.
  const regs: Regularizer[] = seams.regularizers(flags.reg as string[]);
  const adversarial = adversarialFrom(flags["adv-train"] as string | undefined);
  const data = await seams.loadData(String(flags.data), {
    path: flags["data-path"] as string | undefined,
    limit: flags.limit as number | undefined,
    valFraction,
    seed,
  });
  if (labelNoise !== undefined && labelNoise > 0 && data.train.classes < 2) {
    throw new UsageError(`--label-noise needs at least 2 classes; ${data.name} has 1`);
  }

  const augment = flags.augment ? seams.augmentFor(String(flags.data), data.train) : undefined;
  let rt: Backend | null = null;
  let model: Sequential | null = null;
  try {
    rt = await createBackend(flags);
    const built = await seams.buildModel(rt, modelArg, data.train, seed, { dropout });
    model = built.model;
    const nParams = model.params().filter((p) => p.kind !== "buffer")
      .reduce((a, p) => a + p.value.size, 0);
    if (!quiet) {
      io.out(
        `train ${modelName} (${nParams} parameters) on ${data.name}: ${data.train.length} ` +
          `train${data.val ? ` / ${data.val.length} val` : ""}` +
          `${data.test ? ` / ${data.test.length} test` : ""} samples`,
      );
      io.out(
        `${optimizer.algorithm} lr ${lr}` +
          (optimizer.algorithm === "sgd" ? ` momentum ${optimizer.momentum}` : "") +
          `, ${flags.epochs} epoch(s) of batch ${flags["batch-size"]}, schedule ${schedule}, ` +
          `seed ${seed}${regs.length ? `, ${regs.map((r) => r.name).join(" + ")}` : ""}` +
          (augment ? `, augment ${JSON.stringify(augment)}` : "") +
          (labelNoise !== undefined ? `, label noise ${labelNoise}` : "") +
          (adversarial ? `, adversarial training ${fmtAdversarial(adversarial)}` : "") +
          ` on ${rt.description}`,
      );
    }
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    try {
      Deno.addSignalListener("SIGINT", onSignal);
    } catch { /* not supported here */ }
    const opts: TrainOptions = {
      epochs: num(flags, "epochs"),
      batchSize: num(flags, "batch-size"),
      lr,
      optimizer,
      schedule: schedule as TrainOptions["schedule"],
      seed,
      regularizers: regs,
      augment,
      earlyStopping: rules.length ? rules : undefined,
      trainMode: !flags["eval-mode"],
      labelNoise: labelNoise !== undefined ? { fraction: labelNoise, seed } : undefined,
      trajectoryEvery,
      adversarial: adversarial ?? undefined,
      signal: ac.signal,
      onProgress: quiet || !io.status ? undefined : (p) => io.status!(fmtProgress(p)),
      onEpoch: quiet ? undefined : (r) => io.out(fmtEpoch(r, num(flags, "epochs"))),
    };
    let result;
    try {
      // The memorisation curve plots test accuracy per epoch: only then is the test set
      // evaluated during training (recorded, never used to stop or choose weights).
      const test = labelNoise !== undefined && flags.test ? data.test : undefined;
      result = await train(model, { train: data.train, val: data.val, test }, opts);
    } finally {
      try {
        Deno.removeSignalListener("SIGINT", onSignal);
      } catch { /* ignore */ }
    }
    if (!quiet && result.stopReason) io.out(`stopped: ${result.stopReason}`);
    if (!quiet && result.restoredBest) io.out(`restored the weights of epoch ${result.bestEpoch}`);
    // The final test evaluation may still fail (out of memory, a lost device): the trained
    // model is saved all the same, and the error reported after it.
    let test: Awaited<ReturnType<typeof evaluate>> | undefined, testError: Error | undefined;
    if (data.test && flags.test) {
      try {
        test = await evaluate(model, data.test);
      } catch (e) {
        testError = e instanceof Error ? e : new Error(String(e));
      }
    }
    if (test && !quiet) {
      io.out(
        `test  loss ${test.loss.toFixed(4)}  acc ${pct(test.accuracy)}  (${test.count} samples)`,
      );
    }
    const summary = {
      model: built.spec,
      data: {
        name: data.name,
        path: flags["data-path"] ?? null,
        ...data.describe,
        labelNoise: result.labelNoise ?? null,
      },
      regularizers: regs.map((r) => ({ name: r.name, options: r.options })),
      adversarial,
      optimizer: {
        ...optimizer,
        lr,
        schedule,
        epochs: num(flags, "epochs"),
        batchSize: num(flags, "batch-size"),
        earlyStopping: rules,
        augment: augment ?? null,
        evalMode: Boolean(flags["eval-mode"]),
        trajectoryEvery: trajectoryEvery ?? null,
      },
      seed,
      history: result.history,
      stopReason: result.stopReason ?? null,
      bestEpoch: result.bestEpoch,
      restoredBest: result.restoredBest,
      test: test ? { loss: test.loss, accuracy: test.accuracy, count: test.count } : null,
      testError: testError?.message ?? null,
      seconds: result.seconds,
    };
    if (out !== undefined) {
      const bytes = await encodeCheckpoint(model, {
        model: summary.model,
        data: summary.data,
        regularizers: summary.regularizers,
        adversarial: summary.adversarial,
        optimizer: summary.optimizer,
        history: {
          epochs: result.history,
          stopReason: summary.stopReason,
          bestEpoch: result.bestEpoch,
          restoredBest: result.restoredBest,
          test: summary.test,
          ...(testError ? { testError: testError.message } : {}),
        },
        seed,
        created: new Date().toISOString(),
      });
      await writeFileAtomic(out, bytes, { force });
      if (!quiet) io.out(`saved ${out} (${(bytes.length / 1024).toFixed(0)} KiB)`);
    } else if (!quiet) io.out("not saved (use --out PATH to write a checkpoint)");
    if (testError) {
      throw new Error(
        `the final test evaluation failed: ${testError.message} (the trained model ` +
          (out !== undefined ? `was saved to ${out}` : "was not saved: no --out") + ")",
      );
    }
    if (json) {
      io.out(JSON.stringify(
        { ...summary, checkpoint: out ?? null, adapter: rt.description },
        (_k, v) => typeof v === "number" && !Number.isFinite(v) ? String(v) : v,
      ));
    }
    return result.stopReason === "aborted" ? 130 : 0;
  } finally {
    for (const r of regs) r.dispose?.();
    model?.dispose();
    rt?.destroy();
  }
}

/** The `train` subcommand. */
export const trainCommand: Command = {
  summary: "Train a model and write a checkpoint (default: LeNet on MNIST, 1 epoch)",
  flags: trainFlags,
  get details(): string {
    return [
      "Regularizers (--reg NAME or NAME:option=value,...; repeat --reg for several):",
      describeRegularizers(),
      "",
      "Examples:",
      "  deno run -A cli.ts train --epochs 3 --out lenet.safetensors",
      "  deno run -A cli.ts train --model mlp --data toy2d --epochs 20 --reg l2:lambda=1e-4",
      "  deno run -A cli.ts train --epochs 50 --early-stopping gl:5 --schedule step",
      "  deno run -A cli.ts train --adv-train pgd:eps=0.3,steps=40,alpha=0.01 --reg l2:5e-4",
    ].join("\n");
  },
  run: runTrain,
};

export type { TrainDataset };
