/**
 * The WebAssembly twin of shaders/augment.wgsl (src/wasm/kernels/augment.ts): the dispatches of
 * the standalone `augment` op and of the batch loader (`Batches`: f32 and byte data, device- and
 * host-resident, with and without fused augmentation, the VEC4 gather) are recorded on the
 * WebGPU runtime and replayed on WasmRuntime with one and with two threads on the same data;
 * outputs are compared bitwise between thread counts, within float32 tolerance with WebGPU (the
 * software adapter here) and with the float64 reference (src/reference/augment.ts).
 */
import type { Tensor } from "../src/backend.ts";
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import type { WasmTensor } from "../src/wasm/tensor.ts";
import type { DispatchSpec, Runtime } from "../src/gpu/runtime.ts";
import { bindingLayout, type Kernel } from "../src/kernel.ts";
import { augment, AUGMENT_KERNEL, augmentTransforms } from "../src/data/augment.ts";
import { Batches } from "../src/data/batches.ts";
import { byteDataset, type Dataset, permutation } from "../src/data/dataset.ts";
import { augmentRef, gatherRef } from "../src/reference/augment.ts";

type Recorded = { kernel: Kernel; spec: DispatchSpec };

/** Records the dispatches made on `gpu` (still running them) until `stop()`. */
function record(gpu: Runtime): { seen: Recorded[]; stop(): void } {
  const seen: Recorded[] = [];
  const dispatch = gpu.dispatch;
  gpu.dispatch = (kernel: Kernel, spec: DispatchSpec) => {
    seen.push({ kernel, spec });
    dispatch.call(gpu, kernel, spec);
  };
  return { seen, stop: () => void (gpu.dispatch = dispatch) };
}

/**
 * Replays a recorded dispatch on each Wasm runtime, right after it ran on `gpu` (before anything
 * overwrites its inputs): read-only bindings get the GPU tensors' contents (zeros for the
 * runtime's placeholders, which cannot be read back), read_write ones a NaN (f32) or 0x7fffffff
 * (i32) sentinel, so that every element the twin must write is checked. Returns the GPU's and
 * each runtime's contents of the read_write bindings, by binding index.
 */
async function replay(
  gpu: Runtime,
  wasm: readonly WasmRuntime[],
  { kernel, spec }: Recorded,
): Promise<{ gpu: Map<number, ArrayLike<number>>; wasm: Map<number, ArrayLike<number>>[] }> {
  const access = bindingLayout(kernel).access;
  const placeholders = new Set<Tensor>([0, 1, 2, 3, 4, 5, 6, 7].map((i) => gpu.placeholder(i)));
  const contents = await Promise.all(
    spec.bindings.map((t) =>
      placeholders.has(t) ? Promise.resolve(new Float32Array(t.size)) : t.read()
    ),
  );
  const out = {
    gpu: new Map<number, ArrayLike<number>>(),
    wasm: [] as Map<number, ArrayLike<number>>[],
  };
  access.forEach((a, i) => {
    if (a === "read_write") out.gpu.set(i, contents[i]);
  });
  for (const rt of wasm) {
    const bindings: WasmTensor[] = spec.bindings.map((t, i) => {
      const w = rt.upload(contents[i], t.shape, t.dtype, t.name);
      if (access[i] === "read_write") w.view().fill(t.dtype === "f32" ? NaN : 0x7fffffff);
      return w;
    });
    rt.dispatch(kernel, { ...spec, bindings });
    const got = new Map<number, ArrayLike<number>>();
    for (const i of out.gpu.keys()) got.set(i, bindings[i].toArray());
    out.wasm.push(got);
    for (const t of bindings) t.dispose();
  }
  return out;
}

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
async function checkReplay(
  gpu: Runtime,
  wasm: readonly WasmRuntime[],
  rec: Recorded,
  what: string,
): Promise<Float32Array> {
  assert.equal(rec.kernel.name, "augment");
  const r = await replay(gpu, wasm, rec);
  const [x0, x1] = [r.wasm[0].get(5)!, r.wasm[1].get(5)!];
  assert.deepEqual(bits(x1), bits(x0), `${what}: out_x, 2 threads vs 1`);
  const want = r.gpu.get(5)!;
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
    const wy = Array.from(r.gpu.get(6)!).slice(0, count);
    for (const got of r.wasm) assert.deepEqual(Array.from(got.get(6)!).slice(0, count), wy, what);
  }
  return Float32Array.from(x0);
}

async function withRuntimes(
  fn: (gpu: Runtime, wasm: WasmRuntime[]) => Promise<void>,
): Promise<void> {
  const gpu = await getRuntime();
  const wasm = [
    await WasmRuntime.create({ threads: 1, warn: false }),
    await WasmRuntime.create({ threads: 2, warn: false }),
  ];
  try {
    assert.equal(wasm[1].threads, 2, wasm[1].description);
    await fn(gpu, wasm);
  } finally {
    for (const rt of wasm) rt.destroy();
  }
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
  await withRuntimes(async (gpu, wasm) => {
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
        const rec = record(gpu);
        let out;
        try {
          out = augment(gpu, x, m);
        } finally {
          rec.stop();
        }
        assert.equal(rec.seen.length, 1);
        const what = `augment ${JSON.stringify(spec)} [${b},${c},${h},${w}]`;
        const got = await checkReplay(gpu, wasm, rec.seen[0], what);
        const ref = augmentRef(data, [b, c, h, w], mats);
        assertClose(got, ref, { atol: 2e-5, rtol: 1e-5, what: `${what}: vs float64` });
        if (si === 0) assert.deepEqual(got, data, `${what}: the identity is exact`);
        // Flips and whole-pixel crops only move pixels (zero fill at the padding): exact.
        if (si <= 2) assert.deepEqual(got, Float32Array.from(ref), `${what}: exact`);
        for (const t of [x, m, out]) t.dispose();
      }
    }
  });
});

Deno.test("augment twin replays every Batches gather: bytes and f32, device and host, VEC4, fused augmentation", async () => {
  await withRuntimes(async (gpu, wasm) => {
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
            const rec = record(gpu);
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
                assert.equal(rec.seen.length, direct ? 0 : ++seen, `${what}: dispatches`);
                if (direct) continue;
                const last = rec.seen[seen - 1];
                assert.equal(last.kernel, AUGMENT_KERNEL, what);
                vec4 += last.spec.constants?.VEC4 ?? 0;
                affine += last.spec.constants?.AFFINE ?? 0;
                const got = await checkReplay(gpu, wasm, last, what);
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
  await withRuntimes(async (gpu, wasm) => {
    // 64 samples of 3 x 32 x 32: 196608 outputs, several parts per thread count; sample boundaries
    // fall inside parts.
    const [b, c, h, w] = [64, 3, 32, 32];
    const data = randomArray(b * c * h * w, 5, 0, 1);
    const spec = { rotation: 15, scale: [0.9, 1.1] as const, hflip: 0.5, crop: 4 };
    const mats = augmentTransforms(b, h, w, spec, { seed: 1 });
    const x = gpu.upload(data, [b, c, h, w]);
    const m = gpu.upload(mats, [b, 12]);
    const rec = record(gpu);
    let out;
    try {
      out = augment(gpu, x, m);
    } finally {
      rec.stop();
    }
    await checkReplay(gpu, wasm, rec.seen[0], "large augment");
    console.log(`largest |Wasm - WebGPU| of out_x in this file: ${worst.toExponential(2)}`);
    for (const t of [x, m, out]) t.dispose();
  });
});

Deno.test("augment twin rejects a VEC4 gather of a sample size not a multiple of 4", async () => {
  await withRuntimes((_gpu, wasm) => {
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
