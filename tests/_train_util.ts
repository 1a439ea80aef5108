/**
 * Small models and datasets for the training, checkpoint and CLI tests: a hand-built MLP with
 * PyTorch's default init and a seeded two-class toy problem in 2-D.
 */
import type { Backend } from "../src/backend.ts";
import { defaultBias, defaultWeight } from "../src/init/init.ts";
import { ReLU } from "../src/layers/activation.ts";
import { Linear } from "../src/layers/linear.ts";
import { Sequential } from "../src/layers/sequential.ts";
import type { TrainDataset } from "../src/train/train.ts";
import { randomArray } from "./_util.ts";

/** `fc1 (in->hidden) -> relu -> fc2 (hidden->classes)`, initialised as torch.nn.Linear. */
export function tinyMlp(rt: Backend, inputs = 2, hidden = 16, classes = 2, seed = 1): Sequential {
  const fc1 = new Linear(rt, "fc1", inputs, hidden);
  const fc2 = new Linear(rt, "fc2", hidden, classes);
  let stream = 0;
  for (const l of [fc1, fc2]) {
    rt.write(l.weight, defaultWeight(l.weight.shape, { seed, stream: stream++ }));
    rt.write(l.bias!, defaultBias(l.weight.shape, { seed, stream: stream++ }));
  }
  return new Sequential(rt, "", [fc1, new ReLU(rt, "act1"), fc2]);
}

/**
 * Two classes in the unit square: label 1 inside the circle of radius 0.3 around (0.5, 0.5).
 * @param n samples
 * @param seed data seed
 */
export function toyCircle(n: number, seed = 7): TrainDataset {
  const x = randomArray(2 * n, seed, 0, 1);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const dx = x[2 * i] - 0.5, dy = x[2 * i + 1] - 0.5;
    y[i] = dx * dx + dy * dy < 0.09 ? 1 : 0;
  }
  return { name: "toy-circle", x, y, sampleShape: [2], classes: 2, length: n };
}

/**
 * Two classes in the unit square split by the diagonal: label 1 where `x0 + x1 > 1`.
 * @param n samples
 * @param seed data seed
 */
export function toyHalfplane(n: number, seed = 7): TrainDataset {
  const x = randomArray(2 * n, seed, 0, 1);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = x[2 * i] + x[2 * i + 1] > 1 ? 1 : 0;
  return { name: "toy-halfplane", x, y, sampleShape: [2], classes: 2, length: n };
}
