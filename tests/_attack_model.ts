/**
 * A small model and a synthetic, separable problem for the attack tests: 3 classes of 1×4×4
 * "images" in [0, 1] (class centres plus noise), a conv net with the normalisation inside the
 * model, trained in the test with Adam. Also its description for tools/torch_bridge.py's model
 * builder (used by tools/torch_attacks.py).
 */
import type { Backend } from "../src/backend.ts";
import type { Tensor } from "../src/backend.ts";
import { Sequential } from "../src/layers/sequential.ts";
import { Conv2d } from "../src/layers/conv2d.ts";
import { Linear } from "../src/layers/linear.ts";
import { ReLU, Tanh } from "../src/layers/activation.ts";
import { MaxPool2d } from "../src/layers/pool.ts";
import { Flatten } from "../src/layers/flatten.ts";
import { Normalize } from "../src/layers/normalize.ts";
import { createOptimizer } from "../src/train/optim.ts";
import { softmaxCrossEntropy } from "../src/losses/cross_entropy.ts";
import { randomArray } from "./_util.ts";

export const SHAPE = [1, 4, 4];
export const D = 16;
export const K = 3;

/** The layers, as tools/torch_bridge.py describes a model. */
export const TORCH_MODEL = {
  layers: [
    { type: "normalize", mean: [0.5], std: [0.25] },
    { type: "conv2d", name: "conv1", in: 1, out: 4, kernel: 3, padding: 1 },
    { type: "relu" },
    { type: "maxpool2d", kernel: 2 },
    { type: "flatten" },
    { type: "linear", name: "fc1", in: 16, out: 12 },
    { type: "tanh" },
    { type: "linear", name: "fc2", in: 12, out: 3 },
  ],
};

/** The conv net above, with small seeded weights. */
export function buildNet(rt: Backend, seed = 1): Sequential {
  const conv = new Conv2d(rt, "conv1", 1, 4, 3, { padding: 1 });
  const fc1 = new Linear(rt, "fc1", 16, 12);
  const fc2 = new Linear(rt, "fc2", 12, 3);
  const net = new Sequential(rt, "", [
    new Normalize(rt, "normalize", [0.5], [0.25]),
    conv,
    new ReLU(rt, "relu"),
    new MaxPool2d(rt, "pool", 2),
    new Flatten("flatten"),
    fc1,
    new Tanh(rt, "tanh"),
    fc2,
  ]);
  let s = seed * 10;
  for (const p of net.params()) {
    const fan = p.value.shape.length > 1 ? p.value.size / p.value.shape[0] : 8;
    const a = 1 / Math.sqrt(fan);
    rt.write(p.value, randomArray(p.value.size, s++, -a, a));
  }
  return net;
}

/** n samples: class i % 3, centre + U(-0.15, 0.15) noise, clipped to [0, 1]. */
export function makeData(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const centres = randomArray(K * D, 99, 0.15, 0.85);
  const noise = randomArray(n * D, seed, -0.15, 0.15);
  const x = new Float32Array(n * D), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % K;
    for (let j = 0; j < D; j++) {
      x[i * D + j] = Math.min(1, Math.max(0, centres[y[i] * D + j] + noise[i * D + j]));
    }
  }
  return { x, y };
}

/** Full-batch Adam on the data for `steps` steps; leaves the model in eval mode. */
export async function trainNet(
  rt: Backend,
  net: Sequential,
  x: Tensor,
  y: Tensor,
  steps = 150,
): Promise<void> {
  net.train();
  const opt = createOptimizer(rt, { algorithm: "adam", zeroGrad: true });
  let ce: ReturnType<typeof softmaxCrossEntropy> | null = null;
  for (let t = 0; t < steps; t++) {
    ce = softmaxCrossEntropy(rt, net.forward(x), y, ce ? { out: ce } : {});
    net.backward(ce.dLogits!);
    opt.step(net.params(), 0.02);
    rt.submit();
  }
  await rt.sync();
  ce?.dispose();
  opt.dispose();
  net.eval();
}

/** Fraction of rows of `xs` the net classifies as `y`. */
export async function accuracy(net: Sequential, xs: Tensor, y: Int32Array): Promise<number> {
  const logits = await net.forward(xs).read() as Float32Array;
  let ok = 0;
  for (let i = 0; i < y.length; i++) {
    let am = 0;
    for (let j = 1; j < K; j++) if (logits[i * K + j] > logits[i * K + am]) am = j;
    if (am === y[i]) ok++;
  }
  return ok / y.length;
}
