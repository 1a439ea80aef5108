/**
 * The WebAssembly twin of shaders/augment.wgsl (src/wasm/kernels/augment.ts): the dispatches of
 * the standalone `augment` op and of the batch loader (`Batches`: f32 and byte data, device- and
 * host-resident, with and without fused augmentation, the VEC4 gather) are recorded on the
 * WebGPU runtime and replayed on WasmRuntime with one and with two threads on the same data;
 * outputs are compared bitwise between thread counts, within float32 tolerance with WebGPU (the
 * software adapter here) and with the float64 reference (src/reference/augment.ts).
 */
import { assert, assertClose, randomArray } from "./_util.ts";
import type { WasmRuntime } from "../src/wasm/runtime.ts";
import {
  type DispatchRecord,
  DispatchRecorder,
  recordDispatches,
  replayRecord,
  withWasmPair,
} from "./_wasm_replay.ts";
import { augment, AUGMENT_KERNEL, augmentTransforms } from "../src/data/augment.ts";
import { Batches } from "../src/data/batches.ts";
import { byteDataset, type Dataset, permutation } from "../src/data/dataset.ts";
import { augmentRef, gatherRef } from "../src/reference/augment.ts";

/** Bits of float32 values, for bitwise comparison. */
function bits(a: ArrayLike<number>): Uint32Array {
  return new Uint32Array(Float32Array.from(a).buffer);
}

let worst = 0;

/**
 * Checks the replay of one `augment` dispatch: out_x bitwise equal between thread counts and
 * within tolerance of WebGPU; out_y equal to WebGPU's when the kernel writes labels. Returns
 * the Wasm out_x.
 */
function checkReplay(
  wasm: readonly WasmRuntime[],
  rec: DispatchRecord,
  what: string,
): Float32Array {
  assert.equal(rec.kernel.name, "augment");
  // Read-only bindings hold what the WGSL read, out_x and out_y start as NaN / 0x7fffffff, so
  // that every element the twin must write is checked.
  const r = wasm.map((rt) => replayRecord(rt, rec, { poison: true }));
  const [sx, sy] = [rec.slot[5], rec.slot[6]];
  const [x0, x1] = [r[0].got[sx]!, r[1].got[sx]!];
  assert.deepEqual(bits(x1), bits(x0), `${what}: out_x, 2 threads vs 1`);
  const want = rec.after[sx]!;
  const n = (rec.spec.params?.count ?? 0) * (rec.spec.params?.sample ?? 0);
  // Bilinear weights from float32 coordinates (up to ~W): a few ulp of a coordinate apart (the
  // GPU may fuse multiply-adds) moves a value by ~1e-6 per unit of pixel difference.
  assertClose(x0, want, { atol: 1e-5, rtol: 0, what: `${what}: out_x vs WebGPU` });
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(x0[i] - want[i]));
  const c = rec.spec.constants ?? {};
  if ((c.AFFINE ?? 0) === 0 || c.VEC4 === 1) {
    assert.deepEqual(bits(x0), bits(want), `${what}: a plain gather is exact`);
  }
  if ((rec.spec.constants?.LABELS ?? 1) === 1) {
    const count = rec.spec.params!.count;
    const wy = Array.from(rec.after[sy]!).slice(0, count);
    for (const got of r) assert.deepEqual(Array.from(got.got[sy]!).slice(0, count), wy, what);
  }
  return Float32Array.from(x0);
}

/** N byte images; pixel values spread over 0..255, labels i % 7. */
function byteImages(n: number, shape: number[]): Dataset {
  const d = shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(n * d);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + (i >> 3) * 11) % 256;
  const y = Int32Array.from({ length: n }, (_, i) => i % 7);
  return byteDataset("bytes", bytes, y, shape, 7);
}

function asFloat(ds: Dataset): Dataset {
  return { ...ds, x: Float32Array.from(ds.x), bytes: undefined };
}

Deno.test("augment twin replays the augment() op: identity, flips, crops and random affines", async () => {
  await withWasmPair(async (wasm, gpu) => {
    const specs = [
      {},
      { hflip: 1 },
      { crop: 4, hflip: 0.5 },
      { rotation: 30, translate: 0.2, scale: [0.8, 1.25] as const, hflip: 0.5, crop: 3 },
      { rotation: 180, scale: [0.5, 2] as const, translate: [0.5, 0] as [number, number] },
    ];
    const shapes: [number, number, number, number][] = [
      [1, 1, 1, 1],
      [3, 3, 5, 7],
      [2, 1, 17, 9],
      [17, 1, 28, 28],
      [9, 3, 32, 32],
    ];
    for (const [si, spec] of specs.entries()) {
      for (const [b, c, h, w] of shapes) {
        const data = randomArray(b * c * h * w, 11 * h + w + si, 0, 1);
        const mats = augmentTransforms(b, h, w, spec, { seed: 9 + si, stream: h });
        const x = gpu.upload(data, [b, c, h, w]);
        const m = gpu.upload(mats, [b, 12]);
        let out;
        const seen = await recordDispatches(gpu, [""], () => void (out = augment(gpu, x, m)));
        assert.equal(seen.length, 1);
        const what = `augment ${JSON.stringify(spec)} [${b},${c},${h},${w}]`;
        const got = checkReplay(wasm, seen[0], what);
        const ref = augmentRef(data, [b, c, h, w], mats);
        assertClose(got, ref, { atol: 2e-5, rtol: 1e-5, what: `${what}: vs float64` });
        if (si === 0) assert.deepEqual(got, data, `${what}: the identity is exact`);
        // Flips and whole-pixel crops only move pixels (zero fill at the padding): exact.
        if (si <= 2) assert.deepEqual(got, Float32Array.from(ref), `${what}: exact`);
        for (const t of [x, m, out!]) t.dispose();
      }
    }
  });
});

Deno.test("augment twin replays every Batches gather: bytes and f32, device and host, VEC4, fused augmentation", async () => {
  await withWasmPair(async (wasm, gpu) => {
    const spec = { rotation: 20, translate: 0.1, hflip: true, crop: 2 };
    // Sample sizes 15 and 3 * 11 * 7 (one value per invocation), 16, 4 * 28 and 3 * 32 * 32
    // (VEC4 gather); batches of 16 CIFAR-sized samples are split across the two threads.
    const shapes = [[1, 5, 3], [3, 11, 7], [1, 4, 4], [1, 4, 28], [3, 32, 32]];
    let vec4 = 0, affine = 0;
    for (const shape of shapes) {
      const d = shape.reduce((a, b) => a * b, 1);
      const n = 23;
      for (const ds of [byteImages(n, shape), asFloat(byteImages(n, shape))]) {
        for (const resident of ["gpu", "host"] as const) {
          for (const aug of [undefined, spec]) {
            const loader = new Batches(gpu, ds, {
              batchSize: d > 1000 ? 16 : 6,
              seed: 4,
              augment: aug,
              resident,
            });
            const rec = new DispatchRecorder(gpu, [""]);
            try {
              const order = permutation(n, 4, 2);
              const mats = aug
                ? augmentTransforms(n, shape[1], shape[2], aug, { seed: 4, stream: 3 })
                : null;
              // A host-resident f32 batch without augmentation is written, not dispatched.
              const direct = resident === "host" && !ds.bytes && !aug;
              let seen = 0;
              for (const batch of loader.epoch(1)) {
                const what = `${ds.bytes ? "bytes" : "f32"} ${resident} [${shape}] ${
                  aug ? "augmented" : "plain"
                } batch ${batch.index}`;
                assert.equal(rec.count, direct ? 0 : ++seen, `${what}: dispatches`);
                if (direct) continue;
                const [last] = await rec.take();
                assert.equal(last.kernel, AUGMENT_KERNEL, what);
                vec4 += last.spec.constants?.VEC4 ?? 0;
                affine += last.spec.constants?.AFFINE ?? 0;
                const got = checkReplay(wasm, last, what);
                const g = gatherRef(ds.x, ds.y, d, order, batch.offset, batch.count);
                const dims = [batch.count, shape[0], shape[1], shape[2]] as const;
                const ref = mats ? augmentRef(g.x, dims, mats.subarray(12 * batch.offset)) : g.x;
                assertClose(got, ref, { atol: 2e-5, rtol: 1e-5, what: `${what}: vs float64` });
              }
            } finally {
              rec.stop();
              loader.dispose();
            }
          }
        }
      }
    }
    assert.ok(vec4 > 0 && affine > 0, "the VEC4 and AFFINE variants were exercised");
  });
});

Deno.test("augment twin splits a large gather across threads bitwise", async () => {
  await withWasmPair(async (wasm, gpu) => {
    // 64 samples of 3 x 32 x 32: 196608 outputs, several parts per thread count; sample boundaries
    // fall inside parts.
    const [b, c, h, w] = [64, 3, 32, 32];
    const data = randomArray(b * c * h * w, 5, 0, 1);
    const spec = { rotation: 15, scale: [0.9, 1.1] as const, hflip: 0.5, crop: 4 };
    const mats = augmentTransforms(b, h, w, spec, { seed: 1 });
    const x = gpu.upload(data, [b, c, h, w]);
    const m = gpu.upload(mats, [b, 12]);
    let out;
    const seen = await recordDispatches(gpu, [""], () => void (out = augment(gpu, x, m)));
    checkReplay(wasm, seen[0], "large augment");
    console.log(`largest |Wasm - WebGPU| of out_x in this file: ${worst.toExponential(2)}`);
    for (const t of [x, m, out!]) t.dispose();
  });
});

Deno.test("augment twin rejects a VEC4 gather of a sample size not a multiple of 4", async () => {
  await withWasmPair((wasm) => {
    const rt = wasm[0];
    const t = [0, 1, 2, 3, 4, 5, 6].map(() => rt.zeros([64]));
    assert.throws(
      () =>
        rt.dispatch(AUGMENT_KERNEL, {
          bindings: t,
          params: { count: 2, offset: 0, channels: 1, height: 1, width: 6, sample: 6 },
          constants: { SOURCE: 0, INDEXED: 0, VEC4: 1 },
          workgroups: [1],
        }),
      /Kernel 'augment': VEC4 = 1 needs a sample size that is a multiple of 4, got 6/,
    );
    assert.throws(
      () =>
        rt.dispatch(AUGMENT_KERNEL, {
          bindings: t,
          params: { count: 2, offset: 0, channels: 1, height: 8, width: 8, sample: 64 },
          constants: { SOURCE: 0, INDEXED: 0 },
          workgroups: [1],
        }),
      /Kernel 'augment': out_x \(count, sample\) needs 128 elements, got tensor #\d+ f32\[64\]/,
    );
    for (const x of t) x.dispose();
    return Promise.resolve();
  });
});
