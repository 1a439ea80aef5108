/**
 * The 2-D toy problem of the seed study (bioAI-Oslo/RegDNNs, "UMI"): four
 * Gaussian clusters of 128 points each, `N(centre, 0.1² I)`, centres (1, 1),
 * (−1, 1), (−1, −1), (1, −1), labelled 0–3 in that order; the test set is a
 * fresh draw. Here every number is an option and the draw is seeded
 * (Philox4x32-10 normals, src/init/philox.ts), so a split is reproducible:
 * "train" and "test" are independent streams of the same seed.
 *
 * Unlike image datasets, `x` holds raw coordinates (not in [0, 1]).
 *
 * @module
 */

import { randomNormal } from "../init/philox.ts";
import type { Dataset } from "./dataset.ts";

/** The seed study's cluster centres, one class each, in label order. */
export const TOY2D_CENTRES: readonly (readonly [number, number])[] = [
  [1, 1],
  [-1, 1],
  [-1, -1],
  [1, -1],
];

/** Options of {@linkcode toy2d}. */
export interface Toy2dOptions {
  /** Points per cluster. Default 128. */
  perClass?: number;
  /** Standard deviation of each coordinate. Default 0.1. */
  std?: number;
  /** Cluster centres; cluster `k` is class `k`. Default {@linkcode TOY2D_CENTRES}. */
  centres?: readonly (readonly [number, number])[];
  /** Seed. Default 0. */
  seed?: number;
  /** "train" (stream 0) or "test" (stream 1): independent draws of one seed. Default "train". */
  split?: "train" | "test";
}

/**
 * Draws the toy problem: `perClass` points around each centre, grouped by class (cluster 0
 * first; shuffle when batching).
 *
 * @param options sizes, spread, centres, seed, split
 * @returns a dataset of `perClass * centres.length` samples of shape `[2]`, one class per centre
 * @throws Error for non-positive sizes, a negative spread or no centres
 * @example
 * ```ts
 * import { toy2d } from "./toy.ts";
 * const ds = toy2d({ seed: 7 });
 * console.log(ds.length, ds.classes, ds.x.slice(0, 2)); // 512 4 Float32Array [~1, ~1]
 * ```
 */
export function toy2d(options: Toy2dOptions = {}): Dataset {
  const {
    perClass = 128,
    std = 0.1,
    centres = TOY2D_CENTRES,
    seed = 0,
    split = "train",
  } = options;
  if (!(Number.isInteger(perClass) && perClass > 0)) {
    throw new Error(`toy2d: perClass must be a positive integer, got ${perClass}`);
  }
  if (!(std >= 0 && Number.isFinite(std))) {
    throw new Error(`toy2d: std must be finite and >= 0, got ${std}`);
  }
  if (centres.length === 0 || centres.some((c) => c.length !== 2)) {
    throw new Error("toy2d: centres must be a non-empty list of [x, y] pairs");
  }
  if (split !== "train" && split !== "test") {
    throw new Error(`toy2d: split must be "train" or "test", got ${JSON.stringify(split)}`);
  }
  const n = perClass * centres.length;
  const z = randomNormal(2 * n, { seed, stream: split === "train" ? 0 : 1 });
  const x = new Float32Array(2 * n);
  const y = new Int32Array(n);
  for (let k = 0; k < centres.length; k++) {
    for (let j = 0; j < perClass; j++) {
      const i = k * perClass + j;
      x[2 * i] = centres[k][0] + std * z[2 * i];
      x[2 * i + 1] = centres[k][1] + std * z[2 * i + 1];
      y[i] = k;
    }
  }
  return {
    name: `toy2d/${split}`,
    x,
    y,
    sampleShape: [2],
    classes: centres.length,
    length: n,
    classNames: centres.map((c) => `(${c[0]}, ${c[1]})`),
  };
}
