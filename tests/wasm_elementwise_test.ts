/**
 * The WebAssembly twins of shaders/elementwise.wgsl (src/wasm/kernels/elementwise.ts): the exact
 * dispatches of the WebGPU `unary` / `binary` / `axpy` / `fill` ops, replayed on `WasmRuntime`
 * with one and with two threads (bitwise equal), against the WebGPU result on the same inputs
 * and against the float64 reference, for every op code, broadcast mode, in-place variant, the
 * scalar and the vec4 kernel, at odd sizes.
 */
import { assert, getRuntime, randomArray } from "./_util.ts";
import { inputFor, UNARY_CASES } from "./_elementwise_cases.ts";
import { assertNear, releaseSharedWasmPair, replayBoth, sharedWasmPair } from "./_wasm_replay.ts";
import { onBothBackends, type Results } from "./_backends.ts";
import { axpy, binary, type BinaryOp, fill, unary } from "../src/ops/elementwise.ts";
import { binaryRef, unaryRef } from "../src/reference/elementwise.ts";
import type { Runtime } from "../src/gpu/runtime.ts";
import type { Tensor } from "../src/backend.ts";

/** Odd sizes (scalar kernel), multiples of 4 (vec4), and sizes that split over two threads. */
const SIZES = [1, 3, 17, 1001, 1000, 70001, 70000];

/** Relative tolerances per op (the GPU's exp/log/division are a few ulp off, and so are ours). */
function tolFor(op: string): { atol: number; rtol: number } {
  if (/tanh|sigmoid|softplus|exp|log/.test(op)) return { atol: 1e-6, rtol: 4e-6 };
  if (/div|reciprocal|sqrt|affine|axpby/.test(op)) return { atol: 1e-7, rtol: 1e-6 };
  return { atol: 0, rtol: 0 };
}

/** Worst excess over the tolerance seen per op, for the summary line. */
const worst = new Map<string, number>();

interface Case {
  what: string;
  op: string;
  inputs: { shape: number[]; data: Float32Array }[];
  /** Runs the op on GPU tensors (made from `inputs`), returning the tensor to compare. */
  run: (gpu: Runtime, t: Tensor[]) => Tensor;
  /** The float64 reference of the compared tensor, if any. */
  ref?: () => ArrayLike<number>;
  /** Elements not compared with WebGPU (where the WGSL leaves the result unspecified). */
  skipGpu?: (i: number) => boolean;
  /** Elements not compared with the float64 reference. */
  skipRef?: (i: number) => boolean;
}

async function check(c: Case): Promise<void> {
  const gpu = await getRuntime();
  // Replays on 1 and 2 threads and asserts them bitwise equal.
  const r = await replayBoth(gpu, await sharedWasmPair(), c.inputs, (g) => [c.run(gpu, g)], c.what);
  assert.ok(r.dispatches >= 1, `${c.what}: dispatched`);
  const outs = r.wasm as Float32Array[];
  const want = r.gpu[0] as Float32Array;
  if (c.skipGpu) {
    for (let i = 0; i < want.length; i++) if (c.skipGpu(i)) want[i] = outs[0][i];
  }
  const { atol, rtol } = tolFor(c.op);
  // The GPU's transcendentals differ from ours by a few ulp each way: allow twice the bound.
  const e = assertNear(outs[0], want, 2 * atol, 2 * rtol + 2e-7, `${c.what}: wasm vs webgpu`);
  worst.set(c.op, Math.max(worst.get(c.op) ?? 0, e));
  if (c.ref) {
    const ref = Float64Array.from(c.ref(), Math.fround);
    if (c.skipRef) { for (let i = 0; i < ref.length; i++) if (c.skipRef(i)) ref[i] = outs[0][i]; }
    assertNear(
      outs[0],
      ref,
      atol,
      rtol + 2.5e-7,
      `${c.what}: wasm vs float64`,
    );
  }
}

Deno.test("elementwise twins: every unary op, scalar and vec4 kernels, 1 and 2 threads", async () => {
  for (const n of SIZES) {
    for (const [op, p] of UNARY_CASES) {
      const data = inputFor(op, n, n + 7);
      await check({
        what: `unary ${op}${JSON.stringify(p)} n=${n}`,
        op,
        inputs: [{ shape: [n], data }],
        run: (gpu, [x]) => unary(gpu, op, x, p),
        ref: () => unaryRef(op, data, p),
      });
    }
  }
});

const BINARY_CASES: [BinaryOp, { alpha?: number; beta?: number }][] = [
  ["add", {}],
  ["sub", {}],
  ["mul", {}],
  ["div", {}],
  ["max", {}],
  ["min", {}],
  ["axpby", { alpha: 0.5, beta: -2 }],
  ["relu_backward", {}],
  ["leaky_relu_backward", { alpha: 0.1 }],
  ["tanh_backward", {}],
  ["sigmoid_backward", {}],
  ["softplus_backward", {}],
  ["softplus_backward", { alpha: 2, beta: 3 }],
];

/** (a shape, b shape): same shape, one element, bias rows, per-channel, trailing dims. */
const BROADCASTS: [number[], number[]][] = [
  [[1001], [1001]],
  [[70000], [70000]],
  [[3, 5, 7], [1]],
  [[70001], [1]],
  [[33, 12], [12]], // vec4, BMODE 3 with inner 1
  [[33, 7], [1, 7]], // scalar, BMODE 3 with inner 1
  [[4, 3, 5, 5], [3, 1, 1]], // per channel, inner 25
  [[4, 3, 4, 4], [3, 1, 1]], // per channel, inner 16
  [[2, 3, 5, 7], [5, 7]], // trailing dims
  [[9000, 13], [13]], // BMODE 3 over two threads
  [[64, 40, 8, 4], [40, 1, 1]], // per channel over two threads
];

Deno.test("elementwise twins: every binary op and broadcast mode, 1 and 2 threads", async () => {
  for (const [as, bs] of BROADCASTS) {
    const na = as.reduce((x, y) => x * y, 1), nb = bs.reduce((x, y) => x * y, 1);
    for (const [op, p] of BINARY_CASES) {
      const a = randomArray(na, na + 1, -3, 3);
      const b = op === "div" ? randomArray(nb, nb + 2, 0.5, 4) : randomArray(nb, nb + 2, -3, 3);
      if (op === "tanh_backward" || op === "sigmoid_backward") a.set(randomArray(na, 5, -1, 1));
      await check({
        what: `binary ${op}${JSON.stringify(p)} ${JSON.stringify(as)} by ${JSON.stringify(bs)}`,
        op,
        inputs: [{ shape: as, data: a }, { shape: bs, data: b }],
        run: (gpu, [ta, tb]) => binary(gpu, op, ta, tb, p),
        ref: () => binaryRef(op, a, as, b, bs, p),
      });
    }
  }
});

Deno.test("elementwise twins: in place on either operand (IO bits), axpy and fill", async () => {
  for (const n of [17, 1000, 70001]) {
    const a = randomArray(n, 1, -2, 2), b = randomArray(n, 2, -2, 2);
    await check({
      what: `binary mul out=a n=${n}`,
      op: "mul",
      inputs: [{ shape: [n], data: a }, { shape: [n], data: b }],
      run: (gpu, [ta, tb]) => binary(gpu, "mul", ta, tb, { out: ta }),
      ref: () => a.map((v, i) => v * b[i]),
    });
    await check({
      what: `binary sub out=b n=${n}`,
      op: "sub",
      inputs: [{ shape: [n], data: a }, { shape: [n], data: b }],
      run: (gpu, [ta, tb]) => binary(gpu, "sub", ta, tb, { out: tb }),
      ref: () => a.map((v, i) => v - b[i]),
    });
    await check({
      what: `unary tanh out=x n=${n}`,
      op: "tanh",
      inputs: [{ shape: [n], data: a }],
      run: (gpu, [x]) => unary(gpu, "tanh", x, { out: x }),
      ref: () => Array.from(a, Math.tanh),
    });
    await check({
      what: `axpy n=${n}`,
      op: "axpby",
      inputs: [{ shape: [n], data: a }, { shape: [n], data: b }],
      run: (gpu, [x, y]) => axpy(gpu, -0.25, x, y),
      ref: () => b.map((v, i) => v + -0.25 * a[i]),
    });
    await check({
      what: `axpy one-element x n=${n}`,
      op: "axpby",
      inputs: [{ shape: [1], data: a.slice(0, 1) }, { shape: [n], data: b }],
      run: (gpu, [x, y]) => axpy(gpu, 3, x, y),
      ref: () => b.map((v) => v + 3 * a[0]),
    });
    await check({
      what: `fill n=${n}`,
      op: "fill",
      inputs: [{ shape: [n], data: a }],
      run: (gpu, [x]) => fill(gpu, x, -1.5),
      ref: () => new Array(n).fill(-1.5),
    });
  }
});

/**
 * Ops whose result for a NaN input the WGSL builtins leave unspecified: llvmpipe's max and min
 * (and so clamp) return a number there; the twins propagate NaN as torch and the float64
 * reference do, so NaN inputs of these ops are compared with the reference only. sign(NaN) is
 * the other way round: 0 on WebGPU, in the twin and in torch (`(0 < a) - (a < 0)`), NaN in
 * src/reference/elementwise.ts, so it is compared with WebGPU only.
 */
const NAN_UNSPECIFIED = new Set(["clamp", "max", "min"]);

Deno.test("elementwise twins: infinities, NaN, zeros and the exp/log extremes", async () => {
  const specials = [
    0,
    -0,
    1,
    -1,
    1e-3,
    -1e-3,
    0.125,
    -0.125,
    0.5,
    2,
    19.9,
    20,
    20.5,
    30,
    88,
    88.7,
    89,
    1e4,
    -20.5,
    -30,
    -87,
    -89,
    -104,
    -1e4,
    1e-30,
    3e38,
    -3e38,
    Infinity,
    -Infinity,
    NaN,
  ];
  const data = Float32Array.from(specials);
  const n = data.length;
  const pos = data.map((v) => Math.abs(v));
  for (const [op, p] of UNARY_CASES) {
    const input = op === "log" || op === "sqrt" || op === "reciprocal" ? pos : data;
    await check({
      what: `unary ${op}${JSON.stringify(p)} specials`,
      op,
      inputs: [{ shape: [n], data: input }],
      run: (gpu, [x]) => unary(gpu, op, x, p),
      ref: () => unaryRef(op, input, p),
      skipGpu: (i) => NAN_UNSPECIFIED.has(op) && Number.isNaN(input[i]),
      skipRef: (i) => op === "sign" && Number.isNaN(input[i]),
    });
  }
  const rev = data.slice().reverse();
  for (const [op, p] of BINARY_CASES) {
    await check({
      what: `binary ${op}${JSON.stringify(p)} specials`,
      op,
      inputs: [{ shape: [n], data }, { shape: [n], data: data.slice().reverse() }],
      run: (gpu, [a, b]) => binary(gpu, op, a, b, p),
      ref: () => binaryRef(op, data, [n], rev, [n], p),
      skipGpu: (i) => NAN_UNSPECIFIED.has(op) && (Number.isNaN(data[i]) || Number.isNaN(rev[i])),
    });
  }
});

Deno.test("elementwise ops run on both backends (Backend seam): every op, broadcast, in place", async () => {
  for (const n of [17, 1000, 70001]) {
    await onBothBackends(async (rt) => {
      const out: Results = {};
      const xs = randomArray(n, n, -6, 6), ps = randomArray(n, n + 1, 0.01, 10);
      const x = rt.upload(xs, [n]), pos = rt.upload(ps, [n]);
      for (const [op, p] of UNARY_CASES) {
        const input = op === "log" || op === "sqrt" || op === "reciprocal" ? pos : x;
        const y = unary(rt, op, input, p);
        out[`${op}${JSON.stringify(p)}`] = await y.read();
        y.dispose();
      }
      const b = rt.upload(randomArray(n, 3, 0.5, 2), [n]);
      for (const [op, p] of BINARY_CASES) {
        const y = binary(rt, op, x, b, p);
        out[`${op}${JSON.stringify(p)}`] = await y.read();
        y.dispose();
      }
      // In place on a, then on b, then axpy and fill, all on the same buffers.
      const a2 = rt.upload(xs, [n]), b2 = rt.upload(ps, [n]);
      binary(rt, "mul", a2, b2, { out: a2 });
      binary(rt, "sub", a2, b2, { out: b2 });
      unary(rt, "tanh", a2, { out: a2 });
      axpy(rt, -0.5, a2, b2);
      out.inPlace = [...(await a2.read()), ...(await b2.read())];
      fill(rt, a2, 2.5);
      out.fill = await a2.read();
      for (const t of [x, pos, b, a2, b2]) t.dispose();
      return out;
    }, { atol: 2e-6, rtol: 1e-5, what: `n=${n}` });
  }
  const shapes: [number[], number[]][] = [[[33, 12], [12]], [[4, 3, 5, 5], [3, 1, 1]], [[
    64,
    40,
    8,
    4,
  ], [40, 1, 1]]];
  for (const [as, bs] of shapes) {
    const na = as.reduce((p, q) => p * q, 1), nb = bs.reduce((p, q) => p * q, 1);
    await onBothBackends(async (rt) => {
      const a = rt.upload(randomArray(na, 1), as), b = rt.upload(randomArray(nb, 2), bs);
      const y = binary(rt, "add", a, b), z = binary(rt, "axpby", a, b, { alpha: 2, beta: -1 });
      const out = { add: await y.read(), axpby: await z.read() };
      for (const t of [a, b, y, z]) t.dispose();
      return out;
    }, { atol: 1e-6, rtol: 1e-6, what: `${JSON.stringify(as)} by ${JSON.stringify(bs)}` });
  }
});

Deno.test("elementwise twins: the worst errors seen (summary)", async () => {
  const line = [...worst].map(([op, e]) => `${op} ${e.toFixed(2)}`).join(", ");
  console.log(`worst |wasm - webgpu| / bound per op: ${line}`);
  await releaseSharedWasmPair();
});
