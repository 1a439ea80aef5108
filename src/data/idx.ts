/**
 * Image datasets in the IDX format of MNIST (LeCun, Cortes & Burges) and of
 * the drop-in replacements that copy its files: Fashion-MNIST (Xiao, Rasul &
 * Vollgraf 2017), KMNIST (Clanuwat et al. 2018). An image file (`u8`, dims
 * `[N, H, W]`) and a label file (`u8`, dims `[N]`), gzipped or not.
 *
 * From bytes only: reading files is the caller's business (cli/data.ts in
 * Deno, `fetch` in a browser).
 *
 * @example
 * ```ts
 * import { encodeIdx } from "../io/idx.ts";
 * import { idxDataset } from "./idx.ts";
 *
 * const images = encodeIdx([2, 2, 2], "u8", new Uint8Array([0, 255, 0, 0, 255, 255, 0, 0]));
 * const labels = encodeIdx([2], "u8", new Uint8Array([3, 7]));
 * const ds = await idxDataset({ name: "tiny", images, labels });
 * console.log(ds.sampleShape, ds.x[1], ds.y); // [1, 2, 2] 1 Int32Array [3, 7]
 * ```
 *
 * @module
 */

import { parseIdx } from "../io/idx.ts";
import { byteDataset, type Dataset } from "./dataset.ts";

/** Class names of Fashion-MNIST, by label (Xiao, Rasul & Vollgraf 2017, README). */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Class names of KMNIST (romanised hiragana, Clanuwat et al. 2018, kmnist_classmap.csv). */
export const KMNIST_CLASSES: readonly string[] = [
  "o",
  "ki",
  "su",
  "tsu",
  "na",
  "ha",
  "ma",
  "ya",
  "re",
  "wo",
];

/** Class names of MNIST: the digits. */
export const MNIST_CLASSES: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/** Input of {@linkcode idxDataset}. */
export interface IdxDatasetSource {
  /** Dataset name ("mnist/train"). */
  name: string;
  /** Bytes of the image file (`train-images-idx3-ubyte`, gzipped or not). */
  images: Uint8Array;
  /** Bytes of the label file (`train-labels-idx1-ubyte`, gzipped or not). */
  labels: Uint8Array;
  /** File names, for error messages. Default "images" and "labels". */
  imagesFile?: string;
  /** Label file name, for error messages. */
  labelsFile?: string;
  /** Number of classes. Default 10. */
  classes?: number;
  /** Class names (`classes` of them). */
  classNames?: readonly string[];
}

/**
 * Builds a dataset from an IDX image file and its label file.
 *
 * @param src the two files' bytes and the dataset's name and classes
 * @returns a dataset of `N` samples of shape `[1, H, W]` (pixels / 255, `bytes` kept)
 * @throws Error naming the file when it is not IDX, not `u8`, has the wrong rank, when the
 *   counts differ, or when a label is outside [0, classes)
 */
export async function idxDataset(src: IdxDatasetSource): Promise<Dataset> {
  const { name, classes = 10 } = src;
  const imagesFile = src.imagesFile ?? "images";
  const labelsFile = src.labelsFile ?? "labels";
  const read = async (bytes: Uint8Array, file: string) => {
    try {
      return await parseIdx(bytes);
    } catch (e) {
      throw new Error(`${name}: ${file}: ${(e as Error).message}`);
    }
  };
  const images = await read(src.images, imagesFile);
  const labels = await read(src.labels, labelsFile);
  if (images.dtype !== "u8" || images.dims.length !== 3) {
    throw new Error(
      `${name}: ${imagesFile} holds ${images.dtype}[${images.dims}], expected u8 images ` +
        `[N, H, W] (an idx3-ubyte file)`,
    );
  }
  if (labels.dtype !== "u8" || labels.dims.length !== 1) {
    throw new Error(
      `${name}: ${labelsFile} holds ${labels.dtype}[${labels.dims}], expected u8 labels [N] ` +
        `(an idx1-ubyte file)`,
    );
  }
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) {
    throw new Error(
      `${name}: ${imagesFile} has ${n} images but ${labelsFile} has ${labels.dims[0]} labels`,
    );
  }
  if (h === 0 || w === 0) throw new Error(`${name}: ${imagesFile} has empty images [${h}, ${w}]`);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = labels.data[i];
    if (c >= classes) {
      throw new Error(
        `${name}: ${labelsFile}: label ${c} of sample ${i} is outside [0, ${classes})`,
      );
    }
    y[i] = c;
  }
  return byteDataset(
    name,
    images.data as Uint8Array,
    y,
    [1, h, w],
    classes,
    src.classNames ? [...src.classNames] : undefined,
  );
}
