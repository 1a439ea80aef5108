/**
 * The WebAssembly GEMM (src/wasm/matmul.ts) against the float64 reference on
 * odd shapes, every transpose and every epilogue, on one and on two threads
 * (bitwise equal), and against the WebGPU matmul on the same inputs; each with
 * the relaxed-SIMD kernels (fused multiply-adds, the default where the engine
 * has them) and with the plain-SIMD ones (a multiply and an add).
 */
import type { Tensor } from "../src/backend.ts";
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import { matmul, splitGemm, type WasmMatmulOptions } from "../src/wasm/matmul.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import { matmul as gpuMatmul, type MatmulActivation } from "../src/ops/matmul.ts";
import { matmulRef } from "../src/reference/matmul.ts";
import type { DispatchSpec } from "../src/gpu/runtime.ts";
import type { Kernel } from "../src/kernel.ts";
import matmulSrc from "../shaders/matmul.wgsl" with { type: "text" };

const MATMUL: Kernel = { name: "matmul", code: matmulSrc };

/** fp32 sums of K products of values in [-1, 1]: error grows like sqrt(K). */
function atolFor(k: number): number {
  return 1e-5 * (1 + Math.sqrt(k));
}

interface Case {
  m: number;
  k: number;
  n: number;
  batchA?: number;
  batchB?: number;
}

type CheckOptions = Omit<WasmMatmulOptions, "bias" | "out"> & { bias?: boolean; cOld?: boolean };

/** Runs the Wasm matmul on random inputs, compares with the float64 reference, returns C. */
function check(
  rt: WasmRuntime,
  { m, k, n, batchA = 0, batchB = 0 }: Case,
  opts: CheckOptions = {},
  seed = 1,
): Float32Array {
  const aShape = opts.transA ? [k, m] : [m, k];
  const bShape = opts.transB ? [n, k] : [k, n];
  if (batchA) aShape.unshift(batchA);
  if (batchB) bShape.unshift(batchB);
  const aData = randomArray(aShape.reduce((x, y) => x * y, 1), seed);
  const bData = randomArray(bShape.reduce((x, y) => x * y, 1), seed + 1);
  const biasData = randomArray(n, seed + 2);
  const batch = Math.max(batchA, batchB);
  const outShape = batch ? [batch, m, n] : [m, n];
  const cData = randomArray(outShape.reduce((x, y) => x * y, 1), seed + 3);
  const a = rt.upload(aData, aShape), b = rt.upload(bData, bShape);
  const bias = opts.bias ? rt.upload(biasData, [n]) : undefined;
  const out = opts.cOld ? rt.upload(cData, outShape) : undefined;
  const { bias: _b, cOld: _c, ...rest } = opts;
  const c = matmul(rt, a, b, { ...rest, bias, out });
  const ref = matmulRef(aData, aShape, bData, bShape, {
    ...rest,
    bias: bias ? biasData : undefined,
    cOld: opts.cOld ? cData : undefined,
  });
  assert.deepEqual(c.shape, ref.shape);
  const what = `wasm matmul ${JSON.stringify({ m, k, n, batchA, batchB, ...opts })}`;
  const got = c.toArray() as Float32Array;
  assertClose(got, ref.data, { atol: atolFor(k), rtol: 1e-4, what });
  if (out) assert.equal(c, out);
  for (const t of [a, b, bias, c]) t?.dispose();
  return got;
}

// 129 x 257 x 65 crosses the kernel's 6 x 8 tile and its K block (256) with remainders;
// 300-deep and 2100-wide ones cross KC and NC (2048); 7 x 13 x 5 is smaller than one tile.
const ODD: Case[] = [
  { m: 1, k: 1, n: 1 },
  { m: 7, k: 13, n: 5 },
  { m: 3, k: 1, n: 17 },
  { m: 64, k: 64, n: 64 },
  { m: 129, k: 257, n: 65 },
  { m: 33, k: 300, n: 9 },
  { m: 5, k: 3, n: 2100 },
];
const TRANSPOSES = [[false, false], [true, false], [false, true], [true, true]] as const;

const runtimes = new Map<string, Promise<WasmRuntime>>();
/** One Wasm runtime per thread count and kernel build for this file (destroyed by the last test). */
function wasmRuntime(threads: number, relaxedSimd = true): Promise<WasmRuntime> {
  const key = `${threads}/${relaxedSimd}`;
  let p = runtimes.get(key);
  if (!p) runtimes.set(key, p = WasmRuntime.create({ threads, warn: false, relaxedSimd }));
  return p;
}

Deno.test("matmul() (wasm) matches the float64 reference for every transpose and odd sizes", async () => {
  for (const relaxed of [true, false]) {
    const rt = await wasmRuntime(1, relaxed);
    assert.equal(rt.relaxedSimd, relaxed);
    for (const c of ODD) {
      for (const [transA, transB] of TRANSPOSES) check(rt, c, { transA, transB });
    }
  }
});

Deno.test("matmul() (wasm): fused and unfused multiply-adds differ only by rounding", async () => {
  const fused = await wasmRuntime(1, true);
  const plain = await wasmRuntime(1, false);
  const c = { m: 96, k: 1024, n: 40 };
  const x = check(fused, c, {}, 11);
  const y = check(plain, c, {}, 11);
  // The two builds are different programs: on an engine that fuses relaxed_madd (V8 on x64 with
  // FMA3, ARM64) some of 3840 sums of 1024 products differ in their last bits; none by more than
  // float32 rounding of the partial sums.
  let differ = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) differ++;
  assertClose(x, y, { atol: atolFor(c.k), rtol: 1e-5, what: "fused vs unfused" });
  assert.ok(differ > 0, "the relaxed build fuses its multiply-adds (no element differs)");
});

Deno.test("matmul() (wasm) fuses bias and each activation, and accumulates beta·out", async () => {
  const rt = await wasmRuntime(1);
  const acts: MatmulActivation[] = ["none", "relu", "tanh", "sigmoid", "leaky_relu"];
  for (const activation of acts) {
    check(rt, { m: 13, k: 31, n: 21 }, { bias: true, activation, slope: 0.2 });
  }
  check(rt, { m: 13, k: 31, n: 21 }, { cOld: true, beta: 1, alpha: 0.5, bias: true });
  check(rt, { m: 9, k: 600, n: 11 }, { cOld: true, beta: -0.25, transA: true });
  // dW += dyᵀ x three times
  const dy = rt.upload(randomArray(24, 5), [8, 3]);
  const x = rt.upload(randomArray(40, 6), [8, 5]);
  const dW = rt.zeros([3, 5]);
  for (let i = 0; i < 3; i++) matmul(rt, dy, x, { transA: true, beta: 1, out: dW });
  const once = matmulRef(dy.toArray(), [8, 3], x.toArray(), [8, 5], { transA: true });
  assertClose(dW.toArray(), once.data.map((v) => 3 * v), { what: "dW after 3 steps" });
  for (const t of [dy, x, dW]) t.dispose();
});

Deno.test("matmul() (wasm) batches with per-item or shared operands, and K = 0", async () => {
  const rt = await wasmRuntime(1);
  check(rt, { m: 5, k: 7, n: 9, batchA: 3, batchB: 3 }, { transB: true });
  check(rt, { m: 5, k: 7, n: 9, batchA: 3 }, { bias: true });
  check(rt, { m: 5, k: 7, n: 9, batchB: 4 }, { transA: true });
  check(rt, { m: 4, k: 0, n: 6 }, { bias: true, cOld: true, beta: 2, activation: "tanh" });
});

Deno.test("matmul() (wasm) with beta = 0 never reads out (NaN there is ignored)", async () => {
  const rt = await wasmRuntime(1);
  for (const k of [0, 5]) {
    const a = rt.upload(randomArray(6 * k, 1), [6, k]);
    const b = rt.upload(randomArray(k * 10, 2), [k, 10]);
    const out = rt.upload(new Float32Array(60).fill(NaN), [6, 10]);
    matmul(rt, a, b, { out });
    const want = matmulRef(a.toArray(), [6, k], b.toArray(), [k, 10]).data;
    assertClose(out.toArray(), want, { what: `C with K = ${k}` });
    for (const t of [a, b, out]) t.dispose();
  }
});

Deno.test("splitGemm() splits by rows in multiples of 6, by columns when rows are few", () => {
  assert.deepEqual(splitGemm(8, 8, 8, 2), [[0, 8, 0, 8]]); // too small to be worth it
  assert.deepEqual(splitGemm(130, 512, 512, 2), [[0, 66, 0, 512], [66, 64, 0, 512]]);
  assert.deepEqual(splitGemm(256, 256, 256, 3), [[0, 90, 0, 256], [90, 90, 0, 256], [
    180,
    76,
    0,
    256,
  ]]);
  assert.deepEqual(splitGemm(6, 4096, 512, 2), [[0, 6, 0, 2048], [0, 6, 2048, 2048]]);
  assert.deepEqual(splitGemm(6, 12, 1 << 20, 2), [[0, 6, 0, 12]]); // neither splits
});

Deno.test("matmul() (wasm) on two threads equals one thread bitwise", async () => {
  for (const relaxed of [true, false]) await twoThreadsBitwise(relaxed);
});

async function twoThreadsBitwise(relaxed: boolean): Promise<void> {
  const one = await wasmRuntime(1, relaxed);
  const two = await wasmRuntime(2, relaxed);
  assert.equal(two.threads, 2, two.threadsNote ?? "");
  const cases: [Case, CheckOptions][] = [
    [{ m: 129, k: 257, n: 65 }, {}],
    [{ m: 129, k: 257, n: 65 }, { transA: true, transB: true, bias: true, activation: "tanh" }],
    [{ m: 6, k: 300, n: 1000 }, { transB: true, bias: true }], // split by columns
    [{ m: 64, k: 64, n: 64, batchA: 3 }, { cOld: true, beta: 1 }],
    [{ m: 256, k: 256, n: 256 }, { transA: true }],
  ];
  for (const [c, o] of cases) {
    const parts = splitGemm(c.m, c.n, c.k, 2);
    assert.equal(parts.length, 2, `${JSON.stringify(c)} is split`);
    const x = check(one, c, o, 7);
    const y = check(two, c, o, 7);
    assert.deepEqual(y, x, `two threads vs one on ${JSON.stringify({ ...c, ...o })}`);
  }
}

Deno.test("matmul() (wasm) agrees with the WebGPU matmul on the same inputs", async () => {
  const gpu = await getRuntime();
  const rt = await wasmRuntime(2);
  const cases: [Case, CheckOptions][] = [
    [{ m: 1, k: 1, n: 1 }, {}],
    [{ m: 7, k: 13, n: 5 }, { transA: true }],
    [{ m: 64, k: 64, n: 64 }, { transB: true, bias: true, activation: "relu" }],
    [{ m: 129, k: 257, n: 65 }, { transA: true, transB: true }],
    [{ m: 129, k: 257, n: 65 }, { bias: true, cOld: true, beta: 0.5, activation: "sigmoid" }],
  ];
  for (const [{ m, k, n }, o] of cases) {
    const aShape = o.transA ? [k, m] : [m, k];
    const bShape = o.transB ? [n, k] : [k, n];
    const aData = randomArray(m * k, 11), bData = randomArray(k * n, 12);
    const biasData = randomArray(n, 13), cData = randomArray(m * n, 14);
    const { bias: hasBias, cOld, threads: _t, ...rest } = o;
    const ga = gpu.upload(aData, aShape), gb = gpu.upload(bData, bShape);
    const gBias = hasBias ? gpu.upload(biasData, [n]) : undefined;
    const gOut = cOld ? gpu.upload(cData, [m, n]) : undefined;
    const gc = gpuMatmul(gpu, ga, gb, { ...rest, bias: gBias, out: gOut });
    const wa = rt.upload(aData, aShape), wb = rt.upload(bData, bShape);
    const wBias = hasBias ? rt.upload(biasData, [n]) : undefined;
    const wOut = cOld ? rt.upload(cData, [m, n]) : undefined;
    const wc = matmul(rt, wa, wb, { ...rest, bias: wBias, out: wOut });
    assertClose(wc.toArray(), await gc.read(), {
      atol: atolFor(k),
      rtol: 1e-4,
      what: `wasm vs WebGPU ${JSON.stringify({ m, k, n, ...o })}`,
    });
    for (const t of [ga, gb, gBias, gc]) t?.dispose();
    for (const t of [wa, wb, wBias, wc]) t?.dispose();
  }
});

Deno.test("matmul() (wasm) rejects bad shapes and tensors with the WebGPU messages", async () => {
  const rt = await wasmRuntime(1);
  const a = rt.zeros([3, 4]), b = rt.zeros([5, 6]);
  assert.throws(
    () => matmul(rt, a, b),
    { message: "matmul: A [3,4] (transA=false) and B [5,6] (transB=false) disagree on K (4 vs 5)" },
  );
  assert.throws(() => matmul(rt, a, b, { transA: true }), /disagree on K \(3 vs 5\)/);
  const a3 = rt.zeros([3, 4, 5]), b3 = rt.zeros([2, 5, 6]);
  assert.throws(() => matmul(rt, a3, b3), /disagree on the batch size \(3 vs 2\)/);
  const b46 = rt.zeros([4, 6]), bias = rt.zeros([5]);
  assert.throws(() => matmul(rt, a, b46, { bias }), /bias \[5\] f32 must be f32\[6\]/);
  const badOut = rt.zeros([3, 5]);
  assert.throws(
    () => matmul(rt, a, b46, { out: badOut }),
    /out \[3,5\] f32 does not match the result of .*: f32\[3,6\]/,
  );
  assert.throws(() => matmul(rt, a, b46, { beta: 1 }), /opts.out must be given/);
  const sq = rt.zeros([4, 4]);
  assert.throws(() => matmul(rt, sq, sq, { out: sq }), /must not share its memory with A/);
  assert.throws(() => matmul(rt, rt.zeros([4]), sq), /must be 2-D or batched 3-D/);
  assert.throws(() => matmul(rt, sq, sq, { activation: "gelu" as never }), /unknown activation/);
  assert.throws(() => matmul(rt, rt.zeros([4, 4], "u32"), sq), /A \[4,4\] must be f32, got u32/);
  const gone = rt.zeros([4, 4], "f32", "w");
  gone.dispose();
  assert.throws(
    () => matmul(rt, gone, sq),
    /matmul: A \(tensor #\d+ 'w' f32\[4,4\]\) was used after dispose\(\)/,
  );
  for (const t of [a, b, a3, b3, b46, bias, badOut, sq]) t.dispose();
});

Deno.test("matmul() (wasm) out of memory names the result tensor and its size", async () => {
  const rt = await WasmRuntime.create({ threads: 1, maxMemoryBytes: 4 << 20, warn: false });
  try {
    const a = rt.zeros([1024, 2]), b = rt.zeros([2, 1024]);
    assert.throws(
      () => matmul(rt, a, b),
      /Out of WebAssembly memory: tensor 'matmul.out' f32\[1024,1024\] needs 4,194,304 bytes \(4.0 MiB\).*past its limit of 4,194,304 bytes/,
    );
  } finally {
    rt.destroy();
    for (const p of runtimes.values()) (await p).destroy();
  }
});

Deno.test("WasmRuntime.dispatch() replays the WebGPU matmul's own dispatch on its Wasm twin", async () => {
  const gpu = await getRuntime();
  const rt = await WasmRuntime.create({ threads: 2, warn: false });
  const seen: { kernel: Kernel; spec: DispatchSpec }[] = [];
  const dispatch = gpu.dispatch;
  gpu.dispatch = (kernel: Kernel, spec: DispatchSpec) => {
    seen.push({ kernel, spec });
    dispatch.call(gpu, kernel, spec);
  };
  // Sizes whose operands need no vec4 padding copy, so every binding is a tensor made here.
  const cases: [Case, CheckOptions][] = [
    [{ m: 68, k: 36, n: 20 }, { transB: true, bias: true, activation: "tanh" }],
    [{ m: 8, k: 12, n: 200 }, { transA: true, cOld: true, beta: 1, alpha: 0.5 }],
    [{ m: 12, k: 8, n: 4, batchA: 3 }, { activation: "leaky_relu", slope: 0.3 }],
    [{ m: 12, k: 8, n: 4, batchB: 2 }, { transA: true, transB: true }],
  ];
  try {
    for (const [{ m, k, n, batchA = 0, batchB = 0 }, o] of cases) {
      const aShape = o.transA ? [k, m] : [m, k];
      const bShape = o.transB ? [n, k] : [k, n];
      if (batchA) aShape.unshift(batchA);
      if (batchB) bShape.unshift(batchB);
      const batch = Math.max(batchA, batchB);
      const cShape = batch ? [batch, m, n] : [m, n];
      const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
      const data = [aShape, bShape, [n], cShape].map((s, i) => randomArray(size(s), 20 + i));
      const g = [aShape, bShape, [n], cShape].map((s, i) => gpu.upload(data[i], s));
      const w = [aShape, bShape, [n], cShape].map((s, i) => rt.upload(data[i], s));
      const { bias: hasBias, cOld: _c, threads: _t, ...rest } = o;
      seen.length = 0;
      const gc = gpuMatmul(gpu, g[0], g[1], {
        ...rest,
        bias: hasBias ? g[2] : undefined,
        out: g[3],
      });
      assert.equal(seen.length, 1);
      const { kernel, spec } = seen[0];
      const bindings = spec.bindings.map((t) => {
        const i = (g as Tensor[]).indexOf(t);
        assert.ok(i >= 0, `binding ${t.describe()} is one of the test's tensors`);
        return w[i];
      });
      rt.dispatch(kernel, { ...spec, bindings });
      const what = `dispatch replay ${JSON.stringify({ m, k, n, batchA, batchB, ...o })}`;
      assertClose(w[3].toArray(), await gc.read(), { atol: atolFor(k), rtol: 1e-4, what });
      // ... and it is exactly what the Wasm matmul op computes
      const direct = matmul(rt, w[0], w[1], {
        ...rest,
        bias: hasBias ? w[2] : undefined,
        out: rt.upload(data[3], cShape),
      });
      assert.deepEqual(direct.toArray(), w[3].toArray(), what);
      for (const t of [...g, ...w, direct]) t.dispose();
    }
  } finally {
    gpu.dispatch = dispatch;
  }
  const x = rt.zeros([4, 4]);
  assert.throws(
    () =>
      rt.dispatch({ name: "conv2d", code: "", entry: "forward" }, {
        bindings: [],
        workgroups: [1],
      }),
    /Kernel 'conv2d' \(entry forward\) has no WebAssembly twin yet/,
  );
  assert.throws(
    () => rt.dispatch(MATMUL, { bindings: [x, x], workgroups: [1, 1, 1] }),
    /Kernel 'matmul' declares 4 storage bindings, got 2/,
  );
  const gone = rt.zeros([4, 4]);
  gone.dispose();
  assert.throws(
    () => rt.dispatch(MATMUL, { bindings: [x, gone, x, x], workgroups: [1, 1, 1] }),
    /tensor #\d+ f32\[4,4\] was used after dispose\(\)/,
  );
  x.dispose();
  rt.destroy();
});
