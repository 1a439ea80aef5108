/**
 * Labelled datasets in memory: the {@linkcode Dataset} shape every data source
 * produces and the training loop consumes, plus subsets and seeded
 * train/validation splits.
 *
 * Images are stored row-major per sample, `(C, H, W)` (or `(H, W)` for
 * one-channel IDX images, and `(2,)` for the toy problem), with pixel values
 * in [0, 1]. Sources whose pixels are bytes (IDX, CIFAR) also keep those bytes
 * (`bytes`, `x = bytes / 255`): the batch pipeline then uploads 1 byte per
 * pixel instead of 4, and `x` is only materialised on the host when someone
 * reads it.
 *
 * No Deno APIs: runs in browsers too.
 *
 * @example
 * ```ts
 * import { splitDataset } from "./dataset.ts";
 * import { toy2d } from "./toy.ts";
 *
 * const { train, val } = splitDataset(toy2d({ seed: 1 }), { valFraction: 0.25, seed: 0 });
 * console.log(train.length, val.length); // 384 128
 * ```
 *
 * @module
 */

import { randomUniform } from "../init/philox.ts";

/** A labelled dataset held in host memory. */
export interface Dataset {
  /** Short name for logs and checkpoint metadata ("mnist/train"). */
  name: string;
  /** `length * prod(sampleShape)` values, row-major per sample; pixels are in [0, 1]. */
  x: Float32Array;
  /** Class of each sample, in [0, classes). */
  y: Int32Array;
  /** Shape of one sample: `[C, H, W]`, `[H, W]` or `[features]`. */
  sampleShape: number[];
  /** Number of classes. */
  classes: number;
  /** Number of samples. */
  length: number;
  /** Class names, `classes` of them, when the source has them. */
  classNames?: string[];
  /**
   * The same pixels as bytes (`x[i] = bytes[i] / 255`), when the source is 8-bit. The batch
   * pipeline uploads these (4x less memory) and converts on the GPU, bit-identically.
   */
  bytes?: Uint8Array;
}

/**
 * What the functions here read of a dataset: a read-only {@linkcode Dataset} whose name is
 * optional, so that structurally equal types (train's `TrainDataset`) are accepted too.
 */
export interface DatasetLike {
  /** See {@linkcode Dataset}. */
  readonly name?: string;
  /** See {@linkcode Dataset}. */
  readonly x: Float32Array;
  /** See {@linkcode Dataset}. */
  readonly y: Int32Array;
  /** See {@linkcode Dataset}. */
  readonly sampleShape: readonly number[];
  /** See {@linkcode Dataset}. */
  readonly classes: number;
  /** See {@linkcode Dataset}. */
  readonly length: number;
  /** See {@linkcode Dataset}. */
  readonly classNames?: readonly string[];
  /** See {@linkcode Dataset}. */
  readonly bytes?: Uint8Array;
}

/** Values per sample, `prod(sampleShape)`. */
export function sampleSize(ds: Pick<DatasetLike, "sampleShape">): number {
  return ds.sampleShape.reduce((a, b) => a * b, 1);
}

/** `i / 255` rounded to f32, for every byte value: the one table host and GPU both use. */
export const BYTE_TO_UNIT: Float32Array = Float32Array.from({ length: 256 }, (_, i) => i / 255);

/**
 * A dataset of 8-bit pixels whose float view `x` (bytes / 255) is computed on first access and
 * then kept.
 *
 * @param name dataset name
 * @param bytes `length * prod(sampleShape)` pixel bytes; kept, not copied
 * @param y labels (kept, not copied)
 * @param sampleShape shape of one sample
 * @param classes number of classes
 * @param classNames optional class names
 * @returns a dataset with a lazy `x` and `bytes` set
 */
export function byteDataset(
  name: string,
  bytes: Uint8Array,
  y: Int32Array,
  sampleShape: number[],
  classes: number,
  classNames?: string[],
): Dataset {
  let x: Float32Array | null = null;
  const ds: Dataset = {
    name,
    get x(): Float32Array {
      if (!x) {
        x = new Float32Array(bytes.length);
        for (let i = 0; i < bytes.length; i++) x[i] = BYTE_TO_UNIT[bytes[i]];
      }
      return x;
    },
    set x(v: Float32Array) {
      x = v;
    },
    y,
    sampleShape,
    classes,
    length: y.length,
    bytes,
  };
  if (classNames) ds.classNames = classNames;
  checkDataset(ds);
  return ds;
}

/**
 * Checks that a dataset is consistent: sizes, label range, class names.
 * Does not touch a lazy `x` when `bytes` is present.
 *
 * @param ds dataset
 * @throws Error naming the dataset and what does not match
 */
export function checkDataset(ds: DatasetLike): void {
  const where = `Dataset '${ds.name ?? "dataset"}'`;
  if (!ds.sampleShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${where}: invalid sampleShape [${ds.sampleShape}]`);
  }
  if (!Number.isInteger(ds.classes) || ds.classes < 1) {
    throw new Error(`${where}: classes must be a positive integer, got ${ds.classes}`);
  }
  if (ds.y.length !== ds.length) {
    throw new Error(`${where}: ${ds.y.length} labels for length ${ds.length}`);
  }
  const d = sampleSize(ds);
  const values = ds.bytes ? ds.bytes.length : ds.x.length;
  if (values !== ds.length * d) {
    throw new Error(
      `${where}: ${values} ${ds.bytes ? "bytes" : "values"} for ${ds.length} samples of shape ` +
        `[${ds.sampleShape}] (need ${ds.length * d})`,
    );
  }
  for (let i = 0; i < ds.y.length; i++) {
    const c = ds.y[i];
    if (!(c >= 0 && c < ds.classes)) {
      throw new Error(`${where}: label ${c} of sample ${i} is outside [0, ${ds.classes})`);
    }
  }
  if (ds.classNames && ds.classNames.length !== ds.classes) {
    throw new Error(`${where}: ${ds.classNames.length} class names for ${ds.classes} classes`);
  }
}

/**
 * The samples at `indices`, in that order, as a new dataset (copies).
 *
 * @param ds source dataset
 * @param indices sample indices in [0, ds.length)
 * @param name name of the result (default `${ds.name}[subset]`)
 * @returns a new dataset; keeps `bytes` (and a lazy `x`) when the source has them
 * @throws Error for an index out of range
 */
export function subset(ds: DatasetLike, indices: ArrayLike<number>, name?: string): Dataset {
  const d = sampleSize(ds);
  const n = indices.length;
  const y = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    if (!(Number.isInteger(i) && i >= 0 && i < ds.length)) {
      throw new Error(`subset of '${ds.name ?? "dataset"}': index ${i} outside [0, ${ds.length})`);
    }
    y[k] = ds.y[i];
  }
  const outName = name ?? `${ds.name ?? "dataset"}[subset]`;
  const names = ds.classNames ? [...ds.classNames] : undefined;
  if (ds.bytes) {
    const src = ds.bytes;
    const bytes = new Uint8Array(n * d);
    for (let k = 0; k < n; k++) {
      bytes.set(src.subarray(indices[k] * d, (indices[k] + 1) * d), k * d);
    }
    return byteDataset(outName, bytes, y, [...ds.sampleShape], ds.classes, names);
  }
  const src = ds.x;
  const x = new Float32Array(n * d);
  for (let k = 0; k < n; k++) x.set(src.subarray(indices[k] * d, (indices[k] + 1) * d), k * d);
  const out: Dataset = {
    name: outName,
    x,
    y,
    sampleShape: [...ds.sampleShape],
    classes: ds.classes,
    length: n,
  };
  if (names) out.classNames = names;
  return out;
}

/**
 * A seeded permutation of `0 .. n-1` (Fisher–Yates driven by Philox4x32-10 uniforms of
 * `(seed, stream)`, src/init/philox.ts): the same on every platform.
 *
 * @param n length
 * @param seed integer seed in [0, 2^53)
 * @param stream integer stream in [0, 2^32) (e.g. the epoch)
 * @returns a new Uint32Array permutation
 */
export function permutation(n: number, seed: number, stream = 0): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const u = randomUniform(n, { seed, stream });
  // Durstenfeld's in-place shuffle, from the back: swap i with a uniform j in [0, i].
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u[i] * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

/** Options of {@linkcode splitDataset}. */
export interface SplitOptions {
  /** Fraction of samples for validation, in [0, 1). Exactly one of this and `valCount`. */
  valFraction?: number;
  /** Number of samples for validation. */
  valCount?: number;
  /** Seed of the split. Default 0. */
  seed?: number;
  /**
   * Keep class proportions: each class gives `round` of its share to validation, with the
   * rounding remainders assigned so the total is exact. Default true.
   */
  stratified?: boolean;
}

/**
 * Splits a dataset into training and validation sets, reproducibly.
 *
 * Unstratified: the first `valCount` samples of a seeded permutation go to validation.
 * Stratified (default): each class `c` with `n_c` samples contributes `floor(valCount * n_c / N)`
 * samples, chosen by a seeded permutation of that class, and the classes with the largest
 * fractional remainders (ties: lower class first) give one more each until the total is
 * `valCount` (largest-remainder apportionment). Both subsets keep the source's order of
 * samples, so a split is a pure function of `(dataset, valCount, seed, stratified)`.
 *
 * @param ds the dataset to split (e.g. a training set; keep the test set apart)
 * @param options validation size, seed, stratification
 * @returns `{ train, val }`, new datasets named `${ds.name}/train` and `${ds.name}/val`
 * @throws Error when the size is invalid or both or neither of `valFraction`/`valCount` are set
 */
export function splitDataset(
  ds: DatasetLike,
  options: SplitOptions,
): { train: Dataset; val: Dataset } {
  const { valFraction, valCount, seed = 0, stratified = true } = options;
  if ((valFraction === undefined) === (valCount === undefined)) {
    throw new Error("splitDataset: give exactly one of valFraction and valCount");
  }
  const n = ds.length;
  let k: number;
  if (valFraction !== undefined) {
    if (!(valFraction >= 0 && valFraction < 1)) {
      throw new Error(`splitDataset: valFraction must be in [0, 1), got ${valFraction}`);
    }
    k = Math.round(valFraction * n);
  } else {
    k = valCount!;
    if (!(Number.isInteger(k) && k >= 0 && k < n)) {
      throw new Error(`splitDataset: valCount must be an integer in [0, ${n}), got ${k}`);
    }
  }
  const isVal = new Uint8Array(n);
  if (!stratified) {
    const p = permutation(n, seed, 0);
    for (let i = 0; i < k; i++) isVal[p[i]] = 1;
  } else {
    const members: number[][] = Array.from({ length: ds.classes }, () => []);
    for (let i = 0; i < n; i++) members[ds.y[i]].push(i);
    const quota = members.map((m) => Math.floor((k * m.length) / n));
    let left = k - quota.reduce((a, b) => a + b, 0);
    const order = members.map((m, c) => ({ c, r: (k * m.length) / n - quota[c] }))
      .sort((a, b) => b.r - a.r || a.c - b.c);
    for (const { c } of order) {
      if (left === 0) break;
      if (quota[c] < members[c].length) {
        quota[c]++;
        left--;
      }
    }
    members.forEach((m, c) => {
      const p = permutation(m.length, seed, c);
      for (let i = 0; i < quota[c]; i++) isVal[m[p[i]]] = 1;
    });
  }
  const trainIdx: number[] = [], valIdx: number[] = [];
  for (let i = 0; i < n; i++) (isVal[i] ? valIdx : trainIdx).push(i);
  return {
    train: subset(ds, trainIdx, `${ds.name ?? "dataset"}/train`),
    val: subset(ds, valIdx, `${ds.name ?? "dataset"}/val`),
  };
}

/**
 * Number of samples of each class.
 * @param ds dataset
 * @returns `classes` counts
 */
export function classCounts(ds: Pick<DatasetLike, "y" | "classes">): number[] {
  const counts = new Array<number>(ds.classes).fill(0);
  for (const c of ds.y) counts[c]++;
  return counts;
}
