/**
 * `ModelSpec`: a model architecture as plain JSON, enough to rebuild the model (it is stored in
 * checkpoint metadata, and tools/torch_models.py builds the PyTorch twin from the same JSON).
 * {@linkcode parseModelSpec} validates one and fills in every default, so a parsed spec is
 * complete and two specs that build the same model compare equal as JSON.
 * {@linkcode modelSpecFromName} gives the named architectures of the seed study (SEED-NOTES.md).
 *
 * @module
 */

import { type LayerSpec, parseLayerSpecs } from "./layer_spec.ts";

/** Activations an MLP may use (LeNet: tanh or relu; DDNet and ResNet-18: relu). */
export type MlpActivation = "relu" | "tanh" | "sigmoid" | "leaky_relu" | "softplus";

/**
 * Per-channel input normalization `(x - mean[c]) / std[c]`, applied first inside the model so
 * that the data (and attack budgets) stay in [0, 1] pixel units. No `state_dict` entries.
 */
export interface NormalizeSpec {
  /** Per-channel mean, in the data's units ([0, 1] pixels). */
  mean: number[];
  /** Per-channel standard deviation (positive). */
  std: number[];
}

/**
 * A multilayer perceptron `inputs -> hidden... -> classes`: `fc1`, `fc2`, ... with the
 * activation (and dropout, when `dropout > 0`) after every hidden layer. `hidden: []` is a
 * single linear map (the seed's toy model `Linear(2 -> 4, bias=False)` is
 * `{kind: "mlp", inputs: 2, hidden: [], classes: 4, bias: false}`).
 */
export interface MlpSpec {
  /** The architecture. */
  kind: "mlp";
  /** Input features; the per-sample input is flattened. */
  inputs: number;
  /** Widths of the hidden layers (may be empty). */
  hidden: number[];
  /** Number of logits. */
  classes: number;
  /** Default "relu". */
  activation?: MlpActivation;
  /** Dropout probability after each hidden activation; 0 (the default) adds no layer. */
  dropout?: number;
  /** Biases on every Linear. Default true. */
  bias?: boolean;
  /** Per-sample input shape, product `inputs` (e.g. [1, 28, 28] for MNIST). Default [inputs]. */
  inputShape?: number[];
  /** Input normalization, the model's first layer; null or absent: none. */
  normalize?: NormalizeSpec | null;
}

/**
 * LeNet-5 as the seed study used it (LeCun et al. 1998, with max-pooling): conv 1->6 5x5 pad 2,
 * act, maxpool 2; conv 6->16 5x5, act, maxpool 2; fc 400->120, act, [dropout]; fc 120->84, act,
 * [dropout]; fc 84->10. Dropout (when `dropout > 0`) follows the activations of fc1 and fc2.
 */
export interface LeNetSpec {
  /** The architecture. */
  kind: "lenet";
  /** Default "tanh". */
  activation?: "tanh" | "relu";
  /** Default 0 (no dropout layers). */
  dropout?: number;
  /** Default 1. */
  inChannels?: number;
  /** Input height = width. Default 28. */
  inputSize?: number;
  /** Default 10. */
  classes?: number;
  /** Input normalization, the model's first layer; null or absent: none. */
  normalize?: NormalizeSpec | null;
}

/**
 * DDNet (the CIFAR-10 network of Hoffman, Roberts & Yaida 2019): conv 3->64 3x3, relu,
 * 64->64 3x3, relu, maxpool 2, 64->128 3x3, relu, 128->128 3x3, relu, maxpool 2 (no padding);
 * fc 3200->256, relu, dropout; 256->256, relu, dropout; 256->10.
 */
export interface DDNetSpec {
  /** The architecture. */
  kind: "ddnet";
  /** Default 0.5; 0 adds no dropout layers. */
  dropout?: number;
  /** Default 3. */
  inChannels?: number;
  /** Default 32. */
  inputSize?: number;
  /** Default 10. */
  classes?: number;
  /** Input normalization, the model's first layer; null or absent: none. */
  normalize?: NormalizeSpec | null;
}

/**
 * ResNet-18 with the usual CIFAR stem (He et al. 2016, Sec. 4.2): conv1 3x3 stride 1 pad 1 (no
 * bias), bn1, relu, no max-pool; layer1..layer4 of two BasicBlocks each (64, 128, 256, 512
 * channels, strides 1, 2, 2, 2); global average pool; fc 512->classes. torchvision's names.
 */
export interface ResNet18Spec {
  /** The architecture. */
  kind: "resnet18";
  /** Default 10. */
  classes?: number;
  /** Default 3. */
  inChannels?: number;
  /** Input height = width, a multiple of 8. Default 32. */
  inputSize?: number;
  /** Input normalization, the model's first layer; null or absent: none. */
  normalize?: NormalizeSpec | null;
}

/**
 * Any chain of layers, written out (src/models/layer_spec.ts; tools/torch_bridge.py's layer
 * format): Linear and Conv2d (optionally weight-normalized), pools, BatchNorm, LayerNorm,
 * GroupNorm, Dropout, Normalize, Flatten, activations, ResNet BasicBlocks. `state_dict` names are
 * the layers' names (default: their index).
 * @example
 * ```json
 * {"kind": "sequential", "inputShape": [2], "classes": 4, "layers": [
 *   {"type": "linear", "name": "fc1", "in": 2, "out": 16, "weight_norm": true},
 *   {"type": "layernorm", "name": "ln1", "shape": [16]}, {"type": "tanh"},
 *   {"type": "linear", "name": "fc2", "in": 16, "out": 4}]}
 * ```
 */
export interface SequentialSpec {
  /** The architecture. */
  kind: "sequential";
  /** Per-sample input shape, e.g. [1, 28, 28]. */
  inputShape: number[];
  /** Number of logits: the last layer must output (B, classes). */
  classes: number;
  /** The layers in order. */
  layers: LayerSpec[];
  /** Input normalization, a layer "normalize" before `layers`; null or absent: none. */
  normalize?: NormalizeSpec | null;
}

/** Any model regula can build; see {@linkcode parseModelSpec}. */
export type ModelSpec = MlpSpec | LeNetSpec | DDNetSpec | ResNet18Spec | SequentialSpec;

/** The kinds of {@linkcode ModelSpec}. */
export const MODEL_KINDS = ["mlp", "lenet", "ddnet", "resnet18", "sequential"] as const;

/** The names {@linkcode modelSpecFromName} knows. */
export const MODEL_NAMES = ["mlp", "lenet", "lenet-relu", "ddnet", "resnet18"] as const;

const ACTIVATIONS: readonly MlpActivation[] = ["relu", "tanh", "sigmoid", "leaky_relu", "softplus"];

const KEYS: Record<ModelSpec["kind"], readonly string[]> = {
  mlp: [
    "kind",
    "inputs",
    "hidden",
    "classes",
    "activation",
    "dropout",
    "bias",
    "inputShape",
    "normalize",
  ],
  lenet: ["kind", "activation", "dropout", "inChannels", "inputSize", "classes", "normalize"],
  ddnet: ["kind", "dropout", "inChannels", "inputSize", "classes", "normalize"],
  resnet18: ["kind", "classes", "inChannels", "inputSize", "normalize"],
  sequential: ["kind", "inputShape", "classes", "layers", "normalize"],
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function positiveInt(where: string, key: string, v: unknown, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new Error(`${where}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function probability(where: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !(v >= 0 && v < 1)) {
    throw new Error(`${where}: "dropout" must be a number in [0, 1), got ${JSON.stringify(v)}`);
  }
  return v;
}

function parseNormalize(where: string, v: unknown, channels: number | null): NormalizeSpec | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v) || !Array.isArray(v.mean) || !Array.isArray(v.std)) {
    throw new Error(
      `${where}: "normalize" must be {"mean": number[], "std": number[]}, got ${JSON.stringify(v)}`,
    );
  }
  const { mean, std } = v as { mean: unknown[]; std: unknown[] };
  if (mean.length === 0 || mean.length !== std.length) {
    throw new Error(
      `${where}: "normalize" mean and std must have the same, non-zero length, got ` +
        `${mean.length} and ${std.length}`,
    );
  }
  if (!mean.every((m) => typeof m === "number" && Number.isFinite(m))) {
    throw new Error(
      `${where}: "normalize" mean must hold finite numbers, got ${JSON.stringify(mean)}`,
    );
  }
  if (!std.every((s) => typeof s === "number" && Number.isFinite(s) && s > 0)) {
    throw new Error(
      `${where}: "normalize" std must hold positive numbers, got ${JSON.stringify(std)}`,
    );
  }
  if (channels !== null && mean.length !== channels) {
    throw new Error(
      `${where}: "normalize" has ${mean.length} channel(s) but the input has ${channels}`,
    );
  }
  return { mean: mean as number[], std: std as number[] };
}

/** Spatial size after LeNet's features, or throws. */
export function lenetFeatureSize(inputSize: number): number {
  // conv1 pad 2 keeps the size; pool halves; conv2 5x5 takes 4; pool halves.
  return Math.floor((Math.floor(inputSize / 2) - 4) / 2);
}

/** Spatial size after DDNet's features, or throws. */
export function ddnetFeatureSize(inputSize: number): number {
  return Math.floor((Math.floor((inputSize - 4) / 2) - 4) / 2);
}

/**
 * Validates a model spec (parsed JSON) and fills in every default.
 * @param json the spec, e.g. `{"kind": "lenet", "activation": "relu"}`
 * @returns a complete spec (every optional field set; `normalize` null when absent)
 * @throws Error naming the bad field, its value and what is allowed
 * @example
 * ```ts
 * const spec = parseModelSpec(JSON.parse('{"kind": "lenet"}'));
 * // {kind: "lenet", activation: "tanh", dropout: 0, inChannels: 1, inputSize: 28, classes: 10, normalize: null}
 * ```
 */
export function parseModelSpec(json: unknown): ModelSpec {
  if (!isObject(json)) {
    throw new Error(`Model spec must be a JSON object, got ${JSON.stringify(json)}`);
  }
  const kind = json.kind;
  if (typeof kind !== "string" || !(MODEL_KINDS as readonly string[]).includes(kind)) {
    throw new Error(
      `Model spec: unknown "kind" ${JSON.stringify(kind)}; kinds: ${MODEL_KINDS.join(", ")}`,
    );
  }
  const k = kind as ModelSpec["kind"];
  const where = `Model spec (${k})`;
  const extra = Object.keys(json).filter((key) => !KEYS[k].includes(key));
  if (extra.length) {
    throw new Error(
      `${where}: unknown field(s) ${extra.map((e) => `"${e}"`).join(", ")}; allowed: ${
        KEYS[k].join(", ")
      }`,
    );
  }
  switch (k) {
    case "mlp": {
      const inputs = positiveInt(where, "inputs", json.inputs);
      const hidden = json.hidden ?? [];
      if (!Array.isArray(hidden)) {
        throw new Error(
          `${where}: "hidden" must be an array of widths, got ${JSON.stringify(hidden)}`,
        );
      }
      hidden.forEach((h, i) => positiveInt(where, `hidden[${i}]`, h));
      const activation = json.activation ?? "relu";
      if (!(ACTIVATIONS as readonly unknown[]).includes(activation)) {
        throw new Error(
          `${where}: unknown "activation" ${JSON.stringify(activation)}; allowed: ${
            ACTIVATIONS.join(", ")
          }`,
        );
      }
      if (json.bias !== undefined && typeof json.bias !== "boolean") {
        throw new Error(`${where}: "bias" must be true or false, got ${JSON.stringify(json.bias)}`);
      }
      const inputShape = json.inputShape ?? [inputs];
      if (!Array.isArray(inputShape) || inputShape.length === 0) {
        throw new Error(
          `${where}: "inputShape" must be an array of sizes, got ${JSON.stringify(inputShape)}`,
        );
      }
      inputShape.forEach((d, i) => positiveInt(where, `inputShape[${i}]`, d));
      const n = (inputShape as number[]).reduce((a, b) => a * b, 1);
      if (n !== inputs) {
        throw new Error(
          `${where}: "inputShape" [${inputShape}] holds ${n} values but "inputs" is ${inputs}`,
        );
      }
      return {
        kind: "mlp",
        inputs,
        hidden: [...hidden] as number[],
        classes: positiveInt(where, "classes", json.classes),
        activation: activation as MlpActivation,
        dropout: probability(where, json.dropout, 0),
        bias: (json.bias as boolean | undefined) ?? true,
        inputShape: [...inputShape] as number[],
        // Per channel on axis 1 of the unflattened input: its length is inputShape[0].
        normalize: parseNormalize(where, json.normalize, (inputShape as number[])[0]),
      };
    }
    case "lenet": {
      const activation = json.activation ?? "tanh";
      if (activation !== "tanh" && activation !== "relu") {
        throw new Error(
          `${where}: "activation" must be "tanh" or "relu", got ${JSON.stringify(activation)}`,
        );
      }
      const inChannels = positiveInt(where, "inChannels", json.inChannels, 1);
      const inputSize = positiveInt(where, "inputSize", json.inputSize, 28);
      if (lenetFeatureSize(inputSize) < 1) {
        throw new Error(`${where}: "inputSize" ${inputSize} is too small; LeNet needs at least 12`);
      }
      return {
        kind: "lenet",
        activation,
        dropout: probability(where, json.dropout, 0),
        inChannels,
        inputSize,
        classes: positiveInt(where, "classes", json.classes, 10),
        normalize: parseNormalize(where, json.normalize, inChannels),
      };
    }
    case "ddnet": {
      const inChannels = positiveInt(where, "inChannels", json.inChannels, 3);
      const inputSize = positiveInt(where, "inputSize", json.inputSize, 32);
      if (ddnetFeatureSize(inputSize) < 1) {
        throw new Error(`${where}: "inputSize" ${inputSize} is too small; DDNet needs at least 16`);
      }
      return {
        kind: "ddnet",
        dropout: probability(where, json.dropout, 0.5),
        inChannels,
        inputSize,
        classes: positiveInt(where, "classes", json.classes, 10),
        normalize: parseNormalize(where, json.normalize, inChannels),
      };
    }
    case "sequential": {
      const inputShape = json.inputShape;
      if (!Array.isArray(inputShape) || inputShape.length === 0) {
        throw new Error(
          `${where}: "inputShape" must be an array of sizes, got ${JSON.stringify(inputShape)}`,
        );
      }
      inputShape.forEach((d, i) => positiveInt(where, `inputShape[${i}]`, d));
      return {
        kind: "sequential",
        inputShape: [...inputShape] as number[],
        classes: positiveInt(where, "classes", json.classes),
        layers: parseLayerSpecs(where, json.layers),
        normalize: parseNormalize(where, json.normalize, (inputShape as number[])[0]),
      };
    }
    case "resnet18": {
      const inChannels = positiveInt(where, "inChannels", json.inChannels, 3);
      const inputSize = positiveInt(where, "inputSize", json.inputSize, 32);
      if (inputSize % 8 !== 0) {
        throw new Error(
          `${where}: "inputSize" must be a multiple of 8 (three stride-2 stages, then a global ` +
            `average pool), got ${inputSize}`,
        );
      }
      return {
        kind: "resnet18",
        classes: positiveInt(where, "classes", json.classes, 10),
        inChannels,
        inputSize,
        normalize: parseNormalize(where, json.normalize, inChannels),
      };
    }
  }
}

/** Options of {@linkcode modelSpecFromName}: any spec field, overriding the name's defaults. */
export type ModelSpecOptions = {
  inputs?: number;
  hidden?: number[];
  classes?: number;
  activation?: MlpActivation;
  dropout?: number;
  bias?: boolean;
  inputShape?: number[];
  inChannels?: number;
  inputSize?: number;
  /** null: no normalization layer. Default: the seed study's statistics (see below). */
  /** Input normalization, the model's first layer; null or absent: none. */
  normalize?: NormalizeSpec | null;
};

function repeat(v: number, n: number): number[] {
  return Array.from({ length: n }, () => v);
}

/**
 * The spec of a named model, with the seed study's defaults:
 * - "mlp": the 2-D toy problem's MLP, `2 -> 64 -> 64 -> 4`, tanh (smooth, so its input
 *   Jacobian varies over the plane and has curvature for the Jacobian penalties), no
 *   normalization;
 * - "lenet" (tanh) and "lenet-relu": MNIST 1x28x28, 10 classes, normalized with
 *   (0.1307, 0.3081), no dropout unless `dropout` is given;
 * - "ddnet": CIFAR 3x32x32, 10 classes, dropout 0.5, normalized with (0.5, 0.5) per channel;
 * - "resnet18": CIFAR stem, 3x32x32, 10 classes, normalized with (0.5, 0.5) per channel.
 * Options override any field; the result goes through {@linkcode parseModelSpec}.
 * @param name one of {@linkcode MODEL_NAMES}
 * @param opts fields to override (e.g. `{classes: 100}` for CIFAR-100)
 * @returns a complete, validated spec
 * @throws Error for an unknown name (with the known ones) or a bad option
 * @example
 * ```ts
 * const spec = modelSpecFromName("resnet18", { classes: 100 });
 * ```
 */
export function modelSpecFromName(name: string, opts: ModelSpecOptions = {}): ModelSpec {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  let base: Record<string, unknown>;
  switch (name) {
    case "mlp":
      base = { kind: "mlp", inputs: 2, hidden: [64, 64], classes: 4, activation: "tanh" };
      if (given.inputShape && given.inputs === undefined) {
        base.inputs = (given.inputShape as number[]).reduce((a, b) => a * b, 1);
      }
      break;
    case "lenet":
    case "lenet-relu": {
      const c = (given.inChannels as number | undefined) ?? 1;
      base = {
        kind: "lenet",
        activation: name === "lenet" ? "tanh" : "relu",
        normalize: { mean: repeat(0.1307, c), std: repeat(0.3081, c) },
      };
      break;
    }
    case "ddnet":
    case "resnet18": {
      const c = (given.inChannels as number | undefined) ?? 3;
      base = { kind: name, normalize: { mean: repeat(0.5, c), std: repeat(0.5, c) } };
      break;
    }
    default: {
      throw new Error(`Unknown model '${name}'; models: ${MODEL_NAMES.join(", ")}`);
    }
  }
  const spec = { ...base, ...given };
  if (spec.normalize === null) delete spec.normalize;
  return parseModelSpec(spec);
}
