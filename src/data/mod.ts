/**
 * Data: datasets as typed arrays parsed from bytes (IDX for the MNIST family,
 * CIFAR binaries, the 2-D toy problem), splits and subsets, GPU-resident
 * shuffled batches, and augmentation in one shader.
 *
 * @example
 * ```ts
 * import { splitDataset, toy2d } from "@regula/regula/data";
 *
 * const all = toy2d({ seed: 0, split: "train" }); // 4 × 128 points around (±1, ±1)
 * const { train, val } = splitDataset(all, { valFraction: 0.25, seed: 0 });
 * console.log(all.sampleShape, train.length, val.length); // [ 2 ] 384 128
 * ```
 *
 * @module
 */

export * from "./dataset.ts";
export * from "./idx.ts";
export * from "./cifar.ts";
export * from "./toy.ts";
export * from "./batches.ts";
export * from "./augment.ts";
export * from "./label_noise.ts";
