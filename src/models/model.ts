/**
 * `Model`: a {@linkcode Sequential} that knows its {@linkcode ModelSpec}, the per-sample input
 * shape and the number of classes, and {@linkcode buildModel}, which makes one from a spec with
 * seeded initial weights. Parameter names are the `state_dict` keys of the PyTorch twin that
 * tools/torch_models.py builds from the same spec.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import { Sequential } from "../layers/sequential.ts";
import { architectureLayers } from "./architectures.ts";
import { initializeParams, type InitScheme } from "./initialize.ts";
import { type ModelSpec, parseModelSpec } from "./spec.ts";

/** A classifier built from a {@linkcode ModelSpec}: input `(B, ...inputShape)`, logits `(B, classes)`. */
export class Model extends Sequential {
  /**
   * @param rt runtime
   * @param spec the (parsed) architecture
   * @param layers its layers, named with their module paths
   * @param inputShape per-sample input shape, e.g. [1, 28, 28]
   * @param classes number of logits
   */
  constructor(
    rt: Backend,
    readonly spec: ModelSpec,
    layers: readonly Layer[],
    readonly inputShape: readonly number[],
    readonly classes: number,
  ) {
    super(rt, "", layers);
  }

  /** "lenet (Model)" */
  override describe(): string {
    // Called from Sequential's constructor (duplicate names) before `spec` is set.
    return `${this.spec?.kind ?? "model"} (Model)`;
  }

  /**
   * (B, ...inputShape) -> (B, classes); an MLP without normalization takes any per-sample
   * shape holding `inputs` values. Throws naming the model, the expected and given shapes, and
   * the first layer that refuses the input.
   */
  override outputShape(inputShape: readonly number[]): number[] {
    const want = fmtShape(["B", ...this.inputShape] as unknown as number[]);
    if (inputShape.length > 0 && inputShape[0] === 0) {
      throw new Error(
        `${this.describe()}: got an empty batch ${
          fmtShape(inputShape)
        }; expected input ${want} with B >= 1`,
      );
    }
    const per = inputShape.slice(1);
    // An MLP flattens its input first: any per-sample shape with `inputs` values will do
    // (MNIST's [1, 28, 28] for an MLP of 784 inputs), unless it normalizes per channel.
    const flat = this.spec.kind === "mlp" && !this.spec.normalize && per.length > 0 &&
      per.reduce((a, b) => a * b, 1) === this.spec.inputs;
    const same = flat || per.length === this.inputShape.length &&
        per.every((d, i) => d === this.inputShape[i]);
    if (!same) {
      let why = "";
      try {
        super.outputShape(inputShape);
      } catch (e) {
        why = ` (${(e as Error).message})`;
      }
      throw new Error(
        `${this.describe()}: expected input ${want}, got ${fmtShape(inputShape)}${why}`,
      );
    }
    return super.outputShape(inputShape);
  }

  /** @param x (B, ...inputShape) f32; @returns logits (B, classes), owned by the last layer */
  override forward(x: Tensor): Tensor {
    if (x.dtype !== "f32") {
      throw new Error(`${this.describe()}: input must be f32, got ${x.describe()}`);
    }
    return super.forward(x);
  }
}

/** Options of {@linkcode buildModel}. */
export interface BuildModelOptions {
  /** Integer seed of the initial weights and of the dropout masks. Default 0. */
  seed?: number;
  /** Initialization scheme (see src/models/initialize.ts). Default "default". */
  init?: InitScheme;
}

function inputShapeOf(spec: ModelSpec): number[] {
  switch (spec.kind) {
    case "mlp":
      return [...(spec.inputShape ?? [spec.inputs])];
    case "lenet":
      return [spec.inChannels ?? 1, spec.inputSize ?? 28, spec.inputSize ?? 28];
    case "ddnet":
    case "resnet18":
      return [spec.inChannels ?? 3, spec.inputSize ?? 32, spec.inputSize ?? 32];
    case "sequential":
      return [...spec.inputShape];
  }
}

/**
 * Builds a model from a spec, with seeded initial weights, in training mode.
 * @param rt runtime
 * @param spec a {@linkcode ModelSpec} or any JSON value (validated by `parseModelSpec`)
 * @param opts seed, init scheme
 * @returns the model; the caller disposes it
 * @throws Error for an invalid spec or init scheme
 * @example
 * ```ts
 * import { buildModel, modelSpecFromName, Runtime } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("lenet"), { seed: 1 });
 * const x = rt.zeros([4, 1, 28, 28]); // (B, 1, 28, 28), pixels in [0, 1]
 * const logits = model.forward(x); // (B, 10), owned by the model
 * console.log(logits.shape); // [4, 10]
 * x.dispose();
 * model.dispose();
 * ```
 */
export function buildModel(
  rt: Backend,
  spec: ModelSpec | unknown,
  opts: BuildModelOptions = {},
): Model {
  const parsed = parseModelSpec(spec);
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`buildModel: seed must be an integer in [0, 2^53), got ${seed}`);
  }
  const layers = architectureLayers(rt, parsed, { dropoutSeed: seed % 2 ** 32 });
  const classes = parsed.kind === "mlp" || parsed.kind === "sequential"
    ? parsed.classes
    : parsed.classes ?? 10;
  const model = new Model(rt, parsed, layers, inputShapeOf(parsed), classes);
  try {
    if (parsed.kind === "sequential") {
      // The layers' own checks name the first one that refuses the input.
      const out = model.outputShape([1, ...parsed.inputShape]);
      if (out.length !== 2 || out[1] !== classes) {
        throw new Error(
          `buildModel: the sequential spec's layers map [1,${parsed.inputShape}] to [${out}], ` +
            `expected [1,${classes}] logits (add a flatten and a linear layer to ${classes})`,
        );
      }
    }
    initializeParams(rt, model.params(), {
      seed,
      scheme: opts.init,
      resnetConvs: parsed.kind === "resnet18",
    });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
