/**
 * The WebAssembly twins of shaders/conv2d.wgsl and conv2d_pack.wgsl (src/wasm/kernels/conv2d.ts):
 * every dispatch of the real conv2d ops (forward with bias and each fused activation, input
 * gradient, weight gradient with and without split-K, the packing), under the CPU adapter's
 * tilings (RUN3, APACK, NO_PAD) and the GPU's (SHARED), replayed on Wasm runtimes with 1 and 2
 * threads (bitwise equal) and compared with the WebGPU result and the float64 reference.
 */
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import {
  recordSequence,
  releaseSharedWasmPair,
  type ReplayedOutput,
  replayOutputs,
  replaySequence,
  sharedWasmPair,
} from "./_wasm_replay.ts";
import { onBothBackends } from "./_backends.ts";
import { Activation } from "../src/layers/activation.ts";
import {
  Conv2d,
  type Conv2dActivation,
  conv2dForward,
  conv2dInputGrad,
  type Conv2dTiling,
  conv2dWeightGrad,
} from "../src/layers/conv2d.ts";
import { conv2dBackwardRef, conv2dRef, windowOutputSize } from "../src/reference/layers.ts";
import type { Tensor } from "../src/backend.ts";
import { MaxPool2d } from "../src/layers/pool.ts";
import packSrc from "../shaders/conv2d_pack.wgsl" with { type: "text" };
import { CONV2D_BLOCKS } from "../src/wasm/kernels/conv2d.ts";
import type { WasmTensor } from "../src/wasm/tensor.ts";
import type { WasmRuntime } from "../src/wasm/runtime.ts";

Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp/xdg");

interface Case {
  x: [number, number, number, number];
  o: number;
  k: [number, number];
  s: [number, number];
  p: [number, number];
}

const c = (
  x: Case["x"],
  o: number,
  k: number | [number, number],
  s: number | [number, number] = 1,
  p: number | [number, number] = 0,
): Case => ({
  x,
  o,
  k: typeof k === "number" ? [k, k] : k,
  s: typeof s === "number" ? [s, s] : s,
  p: typeof p === "number" ? [p, p] : p,
});

const CASES: Case[] = [
  c([3, 1, 28, 28], 6, 5, 1, 2), // LeNet conv1
  c([3, 6, 14, 14], 16, 5), // LeNet conv2
  c([2, 16, 11, 11], 32, 3), // DDNet-like, RUN3 + APACK on CPU adapters
  c([5, 17, 7, 7], 33, 3, 1, 1), // odd channels, more images than threads
  c([1, 8, 24, 24], 16, 3, 1, 1), // one image: split by positions
  c([2, 5, 9, 11], 7, 3, 2, 1), // stride 2 (ResNet's downsampling 3x3)
  c([2, 6, 8, 8], 10, 1, 2), // 1x1 stride 2 (ResNet's shortcut)
  c([1, 3, 10, 9], 5, [3, 5], [2, 1], [1, 2]), // non-square everything
  c([2, 2, 5, 6], 3, 3, 1, 3), // padding past the kernel
  c([1, 1, 1, 1], 1, 1), // one element
  c([3, 4, 5, 6], 5, 3, 1, 3), // padding past the kernel, through the direct kernel both ways
  c([3, 64, 7, 9], 60, 3, 1, 1), // 64 channels: Winograd forward, and input gradient (60)
];

/** Cases also replayed under the non-default tilings: LeNet conv2, DDNet-like, stride 2. */
const ALL = new Set([1, 2, 5]);

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const label = (t: Case) => `x ${t.x} o${t.o} k${t.k} s${t.s} p${t.p}`;

/** Tolerances of an fp32 sum of `depth` products of values in [-1, 1]. */
const tol = (depth: number) => ({ atol: 2e-5 * (1 + Math.sqrt(depth)), rtol: 1e-4 });

const ACTS: Conv2dActivation[] = ["relu", "tanh", "sigmoid"];

function actRef(kind: Conv2dActivation | null, v: number): number {
  if (kind === "relu") return Math.max(v, 0);
  if (kind === "tanh") return Math.tanh(v);
  if (kind === "sigmoid") return 1 / (1 + Math.exp(-v));
  return v;
}

/**
 * Checks one replayed output (Wasm 1 vs 2 threads were asserted bitwise equal by the replay):
 * Wasm vs GPU and vs the float64 reference.
 */
function check(
  { gpu, wasm }: ReplayedOutput,
  ref: ArrayLike<number>,
  depth: number,
  what: string,
  worst: { err: number },
): void {
  assertClose(wasm, gpu, { ...tol(depth), what: `${what}: wasm vs webgpu` });
  assertClose(wasm, ref, { ...tol(depth), what: `${what}: wasm vs float64` });
  for (let i = 0; i < wasm.length; i++) worst.err = Math.max(worst.err, Math.abs(wasm[i] - ref[i]));
}

/** Tilings to replay: the device's for every case, the others (each a pipeline to compile on
 * the software adapter, slow) for the cases marked `all`. */
const TILINGS: [string, Partial<Conv2dTiling> | undefined][] = [
  ["device tiling", undefined],
  ["shared", { shared: true, tx: 32, ty: 8, rm: 2, bk: 16 }],
  ["direct, no run, no pack", { shared: false, run: false, pack: false, rm: 4, cn: 2 }],
];

Deno.test("conv2d twin: forward (bias, every fused activation, jvp) matches WebGPU and float64", async () => {
  const worst = { err: 0 };
  const seen = new Map<string, number>();
  const gpu = await getRuntime();
  for (const [i, t] of CASES.entries()) {
    const xa = randomArray(numel(t.x), 10 + i);
    const wShape = [t.o, t.x[1], ...t.k];
    const wa = randomArray(numel(wShape), 20 + i);
    const ba = randomArray(t.o, 30 + i);
    const g = { kernel: t.k, stride: t.s, padding: t.p };
    const ref = conv2dRef(xa, t.x, wa, t.o, ba, g).y;
    const noBias = conv2dRef(xa, t.x, wa, t.o, null, g).y;
    const depth = t.x[1] * t.k[0] * t.k[1];
    // Every tiling and activation of the case in one sequence; per output, its reference.
    const refs: [ArrayLike<number>, string][] = [];
    const outs = await replayOutputs(
      [{ data: xa, shape: t.x }, { data: wa, shape: wShape }, { data: ba, shape: [t.o] }],
      ([x, w, b]) => {
        const ys: Tensor[] = [];
        for (const [tname, tiling] of ALL.has(i) ? TILINGS : TILINGS.slice(0, 1)) {
          const acts = tiling ? [null] : ALL.has(i) ? [null, ...ACTS] : [null, "relu" as const];
          for (const act of acts) {
            ys.push(conv2dForward(gpu, x, w, {
              stride: t.s,
              padding: t.p,
              bias: b,
              activation: act,
              tiling,
            }));
            refs.push([ref.map((v) => actRef(act, v)), `y ${label(t)} ${tname} ${act}`]);
          }
          ys.push(conv2dForward(gpu, x, w, { stride: t.s, padding: t.p, tiling }));
          refs.push([noBias, `jvp ${label(t)} ${tname}`]);
        }
        return ys;
      },
      label(t),
      seen,
    );
    outs.forEach((o, j) => check(o, refs[j][0], depth, refs[j][1], worst));
  }
  assert.ok((seen.get("conv2d.pack") ?? 0) > 0, "the APACK path ran");
  console.log(`conv2d forward: largest |wasm - float64| ${worst.err.toExponential(2)}`);
});

Deno.test("conv2d twin: input and weight gradients (split-K slabs, beta) match WebGPU and float64", async () => {
  const worst = { err: 0 };
  const gpu = await getRuntime();
  for (const [i, t] of CASES.entries()) {
    const [oh, ow] = windowOutputSize(t.x[2], t.x[3], { kernel: t.k, stride: t.s, padding: t.p });
    const yShape = [t.x[0], t.o, oh, ow];
    const wShape = [t.o, t.x[1], ...t.k];
    const xa = randomArray(numel(t.x), 40 + i);
    const wa = randomArray(numel(wShape), 50 + i);
    const dya = randomArray(numel(yShape), 60 + i);
    const dw0 = randomArray(numel(wShape), 70 + i);
    const db0 = randomArray(t.o, 80 + i);
    const g = { kernel: t.k, stride: t.s, padding: t.p };
    const ref = conv2dBackwardRef(xa, t.x, wa, t.o, dya, g);
    const geo = { stride: t.s, padding: t.p };
    for (const [tname, tiling] of ALL.has(i) ? TILINGS : TILINGS.slice(0, 1)) {
      const [dx] = await replayOutputs(
        [{ data: dya, shape: yShape }, { data: wa, shape: wShape }],
        ([dy, w]) => [conv2dInputGrad(gpu, dy, w, { ...geo, inputShape: t.x, tiling })],
        `dx ${label(t)} ${tname}`,
      );
      check(dx, ref.dx, t.o * t.k[0] * t.k[1], `dx ${label(t)} ${tname}`, worst);
      // Accumulating (beta 1) into nonzero gradients, with the device's split count, one
      // split, and three.
      for (const splits of tiling ? [undefined] : [undefined, 1, 3]) {
        for (const beta of tiling ? [1] : [1, 0.5]) {
          const what = `${label(t)} ${tname} splits ${splits} beta ${beta}`;
          const [dW, dB] = await replayOutputs(
            [
              { data: dya, shape: yShape },
              { data: xa, shape: t.x },
              { data: dw0, shape: wShape },
              { data: db0, shape: [t.o] },
            ],
            ([dy, x, dW, dB]) => {
              conv2dWeightGrad(gpu, dy, x, {
                ...geo,
                dWeight: dW,
                dBias: dB,
                tiling,
                splits,
                beta,
              });
              return [dW, dB];
            },
            what,
          );
          const depth = t.x[0] * oh * ow;
          const rw = ref.dw.map((v, j) => v + beta * dw0[j]);
          const rb = ref.db.map((v, j) => v + beta * db0[j]);
          check(dW, rw, depth, `dW ${what}`, worst);
          check(dB, rb, depth, `db ${what}`, worst);
        }
      }
    }
  }
  console.log(`conv2d gradients: largest |wasm - float64| ${worst.err.toExponential(2)}`);
});

Deno.test("conv2d twin: NaN and infinity propagate as on WebGPU (no 0·NaN from padding)", async () => {
  const gpu = await getRuntime();
  const xs: [number, number, number, number] = [1, 2, 6, 6];
  const xa = randomArray(numel(xs), 5);
  xa[7] = NaN;
  xa[40] = Infinity;
  const wa = randomArray(4 * 2 * 9, 6);
  const acts = [null, "relu"] as const;
  const outs = await replayOutputs(
    [{ data: xa, shape: xs }, { data: wa, shape: [4, 2, 3, 3] }],
    ([x, w]) => acts.map((act) => conv2dForward(gpu, x, w, { padding: 1, activation: act })),
    "y",
  );
  for (const [j, { gpu: g, wasm }] of outs.entries()) {
    for (let i = 0; i < g.length; i++) {
      assert.equal(Number.isNaN(wasm[i]), Number.isNaN(g[i]), `NaN at ${i} (${acts[j]})`);
    }
  }
});

Deno.test("conv2d twin: LeNet-shaped batch-64 forward and backward, timed on 1 and 2 threads (printout)", async () => {
  const gpu = await getRuntime();
  const wasm = await sharedWasmPair();
  const b = 64;
  const data: [Float32Array, number[]][] = [
    [randomArray(b * 28 * 28, 1), [b, 1, 28, 28]],
    [randomArray(6 * 25, 2, -0.2, 0.2), [6, 1, 5, 5]],
    [randomArray(6, 3), [6]],
    [randomArray(16 * 6 * 25, 4, -0.1, 0.1), [16, 6, 5, 5]],
    [randomArray(16, 5), [16]],
    [randomArray(b * 16 * 5 * 5, 6), [b, 16, 5, 5]],
    [new Float32Array(6 * 25), [6, 1, 5, 5]],
    [new Float32Array(16 * 150), [16, 6, 5, 5]],
  ];
  const tensors = data.map(([d, shape]) => gpu.upload(d, shape));
  const [x, w1, b1, w2, b2, dy, dw1, dw2] = tensors;
  const pool1 = new MaxPool2d(gpu, "pool1", 2), pool2 = new MaxPool2d(gpu, "pool2", 2);
  try {
    // conv1 (pad 2) + tanh, pool, conv2 + tanh, pool; back: pool2, conv2 dx and dW (split-K
    // sums included), pool1, conv1 dW (the first layer's dx is not needed). The activations'
    // backward (elementwise kernels) is left out.
    const seq = await recordSequence(gpu, () => {
      const a1 = conv2dForward(gpu, x, w1, { padding: 2, bias: b1, activation: "tanh" });
      const p1 = pool1.forward(a1);
      const a2 = conv2dForward(gpu, p1, w2, { bias: b2, activation: "tanh" });
      pool2.forward(a2);
      const d2 = pool2.backward(dy);
      const dp1 = conv2dInputGrad(gpu, d2, w2, { inputShape: p1.shape });
      conv2dWeightGrad(gpu, d2, p1, { dWeight: dw2 });
      const d1 = pool1.backward(dp1);
      conv2dWeightGrad(gpu, d1, x, { dWeight: dw1, padding: 2 });
    });
    const inputs = tensors.map((t, i) => [t, data[i][0]] as const);
    for (const rt of wasm) {
      replaySequence(rt, seq, inputs).dispose(); // warm-up
      let best = Infinity, parts = new Map<string, number>();
      for (let r = 0; r < 10; r++) {
        const t = new Map<string, number>();
        replaySequence(rt, seq, inputs, t).dispose();
        const total = [...t.values()].reduce((a, v) => a + v, 0);
        if (total < best) [best, parts] = [total, t];
      }
      const detail = [...parts].map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
      console.log(
        `LeNet b64 conv+pool fwd+bwd, ${rt.threads} thread(s): ${best.toFixed(2)} ms (${detail})`,
      );
    }
  } finally {
    pool1.dispose();
    pool2.dispose();
    tensors.forEach((t) => t.dispose());
  }
});

Deno.test("conv2d.pack twin: the padded batched transpose is bitwise the WGSL's", async () => {
  const PACK = { name: "conv2d.pack", code: packSrc };
  const gpu = await getRuntime();
  for (
    const [batch, rows, cols] of [[1, 6, 25], [3, 16, 100], [2, 17, 9], [64, 5, 3], [1, 1, 1], [
      64,
      16,
      200,
    ], [1, 62, 4001]]
  ) {
    const rowsPad = Math.ceil(rows / 4) * 4;
    const what = `pack ${batch}x${rows}x${cols}`;
    const [out] = await replayOutputs(
      [
        { data: randomArray(batch * rows * cols, batch + rows + cols), shape: [batch, rows, cols] },
        { data: randomArray(batch * cols * rowsPad, 7), shape: [batch * cols * rowsPad] },
      ],
      ([src, dst]) => {
        gpu.dispatch(PACK, {
          bindings: [src, dst],
          params: { batch, rows, cols, rows_pad: rowsPad },
          workgroups: gpu.grid(batch * cols * rowsPad / 4, 64),
        });
        return [dst];
      },
      what,
    );
    assert.deepEqual(Array.from(out.wasm), Array.from(out.gpu), what);
  }
});

Deno.test("conv2d twin: tiny blocks (chunks that start and end inside grid rows) give the same results", async () => {
  const saved = { ...CONV2D_BLOCKS };
  // 600 floats: chunks of 8-24 positions for these depths; 13 positions per weight-gradient GEMM;
  // no direct convolution, so the stride-1 cases the direct kernel takes by default (all but
  // stride 2 here) go through unfold + GEMM.
  Object.assign(CONV2D_BLOCKS, { colFloats: 600, wgradChunk: 13, directMaxDepth: 0 });
  const worst = { err: 0 };
  const gpu = await getRuntime();
  try {
    for (const i of [0, 1, 3, 4, 5, 7, 10]) {
      const t = CASES[i];
      const g = { kernel: t.k, stride: t.s, padding: t.p };
      const [oh, ow] = windowOutputSize(t.x[2], t.x[3], g);
      const yShape = [t.x[0], t.o, oh, ow];
      const wShape = [t.o, t.x[1], ...t.k];
      const xa = randomArray(numel(t.x), 90 + i), wa = randomArray(numel(wShape), 91 + i);
      const ba = randomArray(t.o, 92 + i), dya = randomArray(numel(yShape), 93 + i);
      const geo = { stride: t.s, padding: t.p };
      const splitsList = [undefined, 1];
      const [y, dx, ...dWs] = await replayOutputs(
        [
          { data: xa, shape: t.x },
          { data: wa, shape: wShape },
          { data: ba, shape: [t.o] },
          { data: dya, shape: yShape },
          ...splitsList.map(() => ({ data: new Float32Array(numel(wShape)), shape: wShape })),
        ],
        ([x, w, b, dy, ...dW]) => {
          const y = conv2dForward(gpu, x, w, { ...geo, bias: b, activation: "tanh" });
          const dx = conv2dInputGrad(gpu, dy, w, { ...geo, inputShape: t.x });
          splitsList.forEach((splits, j) =>
            conv2dWeightGrad(gpu, dy, x, { ...geo, dWeight: dW[j], splits })
          );
          return [y, dx, ...dW];
        },
        label(t),
      );
      const yRef = conv2dRef(xa, t.x, wa, t.o, ba, g).y.map(Math.tanh);
      check(y, yRef, t.x[1] * t.k[0] * t.k[1], `y ${label(t)}`, worst);
      const ref = conv2dBackwardRef(xa, t.x, wa, t.o, dya, g);
      check(dx, ref.dx, t.o * t.k[0] * t.k[1], `dx ${label(t)}`, worst);
      splitsList.forEach((splits, j) =>
        check(dWs[j], ref.dw, t.x[0] * oh * ow, `dW ${label(t)} splits ${splits}`, worst)
      );
    }
  } finally {
    Object.assign(CONV2D_BLOCKS, saved);
  }
  console.log(`conv2d tiny blocks: largest |wasm - float64| ${worst.err.toExponential(2)}`);
});

/** Records the name of every kernel `rt` runs from now on, until `restore()`. */
function spyKernels(rt: WasmRuntime): { names: string[]; restore: () => void } {
  const names: string[] = [];
  const parallel = rt.parallel.bind(rt);
  rt.parallel = (name, parts) => {
    names.push(name);
    parallel(name, parts);
  };
  return { names, restore: () => void (rt.parallel = parallel) };
}

Deno.test("conv2d twin: Winograd on every 3x3 stride-1 case (forward with bias and tanh, input and weight gradients)", async () => {
  const saved = { ...CONV2D_BLOCKS };
  // Every 3x3 stride-1 layer through Winograd (by default only those of 57 or more input
  // channels), a few tiles per GEMM so that groups of images end inside the batch.
  Object.assign(CONV2D_BLOCKS, { winogradMinChannels: 1, winogradTiles: 20 });
  const worst = { err: 0 };
  const gpu = await getRuntime();
  try {
    const cases = CASES.filter((t) => t.k[0] === 3 && t.k[1] === 3 && t.s[0] === 1 && t.s[1] === 1);
    assert.ok(cases.length >= 4, `${cases.length} 3x3 stride-1 cases`);
    for (const [i, t] of cases.entries()) {
      const g = { kernel: t.k, stride: t.s, padding: t.p };
      const [oh, ow] = windowOutputSize(t.x[2], t.x[3], g);
      const yShape = [t.x[0], t.o, oh, ow];
      const wShape = [t.o, t.x[1], ...t.k];
      const xa = randomArray(numel(t.x), 60 + i), wa = randomArray(numel(wShape), 61 + i);
      const ba = randomArray(t.o, 62 + i), dya = randomArray(numel(yShape), 63 + i);
      const geo = { stride: t.s, padding: t.p };
      const dW0 = randomArray(numel(wShape), 64 + i);
      const [y, dx, dW] = await replayOutputs(
        [
          { data: xa, shape: t.x },
          { data: wa, shape: wShape },
          { data: ba, shape: [t.o] },
          { data: dya, shape: yShape },
          { data: dW0, shape: wShape },
        ],
        ([x, w, b, dy, dW]) => {
          // One split-K slab (the Winograd weight gradient's case), accumulating into dW.
          conv2dWeightGrad(gpu, dy, x, { ...geo, dWeight: dW, splits: 1, beta: 0.5 });
          return [
            conv2dForward(gpu, x, w, { ...geo, bias: b, activation: "tanh" }),
            conv2dInputGrad(gpu, dy, w, { ...geo, inputShape: t.x }),
            dW,
          ];
        },
        label(t),
      );
      const yRef = conv2dRef(xa, t.x, wa, t.o, ba, g).y.map(Math.tanh);
      check(y, yRef, t.x[1] * 9, `winograd y ${label(t)}`, worst);
      const ref = conv2dBackwardRef(xa, t.x, wa, t.o, dya, g);
      check(dx, ref.dx, t.o * 9, `winograd dx ${label(t)}`, worst);
      const dWRef = ref.dw.map((v, j) => v + 0.5 * dW0[j]);
      check(dW, dWRef, t.x[0] * oh * ow, `winograd dW ${label(t)}`, worst);
    }
  } finally {
    Object.assign(CONV2D_BLOCKS, saved);
  }
  console.log(`conv2d winograd: largest |wasm - float64| ${worst.err.toExponential(2)}`);
  // By default: 3x3 stride-1 correlations over 57 or more input channels (DDNet's conv2-4 both
  // ways); the input gradient's are the layer's output channels.
  const [one] = await sharedWasmPair();
  const { names, restore } = spyKernels(one);
  try {
    for (
      const [cin, cout, want] of [[64, 60, ["conv2d_wino", "conv2d_wino"]], [56, 64, [
        "conv2d_wino",
      ]], [56, 50, []]] as const
    ) {
      const x = one.upload(randomArray(2 * cin * 36, 1), [2, cin, 6, 6]);
      const w = one.upload(randomArray(cout * cin * 9, 2), [cout, cin, 3, 3]);
      names.length = 0;
      const y = conv2dForward(one, x, w, { stride: 1, padding: 1 });
      const dx = conv2dInputGrad(one, y, w, { stride: 1, padding: 1, inputShape: [2, cin, 6, 6] });
      assert.deepEqual(
        names.filter((n) => n === "conv2d_wino"),
        [...want],
        `${cin} -> ${cout}: ${names}`,
      );
      for (const t of [x, w, y, dx]) t.dispose();
    }
  } finally {
    restore();
  }
});

Deno.test("conv2d twin: stride-1 layers of small depth run as direct convolutions, within rounding of unfold + GEMM", async () => {
  const [one] = await sharedWasmPair();
  const { names, restore } = spyKernels(one);
  const saved = { ...CONV2D_BLOCKS };
  try {
    // LeNet conv2 (depth 150 forward, 400 backward), the padded first layer (its input gradient
    // has one channel: the 1 × 32 tile), odd widths, 3 output channels (1 × 32 forward), a row
    // wider than 32.
    const cases = [
      [[2, 6, 14, 14], 16, 5, 0, ["conv2d_direct", "conv2d_direct"]],
      [[2, 1, 28, 28], 6, 5, 2, ["conv2d_direct", "conv2d_direct1"]],
      [[1, 5, 7, 13], 9, 3, 1, ["conv2d_direct", "conv2d_direct"]],
      [[2, 4, 9, 11], 3, 3, 1, ["conv2d_direct1", "conv2d_direct"]],
      [[1, 2, 5, 37], 2, 3, 0, ["conv2d_direct1", "conv2d_direct1"]],
    ] as const;
    for (const [xs, o, k, p, kernels] of cases) {
      const x = one.upload(randomArray(numel(xs), 3), [...xs]);
      const w = one.upload(randomArray(o * xs[1] * k * k, 4), [o, xs[1], k, k]);
      const b = one.upload(randomArray(o, 5), [o]);
      const run = () => {
        const y = conv2dForward(one, x, w, { stride: 1, padding: p, bias: b, activation: "relu" });
        const dx = conv2dInputGrad(one, y, w, { stride: 1, padding: p, inputShape: [...xs] });
        const out = [(y as WasmTensor).toArray(), (dx as WasmTensor).toArray()] as Float32Array[];
        y.dispose();
        dx.dispose();
        return out;
      };
      names.length = 0;
      const [yd, dxd] = run();
      const direct = names.filter((n) => n.startsWith("conv2d_direct"));
      assert.deepEqual(direct, [...kernels], `direct kernels for x ${xs}: ${names}`);
      CONV2D_BLOCKS.directMaxDepth = 0;
      names.length = 0;
      const [yg, dxg] = run();
      assert.ok(!names.some((n) => n.startsWith("conv2d_direct")), `directMaxDepth 0: ${names}`);
      CONV2D_BLOCKS.directMaxDepth = saved.directMaxDepth;
      assertClose(yd, yg, { ...tol(xs[1] * k * k), what: `y direct vs GEMM, x ${xs}` });
      assertClose(dxd, dxg, { ...tol(o * k * k), what: `dx direct vs GEMM, x ${xs}` });
      for (const t of [x, w, b]) t.dispose();
    }
  } finally {
    Object.assign(CONV2D_BLOCKS, saved);
    restore();
  }
});

Deno.test("Conv2d layer on both backends: forward, fused tanh, backward (dx, dW, db), jvp agree", async () => {
  for (const [i, t] of [CASES[0], CASES[1], CASES[2], CASES[5], CASES[6]].entries()) {
    const wShape = [t.o, t.x[1], ...t.k];
    const xa = randomArray(numel(t.x), 700 + i), wa = randomArray(numel(wShape), 710 + i);
    const ba = randomArray(t.o, 720 + i);
    await onBothBackends(async (rt) => {
      const conv = new Conv2d(rt, "conv", t.x[1], t.o, t.k, { stride: t.s, padding: t.p });
      rt.write(conv.weight, wa);
      rt.write(conv.bias!, ba);
      const x = rt.upload(xa, t.x);
      const y = await conv.forward(x).read();
      const dy = rt.upload(randomArray(y.length, 730 + i), conv.outputShape(t.x));
      const dx = await conv.backward(dy).read();
      const dW = await conv.dWeight.read(), db = await conv.dBias!.read();
      const ty = await conv.jvp(x).read();
      const act = new Activation(rt, "act", "tanh");
      const fused = await conv.forwardFused(x, act)!.read();
      for (const u of [x, dy]) u.dispose();
      conv.dispose();
      act.dispose();
      return { y, dx, dW, db, ty, fused };
    }, { atol: 1e-4, rtol: 1e-4, what: label(t) });
  }
  await releaseSharedWasmPair();
});
