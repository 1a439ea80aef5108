/**
 * Seeded generators for the randomized parity test against PyTorch (tests/fuzz_torch_test.ts,
 * oracle tools/torch_fuzz.py): random small architectures with their parameters and inputs,
 * cross-entropy inputs, optimizer runs. Everything is a pure function of the seed, so a failing
 * case is reproduced with `REGULA_FUZZ_SEEDS=<seed>`.
 *
 * Values are float32-exact (generated through `Math.fround`), so the float64 oracle sees the
 * same numbers as the GPU.
 */
import type { Backend } from "../src/backend.ts";
import type { Layer } from "../src/layers/layer.ts";
import { Conv2d } from "../src/layers/conv2d.ts";
import { AvgPool2d, MaxPool2d } from "../src/layers/pool.ts";
import { Linear } from "../src/layers/linear.ts";
import { Activation } from "../src/layers/activation.ts";
import { BatchNorm } from "../src/layers/batchnorm.ts";
import { Normalize } from "../src/layers/normalize.ts";
import { Dropout } from "../src/layers/dropout.ts";
import { Flatten } from "../src/layers/flatten.ts";
import { Sequential } from "../src/layers/sequential.ts";
import { BasicBlock } from "../src/layers/residual.ts";
import { GroupNorm, LayerNorm } from "../src/layers/layernorm.ts";
import { WeightNorm } from "../src/layers/weight_norm.ts";

/** Seeds of the default run (CI); REGULA_FUZZ_SEEDS replaces them. */
export const DEFAULT_SEEDS: readonly number[] = Array.from({ length: 14 }, (_, i) => i + 1);

/**
 * The seeds to run: `REGULA_FUZZ_SEEDS` as a list of numbers and ranges ("7", "1,5,9",
 * "100-199"), else {@linkcode DEFAULT_SEEDS}.
 */
export function fuzzSeeds(env: string | undefined): number[] {
  if (!env?.trim()) return [...DEFAULT_SEEDS];
  const seeds: number[] = [];
  for (const part of env.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`REGULA_FUZZ_SEEDS: cannot read '${part}' (use e.g. "1,5,100-199")`);
    const lo = Number(m[1]), hi = Number(m[2] ?? m[1]);
    for (let s = lo; s <= hi; s++) seeds.push(s);
  }
  return seeds;
}

/** mulberry32: a small, fast, seedable generator of floats in [0, 1). */
export class Rng {
  #s: number;

  constructor(seed: number) {
    // Decorrelate neighbouring seeds.
    this.#s = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  }

  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }

  /** float32-exact uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return Math.fround(lo + (hi - lo) * this.next());
  }

  array(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.next();
    return out;
  }

  /**
   * n distinct values spread over [lo, hi): a shuffled evenly spaced grid, jittered within its
   * cell. Inputs without near-ties, so a max-pool on the input picks the same element in
   * float32 and float64.
   */
  distinct(n: number, lo: number, hi: number): Float32Array {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const cell = (hi - lo) / n;
    return Float32Array.from(order, (k) => lo + cell * (k + 0.25 + 0.5 * this.next()));
  }
}

/** One layer of a fuzzed model, in tools/torch_fuzz.py's vocabulary (torch argument names). */
export type LayerSpec =
  | { type: "normalize"; mean: number[]; std: number[] }
  | {
    type: "conv2d";
    cin: number;
    cout: number;
    kernel: [number, number];
    stride: [number, number];
    padding: [number, number];
    bias: boolean;
    /** torch.nn.utils.weight_norm(dim=0): parameters weight_g, weight_v instead of weight. */
    weight_norm: boolean;
  }
  | {
    type: "maxpool2d";
    kernel: [number, number];
    stride: [number, number];
    padding: [number, number];
  }
  | {
    type: "avgpool2d";
    kernel: [number, number];
    stride: [number, number];
    padding: [number, number];
    count_include_pad: boolean;
  }
  | { type: "relu" | "tanh" | "sigmoid" | "flatten" }
  | { type: "leaky_relu"; slope: number }
  | { type: "softplus"; beta: number; threshold: number }
  | { type: "dropout"; p: number }
  | { type: "linear"; cin: number; cout: number; bias: boolean; weight_norm: boolean }
  | { type: "layernorm"; shape: number[]; eps: number; affine: boolean }
  | { type: "groupnorm"; groups: number; channels: number; eps: number; affine: boolean }
  | { type: "basicblock"; cin: number; cout: number; stride: number; training: boolean }
  | {
    type: "batchnorm";
    dims: 1 | 2;
    channels: number;
    eps: number;
    momentum: number;
    training: boolean;
  };

/** A fuzzed model case: architecture, parameter values, input, output gradient, tangent. */
export interface ModelCase {
  seed: number;
  inputShape: number[];
  layers: LayerSpec[];
  /** Parameter and buffer values by `state_dict` name ("3.weight"), float32-exact. */
  params: Record<string, Float32Array>;
  x: Float32Array;
  /** Gradient of the output, (B, classes). */
  dy: Float32Array;
  tx: Float32Array;
  /** A second input for the eval-mode pass after a training-mode BatchNorm forward, else null. */
  x2: Float32Array | null;
}

const SIZES = [3, 4, 5, 6, 7, 8, 9, 11, 13];
const ACTIVATIONS = ["relu", "leaky_relu", "tanh", "sigmoid", "softplus", "none"] as const;

function activation(r: Rng): LayerSpec | null {
  const kind = r.pick(ACTIVATIONS);
  if (kind === "none") return null;
  if (kind === "leaky_relu") {
    return { type: kind, slope: r.pick([0.01, 0.2, r.uniform(0.01, 0.5)]) };
  }
  if (kind === "softplus") {
    // A small threshold makes the linear branch (β a > threshold) appear.
    return { type: kind, beta: r.pick([1, 2, r.uniform(0.5, 3)]), threshold: r.pick([20, 1, 2]) };
  }
  return { type: kind };
}

function batchnorm(r: Rng, dims: 1 | 2, channels: number, valuesPerChannel: number): LayerSpec {
  return {
    type: "batchnorm",
    dims,
    channels,
    eps: r.pick([1e-5, 1e-3]),
    momentum: r.pick([0.1, 0.1, r.uniform(0.05, 0.9)]),
    // torch refuses training mode with one value per channel.
    training: valuesPerChannel >= 2 && r.bool(0.6),
  };
}

function bnParams(r: Rng, params: Record<string, Float32Array>, name: string, c: number): void {
  params[`${name}.weight`] = r.array(c, 0.5, 1.5);
  params[`${name}.bias`] = r.array(c, -0.5, 0.5);
  params[`${name}.running_mean`] = r.array(c, -0.5, 0.5);
  params[`${name}.running_var`] = r.array(c, 0.5, 2);
}

/** eps of the LayerNorm and GroupNorm draws: torch's default, and larger ones that matter. */
const NORM_EPS = [1e-5, 1e-3, 0.1];

/**
 * A random LayerNorm over the trailing 1..all dimensions of a per-sample shape (`dims`, batch
 * excluded), or, for a (C, H, W) shape, half the time a GroupNorm whose groups divide C; eps and
 * the affine map random.
 */
function rowNorm(q: Rng, dims: number[]): LayerSpec {
  const eps = q.pick(NORM_EPS), affine = q.bool(0.7);
  if (dims.length === 3 && q.bool(0.5)) {
    const [c, h, w] = dims;
    // torch refuses a group of one value (a batch of 1, "more than 1 value per channel").
    const divisors = Array.from({ length: c }, (_, i) => i + 1)
      .filter((g) => c % g === 0 && (c / g) * h * w > 1);
    if (divisors.length) {
      return { type: "groupnorm", groups: q.pick(divisors), channels: c, eps, affine };
    }
  }
  const k = q.int(1, dims.length);
  return { type: "layernorm", shape: dims.slice(dims.length - k), eps, affine };
}

/**
 * Appends a random MaxPool2d or AvgPool2d for an (h, w) input when one fits.
 * @returns the output size
 */
function pool(r: Rng, layers: LayerSpec[], h: number, w: number): [number, number] {
  if (h < 2 || w < 2) return [h, w];
  const kernel: [number, number] = r.bool(0.3)
    ? [3, 3]
    : [r.int(1, Math.min(3, h)), r.int(1, Math.min(3, w))];
  // Overlapping (k3 s2), non-overlapping (s = k) and gappy (s > k) windows.
  const stride: [number, number] = r.bool(0.3)
    ? [2, 2]
    : r.bool(0.4)
    ? [...kernel]
    : [r.int(1, 3), r.int(1, 3)];
  const padding: [number, number] = [
    r.int(0, Math.floor(kernel[0] / 2)),
    r.int(0, Math.floor(kernel[1] / 2)),
  ];
  const oh = outSize(h, kernel[0], stride[0], padding[0]);
  const ow = outSize(w, kernel[1], stride[1], padding[1]);
  if (oh < 1 || ow < 1) return [h, w];
  layers.push(
    r.bool(0.55) ? { type: "maxpool2d", kernel, stride, padding } : {
      type: "avgpool2d",
      kernel,
      stride,
      padding,
      count_include_pad: r.bool(0.5),
    },
  );
  return [oh, ow];
}

/** Output size of a conv or pool along one axis (floor mode). */
function outSize(n: number, k: number, s: number, p: number): number {
  return Math.floor((n + 2 * p - k) / s) + 1;
}

/**
 * A random architecture for `seed`: a CNN (Normalize?, pool?, LayerNorm/GroupNorm?, 1-2 blocks
 * of either Conv2d, BatchNorm2d?, LayerNorm/GroupNorm?, activation?, pool? or a ResNet
 * BasicBlock; Flatten) or an MLP input (Normalize?, LayerNorm?), then Dropout?, 0-2 hidden
 * Linear layers with BatchNorm1d?, LayerNorm? and activation?, and a Linear head; each Conv2d
 * and Linear now and then weight-normalized; parameters, input x (distinct values), output
 * gradient dy and tangent tx.
 */
export function genModel(seed: number): ModelCase {
  const r = new Rng(seed);
  // LayerNorm, GroupNorm and weight normalization draw from their own stream, so that they join
  // the architectures (and inputs) the other draws of a seed gave before they were added.
  const q = new Rng(seed * 48271 + 11);
  const layers: LayerSpec[] = [];
  const cnn = r.bool(0.75);
  // Mostly tiny batches; now and then one large enough for multi-pass reductions and tiles.
  const b = r.bool(0.85) ? r.int(1, 5) : cnn ? r.pick([8, 17]) : r.pick([33, 130, 300]);
  let inputShape: number[];
  let features: number;
  if (cnn) {
    const c = r.int(1, 4);
    let h = r.pick(SIZES), w = r.pick(SIZES);
    inputShape = [b, c, h, w];
    if (r.bool(0.3)) {
      layers.push({
        type: "normalize",
        mean: Array.from({ length: c }, () => r.uniform(-0.5, 0.5)),
        std: Array.from({ length: c }, () => r.uniform(0.2, 2)),
      });
    }
    // Now and then a pool straight on the (tie-free) input.
    if (r.bool(0.15)) [h, w] = pool(r, layers, h, w);
    if (q.bool(0.1)) layers.push(rowNorm(q, [c, h, w]));
    let ch = c;
    const blocks = r.int(1, 2);
    for (let i = 0; i < blocks; i++) {
      if (r.bool(0.15)) {
        // A ResNet BasicBlock (3x3 convs, pad 1; projection shortcut when the shape changes).
        const stride = r.int(1, 2);
        const cout = r.bool(0.5) ? ch : r.int(1, 6);
        const oh = outSize(h, 3, stride, 1), ow = outSize(w, 3, stride, 1);
        // torch refuses training mode with one value per channel.
        const training = b * oh * ow >= 2 && r.bool(0.5);
        layers.push({ type: "basicblock", cin: ch, cout, stride, training });
        ch = cout;
        h = oh;
        w = ow;
        continue;
      }
      const padding: [number, number] = [r.int(0, 2), r.int(0, 2)];
      const kernel: [number, number] = [
        r.int(1, Math.min(5, h + 2 * padding[0])),
        r.int(1, Math.min(5, w + 2 * padding[1])),
      ];
      const stride: [number, number] = r.bool(0.4) ? [1, 1] : [r.int(1, 3), r.int(1, 3)];
      // Mostly few channels; now and then enough for the larger GEMM tilings.
      const cout = r.bool(0.85) ? r.int(1, 6) : r.pick([8, 12, 17]);
      const bias = r.bool(0.7);
      layers.push({
        type: "conv2d",
        cin: ch,
        cout,
        kernel,
        stride,
        padding,
        bias,
        weight_norm: q.bool(0.25),
      });
      ch = cout;
      h = outSize(h, kernel[0], stride[0], padding[0]);
      w = outSize(w, kernel[1], stride[1], padding[1]);
      if (r.bool(0.35)) layers.push(batchnorm(r, 2, ch, b * h * w));
      if (q.bool(0.3)) layers.push(rowNorm(q, [ch, h, w]));
      const act = activation(r);
      if (act) layers.push(act);
      if (r.bool(0.6)) [h, w] = pool(r, layers, h, w);
    }
    layers.push({ type: "flatten" });
    features = ch * h * w;
  } else {
    features = r.int(1, 20);
    inputShape = [b, features];
    if (r.bool(0.3)) {
      layers.push({
        type: "normalize",
        mean: Array.from({ length: features }, () => r.uniform(-0.5, 0.5)),
        std: Array.from({ length: features }, () => r.uniform(0.2, 2)),
      });
    }
    if (q.bool(0.15)) layers.push(rowNorm(q, [features]));
  }
  if (r.bool(0.35)) layers.push({ type: "dropout", p: r.pick([0.5, r.uniform(0, 0.9)]) });
  const hidden = r.int(0, 2);
  for (let i = 0; i < hidden; i++) {
    const width = r.pick([1, 3, 5, 7, 9, 13, 17, 33, 65, r.int(1, 24)]);
    layers.push({
      type: "linear",
      cin: features,
      cout: width,
      bias: r.bool(0.8),
      weight_norm: q.bool(0.25),
    });
    features = width;
    if (r.bool(0.35)) layers.push(batchnorm(r, 1, width, b));
    if (q.bool(0.25)) layers.push(rowNorm(q, [width]));
    const act = activation(r);
    if (act) layers.push(act);
  }
  const classes = r.int(1, 10);
  layers.push({
    type: "linear",
    cin: features,
    cout: classes,
    bias: r.bool(0.8),
    weight_norm: q.bool(0.25),
  });

  const params: Record<string, Float32Array> = {};
  for (const [i, l] of layers.entries()) {
    if (l.type === "conv2d" || l.type === "linear") {
      const fanIn = l.type === "conv2d" ? l.cin * l.kernel[0] * l.kernel[1] : l.cin;
      const wSize = l.type === "conv2d" ? l.cout * fanIn : l.cout * l.cin;
      // Unit-variance-preserving scale keeps activations O(1) through the net.
      const bound = Math.sqrt(3 / fanIn);
      const weight = r.array(wSize, -bound, bound);
      if (l.weight_norm) {
        // w = g v / ‖v‖ per output unit: rows of norm g, about what the plain draw gives.
        params[`${i}.weight_v`] = weight;
        params[`${i}.weight_g`] = q.array(l.cout, 0.5, 1.5);
      } else params[`${i}.weight`] = weight;
      if (l.bias) params[`${i}.bias`] = r.array(l.cout, -0.5, 0.5);
    } else if ((l.type === "layernorm" || l.type === "groupnorm") && l.affine) {
      const n = l.type === "layernorm" ? l.shape.reduce((a, v) => a * v, 1) : l.channels;
      params[`${i}.weight`] = q.array(n, 0.5, 1.5);
      params[`${i}.bias`] = q.array(n, -0.5, 0.5);
    } else if (l.type === "batchnorm") {
      bnParams(r, params, `${i}`, l.channels);
    } else if (l.type === "basicblock") {
      const conv = (name: string, cin: number, k: number) => {
        const bound = Math.sqrt(3 / (cin * k * k));
        params[`${i}.${name}.weight`] = r.array(l.cout * cin * k * k, -bound, bound);
      };
      conv("conv1", l.cin, 3);
      bnParams(r, params, `${i}.bn1`, l.cout);
      conv("conv2", l.cout, 3);
      bnParams(r, params, `${i}.bn2`, l.cout);
      if (l.stride !== 1 || l.cin !== l.cout) {
        conv("downsample.0", l.cin, 1);
        bnParams(r, params, `${i}.downsample.1`, l.cout);
      }
    }
  }
  const n = inputShape.reduce((a, v) => a * v, 1);
  const x = r.distinct(n, -1, 1);
  const dy = r.array(b * classes, -1, 1);
  const tx = r.array(n, -1, 1);
  const anyTrain = layers.some((l) =>
    (l.type === "batchnorm" || l.type === "basicblock") && l.training
  );
  const x2 = anyTrain ? r.distinct(n, -1, 1) : null;
  return { seed, inputShape, layers, params, x, dy, tx, x2 };
}

/** One layer of the regula twin of a spec, named by its index as in torch.nn.Sequential. */
function buildLayer(rt: Backend, spec: LayerSpec, name: string): Layer {
  switch (spec.type) {
    case "normalize":
      return new Normalize(rt, name, spec.mean, spec.std);
    case "conv2d": {
      const conv = new Conv2d(rt, name, spec.cin, spec.cout, spec.kernel, {
        stride: spec.stride,
        padding: spec.padding,
        bias: spec.bias,
      });
      return spec.weight_norm ? new WeightNorm(rt, conv) : conv;
    }
    case "maxpool2d":
      return new MaxPool2d(rt, name, spec.kernel, { stride: spec.stride, padding: spec.padding });
    case "avgpool2d":
      return new AvgPool2d(rt, name, spec.kernel, {
        stride: spec.stride,
        padding: spec.padding,
        countIncludePad: spec.count_include_pad,
      });
    case "relu":
    case "tanh":
    case "sigmoid":
      return new Activation(rt, name, spec.type);
    case "leaky_relu":
      return new Activation(rt, name, "leaky_relu", { slope: spec.slope });
    case "softplus":
      return new Activation(rt, name, "softplus", { beta: spec.beta, threshold: spec.threshold });
    case "flatten":
      return new Flatten(name);
    case "dropout":
      return new Dropout(rt, name, spec.p);
    case "linear": {
      const fc = new Linear(rt, name, spec.cin, spec.cout, { bias: spec.bias });
      return spec.weight_norm ? new WeightNorm(rt, fc) : fc;
    }
    case "layernorm":
      return new LayerNorm(rt, name, spec.shape, {
        eps: spec.eps,
        elementwiseAffine: spec.affine,
      });
    case "groupnorm":
      return new GroupNorm(rt, name, spec.groups, spec.channels, {
        eps: spec.eps,
        affine: spec.affine,
      });
    case "basicblock":
      return new BasicBlock(rt, name, spec.cin, spec.cout, { stride: spec.stride });
    case "batchnorm":
      return new BatchNorm(rt, name, spec.channels, {
        dims: spec.dims,
        eps: spec.eps,
        momentum: spec.momentum,
      });
  }
}

/**
 * The regula twin of a fuzzed model with its parameters written, every layer in the mode of
 * the first pass (BatchNorm as its spec says, everything else in eval mode).
 * @returns the model; the caller disposes it
 */
export function buildModel(rt: Backend, c: ModelCase): Sequential {
  const model = new Sequential(rt, "", c.layers.map((s, i) => buildLayer(rt, s, String(i))));
  for (const [i, l] of model.layers.entries()) {
    const s = c.layers[i];
    l.training = (s.type === "batchnorm" || s.type === "basicblock") && s.training;
  }
  for (const p of model.params()) {
    const v = c.params[p.name];
    if (v) rt.write(p.value, v);
  }
  return model;
}

/** A fuzzed softmaxCrossEntropy case. */
export interface CeCase {
  seed: number;
  b: number;
  k: number;
  logits: Float32Array;
  /** Class labels (int32), or null for soft targets. */
  labels: Int32Array | null;
  /** Label dtype on the GPU for class labels. */
  labelDtype: "i32" | "u32";
  soft: Float32Array | null;
  labelSmoothing: number;
  reduction: "mean" | "sum";
}

/** Random B, K (1 included), logits up to ±300, hard or soft targets, label smoothing. */
export function genCe(seed: number): CeCase {
  const r = new Rng(seed * 7919 + 13);
  // K spans the kernel's threads-per-row variants (1 .. 256 threads for K up to 2048+).
  const b = r.bool(0.85) ? r.int(1, 6) : r.pick([70, 300, 1100]);
  const k = b > 6
    ? r.pick([1, 2, 10, 37])
    : r.pick([1, 2, 3, r.int(2, 12), r.int(10, 40), r.int(100, 300), 2100]);
  const scale = r.pick([1, 5, 30, 80, 300]);
  const logits = r.array(b * k, -scale, scale);
  // Extreme entries: exact ±80 (ties at the maximum), and ±200, where exp overflows float32
  // without the max subtraction.
  const extreme = r.pick([80, 200]);
  for (let i = 0; i < logits.length; i++) {
    if (r.bool(0.1)) logits[i] = r.pick([extreme, -extreme]);
  }
  const hard = r.bool(0.6);
  let labels: Int32Array | null = null, soft: Float32Array | null = null;
  if (hard) labels = Int32Array.from({ length: b }, () => r.int(0, k - 1));
  else {
    soft = r.array(b * k, 0, 1);
    for (let i = 0; i < soft.length; i++) if (r.bool(0.3)) soft[i] = 0;
    // Rows normalized to a distribution; now and then left unnormalized (torch allows it).
    if (r.bool(0.8)) {
      for (let row = 0; row < b; row++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += soft[row * k + j];
        for (let j = 0; j < k; j++) {
          soft[row * k + j] = s > 0 ? soft[row * k + j] / s : 1 / k;
        }
      }
    }
  }
  return {
    seed,
    b,
    k,
    logits,
    labels,
    labelDtype: r.bool(0.5) ? "i32" : "u32",
    soft,
    labelSmoothing: r.pick([0, 0, 0.1, r.uniform(0, 1), 1]),
    reduction: r.bool(0.7) ? "mean" : "sum",
  };
}

/** A fuzzed optimizer run: random hyperparameters, shapes, gradients and learning rates. */
export interface OptimCase {
  seed: number;
  algorithm: "sgd" | "adam" | "adamw";
  /** Options in regula's names. */
  opts: Record<string, unknown>;
  /** The same in torch's names. */
  torch: Record<string, unknown>;
  shapes: number[][];
  init: Float32Array[];
  /** grads[step][param] */
  grads: Float32Array[][];
  lrs: number[];
}

export const OPTIM_STEPS = 5;

export function genOptim(seed: number): OptimCase {
  const r = new Rng(seed * 104729 + 7);
  const algorithm = r.pick(["sgd", "adam", "adamw"] as const);
  const opts: Record<string, unknown> = {}, torch: Record<string, unknown> = {};
  const set = (ours: string, theirs: string, v: unknown) => {
    opts[ours] = v;
    torch[theirs] = v;
  };
  if (r.bool(0.5)) set("weightDecay", "weight_decay", r.pick([5e-4, r.uniform(0, 0.2)]));
  if (r.bool(0.2)) set("maximize", "maximize", true);
  if (algorithm === "sgd") {
    if (r.bool(0.7)) {
      const momentum = r.pick([0.9, r.uniform(0.1, 0.99)]);
      set("momentum", "momentum", momentum);
      if (r.bool(0.4)) set("nesterov", "nesterov", true);
      else if (r.bool(0.5)) set("dampening", "dampening", r.uniform(0, 0.9));
    }
  } else {
    if (r.bool(0.5)) set("betas", "betas", [r.uniform(0.5, 0.95), r.uniform(0.9, 0.9999)]);
    if (r.bool(0.5)) set("eps", "eps", r.pick([1e-6, 1e-3, r.uniform(1e-4, 0.1)]));
    if (r.bool(0.3)) set("amsgrad", "amsgrad", true);
  }
  const shapes = Array.from(
    { length: r.int(1, 3) },
    () => r.pick([[r.int(1, 40)], [r.int(1, 6), r.int(1, 7)], [r.int(1, 3), 2, 3, 3]]),
  );
  const size = (s: number[]) => s.reduce((a, v) => a * v, 1);
  const init = shapes.map((s) => r.array(size(s), -1, 1));
  const gscale = r.pick([1, 1e-3, 10]);
  const grads = Array.from({ length: OPTIM_STEPS }, () =>
    shapes.map((s) => {
      const g = r.array(size(s), -gscale, gscale);
      for (let i = 0; i < g.length; i++) if (r.bool(0.1)) g[i] = 0;
      return g;
    }));
  const lrs = Array.from({ length: OPTIM_STEPS }, () => r.pick([0.1, r.uniform(1e-3, 0.3)]));
  return { seed, algorithm, opts, torch, shapes, init, grads, lrs };
}

/** Flat tensor from the oracle: null stands for NaN or an infinity. */
export type Flat = (number | null)[];

/** tools/torch_fuzz.py's answer for a model job. */
export interface ModelResult {
  y: Flat;
  y_shape: number[];
  dx: Flat;
  grads: Record<string, Flat>;
  buffers: Record<string, Flat>;
  jvp: Flat;
  margin: number | null;
  eval: { y: Flat; jvp: Flat; margin: number | null } | null;
  /** The penalties on the function at x, when the job asked for them. */
  penalty: PenaltyResult | null;
  /** Per Conv2d/Linear/normalization parameter: the sum of |terms| that make its gradient. */
  sums: Record<string, number>;
  /** Largest |float32 torch - float64 torch| per tensor: the case's own rounding noise. */
  noise: {
    y: number;
    dx: number;
    grads: Record<string, number>;
    buffers: Record<string, number>;
    jvp: number;
    eval_y: number;
    eval_jvp: number;
  };
}

/** The oracle's answer for one penalty on the function: value, per-sample R, every gradient. */
export interface PenaltyRef {
  value: number | null;
  per_sample: Flat;
  grads: Record<string, Flat>;
  /** Per Conv2d/Linear/normalization parameter: the sum of |terms| that make its gradient. */
  sums: Record<string, number>;
}

/** tools/torch_fuzz.py's answer for the penalties of a model job (see {@linkcode PenaltyCase}). */
export interface PenaltyResult {
  jacobian: PenaltyRef;
  gradient_norm: PenaltyRef;
  /** `cond`: the largest ratio of extreme singular values of a sample's Jacobian. */
  determinant: PenaltyRef & { cond: number | null };
  /** Largest |float32 torch - float64 torch| per penalty and tensor. */
  noise: Record<
    "jacobian" | "gradient_norm" | "determinant",
    { value: number; per_sample: number; grads: Record<string, number> }
  >;
}

/** tools/torch_fuzz.py's answer for a cross-entropy job. */
export interface CeResult {
  loss: number | null;
  per_sample: Flat;
  grad: Flat;
}

/** tools/torch_fuzz.py's answer for a training job. */
export interface TrainResult {
  losses: Flat;
  /** Per parameter element: the smallest |gradient| over the steps (float64). */
  gmin: Record<string, Flat>;
  params: Record<string, Flat>;
  buffers: Record<string, Flat>;
  noise: { losses: number; params: Record<string, number>; buffers: Record<string, number> };
  /** Per weight and bias: the largest sum of |terms| of its gradient over the steps. */
  sums: Record<string, number>;
}

/** tools/torch_fuzz.py's answer for an optimizer job. */
export interface OptimResult {
  trajectory: Flat[][];
}

/** All answers of one tools/torch_fuzz.py run, in job order. */
export interface FuzzResults {
  models: ModelResult[];
  ce: CeResult[];
  optim: OptimResult[];
  train: TrainResult[];
  regtrain: RegTrainResult[];
  attack: AttackResult[];
}

/** A fuzzed training run on a model case: cross-entropy and an optimizer, a few steps. */
export interface TrainCase {
  seed: number;
  labels: Int32Array;
  labelSmoothing: number;
  algorithm: "sgd" | "adam" | "adamw";
  /** Options in regula's names. */
  opts: Record<string, unknown>;
  /** The same in torch's names. */
  torch: Record<string, unknown>;
  lr: number;
  steps: number;
}

/** Labels for `model`'s batch and random optimizer settings. */
export function genTrain(model: ModelCase): TrainCase {
  const r = new Rng(model.seed * 31337 + 5);
  const last = model.layers[model.layers.length - 1];
  const classes = last.type === "linear" ? last.cout : 1;
  const labels = Int32Array.from({ length: model.inputShape[0] }, () => r.int(0, classes - 1));
  const { algorithm, opts, torch } = genOptim(model.seed * 3 + 1);
  return {
    seed: model.seed,
    labels,
    labelSmoothing: r.pick([0, 0.1]),
    algorithm,
    opts,
    torch,
    lr: algorithm === "sgd" ? r.pick([0.1, 0.05]) : r.pick([0.01, 0.003]),
    steps: 3,
  };
}

/**
 * The penalties on the function (src/regularizers: jacobian.ts, gradient_norm.ts,
 * determinant.ts) on a model case, at its input x, with every layer in the mode of the case's
 * first pass.
 */
export interface PenaltyCase {
  seed: number;
  lambda: number;
  /** Jacobian penalty: projections per sample, or -1 for the exact norm (C one-hot vectors). */
  nproj: number;
  /** (nproj, B, C) projections used as given (not normalized); null for nproj -1. */
  v: Float32Array | null;
  /** Input-gradient norm: labels (B,) and cross-entropy label smoothing. */
  labels: Int32Array;
  labelSmoothing: number;
}

/** Random λ, projections (or the exact norm), labels and label smoothing for `model`. */
export function genPenalty(model: ModelCase): PenaltyCase {
  const r = new Rng(model.seed * 7727 + 3);
  const b = model.inputShape[0], classes = model.dy.length / b;
  const nproj = r.pick([1, 1, 2, 3, -1]);
  return {
    seed: model.seed,
    lambda: r.pick([1, 0.01, r.uniform(0.1, 2)]),
    nproj,
    v: nproj === -1 ? null : r.array(nproj * b * classes, -1, 1),
    labels: Int32Array.from({ length: b }, () => r.int(0, classes - 1)),
    labelSmoothing: r.pick([0, 0, 0.1, r.uniform(0, 0.5)]),
  };
}

/** A regularizer of a fuzzed `train()` run: its registry name and every option, explicit. */
export interface RegSpec {
  name: string;
  options: Record<string, number | boolean>;
}

/**
 * A fuzzed `train()` run with regularizers on a model case: the case's batch as a one-batch
 * dataset, `steps` epochs of one step each, an optimizer, and 1-3 regularizers of the registry
 * whose effect PyTorch can reproduce exactly (no random streams: the Jacobian penalty exact,
 * no noise injection, no spectral norm).
 */
export interface RegTrainCase {
  seed: number;
  labels: Int32Array;
  algorithm: "sgd" | "adam" | "adamw";
  /** Options in regula's names. */
  opts: Record<string, unknown>;
  /** The same in torch's names. */
  torch: Record<string, unknown>;
  lr: number;
  steps: number;
  /**
   * `train`'s trainMode: true only where every BatchNorm of the case may train (its spec says
   * training) and there is no Dropout (its mask is regula's random stream); else every layer in
   * eval mode.
   */
  trainMode: boolean;
  regs: RegSpec[];
}

/** The regularizers {@linkcode genRegTrain} draws from. */
export const FUZZ_REGULARIZERS = [
  "l1",
  "l2",
  "elastic-net",
  "soft-svb",
  "hard-svb",
  "max-norm",
  "label-smoothing",
  "confidence",
  "jacobian",
  "gradient-norm",
] as const;

function regSpec(r: Rng, name: typeof FUZZ_REGULARIZERS[number], classes: number): RegSpec {
  const sel = () => ({ biases: r.bool(0.3), norms: r.bool(0.3) });
  switch (name) {
    case "l1":
      return { name, options: { lambda: r.pick([1e-3, 0.01, r.uniform(0, 0.05)]), ...sel() } };
    case "l2":
      return { name, options: { lambda: r.pick([5e-4, 0.01, r.uniform(0, 0.2)]), ...sel() } };
    case "elastic-net":
      return {
        name,
        options: { l1: r.pick([1e-3, r.uniform(0, 0.05)]), l2: r.uniform(0, 0.2), ...sel() },
      };
    case "soft-svb":
      return { name, options: { lambda: r.pick([1e-3, 0.01, r.uniform(0, 0.05)]) } };
    case "hard-svb":
      return {
        name,
        options: { eps: r.pick([0.05, 0.5, r.uniform(0.01, 1)]), every: r.int(1, 3), sweeps: 12 },
      };
    case "max-norm":
      return { name, options: { c: r.pick([0.5, 1, r.uniform(0.3, 2)]) } };
    case "label-smoothing":
      return { name, options: { eps: r.pick([0.1, r.uniform(0, 1)]) } };
    case "confidence": {
      const beta = r.pick([0.1, r.uniform(0, 1)]);
      // Γ around the entropies that occur (0 .. log K), so that the hinge is both on and off.
      return r.bool(0.5)
        ? { name, options: { beta } }
        : { name, options: { beta, hinge: r.uniform(0, Math.log(Math.max(classes, 2)) + 0.3) } };
    }
    case "jacobian":
      return { name, options: { lambda: r.pick([0.01, r.uniform(0, 1)]), nproj: -1 } };
    case "gradient-norm":
      return {
        name,
        options: { lambda: r.pick([0.01, r.uniform(0, 1)]), labelSmoothing: r.pick([0, 0.1]) },
      };
  }
}

/** Labels, optimizer and 1-3 distinct regularizers for a `train()` run on `model`. */
export function genRegTrain(model: ModelCase): RegTrainCase {
  const r = new Rng(model.seed * 60013 + 17);
  const last = model.layers[model.layers.length - 1];
  const classes = last.type === "linear" ? last.cout : 1;
  const labels = Int32Array.from({ length: model.inputShape[0] }, () => r.int(0, classes - 1));
  const { algorithm, opts, torch } = genOptim(model.seed * 5 + 2);
  const pool = [...FUZZ_REGULARIZERS];
  const regs: RegSpec[] = [];
  for (let k = r.int(1, 3); k > 0; k--) {
    const i = r.int(0, pool.length - 1);
    regs.push(regSpec(r, pool.splice(i, 1)[0], classes));
  }
  const stateful = model.layers.filter((l) => l.type === "batchnorm" || l.type === "basicblock");
  const trainMode = !model.layers.some((l) => l.type === "dropout") &&
    stateful.every((l) => (l as { training: boolean }).training);
  return {
    seed: model.seed,
    labels,
    algorithm,
    opts,
    torch,
    lr: algorithm === "sgd" ? r.pick([0.1, 0.05]) : r.pick([0.01, 0.003]),
    steps: 3,
    trainMode,
    regs,
  };
}

/** `name:key=value,...`, the command-line form `parseRegularizers` reads. */
export function regSpecString(s: RegSpec): string {
  return `${s.name}:${Object.entries(s.options).map(([k, v]) => `${k}=${v}`).join(",")}`;
}

/** tools/torch_fuzz.py's answer for a regularized training job. */
export interface RegTrainResult extends Omit<TrainResult, "noise"> {
  /** Per regularizer name, its penalty value at each step (0 for those without one). */
  penalties: Record<string, Flat>;
  noise: TrainResult["noise"] & { penalties: Record<string, number> };
}

/** A fuzzed attack on a model case, in eval mode, inputs in [0, 1]. */
export interface AttackCase {
  seed: number;
  /** (B, ...) float32-exact inputs in [0, 1]. */
  x: Float32Array;
  attack: "fgsm" | "pgd" | "pgdl2";
  eps: number;
  alpha: number;
  steps: number;
  /** "labels": untargeted on `labels`; "target": targeted at `labels`; "predictions": y null. */
  mode: "labels" | "target" | "predictions";
  labels: Int32Array;
}

/** A random FGSM, L∞ PGD or L2 PGD (no random start) on `model`'s architecture. */
export function genAttack(model: ModelCase): AttackCase {
  const r = new Rng(model.seed * 15485863 + 29);
  const b = model.inputShape[0], classes = model.dy.length / b;
  // The case's input, in [0, 1], with now and then pixels at the box's edges.
  const x = Float32Array.from(model.x, (v) => Math.fround((v + 1) / 2));
  for (let i = 0; i < x.length; i++) if (r.bool(0.05)) x[i] = r.pick([0, 1]);
  const attack = r.pick(["fgsm", "pgd", "pgd", "pgdl2"] as const);
  const d = x.length / b;
  const eps = attack === "pgdl2"
    ? r.pick([0.5, r.uniform(0.05, 2)]) * Math.sqrt(d) / 4
    : r.pick([8 / 255, 0.1, r.uniform(0.01, 0.5)]);
  const steps = attack === "fgsm" ? 1 : r.int(1, 5);
  const alpha = attack === "fgsm" ? eps : r.pick([eps / 4, 2.5 * eps / steps, r.uniform(0, eps)]);
  return {
    seed: model.seed,
    x,
    attack,
    eps,
    alpha: Math.fround(alpha),
    steps,
    mode: r.pick(["labels", "labels", "target", "predictions"] as const),
    labels: Int32Array.from({ length: b }, () => r.int(0, classes - 1)),
  };
}

/** tools/torch_fuzz.py's answer for an attack job. */
export interface AttackResult {
  /** Adversarial examples of the float64 run. */
  adv: Flat;
  /** |float32 run - float64 run| per element. */
  noise: Flat;
  /** Per sample: predicted class at `adv`, and whether its top-2 logits nearly tie. */
  pred: number[];
  pred_tie: boolean[];
  /**
   * Per sample: a decision float32 may legitimately take the other way before the last step (a
   * near-zero gradient entry for the sign, a ReLU kink, near-tied clean logits when attacking
   * the predictions): the sample's path may part from the float64 one, so only the ball and
   * the box are checked.
   */
  fragile: boolean[];
  /** Per element: a near-zero gradient entry at the last step (its sign may flip). */
  tie: boolean[];
}

/** Runs tools/torch_fuzz.py once on every job (and writes them to REGULA_FUZZ_DUMP if set). */
export async function torchFuzz(
  jobs: {
    models: unknown[];
    ce: unknown[];
    optim: unknown[];
    train: unknown[];
    regtrain?: unknown[];
    attack?: unknown[];
  },
): Promise<FuzzResults> {
  const python = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";
  const script = new URL("../tools/torch_fuzz.py", import.meta.url).pathname;
  let child;
  try {
    child = new Deno.Command(python, {
      args: [script],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    throw new Error(
      `${python} cannot be run (${(e as Error).message}): this test needs Debian's python3 ` +
        `with PyTorch (apt-get install python3-torch), or REGULA_TORCH_PYTHON`,
    );
  }
  const json = JSON.stringify(jobs);
  const dump = Deno.env.get("REGULA_FUZZ_DUMP");
  if (dump) await Deno.writeTextFile(dump, json);
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(json));
  await w.close();
  const { success, stdout, stderr } = await child.output();
  if (!success) throw new Error(`torch_fuzz.py failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout));
}

/** How many times torch's own float32 error (`noise`) a result may be off by. */
export const NOISE_FACTOR = 10;

/**
 * `null` when `|got - want| <= atol + rtol |want|` everywhere, with `atol = abs * max|want|`
 * (the tensor's own scale: float32 sums carry an error relative to their largest terms, not
 * to each small entry) plus a floor plus {@linkcode NOISE_FACTOR} times `noise` (the error
 * float32 torch makes on the same case); else a message naming the worst index. null entries
 * of `want` stand for NaN/infinity and must match a non-finite value.
 */
export function mismatch(
  got: ArrayLike<number>,
  want: ArrayLike<number | null>,
  what: string,
  tol: {
    rel?: number;
    abs?: number;
    floor?: number;
    noise?: number;
    /** Extra absolute tolerance per element. */
    extra?: ArrayLike<number>;
  } = {},
): string | null {
  const { rel = 1e-4, abs = 2e-5, floor = 1e-6, noise = 0, extra } = tol;
  if (got.length !== want.length) return `${what}: length ${got.length}, want ${want.length}`;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    if (w !== null) scale = Math.max(scale, Math.abs(w));
  }
  const atol = abs * scale + floor + NOISE_FACTOR * noise;
  let worst = 0, at = -1;
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (w === null || !Number.isFinite(g)) {
      if (w === null && !Number.isFinite(g)) continue;
      return `${what}[${i}]: got ${g}, want ${w ?? "non-finite"}`;
    }
    const excess = Math.abs(g - w) / (atol + (extra?.[i] ?? 0) + rel * Math.abs(w));
    if (excess > worst) {
      worst = excess;
      at = i;
    }
  }
  if (worst > 1) {
    return `${what}[${at}]: got ${got[at]}, want ${want[at]} (${worst.toFixed(1)}x the ` +
      `tolerance; atol ${atol.toExponential(1)}, rtol ${rel}, n ${got.length})`;
  }
  return null;
}
