/**
 * CIFAR-10 and CIFAR-100 in their "binary version" (Krizhevsky 2009; the
 * format section of https://www.cs.toronto.edu/~kriz/cifar.html):
 *
 * - CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` .. `data_batch_5.bin`
 *   (10000 records each) and `test_batch.bin`; a record is 1 label byte and
 *   3072 pixel bytes, 3073 bytes.
 * - CIFAR-100 (`cifar-100-binary/`): `train.bin` (50000 records) and
 *   `test.bin` (10000); a record is the coarse label byte (20 superclasses),
 *   the fine label byte (100 classes) and 3072 pixel bytes, 3074 bytes.
 *
 * The 3072 pixel bytes are the 1024 red, then 1024 green, then 1024 blue
 * values of a 32x32 image, rows top to bottom: already the `(C, H, W)` layout
 * of a sample here.
 *
 * From bytes only (no file access): see cli/data.ts for loading from disk.
 *
 * @module
 */

import { byteDataset, type Dataset } from "./dataset.ts";

/** Pixel bytes of one image, 3 x 32 x 32. */
export const CIFAR_IMAGE_BYTES = 3072;

/** CIFAR-10 class names by label (batches.meta.txt). */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/** CIFAR-100 fine class names by label (fine_label_names.txt: alphabetical). */
export const CIFAR100_CLASSES: readonly string[] = (
  "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus " +
  "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch " +
  "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo " +
  "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse " +
  "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy " +
  "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper " +
  "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television " +
  "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split(" ");

/** CIFAR-100 coarse (superclass) names by label (coarse_label_names.txt: alphabetical). */
export const CIFAR100_COARSE_CLASSES: readonly string[] = (
  "aquatic_mammals fish flowers food_containers fruit_and_vegetables " +
  "household_electrical_devices household_furniture insects large_carnivores " +
  "large_man-made_outdoor_things large_natural_outdoor_scenes large_omnivores_and_herbivores " +
  "medium_mammals non-insect_invertebrates people reptiles small_mammals trees vehicles_1 " +
  "vehicles_2"
).split(" ");

const CIFAR100_LABELS = [
  { what: "coarse label", limit: 20 },
  { what: "fine label", limit: 100 },
];

/** One file of a CIFAR binary distribution. */
export interface CifarFile {
  /** File name, for error messages ("data_batch_1.bin"). */
  name: string;
  /** Its bytes. */
  bytes: Uint8Array;
  /**
   * Records the file must hold (10000 for a CIFAR-10 batch); a file with another count is
   * refused. Default: any whole number of records.
   */
  records?: number;
}

function parseRecords(
  dataset: string,
  files: readonly CifarFile[],
  labels: readonly { what: string; limit: number }[],
  labelAt: number,
): { bytes: Uint8Array; y: Int32Array } {
  const labelBytes = labels.length;
  const rec = labelBytes + CIFAR_IMAGE_BYTES;
  let n = 0;
  for (const f of files) {
    const count = f.bytes.length / rec;
    if (f.records !== undefined && f.bytes.length !== f.records * rec) {
      throw new Error(
        `${dataset}: ${f.name} has ${f.bytes.length} bytes, expected ${f.records * rec} ` +
          `(${f.records} records of ${rec} bytes); the file is truncated or not a ${dataset} ` +
          `binary file`,
      );
    }
    if (!Number.isInteger(count) || count === 0) {
      throw new Error(
        `${dataset}: ${f.name} has ${f.bytes.length} bytes, not a positive multiple of the ` +
          `${rec}-byte record (${labelBytes} label byte${labelBytes > 1 ? "s" : ""} + ` +
          `${CIFAR_IMAGE_BYTES} pixels); the file is truncated or not a ${dataset} binary file`,
      );
    }
    n += count;
  }
  const bytes = new Uint8Array(n * CIFAR_IMAGE_BYTES);
  const y = new Int32Array(n);
  let i = 0;
  for (const f of files) {
    const count = f.bytes.length / rec;
    for (let r = 0; r < count; r++, i++) {
      const o = r * rec;
      for (let l = 0; l < labelBytes; l++) {
        const v = f.bytes[o + l];
        if (v >= labels[l].limit) {
          throw new Error(
            `${dataset}: ${f.name}: record ${r} (byte ${o + l}) has ${labels[l].what} ${v}, ` +
              `outside [0, ${
                labels[l].limit
              }): the file is corrupt or not a ${dataset} binary file`,
          );
        }
      }
      y[i] = f.bytes[o + labelAt];
      bytes.set(f.bytes.subarray(o + labelBytes, o + rec), i * CIFAR_IMAGE_BYTES);
    }
  }
  return { bytes, y };
}

/**
 * CIFAR-10 from its binary batch files, concatenated in the order given.
 *
 * @param name dataset name ("cifar10/train")
 * @param files `data_batch_1.bin` .. `data_batch_5.bin` for training, `test_batch.bin` for test
 * @returns `N` samples of shape `[3, 32, 32]`, 10 classes (pixels / 255, `bytes` kept)
 * @throws Error naming the file when its size is not a whole number of 3073-byte records
 *   (or not `records` of them) or a label is above 9
 */
export function cifar10Dataset(name: string, files: readonly CifarFile[]): Dataset {
  if (files.length === 0) throw new Error(`${name}: no CIFAR-10 batch files given`);
  const { bytes, y } = parseRecords(name, files, [{ what: "label", limit: 10 }], 0);
  return byteDataset(name, bytes, y, [3, 32, 32], 10, [...CIFAR10_CLASSES]);
}

/**
 * CIFAR-100 from `train.bin` or `test.bin`.
 *
 * @param name dataset name ("cifar100/train")
 * @param file the binary file
 * @param options `labels`: "fine" (100 classes, default) or "coarse" (20 superclasses)
 * @returns `N` samples of shape `[3, 32, 32]` (pixels / 255, `bytes` kept)
 * @throws Error naming the file when its size is not a whole number of 3074-byte records
 *   (or not `records` of them) or a label is out of range
 */
export function cifar100Dataset(
  name: string,
  file: CifarFile,
  options: { labels?: "fine" | "coarse" } = {},
): Dataset {
  const labels = options.labels ?? "fine";
  if (labels !== "fine" && labels !== "coarse") {
    throw new Error(`${name}: labels must be "fine" or "coarse", got ${JSON.stringify(labels)}`);
  }
  const coarse = labels === "coarse";
  const { bytes, y } = parseRecords(name, [file], CIFAR100_LABELS, coarse ? 0 : 1);
  return coarse
    ? byteDataset(name, bytes, y, [3, 32, 32], 20, [...CIFAR100_COARSE_CLASSES])
    : byteDataset(name, bytes, y, [3, 32, 32], 100, [...CIFAR100_CLASSES]);
}
