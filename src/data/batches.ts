/**
 * Minibatches on the GPU. The whole dataset is uploaded once
 * ({@linkcode DeviceDataset}: 8-bit pixels stay 8-bit, packed four to a word,
 * so MNIST's training set takes 47 MB and CIFAR-10's 154 MB), and each batch
 * is assembled by one dispatch of shaders/augment.wgsl that gathers the rows
 * of the epoch's permutation into reused `x` (B, ...) f32 and `y` (B,) i32
 * tensors — converting bytes to [0, 1] and, optionally, augmenting
 * (src/data/augment.ts) in the same pass. Per epoch the host writes the
 * permutation (4 bytes per sample) and, with augmentation, the transforms (48
 * bytes per sample) once, before the first batch; per batch it only records a
 * dispatch, so a training step stays one `queue.submit` with no upload.
 *
 * When the dataset is larger than one storage buffer may be on this device
 * (`maxStorageBufferBindingSize`), it stays on the host instead and each batch
 * is gathered on the CPU and written (`resident: "host"`); the results are the
 * same.
 *
 * Order: epoch `e` visits the samples in the order of `permutation(N, seed,
 * 2e)` (src/data/dataset.ts, Philox-driven Fisher–Yates), or in storage order
 * without shuffling; augmentation draws of epoch `e` use stream `2e + 1`. So a
 * run is reproducible from `(seed, epoch)` alone, and every epoch differs.
 *
 * @example
 * ```ts
 * const loader = new Batches(rt, trainSet, { batchSize: 100, seed: 1 });
 * for (let epoch = 0; epoch < 10; epoch++) {
 *   for (const { x, y, count } of loader.epoch(epoch)) {
 *     // record a training step on x (count, 1, 28, 28) and y (count,)
 *   }
 * }
 * loader.dispose();
 * ```
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import {
  AUGMENT_KERNEL,
  type AugmentSpec,
  augmentTransforms,
  imageDims,
  normalizeAugmentSpec,
  TRANSFORM_FLOATS,
} from "./augment.ts";
import { BYTE_TO_UNIT, type DatasetLike, permutation, sampleSize } from "./dataset.ts";

/** A dataset's samples and labels in GPU memory. */
export class DeviceDataset {
  /** (ceil(N * sample / 4),) u32 packed bytes, or (N * sample,) f32. */
  readonly data: Tensor;
  /** (N,) i32 labels. */
  readonly labels: Tensor;
  /** (256,) f32 byte-to-value table (bytes / 255 as the host rounds it). */
  readonly lut: Tensor;
  /** True when `data` holds bytes. */
  readonly packed: boolean;
  /** The dataset's name. */
  readonly name: string;
  /** Number of samples N. */
  readonly length: number;
  /** Shape of one sample. */
  readonly sampleShape: readonly number[];
  /** Number of classes. */
  readonly classes: number;

  private constructor(
    /** The runtime holding the data. */
    readonly rt: Backend,
    ds: DatasetLike,
    data: Tensor,
    packed: boolean,
  ) {
    this.data = data;
    this.packed = packed;
    this.name = ds.name ?? "dataset";
    this.length = ds.length;
    this.sampleShape = [...ds.sampleShape];
    this.classes = ds.classes;
    this.labels = rt.upload(ds.y, [ds.length], "i32", `${this.name}.y`);
    this.lut = rt.upload(BYTE_TO_UNIT, [256], "f32", "byte lut");
  }

  /** Bytes the dataset would take on the device (data only). */
  static bytesNeeded(ds: DatasetLike): number {
    const n = ds.length * sampleSize(ds);
    return ds.bytes ? Math.ceil(n / 4) * 4 : n * 4;
  }

  /** True when the dataset fits in one storage buffer of `rt`'s device. */
  static fits(rt: Backend, ds: DatasetLike): boolean {
    const lim = Math.min(
      rt.limits.maxStorageBufferBindingSize,
      rt.limits.maxBufferSize,
    );
    return DeviceDataset.bytesNeeded(ds) <= lim;
  }

  /**
   * Uploads a dataset (bytes when it has them, else its f32 values).
   * @param rt runtime
   * @param ds the dataset
   * @returns the device copy (caller disposes)
   * @throws Error when it does not fit in one storage buffer
   */
  static upload(rt: Backend, ds: DatasetLike): DeviceDataset {
    if (ds.length === 0) {
      throw new Error(`DeviceDataset: dataset '${ds.name ?? "dataset"}' is empty`);
    }
    if (!DeviceDataset.fits(rt, ds)) {
      throw new Error(
        `DeviceDataset: '${ds.name ?? "dataset"}' needs ${
          DeviceDataset.bytesNeeded(ds)
        } bytes, more than ` +
          `one storage buffer of this device (${rt.limits.maxStorageBufferBindingSize}); ` +
          `use Batches with resident: "host"`,
      );
    }
    if (ds.bytes) {
      const words = Math.ceil(ds.bytes.length / 4);
      let src = ds.bytes;
      if (src.byteOffset % 4 !== 0 || src.length !== words * 4) {
        src = new Uint8Array(words * 4);
        src.set(ds.bytes);
      }
      const view = new Uint32Array(src.buffer, src.byteOffset, words);
      const data = rt.upload(view, [words], "u32", "dataset.bytes");
      return new DeviceDataset(rt, ds, data, true);
    }
    const data = rt.upload(ds.x, [ds.x.length], "f32", "dataset.x");
    return new DeviceDataset(rt, ds, data, false);
  }

  /** Frees the device memory. */
  dispose(): void {
    this.data.dispose();
    this.labels.dispose();
    this.lut.dispose();
  }
}

/** Options of {@linkcode Batches}. */
export interface BatchOptions {
  /** Samples per batch. */
  batchSize: number;
  /** Visit samples in a seeded random order each epoch. Default true. */
  shuffle?: boolean;
  /** Seed of the order and of the augmentation. Default 0. */
  seed?: number;
  /** Skip the last batch when it is smaller than `batchSize`. Default false. */
  dropLast?: boolean;
  /** Random augmentation of image samples; default none. */
  augment?: AugmentSpec;
  /**
   * Where the dataset lives: "gpu" (uploaded once), "host" (each batch written), or "auto"
   * (default): "gpu" when it fits in one storage buffer.
   */
  resident?: "auto" | "gpu" | "host";
}

/** One batch. Its tensors belong to the loader and are overwritten by the next batch. */
export interface Batch {
  /** (count, ...sampleShape) f32 inputs. */
  x: Tensor;
  /** (count,) i32 labels. */
  y: Tensor;
  /** Samples in this batch (`batchSize`, or fewer for the last one). */
  count: number;
  /** Batch number within the epoch, from 0. */
  index: number;
  /** Position of the first sample in the epoch's order. */
  offset: number;
}

/**
 * Reusable minibatch loader over one dataset (see the module doc).
 *
 * The batch tensors are allocated once (a second pair for a smaller last batch) and reused:
 * a batch is valid until the iterator advances. Work recorded on a batch before advancing is
 * safe, since the next gather is recorded after it on the same queue.
 */
export class Batches {
  /** The runtime the batches live on. */
  readonly rt: Backend;
  /** Samples per full batch. */
  readonly batchSize: number;
  /** Batches in one epoch. */
  readonly batchesPerEpoch: number;
  /** Samples visited in one epoch (N, or fewer with `dropLast`). */
  readonly samplesPerEpoch: number;
  /** Where the data live. */
  readonly resident: "gpu" | "host";
  /** Shape of one sample. */
  readonly sampleShape: readonly number[];
  /** Number of samples N in the dataset. */
  readonly length: number;
  #ds: DatasetLike | null;
  #dev: DeviceDataset | null;
  #ownsDev: boolean;
  #shuffle: boolean;
  #seed: number;
  #augment: AugmentSpec | null;
  #dims: [number, number, number] | null = null;
  #order: Tensor | null = null;
  #mats: Tensor | null = null;
  #raw: Tensor | null = null;
  #full: [Tensor, Tensor] | null = null;
  #tail: [Tensor, Tensor] | null = null;
  #running = false;
  #disposed = false;

  /**
   * Makes a loader; uploads the dataset unless it is given on the device or kept on the host.
   * @param rt runtime
   * @param data a dataset, or one already on the device (not disposed by the loader)
   * @param options batch size, shuffling, seed, augmentation, residency
   * @throws Error for a bad batch size, an empty dataset, or augmentation of non-image samples
   */
  constructor(rt: Backend, data: DatasetLike | DeviceDataset, options: BatchOptions) {
    const { batchSize, shuffle = true, seed = 0, dropLast = false } = options;
    this.rt = rt;
    const n = data.length;
    const name = data.name ?? "dataset";
    if (!(Number.isInteger(batchSize) && batchSize > 0)) {
      throw new Error(`Batches('${name}'): batchSize must be a positive integer, got ${batchSize}`);
    }
    if (!(Number.isSafeInteger(seed) && seed >= 0)) {
      throw new Error(`Batches('${name}'): seed must be an integer in [0, 2^53), got ${seed}`);
    }
    if (n === 0) throw new Error(`Batches('${name}'): the dataset is empty`);
    this.batchSize = batchSize;
    this.#shuffle = shuffle;
    this.#seed = seed;
    this.length = n;
    this.sampleShape = [...data.sampleShape];
    this.batchesPerEpoch = dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
    this.samplesPerEpoch = dropLast ? this.batchesPerEpoch * batchSize : n;
    if (options.augment) {
      normalizeAugmentSpec(options.augment);
      this.#dims = imageDims(data.sampleShape, `Batches('${name}')`);
      this.#augment = options.augment;
    } else {
      this.#augment = null;
    }
    if (data instanceof DeviceDataset) {
      if (options.resident === "host") {
        throw new Error(`Batches('${name}'): resident "host" needs a host Dataset`);
      }
      this.#ds = null;
      this.#dev = data;
      this.#ownsDev = false;
      this.resident = "gpu";
    } else {
      const want = options.resident ?? "auto";
      const gpu = want === "gpu" || (want === "auto" && DeviceDataset.fits(rt, data));
      this.#ds = data;
      this.#dev = gpu ? DeviceDataset.upload(rt, data) : null;
      this.#ownsDev = gpu;
      this.resident = gpu ? "gpu" : "host";
    }
  }

  /**
   * The order in which epoch `e` visits the samples.
   * @param epoch epoch number, integer in [0, 2^31)
   * @returns N sample indices (the first `samplesPerEpoch` are used)
   */
  order(epoch: number): Uint32Array {
    if (!(Number.isInteger(epoch) && epoch >= 0 && epoch < 2 ** 31)) {
      throw new Error(`Batches: epoch must be an integer in [0, 2^31), got ${epoch}`);
    }
    if (this.#shuffle) return permutation(this.length, this.#seed, 2 * epoch);
    const o = new Uint32Array(this.length);
    for (let i = 0; i < o.length; i++) o[i] = i;
    return o;
  }

  /**
   * The augmentation transforms of epoch `e`, by position in the epoch (null without
   * augmentation).
   * @returns (N, 12) f32 values, see src/data/augment.ts
   */
  transforms(epoch: number): Float32Array | null {
    if (!this.#augment || !this.#dims) return null;
    const [, h, w] = this.#dims;
    return augmentTransforms(this.length, h, w, this.#augment, {
      seed: this.#seed,
      stream: 2 * epoch + 1,
    });
  }

  /**
   * Iterates over the batches of one epoch. Writes the epoch's order (and transforms) to the
   * device first; each step then records one dispatch (device-resident data).
   * @param epoch epoch number (selects the order and the augmentation draws)
   * @returns a generator of batches; one epoch at a time per loader
   */
  *epoch(epoch: number): Generator<Batch, void, undefined> {
    if (this.#disposed) throw new Error("Batches: used after dispose()");
    if (this.#running) {
      throw new Error("Batches: an epoch is already being iterated; finish it or return() first");
    }
    const rt = this.rt;
    const order = this.order(epoch);
    const mats = this.transforms(epoch);
    const n = this.length;
    this.#running = true;
    try {
      if (this.#dev) {
        this.#order ??= rt.empty([n], "u32", "batches.order");
        rt.write(this.#order, order);
      }
      if (mats) {
        this.#mats ??= rt.empty([n, TRANSFORM_FLOATS], "f32", "batches.transforms");
        rt.write(this.#mats, mats);
      }
      for (let index = 0; index < this.batchesPerEpoch; index++) {
        const offset = index * this.batchSize;
        const count = Math.min(this.batchSize, n - offset);
        const [x, y] = this.#tensors(count);
        if (this.#dev) this.#gatherDevice(offset, count, x, y);
        else this.#gatherHost(order, offset, count, x, y);
        yield { x, y, count, index, offset };
      }
    } finally {
      this.#running = false;
    }
  }

  #tensors(count: number): [Tensor, Tensor] {
    const make = (b: number): [Tensor, Tensor] => [
      this.rt.empty([b, ...this.sampleShape], "f32", "batch.x"),
      this.rt.empty([b], "i32", "batch.y"),
    ];
    if (count === this.batchSize) return this.#full ??= make(count);
    return this.#tail ??= make(count);
  }

  #dispatch(
    src: Tensor,
    labels: Tensor,
    order: Tensor,
    lut: Tensor,
    x: Tensor,
    y: Tensor,
    count: number,
    offset: number,
    constants: Record<string, number>,
  ): void {
    const sample = x.size / count;
    const [c, h, w] = this.#dims ?? [1, 1, sample];
    const vec4 = !this.#mats && sample % 4 === 0;
    this.rt.dispatch(AUGMENT_KERNEL, {
      bindings: [src, labels, order, this.#mats ?? this.rt.placeholder(0), lut, x, y],
      params: { count, offset, channels: c, height: h, width: w, sample },
      constants: { ...constants, AFFINE: this.#mats ? 1 : 0, VEC4: vec4 ? 1 : 0 },
      workgroups: this.rt.grid((count * sample) / (vec4 ? 4 : 1), 256),
    });
  }

  #gatherDevice(offset: number, count: number, x: Tensor, y: Tensor): void {
    const dev = this.#dev!;
    this.#dispatch(dev.data, dev.labels, this.#order!, dev.lut, x, y, count, offset, {
      SOURCE: dev.packed ? 1 : 0,
      INDEXED: 1,
      LABELS: 1,
    });
  }

  #gatherHost(order: Uint32Array, offset: number, count: number, x: Tensor, y: Tensor): void {
    const ds = this.#ds!;
    const rt = this.rt;
    const d = sampleSize(ds);
    const labels = new Int32Array(count);
    for (let b = 0; b < count; b++) labels[b] = ds.y[order[offset + b]];
    rt.write(y, labels);
    if (!ds.bytes && !this.#mats) {
      const vals = new Float32Array(count * d);
      for (let b = 0; b < count; b++) {
        const s = order[offset + b];
        vals.set(ds.x.subarray(s * d, (s + 1) * d), b * d);
      }
      rt.write(x, vals);
      return;
    }
    // Bytes (or values to augment) go through the kernel, reading the batch as written.
    let raw: Uint32Array | Float32Array;
    if (ds.bytes) {
      const bytes = new Uint8Array(Math.ceil((count * d) / 4) * 4);
      for (let b = 0; b < count; b++) {
        const s = order[offset + b];
        bytes.set(ds.bytes.subarray(s * d, (s + 1) * d), b * d);
      }
      raw = new Uint32Array(bytes.buffer);
    } else {
      raw = new Float32Array(count * d);
      for (let b = 0; b < count; b++) {
        const s = order[offset + b];
        raw.set(ds.x.subarray(s * d, (s + 1) * d), b * d);
      }
    }
    const words = Math.ceil((this.batchSize * d) / (ds.bytes ? 4 : 1));
    this.#raw ??= rt.empty([words], "u32", "batches.raw");
    const full = new Uint32Array(words);
    full.set(new Uint32Array(raw.buffer, raw.byteOffset, raw.length));
    rt.write(this.#raw, full);
    this.#lut ??= rt.upload(BYTE_TO_UNIT, [256], "f32", "byte lut");
    this.#dispatch(
      this.#raw,
      rt.placeholder(0),
      rt.placeholder(0),
      this.#lut,
      x,
      y,
      count,
      offset,
      {
        SOURCE: ds.bytes ? 1 : 0,
        INDEXED: 0,
        LABELS: 0,
      },
    );
  }

  #lut: Tensor | null = null;

  /** Frees the loader's tensors and, when it uploaded the dataset itself, the device copy. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#ownsDev) this.#dev?.dispose();
    for (const t of [this.#order, this.#mats, this.#raw, this.#lut]) t?.dispose();
    for (const pair of [this.#full, this.#tail]) pair?.forEach((t) => t.dispose());
  }
}

/**
 * One epoch of batches from a dataset: uploads it, yields the batches, and frees everything
 * when the loop ends (or breaks). For many epochs, keep one {@linkcode Batches} instead, so the
 * dataset is uploaded once.
 *
 * @param rt runtime
 * @param ds the dataset
 * @param options batch options and the epoch (default 0)
 * @returns a generator of batches (tensors valid until the next batch)
 */
export function* batches(
  rt: Backend,
  ds: DatasetLike | DeviceDataset,
  options: BatchOptions & { epoch?: number },
): Generator<Batch, void, undefined> {
  const loader = new Batches(rt, ds, options);
  try {
    yield* loader.epoch(options.epoch ?? 0);
  } finally {
    loader.dispose();
  }
}
