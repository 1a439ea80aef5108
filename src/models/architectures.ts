/**
 * The layer lists of the architectures of {@linkcode ModelSpec}, each layer named with its
 * module path in the PyTorch twin (tools/torch_models.py), so that `params()` gives exactly
 * the twin's `state_dict` keys. Layers without state get descriptive names ("act1", "pool1",
 * "drop1") that appear in error messages only.
 *
 * Parameters are created as the layers create them (zero weights); `buildModel` initializes.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import { Activation } from "../layers/activation.ts";
import { Conv2d } from "../layers/conv2d.ts";
import { Linear } from "../layers/linear.ts";
import { AvgPool2d, MaxPool2d } from "../layers/pool.ts";
import { Dropout } from "../layers/dropout.ts";
import { Flatten } from "../layers/flatten.ts";
import { Normalize } from "../layers/normalize.ts";
import { BatchNorm } from "../layers/batchnorm.ts";
import { BasicBlock } from "../layers/residual.ts";
import { Sequential } from "../layers/sequential.ts";
import { GroupNorm, LayerNorm } from "../layers/layernorm.ts";
import { WeightNorm } from "../layers/weight_norm.ts";
import type { LayerSpec } from "./layer_spec.ts";
import {
  ddnetFeatureSize,
  type DDNetSpec,
  lenetFeatureSize,
  type LeNetSpec,
  type MlpSpec,
  type ModelSpec,
  type NormalizeSpec,
  type ResNet18Spec,
  type SequentialSpec,
} from "./spec.ts";

/** Options shared by the builders. */
export interface ArchitectureOptions {
  /** u32 seed of the dropout masks (each layer draws its own stream by name). Default 0. */
  dropoutSeed?: number;
}

function normalize(rt: Backend, n: NormalizeSpec | null | undefined): Layer[] {
  return n ? [new Normalize(rt, "normalize", n.mean, n.std)] : [];
}

function dropout(rt: Backend, name: string, p: number, seed: number): Layer[] {
  return p > 0 ? [new Dropout(rt, name, p, { seed })] : [];
}

/** `fc1, act1, [drop1], fc2, ...`: an MLP on the flattened input. */
export function mlpLayers(rt: Backend, spec: MlpSpec, opts: ArchitectureOptions = {}): Layer[] {
  const sizes = [spec.inputs, ...spec.hidden, spec.classes];
  const layers = [...normalize(rt, spec.normalize), new Flatten("flatten")];
  for (let i = 0; i + 1 < sizes.length; i++) {
    layers.push(new Linear(rt, `fc${i + 1}`, sizes[i], sizes[i + 1], { bias: spec.bias ?? true }));
    if (i + 2 < sizes.length) {
      layers.push(new Activation(rt, `act${i + 1}`, spec.activation ?? "relu"));
      layers.push(...dropout(rt, `drop${i + 1}`, spec.dropout ?? 0, opts.dropoutSeed ?? 0));
    }
  }
  return layers;
}

/** LeNet-5: conv1, act1, pool1, conv2, act2, pool2, flatten, fc1, act3, [drop1], fc2, ... */
export function lenetLayers(rt: Backend, spec: LeNetSpec, opts: ArchitectureOptions = {}): Layer[] {
  const act = spec.activation ?? "tanh";
  const p = spec.dropout ?? 0, seed = opts.dropoutSeed ?? 0;
  const q = lenetFeatureSize(spec.inputSize ?? 28);
  return [
    ...normalize(rt, spec.normalize),
    new Conv2d(rt, "conv1", spec.inChannels ?? 1, 6, 5, { padding: 2 }),
    new Activation(rt, "act1", act),
    new MaxPool2d(rt, "pool1", 2),
    new Conv2d(rt, "conv2", 6, 16, 5),
    new Activation(rt, "act2", act),
    new MaxPool2d(rt, "pool2", 2),
    new Flatten("flatten"),
    new Linear(rt, "fc1", 16 * q * q, 120),
    new Activation(rt, "act3", act),
    ...dropout(rt, "drop1", p, seed),
    new Linear(rt, "fc2", 120, 84),
    new Activation(rt, "act4", act),
    ...dropout(rt, "drop2", p, seed),
    new Linear(rt, "fc3", 84, spec.classes ?? 10),
  ];
}

/** DDNet: conv1..conv4 (ReLU, max-pools after conv2 and conv4), fc1..fc3 with dropout. */
export function ddnetLayers(rt: Backend, spec: DDNetSpec, opts: ArchitectureOptions = {}): Layer[] {
  const p = spec.dropout ?? 0.5, seed = opts.dropoutSeed ?? 0;
  const q = ddnetFeatureSize(spec.inputSize ?? 32);
  return [
    ...normalize(rt, spec.normalize),
    new Conv2d(rt, "conv1", spec.inChannels ?? 3, 64, 3),
    new Activation(rt, "act1", "relu"),
    new Conv2d(rt, "conv2", 64, 64, 3),
    new Activation(rt, "act2", "relu"),
    new MaxPool2d(rt, "pool1", 2),
    new Conv2d(rt, "conv3", 64, 128, 3),
    new Activation(rt, "act3", "relu"),
    new Conv2d(rt, "conv4", 128, 128, 3),
    new Activation(rt, "act4", "relu"),
    new MaxPool2d(rt, "pool2", 2),
    new Flatten("flatten"),
    new Linear(rt, "fc1", 128 * q * q, 256),
    new Activation(rt, "act5", "relu"),
    ...dropout(rt, "drop1", p, seed),
    new Linear(rt, "fc2", 256, 256),
    new Activation(rt, "act6", "relu"),
    ...dropout(rt, "drop2", p, seed),
    new Linear(rt, "fc3", 256, spec.classes ?? 10),
  ];
}

/**
 * ResNet-18, CIFAR stem: conv1 (3x3, s1, p1, no bias), bn1, relu, layer1..layer4 (Sequential
 * of two {@linkcode BasicBlock}s each), avgpool (AvgPool2d over the whole remaining map, i.e.
 * global average pooling: torchvision's AdaptiveAvgPool2d(1) for these sizes), flatten, fc.
 */
export function resnet18Layers(rt: Backend, spec: ResNet18Spec): Layer[] {
  const size = spec.inputSize ?? 32;
  const stages: Layer[] = [];
  let c = 64;
  [64, 128, 256, 512].forEach((planes, i) => {
    const stride = i === 0 ? 1 : 2;
    const name = `layer${i + 1}`;
    stages.push(
      new Sequential(rt, name, [
        new BasicBlock(rt, `${name}.0`, c, planes, { stride }),
        new BasicBlock(rt, `${name}.1`, planes, planes),
      ]),
    );
    c = planes;
  });
  return [
    ...normalize(rt, spec.normalize),
    new Conv2d(rt, "conv1", spec.inChannels ?? 3, 64, 3, { padding: 1, bias: false }),
    new BatchNorm(rt, "bn1", 64, { dims: 2 }),
    new Activation(rt, "relu", "relu"),
    ...stages,
    new AvgPool2d(rt, "avgpool", size / 8),
    new Flatten("flatten"),
    new Linear(rt, "fc", 512, spec.classes ?? 10),
  ];
}

/** One layer of a `"sequential"` spec (parsed: every field set). */
function specLayer(rt: Backend, l: LayerSpec, dropoutSeed: number): Layer {
  const n = (k: string) => l[k] as number;
  const b = (k: string) => l[k] as boolean;
  switch (l.type) {
    case "linear":
    case "conv2d": {
      const inner = l.type === "linear"
        ? new Linear(rt, l.name, n("in"), n("out"), { bias: b("bias") })
        : new Conv2d(rt, l.name, n("in"), n("out"), n("kernel"), {
          stride: n("stride"),
          padding: n("padding"),
          bias: b("bias"),
        });
      return b("weight_norm") ? new WeightNorm(rt, inner) : inner;
    }
    case "maxpool2d":
      return new MaxPool2d(rt, l.name, n("kernel"), { stride: n("stride"), padding: n("padding") });
    case "avgpool2d":
      return new AvgPool2d(rt, l.name, n("kernel"), { stride: n("stride"), padding: n("padding") });
    case "batchnorm1d":
    case "batchnorm2d":
      return new BatchNorm(rt, l.name, n("channels"), {
        dims: l.type === "batchnorm2d" ? 2 : 1,
        eps: n("eps"),
        momentum: n("momentum"),
      });
    case "layernorm":
      return new LayerNorm(rt, l.name, l.shape as number[], {
        eps: n("eps"),
        elementwiseAffine: b("affine"),
      });
    case "groupnorm":
      return new GroupNorm(rt, l.name, n("groups"), n("channels"), {
        eps: n("eps"),
        affine: b("affine"),
      });
    case "dropout":
      return new Dropout(rt, l.name, n("p"), { seed: dropoutSeed });
    case "normalize":
      return new Normalize(rt, l.name, l.mean as number[], l.std as number[]);
    case "flatten":
      return new Flatten(l.name);
    case "basic_block":
      return new BasicBlock(rt, l.name, n("in"), n("out"), { stride: n("stride") });
    case "leaky_relu":
      return new Activation(rt, l.name, "leaky_relu", { slope: n("slope") });
    case "softplus":
      return new Activation(rt, l.name, "softplus", {
        beta: n("beta"),
        threshold: n("threshold"),
      });
    case "relu":
    case "tanh":
    case "sigmoid":
      return new Activation(rt, l.name, l.type);
    default:
      throw new Error(`sequentialLayers: unknown layer type '${l.type}'`);
  }
}

/** The layers of a `"sequential"` spec, each named as in the spec. */
export function sequentialLayers(
  rt: Backend,
  spec: SequentialSpec,
  opts: ArchitectureOptions = {},
): Layer[] {
  const out: Layer[] = normalize(rt, spec.normalize);
  try {
    for (const l of spec.layers) out.push(specLayer(rt, l, opts.dropoutSeed ?? 0));
  } catch (e) {
    for (const l of out) l.dispose();
    throw e;
  }
  return out;
}

/**
 * The layers of any spec (assumed parsed: see `parseModelSpec`).
 * @param rt runtime
 * @param spec the architecture
 * @param opts dropout seed
 * @returns fresh layers (zero weights); the caller owns them
 */
export function architectureLayers(
  rt: Backend,
  spec: ModelSpec,
  opts: ArchitectureOptions = {},
): Layer[] {
  switch (spec.kind) {
    case "mlp":
      return mlpLayers(rt, spec, opts);
    case "lenet":
      return lenetLayers(rt, spec, opts);
    case "ddnet":
      return ddnetLayers(rt, spec, opts);
    case "resnet18":
      return resnet18Layers(rt, spec);
    case "sequential":
      return sequentialLayers(rt, spec, opts);
  }
}
