/**
 * Randomized labels for the memorisation experiment of Zhang, Bengio, Hardt, Recht & Vinyals
 * 2017, "Understanding deep learning requires rethinking generalization" (ICLR), §2: a network
 * fits a training set whose labels were partly replaced by random ones, and its test accuracy
 * falls as the corrupted fraction grows.
 *
 * The rule here (theirs differs, see {@linkcode randomizeLabels}): exactly
 * `m = round(p · N)` samples, the first `m` of a seeded permutation, each get a label drawn
 * uniformly from the `K − 1` classes other than their own, so exactly `m` labels are wrong and
 * the wrong one is uniform over the other classes. Zhang et al. ("partially corrupted labels:
 * independently with probability p, the label of each image is corrupted as a uniform random
 * class") draw from all `K` classes, so on average only `p (K − 1) / K` of their labels are
 * wrong; our `p` is theirs times `K / (K − 1)`.
 *
 * The draws come from Philox4x32-10 (src/init/philox.ts) under the key `seed` with the fourth
 * counter word set to a tag that every other host stream leaves 0, so they are independent of
 * the split, shuffle and augmentation streams of the same seed.
 *
 * No Deno APIs: runs in browsers too.
 *
 * @example
 * ```ts
 * import { randomizeLabels, toy2d } from "@regula/regula/data";
 *
 * const { dataset, corrupted } = randomizeLabels(toy2d({ seed: 0 }), { fraction: 0.25, seed: 1 });
 * console.log(corrupted.length, dataset.length); // 128 512
 * ```
 *
 * @module
 */

import { philox4x32 } from "../init/philox.ts";
import { checkDataset, type Dataset, type DatasetLike } from "./dataset.ts";

/** Options of {@linkcode randomizeLabels}. */
export interface LabelNoiseOptions {
  /** Fraction `p` in [0, 1] of the samples whose label is replaced. */
  fraction: number;
  /** Seed of which samples and which new labels, an integer in [0, 2^53). Default 0. */
  seed?: number;
}

/** What {@linkcode randomizeLabels} returns. */
export interface NoisyLabels {
  /** The same samples (shared, not copied) with the noisy labels. */
  dataset: Dataset;
  /** The original labels, `N` of them (a copy). */
  cleanLabels: Int32Array;
  /** Indices of the samples whose label was replaced, ascending. */
  corrupted: Uint32Array;
  /** The rule, for metadata: "exact-count, uniform over the other classes". */
  rule: string;
}

/** The rule's one-line description, as recorded in checkpoints. */
export const LABEL_NOISE_RULE =
  "exactly round(p*N) training samples (a seeded permutation's first) relabelled uniformly " +
  "among the K-1 other classes";

/** Fourth Philox counter word of the label-noise draws ("labl"); other host streams use 0. */
const TAG = 0x6c61626c;

/** `n` uniforms in [0, 1) of `(seed, stream)` under the label-noise tag (53 bits each). */
function taggedUniform(n: number, seed: number, stream: number): Float64Array {
  const out = new Float64Array(n);
  const w = new Uint32Array(4);
  const k0 = seed % 2 ** 32, k1 = Math.floor(seed / 2 ** 32);
  for (let i = 0; i < n; i += 2) {
    const block = i / 2;
    philox4x32([block % 2 ** 32, Math.floor(block / 2 ** 32), stream, TAG], [k0, k1], w);
    out[i] = ((w[0] >>> 5) * 67108864 + (w[1] >>> 6)) / 9007199254740992;
    if (i + 1 < n) out[i + 1] = ((w[2] >>> 5) * 67108864 + (w[3] >>> 6)) / 9007199254740992;
  }
  return out;
}

/**
 * Replaces a seeded fraction of a dataset's labels by uniformly random other classes (the rule
 * in the module doc). Apply it to the training split only; validation and test keep their labels.
 *
 * @param ds the training samples (at least 2 classes when `fraction > 0`)
 * @param options fraction `p` and seed
 * @returns the relabelled dataset (samples shared with `ds`, labels new), the clean labels and
 *   the corrupted indices; a pure function of `(ds.y, ds.classes, p, seed)`
 * @throws Error for `p` outside [0, 1], a bad seed, or one class with `p > 0`
 */
export function randomizeLabels(ds: DatasetLike, options: LabelNoiseOptions): NoisyLabels {
  const { fraction: p, seed = 0 } = options;
  const where = `randomizeLabels('${ds.name ?? "dataset"}')`;
  if (!(p >= 0 && p <= 1)) throw new Error(`${where}: fraction must be in [0, 1], got ${p}`);
  if (!(Number.isSafeInteger(seed) && seed >= 0)) {
    throw new Error(`${where}: seed must be an integer in [0, 2^53), got ${seed}`);
  }
  const n = ds.length, k = ds.classes;
  const m = Math.round(p * n);
  if (m > 0 && k < 2) throw new Error(`${where}: needs at least 2 classes to relabel`);
  // Durstenfeld's shuffle from the back (as src/data/dataset.ts `permutation`), stream 0.
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const u = taggedUniform(n, seed, 0);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u[i] * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const corrupted = order.slice(0, m).sort();
  // Sample i's offset in 1 .. K-1 comes from element i of stream 1: uniform over the others.
  const v = taggedUniform(n, seed, 1);
  const y = Int32Array.from(ds.y);
  for (const i of corrupted) y[i] = (ds.y[i] + 1 + Math.floor(v[i] * (k - 1))) % k;
  const dataset: Dataset = {
    name: `${ds.name ?? "dataset"}~noise${p}`,
    get x(): Float32Array {
      return ds.x;
    },
    y,
    sampleShape: [...ds.sampleShape],
    classes: k,
    length: n,
  };
  if (ds.bytes) dataset.bytes = ds.bytes;
  if (ds.classNames) dataset.classNames = [...ds.classNames];
  checkDataset(dataset);
  return { dataset, cleanLabels: Int32Array.from(ds.y), corrupted, rule: LABEL_NOISE_RULE };
}
