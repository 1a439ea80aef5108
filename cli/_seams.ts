/**
 * Where the commands meet the model zoo (src/models), checkpoints (src/io),
 * the data sources (cli/data.ts) and the regularizer registry
 * (src/regularizers/registry.ts), with their errors turned into one-line
 * usage errors (exit code 2).
 *
 * @module
 */

import { didYouMean, UsageError } from "./args.ts";
import type { Backend } from "../src/backend.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import type { Regularizer } from "../src/hooks/step.ts";
import type { TrainDataset } from "../src/train/train.ts";
import type { AugmentSpec } from "../src/data/augment.ts";
import { type Dataset, splitDataset, subset } from "../src/data/dataset.ts";
import {
  buildModel as zooBuild,
  MODEL_NAMES,
  type ModelSpec,
  modelSpecFromName,
  parseModelSpec,
} from "../src/models/mod.ts";
import { parseRegularizers } from "../src/regularizers/registry.ts";
import { DATASET_NAMES, loadDataset } from "./data.ts";

/** A dataset ready for training: train/val split, and the test set when the source has one. */
export interface LoadedData {
  name: string;
  train: TrainDataset;
  val?: TrainDataset;
  test?: TrainDataset;
  /** Sizes and split, for checkpoint metadata. */
  describe: Record<string, unknown>;
}

/** Throws a UsageError for a model name that cannot exist (checked before loading data). */
export function checkModelName(name: string): void {
  if (name.trim().startsWith("{")) return;
  if (!(MODEL_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(
      `Unknown model '${name}'${didYouMean(name, MODEL_NAMES)}; models: ${
        MODEL_NAMES.join(", ")
      }, or a JSON model spec`,
    );
  }
}

/**
 * Loads a dataset by name (or from a path) and splits off validation data.
 * @param name dataset name
 * @param opts path, limit on training samples, validation fraction, seed
 */
export async function loadData(
  name: string,
  opts: { path?: string; limit?: number; valFraction: number; seed: number },
): Promise<LoadedData> {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new UsageError(
      `Unknown dataset '${name}'${didYouMean(name, DATASET_NAMES)}; datasets: ` +
        DATASET_NAMES.join(", "),
    );
  }
  let full: Dataset, test: Dataset | undefined;
  try {
    full = await loadDataset(name, { split: "train", path: opts.path });
    test = await loadDataset(name, { split: "test", path: opts.path });
  } catch (e) {
    // Missing or corrupt files: one line, exit code 2.
    throw new UsageError((e as Error).message.split("\n").join(" "));
  }
  // A test split that the model trained on the training split cannot take: refused now, not
  // after training (where the final evaluation would fail).
  if (test && test.sampleShape.join("x") !== full.sampleShape.join("x")) {
    throw new UsageError(
      `${name}: the test split's samples are [${test.sampleShape}] but the training split's ` +
        `are [${full.sampleShape}]; give matching train and test files`,
    );
  }
  if (test && test.classes > full.classes) {
    throw new UsageError(
      `${name}: the test split has ${test.classes} classes but the training split ` +
        `${full.classes}; give matching train and test files`,
    );
  }
  if (opts.limit !== undefined && opts.limit < full.length) {
    full = subset(
      full,
      Array.from({ length: opts.limit }, (_, i) => i),
      `${full.name}[:${opts.limit}]`,
    );
  }
  const split = opts.valFraction > 0
    ? splitDataset(full, { valFraction: opts.valFraction, seed: opts.seed })
    : { train: full, val: undefined };
  return {
    name,
    train: split.train,
    val: split.val,
    test,
    describe: {
      valFraction: opts.valFraction,
      limit: opts.limit ?? null,
      train: split.train.length,
      val: split.val?.length ?? 0,
      test: test?.length ?? 0,
    },
  };
}

/**
 * The spec of a named model fitted to a dataset: input shape and classes from the data (the
 * name's other defaults kept), or a JSON spec as given.
 */
export function modelSpecFor(
  name: string,
  data: TrainDataset,
  overrides: { dropout?: number } = {},
): ModelSpec {
  try {
    const extra = overrides.dropout === undefined ? {} : { dropout: overrides.dropout };
    if (name.trim().startsWith("{")) {
      const given = JSON.parse(name);
      if (overrides.dropout !== undefined) {
        throw new Error("give dropout inside the JSON model spec, not also as --dropout");
      }
      return parseModelSpec(given);
    }
    if (overrides.dropout !== undefined && name === "resnet18") {
      throw new Error("resnet18 has no dropout layers; --dropout applies to mlp, lenet and ddnet");
    }
    const shape = data.sampleShape;
    if (name === "mlp") {
      return modelSpecFromName(name, {
        inputShape: [...shape],
        inputs: shape.reduce((a, b) => a * b, 1),
        classes: data.classes,
        ...extra,
      });
    }
    if (shape.length !== 3 || shape[1] !== shape[2]) {
      throw new Error(
        `model '${name}' needs square images [C, H, H], the data have samples of [${shape}]`,
      );
    }
    return modelSpecFromName(name, {
      inChannels: shape[0],
      inputSize: shape[1],
      classes: data.classes,
      ...extra,
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n").join(" "));
  }
}

/**
 * Builds a model by name or JSON spec for a dataset.
 * @returns the model and its spec (JSON, stored in checkpoints)
 */
export function buildModel(
  rt: Backend,
  name: string,
  data: TrainDataset,
  seed: number,
  overrides: { dropout?: number } = {},
): Promise<{ model: Sequential; spec: ModelSpec }> {
  const spec = modelSpecFor(name, data, overrides);
  return Promise.resolve({ model: zooBuild(rt, spec, { seed }), spec });
}

/** Rebuilds a model from a checkpoint's spec. */
export function buildModelFromSpec(rt: Backend, spec: unknown): Promise<Sequential> {
  let parsed: ModelSpec;
  try {
    parsed = parseModelSpec(spec);
  } catch (e) {
    throw new UsageError(`Invalid model spec in the checkpoint: ${(e as Error).message}`);
  }
  return Promise.resolve(zooBuild(rt, parsed, { seed: 0 }));
}

/**
 * The one checkpoint path a command takes as its positional argument.
 * @param command the command's name, for messages
 * @param positionals the positional arguments
 * @returns the path
 * @throws UsageError for none or more than one
 */
export function checkpointArg(command: string, positionals: readonly string[]): string {
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length
        ? `'cli.ts ${command}' takes one checkpoint, got ${positionals.length}`
        : `'cli.ts ${command}' needs a checkpoint: cli.ts ${command} <checkpoint.safetensors>`,
    );
  }
  return positionals[0];
}

/**
 * Regularizers from `--reg` specs (`l2:lambda=5e-4`), through the registry.
 * @returns the regularizers; the caller disposes them
 * @throws UsageError for an unknown name or option, or a bad value
 */
export function regularizers(specs: readonly string[]): Regularizer[] {
  try {
    return parseRegularizers(specs);
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n").join(" "));
  }
}

/**
 * The augmentation of `--augment` for a dataset: small rotations and shifts for digit-like
 * 28x28 images, random crops (pad 4) and horizontal flips for CIFAR (as He et al. 2016).
 * @throws UsageError for data that are not images
 */
export function augmentFor(name: string, data: TrainDataset): AugmentSpec {
  if (data.sampleShape.length < 2) {
    throw new UsageError(
      `--augment needs image data; '${name}' has samples of [${data.sampleShape}]`,
    );
  }
  return name.startsWith("cifar") ? { crop: 4, hflip: true } : { rotation: 10, translate: 0.1 };
}
