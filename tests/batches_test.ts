/**
 * Minibatches (src/data/batches.ts): every sample once per epoch, bit-identical to a host
 * gather, deterministic per (seed, epoch) and different between epochs; bytes and f32 data,
 * device- and host-resident, fused augmentation against the float64 reference; and a full
 * MNIST epoch.
 */
import { assert, assertClose, getBackend } from "./_util.ts";
import { type Batch, Batches, batches, DeviceDataset } from "../src/data/batches.ts";
import { byteDataset, type Dataset, permutation } from "../src/data/dataset.ts";
import { augmentTransforms } from "../src/data/augment.ts";
import { toy2d } from "../src/data/toy.ts";
import { augmentRef, gatherRef } from "../src/reference/augment.ts";
import { loadDataset } from "../cli/data.ts";

/** N byte images (default shape [1, 5, 3]); pixel 0 of sample i is i (to identify it). */
function tinyImages(n: number, shape = [1, 5, 3]): Dataset {
  const d = shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(n * d);
  for (let i = 0; i < n; i++) {
    bytes[i * d] = i;
    for (let j = 1; j < d; j++) bytes[i * d + j] = (i * 31 + j * 17) % 256;
  }
  const y = Int32Array.from({ length: n }, (_, i) => i % 7);
  return byteDataset("tiny", bytes, y, shape, 7);
}

/** The same samples as f32 values (no bytes). */
function asFloat(ds: Dataset): Dataset {
  return { ...ds, x: Float32Array.from(ds.x), bytes: undefined };
}

/** Reads every batch of an epoch: the sample order, x values and labels. */
async function readEpoch(
  it: Iterable<Batch>,
  d: number,
): Promise<{ x: Float32Array[]; y: Int32Array[]; counts: number[] }> {
  const x: Float32Array[] = [], y: Int32Array[] = [], counts: number[] = [];
  for (const b of it) {
    assert.equal(b.x.shape[0], b.count);
    assert.equal(b.x.size, b.count * d);
    assert.equal(b.y.dtype, "i32");
    x.push(await b.x.read() as Float32Array);
    y.push(await b.y.read() as Int32Array);
    counts.push(b.count);
  }
  return { x, y, counts };
}

Deno.test("Batches.epoch() visits every sample once, as a host gather does", async () => {
  const rt = await getBackend();
  // Sample sizes 15 (one value per invocation) and 16, 4 (four per invocation); bytes and f32.
  const sets = [tinyImages(37), tinyImages(37, [1, 4, 4]), tinyImages(37, [4])];
  for (const ds of [...sets, ...sets.map(asFloat)]) {
    const d = ds.x.length / ds.length;
    for (const resident of ["gpu", "host"] as const) {
      const what = `${d} ${ds.bytes ? "bytes" : "f32"} ${resident}`;
      const loader = new Batches(rt, ds, { batchSize: 8, seed: 3, resident });
      assert.equal(loader.resident, resident);
      assert.equal(loader.batchesPerEpoch, 5);
      for (const epoch of [0, 1]) {
        const got = await readEpoch(loader.epoch(epoch), d);
        assert.deepEqual(got.counts, [8, 8, 8, 8, 5]);
        const order = permutation(37, 3, 2 * epoch);
        const seen: number[] = [];
        got.x.forEach((xb, k) => {
          const ref = gatherRef(ds.x, ds.y, d, order, 8 * k, got.counts[k]);
          assert.deepEqual(xb, Float32Array.from(ref.x), `${what} epoch ${epoch} batch ${k}`);
          assert.deepEqual(got.y[k], ref.y);
          for (let b = 0; b < got.counts[k]; b++) seen.push(Math.round(xb[b * d] * 255));
        });
        assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 37 }, (_, i) => i));
      }
      loader.dispose();
    }
  }
});

Deno.test("Batches.epoch() is deterministic per (seed, epoch) and differs between epochs", async () => {
  const rt = await getBackend();
  const ds = tinyImages(40);
  const labelsOf = async (seed: number, epoch: number, shuffle = true) => {
    const loader = new Batches(rt, ds, { batchSize: 16, seed, shuffle });
    const { x } = await readEpoch(loader.epoch(epoch), 15);
    loader.dispose();
    return x.flatMap((xb) => Array.from({ length: xb.length / 15 }, (_, b) => xb[b * 15] * 255));
  };
  const a = await labelsOf(1, 0);
  assert.deepEqual(await labelsOf(1, 0), a);
  assert.notDeepEqual(await labelsOf(1, 1), a);
  assert.notDeepEqual(await labelsOf(2, 0), a);
  assert.deepEqual(
    (await labelsOf(1, 5, false)).map(Math.round),
    Array.from({ length: 40 }, (_, i) => i),
  );
});

Deno.test("Batches drops the short last batch with dropLast", async () => {
  const rt = await getBackend();
  const loader = new Batches(rt, tinyImages(37), { batchSize: 8, dropLast: true });
  assert.equal(loader.batchesPerEpoch, 4);
  assert.equal(loader.samplesPerEpoch, 32);
  const { counts } = await readEpoch(loader.epoch(0), 15);
  assert.deepEqual(counts, [8, 8, 8, 8]);
  loader.dispose();
});

Deno.test("batches() gathers f32 data and frees what it allocated", async () => {
  const rt = await getBackend();
  const ds = toy2d({ perClass: 25, seed: 1 });
  await rt.sync();
  const before = rt.memory().inUseBytes;
  const got = await readEpoch(batches(rt, ds, { batchSize: 32, seed: 4, epoch: 2 }), 2);
  assert.deepEqual(got.counts, [32, 32, 32, 4]);
  const order = permutation(100, 4, 4);
  got.x.forEach((xb, k) => {
    const ref = gatherRef(ds.x, ds.y, 2, order, 32 * k, got.counts[k]);
    assert.deepEqual(xb, Float32Array.from(ref.x));
    assert.deepEqual(got.y[k], ref.y);
  });
  assert.equal(rt.memory().inUseBytes, before);
  // Breaking out early frees as well.
  for (const _ of batches(rt, ds, { batchSize: 10 })) break;
  assert.equal(rt.memory().inUseBytes, before);
});

Deno.test("Batches with augment matches the float64 reference, on device and host", async () => {
  const rt = await getBackend();
  const ds = tinyImages(21);
  const spec = { rotation: 20, translate: 0.1, hflip: true, crop: 2 };
  for (const resident of ["gpu", "host"] as const) {
    const loader = new Batches(rt, ds, { batchSize: 6, seed: 8, augment: spec, resident });
    const got = await readEpoch(loader.epoch(3), 15);
    const order = permutation(21, 8, 6);
    const mats = augmentTransforms(21, 5, 3, spec, { seed: 8, stream: 7 });
    assert.deepEqual(loader.transforms(3), mats);
    got.x.forEach((xb, k) => {
      const n = got.counts[k];
      const g = gatherRef(ds.x, ds.y, 15, order, 6 * k, n);
      const ref = augmentRef(g.x, [n, 1, 5, 3], mats.subarray(6 * k * 12, (6 * k + n) * 12));
      assertClose(xb, ref, { atol: 2e-5, what: `${resident} batch ${k}` });
      assert.deepEqual(got.y[k], g.y);
    });
    loader.dispose();
  }
});

Deno.test("Batches rejects bad options", async () => {
  const rt = await getBackend();
  const ds = tinyImages(5);
  assert.throws(() => new Batches(rt, ds, { batchSize: 0 }), /batchSize must be a positive/);
  assert.throws(() => new Batches(rt, ds, { batchSize: 2, seed: -1 }), /seed must be an integer/);
  assert.throws(
    () => new Batches(rt, toy2d({ perClass: 2 }), { batchSize: 2, augment: { hflip: true } }),
    /augmentation needs image samples \[C, H, W\] or \[H, W\], got \[2\]/,
  );
  const loader = new Batches(rt, ds, { batchSize: 2 });
  assert.throws(() => loader.epoch(-1).next(), /epoch must be an integer/);
  const it = loader.epoch(0);
  it.next();
  assert.throws(() => loader.epoch(1).next(), /already being iterated/);
  it.return();
  loader.dispose();
  assert.throws(() => loader.epoch(0).next(), /used after dispose/);
});

Deno.test("Batches over MNIST: 60000 samples resident as bytes, one epoch", async () => {
  const rt = await getBackend();
  const train = await loadDataset("mnist", { split: "train" });
  const dev = DeviceDataset.upload(rt, train);
  assert.ok(dev.packed);
  assert.equal(dev.data.size, 60000 * 784 / 4);
  const loader = new Batches(rt, dev, { batchSize: 1000, seed: 1 });
  assert.equal(loader.batchesPerEpoch, 60);
  const order = permutation(60000, 1, 0);
  const t0 = performance.now();
  let last: Batch | null = null;
  for (const b of loader.epoch(0)) last = b;
  const lastX = await last!.x.read();
  const ms = performance.now() - t0;
  const ref = gatherRef(train.x, train.y, 784, order, 59000, 1000);
  assert.deepEqual(lastX, Float32Array.from(ref.x));
  assert.deepEqual(await last!.y.read(), ref.y);
  console.log(`MNIST epoch gather (60 x 1000 samples) on ${rt.description}: ${ms.toFixed(0)} ms`);
  loader.dispose();
  dev.dispose();
});
