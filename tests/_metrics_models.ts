/**
 * Small models with known weights for the metrics tests: Flatten + Linear (J = W everywhere)
 * and a tanh MLP with a float64 CPU twin.
 */
import type { Backend } from "../src/backend.ts";
import { Flatten } from "../src/layers/flatten.ts";
import { Linear } from "../src/layers/linear.ts";
import { Tanh } from "../src/layers/activation.ts";
import { Sequential } from "../src/layers/sequential.ts";
import { randomArray } from "./_util.ts";

/** Flatten + Linear(d → k) with seeded weights W (k, d) and bias (k,). */
export function linearModel(
  rt: Backend,
  d: number,
  k: number,
  seed: number,
): { model: Sequential; w: Float32Array; b: Float32Array } {
  const fc = new Linear(rt, "fc", d, k);
  const w = randomArray(k * d, seed, -1, 1), b = randomArray(k, seed + 1, -0.5, 0.5);
  rt.write(fc.weight, w);
  rt.write(fc.bias!, b);
  return { model: new Sequential(rt, "", [new Flatten("flatten"), fc]), w, b };
}

/** Linear(d → h) tanh Linear(h → k) and its float64 forward and input Jacobian. */
export function mlpModel(rt: Backend, d: number, h: number, k: number, seed: number): {
  model: Sequential;
  jacobian(x: ArrayLike<number>): Float64Array;
  logits(x: ArrayLike<number>): Float64Array;
} {
  const fc1 = new Linear(rt, "fc1", d, h), fc2 = new Linear(rt, "fc2", h, k);
  const w1 = randomArray(h * d, seed, -1, 1), b1 = randomArray(h, seed + 1, -0.5, 0.5);
  const w2 = randomArray(k * h, seed + 2, -1, 1), b2 = randomArray(k, seed + 3, -0.5, 0.5);
  rt.write(fc1.weight, w1);
  rt.write(fc1.bias!, b1);
  rt.write(fc2.weight, w2);
  rt.write(fc2.bias!, b2);
  const hidden = (x: ArrayLike<number>) =>
    Float64Array.from({ length: h }, (_, j) => {
      let s = b1[j];
      for (let i = 0; i < d; i++) s += w1[j * d + i] * x[i];
      return Math.tanh(s);
    });
  return {
    model: new Sequential(rt, "", [fc1, new Tanh(rt, "act"), fc2]),
    logits(x) {
      const a = hidden(x);
      return Float64Array.from({ length: k }, (_, c) => {
        let s = b2[c];
        for (let j = 0; j < h; j++) s += w2[c * h + j] * a[j];
        return s;
      });
    },
    jacobian(x) {
      // J[c, i] = Σ_j W2[c, j] (1 − a_j²) W1[j, i]
      const a = hidden(x);
      const jac = new Float64Array(k * d);
      for (let c = 0; c < k; c++) {
        for (let j = 0; j < h; j++) {
          const f = w2[c * h + j] * (1 - a[j] * a[j]);
          for (let i = 0; i < d; i++) jac[c * d + i] += f * w1[j * d + i];
        }
      }
      return jac;
    },
  };
}
