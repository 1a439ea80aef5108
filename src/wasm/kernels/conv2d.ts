/**
 * WebAssembly twins of shaders/conv2d.wgsl and shaders/conv2d_pack.wgsl (see src/wasm/README.md,
 * "one backend interface"), by kernel name (the `name` of the `Kernel` the op dispatches), then
 * entry point.
 *
 * `conv2d` computes what the WGSL's MODE computes (forward with bias and the fused activation,
 * input gradient, weight gradient into one split-K slab per grid z) by im2col + the packed
 * `sgemm` (wasm/assembly/conv2d.ts). The tiling constants (SHARED, TX, TY, RM, BK, CN, RUN3,
 * ROWS, TRIO, APACK, NO_PAD, UNIT_STRIDE) choose how the GPU computes, not what, and are ignored;
 * so is the packed copy of A (binding 4), which the WGSL reads only as another layout of binding
 * 0. The GEMM sizes are taken from the geometry params, since RUN3 replaces `n` by a count of
 * runs.
 *
 * Threading plan: the batch is split by images across threads; with fewer images than threads,
 * mode 0 splits the output positions (multiples of 8) and mode 1 the input channels. Mode 2
 * splits the split-K slabs (when there are at least as many as threads) or else the columns
 * (c, ky, kx) of dW in multiples of 8. Never along a reduction: results are bitwise equal for
 * any thread count. Convolutions under 2^17 multiply-adds run on one thread.
 *
 * Measured (bench of the three modes per layer, batch 64, one thread, a 2-core AMD EPYC shared
 * with other jobs, best of 10): DDNet's 3×3 layers (64-128 channels) 28-33 GFLOP/s, the speed of
 * `sgemm` on the same GEMM shape (33-36); LeNet's conv1 (6 channels) 10-12 and conv2 18-21
 * GFLOP/s (the unfold and sgemm's packing weigh more against so few rows). Two threads could
 * not be measured faster on that loaded machine (neither could the bare matmul).
 *
 * @module
 */

import type { WasmRuntime } from "../runtime.ts";
import type { WasmTensor } from "../tensor.ts";
import type { Twin, TwinFamily } from "./twin.ts";
import { count, splitRange } from "./_split.ts";
import { CONV2D_GEOMETRY_FIELDS, type Conv2dGeometry } from "../../_conv_geometry.ts";

/** Words of the geometry block read by wasm/assembly/conv2d.ts (its G_* indices). */
const G_WORDS = 32;
/**
 * Block sizes (benchmarks may change them; results do not depend on them beyond float32
 * rounding): `colFloats`, the target size of one thread's unfold/fold buffer in floats (it
 * should stay in L2), `wgradChunk`, the most positions per weight-gradient GEMM call,
 * `directMaxDepth`, the largest depth C·kh·kw of a stride-1 forward or input gradient that runs
 * as a direct convolution instead of unfold + GEMM (0: never), `winogradMinChannels`, the fewest
 * input channels of a 3 × 3 stride-1 forward or input gradient that runs as Winograd
 * F(2×2, 3×3) (0: never; 57: past the direct kernel's depth of 512), and `winogradTiles`, the
 * 2 × 2 tiles (of whole images) per Winograd GEMM.
 */
export const CONV2D_BLOCKS: {
  colFloats: number;
  wgradChunk: number;
  directMaxDepth: number;
  winogradMinChannels: number;
  winogradTiles: number;
} = {
  colFloats: 1 << 16,
  wgradChunk: 256,
  directMaxDepth: 512,
  winogradMinChannels: 57,
  winogradTiles: 256,
};
/** Below this many multiply-adds a convolution runs on one thread. */
const PARALLEL_MIN_MACS = 1 << 17;

/** The geometry params of the dispatch, checked (the names the op passes them under). */
function geometry(p: Readonly<Record<string, number>>): Conv2dGeometry {
  const g = {} as Conv2dGeometry;
  for (const name of CONV2D_GEOMETRY_FIELDS) g[name] = count("conv2d", p, name);
  return g;
}

/** Threads for `macs` multiply-adds: one below {@linkcode PARALLEL_MIN_MACS}, else all. */
function threadsFor(rt: WasmRuntime, macs: number): number {
  return macs < PARALLEL_MIN_MACS ? 1 : rt.threads;
}

/** The geometry block's fields, in the order of the G_* indices of wasm/assembly/conv2d.ts. */
interface Block {
  m: number;
  k: number;
  planeH: number;
  planeW: number;
  gridH: number;
  gridW: number;
  kh: number;
  kw: number;
  sy: number;
  sx: number;
  oy: number;
  ox: number;
  a: number;
  src: number;
  out: number;
  bias: number;
  act: number;
  beta: number;
  chunk: number;
  srcImage: number;
  outImage: number;
  n: number;
  ktot: number;
  kchunk: number;
}

function writeBlock(rt: WasmRuntime, at: number, b: Block): void {
  const v = new DataView(rt.wasmMemory.buffer, at, G_WORDS * 4);
  const ints = [
    b.m,
    b.k,
    b.planeH,
    b.planeW,
    b.gridH,
    b.gridW,
    b.kh,
    b.kw,
    b.sy,
    b.sx,
    0,
    0,
    b.oy,
    b.ox,
  ];
  ints.forEach((x, i) => v.setInt32(4 * i, x, true));
  [b.a, b.src, b.out, b.bias].forEach((x, i) => v.setUint32(4 * (16 + i), x, true));
  v.setInt32(4 * 20, b.act, true);
  v.setFloat32(4 * 21, b.beta, true);
  [b.chunk, b.srcImage, b.outImage, b.n, b.ktot, b.kchunk].forEach((x, i) =>
    v.setInt32(4 * (22 + i), x, true)
  );
}

const conv2dMain: Twin = (rt, [a, src, out, bias], p, constants, workgroups) => {
  const mode = constants.MODE ?? 0;
  const g = geometry(p);
  const beta = p.beta ?? 0;
  const kk = g.kh * g.kw;
  if (mode === 2) {
    const splits = workgroups[2] ?? 1;
    if (splits === 1 && winogradFits(g.cin, g)) {
      winogradWgrad(rt, g, a, src, out, beta);
      return;
    }
    wgrad(rt, g, a, src, out, beta, splits, count("conv2d", p, "kchunk", 1));
    return;
  }
  if (mode === 1) {
    if (winogradFits(g.cout, g)) {
      winograd(rt, g, a, true, src, out, null, 0, beta, inputGradShape(g));
      return;
    }
    if (directFits(g.cin, g.cout * kk, g)) {
      direct(rt, g, w2Flipped(rt, a, g), src, out, null, 0, beta, inputGradShape(g));
      return;
    }
    dgrad(rt, g, a, src, out, beta);
    return;
  }
  if (mode !== 0) throw new Error(`Kernel 'conv2d': MODE ${mode} is not 0, 1 or 2`);
  const m = g.cout, k = g.cin * kk, npos = g.oh * g.ow;
  if (m === 0 || npos === 0 || g.batch === 0) return;
  const hasBias = (constants.HAS_BIAS ?? 0) !== 0;
  if (winogradFits(g.cin, g)) {
    winograd(rt, g, a, false, src, out, hasBias ? bias : null, constants.ACT ?? 0, beta, g);
    return;
  }
  if (directFits(m, k, g)) {
    direct(rt, g, w2(rt, a, g), src, out, hasBias ? bias : null, constants.ACT ?? 0, beta, g);
    return;
  }
  const threads = threadsFor(rt, m * k * npos * g.batch);
  const chunk = Math.min(
    npos,
    Math.max(8, Math.floor(CONV2D_BLOCKS.colFloats / Math.max(k, 1) / 8) * 8),
  );
  const parts = g.batch >= threads
    ? splitRange(g.batch, threads, 1).map(([b0, b1]) => [b0, b1, 0, npos])
    : splitRange(npos, threads, 1, 8).map(([q0, q1]) => [0, g.batch, q0, q1]);
  const colFloats = Math.ceil((k * chunk) / 4) * 4;
  const tmp = rt.empty([G_WORDS + colFloats * parts.length], "f32", "conv2d.tmp");
  try {
    const cols = tmp.ptr + 4 * G_WORDS;
    writeBlock(rt, tmp.ptr, {
      ...windowOf(g),
      m,
      k,
      a: a.ptr,
      src: src.ptr,
      out: out.ptr,
      bias: (constants.HAS_BIAS ?? 0) !== 0 ? bias.ptr : 0,
      act: constants.ACT ?? 0,
      beta,
      chunk,
      srcImage: g.cin * g.h * g.w,
      outImage: m * npos,
      n: 0,
      ktot: 0,
      kchunk: 0,
    });
    rt.parallel(
      "conv2d_gemm",
      parts.map(([b0, b1, q0, q1], t) => [
        tmp.ptr,
        b0,
        b1,
        q0,
        q1,
        cols + 4 * colFloats * t,
        rt.scratch(t),
      ]),
    );
  } finally {
    tmp.dispose();
  }
};

/**
 * Whether a convolution producing `m` channels from depth `k` (C·kh·kw) goes through the direct
 * kernel (wasm/assembly/conv2d.ts `conv2d_direct`): stride 1, a depth small enough that unfolding
 * costs as much as the product. 4 or more channels take the 6 × 8 tile (`conv2d_direct`), 1 to 3
 * a 1 × 32 one (`conv2d_direct1`). Larger depths amortise the unfold over more multiply-adds in
 * the packed GEMM, which is then the faster.
 */
function directFits(m: number, k: number, g: Conv2dGeometry): boolean {
  return g.sh === 1 && g.sw === 1 && m >= 1 && k <= CONV2D_BLOCKS.directMaxDepth && g.batch > 0;
}

/**
 * Whether a 3 × 3 stride-1 correlation over `cin` input channels goes through Winograd
 * F(2×2, 3×3) (wasm/assembly/conv2d.ts `conv2d_wino`): where the depth is past the direct
 * kernel's range (`CONV2D_BLOCKS.winogradMinChannels`, 0: never).
 */
function winogradFits(cin: number, g: Conv2dGeometry): boolean {
  const min = CONV2D_BLOCKS.winogradMinChannels;
  return min > 0 && g.kh === 3 && g.kw === 3 && g.sh === 1 && g.sw === 1 && cin >= min &&
    g.batch > 0 && g.cout > 0 && g.cin > 0;
}

/**
 * The tiling both Winograd launches share, for an oh × ow grid over `batch` images: 2 × 2 tiles
 * (th × tw, tw rounded up to the 4 lanes: twr), whole images per group of GEMMs (`group`), the
 * row stride of the transformed blocks (`ld`: room for the last four lanes, see the kernels) and
 * the padded copy's rows and row length (`hp`, `wpad`: winoPadWidth of wasm/assembly/conv2d.ts).
 */
function winogradPlan(oh: number, ow: number, batch: number) {
  const th = Math.ceil(oh / 2), tw = Math.ceil(ow / 2), tiles = th * tw;
  const twr = (tw + 3) & ~3;
  const group = Math.max(1, Math.min(batch, Math.floor(CONV2D_BLOCKS.winogradTiles / tiles)));
  const ld = ((group * tiles + 3) & ~3) + 4;
  return { th, twr, group, ld, hp: 2 * th + 2, wpad: 2 * twr + 4 };
}

/**
 * The input gradient of a stride-1 layer as a stride-1 correlation: dy (the layer's output) is the
 * image, dx its result, padded by kh - 1 - ph (and kw - 1 - pw), with the flipped, transposed
 * weights (`w2Flipped`, or `conv2d_winoWeights` with `transposed`).
 */
function inputGradShape(g: Conv2dGeometry): DirectShape {
  return {
    cin: g.cout,
    h: g.oh,
    w: g.ow,
    cout: g.cin,
    oh: g.h,
    ow: g.w,
    ph: g.kh - 1 - g.ph,
    pw: g.kw - 1 - g.pw,
  };
}

/**
 * Runs `conv2d_wino`: y = act(corr3x3(x, w) + beta·y + bias) for `shape` (stride 1), the weights
 * transformed first (`conv2d_winoWeights`; `transposed`: w is the layer's (O, C, 3, 3) seen from
 * its input, flipped, for the input gradient). Split by images.
 */
function winograd(
  rt: WasmRuntime,
  g: Conv2dGeometry,
  w: WasmTensor,
  transposed: boolean,
  x: WasmTensor,
  y: WasmTensor,
  bias: WasmTensor | null,
  act: number,
  beta: number,
  s: DirectShape,
): void {
  const m = s.cout, cin = s.cin;
  const { group, ld, hp, wpad } = winogradPlan(s.oh, s.ow, g.batch);
  const bufFloats = cin * hp * wpad + 16 * cin * ld + 16 * m * ld;
  const threads = threadsFor(rt, m * cin * 9 * s.oh * s.ow * g.batch);
  const parts = splitRange(g.batch, Math.min(threads, g.batch), 1);
  const u = rt.empty([16 * m * cin], "f32", "conv2d.winograd_weights");
  const tmp = rt.empty([G_WORDS + bufFloats * parts.length], "f32", "conv2d.tmp");
  try {
    rt.parallel(
      "conv2d_winoWeights",
      splitRange(m, threadsFor(rt, m * cin * 64), 1).map(([o0, o1]) => [
        w.ptr,
        u.ptr,
        o0,
        o1,
        m,
        cin,
        transposed ? 1 : 0,
      ]),
    );
    writeBlock(
      rt,
      tmp.ptr,
      stride1Block(s, 3, 3, {
        a: u.ptr,
        src: x.ptr,
        out: y.ptr,
        bias: bias ? bias.ptr : 0,
        act,
        beta,
        chunk: group,
        n: ld,
      }),
    );
    const bufs = tmp.ptr + 4 * G_WORDS;
    rt.parallel(
      "conv2d_wino",
      parts.map(([b0, b1], t) => [tmp.ptr, b0, b1, bufs + 4 * bufFloats * t, rt.scratch(t)]),
    );
  } finally {
    tmp.dispose();
    u.dispose();
  }
}

/**
 * Runs `conv2d_winoWgrad`: dW = beta·dW + Σ corr(x, dy) for a 3 × 3 stride-1 layer with one
 * split-K slab, split by output channels (rows of dW) across the threads.
 */
function winogradWgrad(
  rt: WasmRuntime,
  g: Conv2dGeometry,
  dy: WasmTensor,
  x: WasmTensor,
  dW: WasmTensor,
  beta: number,
): void {
  const m = g.cout, cin = g.cin;
  const { th, twr, group, ld, hp, wpad } = winogradPlan(g.oh, g.ow, g.batch);
  const threads = threadsFor(rt, m * cin * 9 * g.oh * g.ow * g.batch);
  const parts = splitRange(m, Math.min(threads, m), 1);
  const most = Math.max(...parts.map(([o0, o1]) => o1 - o0));
  const bufFloats = cin * hp * wpad + most * (2 * th) * (2 * twr) + 16 * cin * ld +
    16 * most * ld + 16 * most * cin;
  const tmp = rt.empty([G_WORDS + bufFloats * parts.length], "f32", "conv2d.tmp");
  try {
    writeBlock(rt, tmp.ptr, {
      ...windowOf(g),
      m,
      k: 0,
      a: dy.ptr,
      src: x.ptr,
      out: dW.ptr,
      bias: 0,
      act: 0,
      beta,
      chunk: group,
      srcImage: cin * g.h * g.w,
      outImage: 0,
      n: cin * 9,
      ktot: g.batch,
      kchunk: ld,
    });
    const bufs = tmp.ptr + 4 * G_WORDS;
    rt.parallel(
      "conv2d_winoWgrad",
      parts.map(([o0, o1], t) => [tmp.ptr, o0, o1, bufs + 4 * bufFloats * t, rt.scratch(t)]),
    );
  } finally {
    tmp.dispose();
  }
}

/** Output channels per tile of the direct kernel: 6, or 1 (`conv2d_direct1`) below 4 channels. */
const directMr = (m: number) => m >= 4 ? 6 : 1;

/**
 * The weights packed for the direct kernel: per block of `directMr(m)` (6 or 1) output channels,
 * the taps in (c, ky, kx) order, that many floats each (channel r of the block), zeros past the
 * last channel.
 * `tap(wv, o, t)` reads the weight of output channel o at tap t from the view `wv` of `w`.
 */
function packDirect(
  rt: WasmRuntime,
  w: WasmTensor,
  m: number,
  k: number,
  tap: (wv: Float32Array, o: number, t: number) => number,
): WasmTensor {
  const mr = directMr(m);
  const blocks = Math.ceil(m / mr);
  const t = rt.empty([blocks * k * mr], "f32", "conv2d.direct_weights");
  // Views after the allocation, which may have grown (and detached) the memory.
  const wv = new Float32Array(rt.wasmMemory.buffer, w.ptr, w.size);
  const v = new Float32Array(rt.wasmMemory.buffer, t.ptr, t.size);
  for (let ob = 0; ob < blocks; ob++) {
    for (let j = 0; j < k; j++) {
      for (let r = 0; r < mr; r++) {
        const o = ob * mr + r;
        v[(ob * k + j) * mr + r] = o < m ? tap(wv, o, j) : 0;
      }
    }
  }
  return t;
}

/** W (O, C·kh·kw) packed for the forward. */
function w2(rt: WasmRuntime, w: WasmTensor, g: Conv2dGeometry): WasmTensor {
  const k = g.cin * g.kh * g.kw;
  return packDirect(rt, w, g.cout, k, (wv, o, j) => wv[o * k + j]);
}

/** Wᵀ flipped, packed for the input gradient: channel c, tap (o, ky, kx) = W[o, c, kh-1-ky, kw-1-kx]. */
function w2Flipped(rt: WasmRuntime, w: WasmTensor, g: Conv2dGeometry): WasmTensor {
  const kk = g.kh * g.kw;
  return packDirect(rt, w, g.cin, g.cout * kk, (wv, c, j) => {
    const o = Math.floor(j / kk), t = j % kk;
    const ky = g.kh - 1 - Math.floor(t / g.kw), kx = g.kw - 1 - (t % g.kw);
    return wv[((o * g.cin + c) * g.kh + ky) * g.kw + kx];
  });
}

/**
 * The geometry block of a stride-1 correlation of `s` with a kh × kw window (what
 * `conv2d_direct`, `conv2d_direct1` and `conv2d_wino` read), with the call's own fields `f`.
 */
function stride1Block(
  s: DirectShape,
  kh: number,
  kw: number,
  f: Pick<Block, "a" | "src" | "out" | "bias" | "act" | "beta" | "chunk" | "n">,
): Block {
  return {
    m: s.cout,
    k: s.cin * kh * kw,
    planeH: s.h,
    planeW: s.w,
    gridH: s.oh,
    gridW: s.ow,
    kh,
    kw,
    sy: 1,
    sx: 1,
    oy: -s.ph,
    ox: -s.pw,
    srcImage: s.cin * s.h * s.w,
    outImage: s.cout * s.oh * s.ow,
    ktot: 0,
    kchunk: 0,
    ...f,
  };
}

/** The fields of a stride-1 convolution the direct kernel reads (the rest come from `g`). */
type DirectShape = Pick<Conv2dGeometry, "cin" | "h" | "w" | "cout" | "oh" | "ow" | "ph" | "pw">;

/**
 * Runs `conv2d_direct` or `conv2d_direct1` (stride 1): y = act(conv(x, packed) + beta·y + bias) for `shape`, split
 * by images, or by output rows when there are fewer images than threads. Disposes `packed`.
 */
function direct(
  rt: WasmRuntime,
  g: Conv2dGeometry,
  packed: WasmTensor,
  x: WasmTensor,
  y: WasmTensor,
  bias: WasmTensor | null,
  act: number,
  beta: number,
  s: DirectShape,
): void {
  const k = s.cin * g.kh * g.kw;
  const threads = threadsFor(rt, s.cout * k * s.oh * s.ow * g.batch);
  const parts = g.batch >= threads || s.oh < threads
    ? splitRange(g.batch, threads, 1).map(([b0, b1]) => [b0, b1, 0, s.oh])
    : splitRange(s.oh, threads, 1).map(([y0, y1]) => [0, g.batch, y0, y1]);
  const one = directMr(s.cout) === 1;
  const across = one ? 32 : 8; // the tile's positions along x
  // padWidth / padWidth1 of wasm/assembly/conv2d.ts
  const wpad = (Math.ceil(s.ow / across) * across + g.kw - 1 + 3) & ~3;
  const padFloats = s.cin * (s.oh + g.kh - 1) * wpad;
  const tmp = rt.empty([G_WORDS + padFloats * parts.length], "f32", "conv2d.tmp");
  try {
    writeBlock(
      rt,
      tmp.ptr,
      stride1Block(s, g.kh, g.kw, {
        a: packed.ptr,
        src: x.ptr,
        out: y.ptr,
        bias: bias ? bias.ptr : 0,
        act,
        beta,
        chunk: 0,
        n: 0,
      }),
    );
    const pads = tmp.ptr + 4 * G_WORDS;
    rt.parallel(
      one ? "conv2d_direct1" : "conv2d_direct",
      parts.map((
        [b0, b1, y0, y1],
        t,
      ) => [tmp.ptr, b0, b1, y0, y1, packed.ptr, pads + 4 * padFloats * t]),
    );
  } finally {
    tmp.dispose();
    packed.dispose();
  }
}

/** The window fields of the geometry block: x planes (H, W) swept by the (OH, OW) grid. */
function windowOf(g: Conv2dGeometry) {
  return {
    planeH: g.h,
    planeW: g.w,
    gridH: g.oh,
    gridW: g.ow,
    kh: g.kh,
    kw: g.kw,
    sy: g.sh,
    sx: g.sw,
    oy: -g.ph,
    ox: -g.pw,
  };
}

/** Mode 1: Wᵀ dy per chunk of positions, folded into dx; split by images, else channels. */
function dgrad(
  rt: WasmRuntime,
  g: Conv2dGeometry,
  w: WasmTensor,
  dy: WasmTensor,
  dx: WasmTensor,
  beta: number,
): void {
  const kk = g.kh * g.kw, rows = g.cin * kk, npos = g.oh * g.ow;
  if (g.cin === 0 || g.batch === 0 || g.h * g.w === 0) return;
  const threads = threadsFor(rt, rows * g.cout * npos * g.batch);
  // The chunk must not depend on the split: it sets each dx element's order of additions.
  const chunk = Math.min(npos, Math.max(8, Math.floor(CONV2D_BLOCKS.colFloats / rows / 8) * 8));
  const parts = g.batch >= threads
    ? splitRange(g.batch, threads, 1).map(([b0, b1]) => [b0, b1, 0, g.cin])
    : splitRange(g.cin, threads, 1).map(([c0, c1]) => [0, g.batch, c0, c1]);
  const colFloats = Math.ceil((rows * Math.max(chunk, 1)) / 4) * 4;
  const tmp = rt.empty([G_WORDS + colFloats * parts.length], "f32", "conv2d.tmp");
  try {
    const cols = tmp.ptr + 4 * G_WORDS;
    writeBlock(rt, tmp.ptr, {
      ...windowOf(g),
      m: g.cout,
      k: 0,
      a: w.ptr,
      src: dy.ptr,
      out: dx.ptr,
      bias: 0,
      act: 0,
      beta,
      chunk: Math.max(chunk, 1),
      srcImage: g.cin * g.h * g.w,
      outImage: 0,
      n: rows,
      ktot: 0,
      kchunk: 0,
    });
    rt.parallel(
      "conv2d_dgrad",
      parts.map(([b0, b1, c0, c1], t) => [
        tmp.ptr,
        b0,
        b1,
        c0,
        c1,
        cols + 4 * colFloats * t,
        rt.scratch(t),
      ]),
    );
  } finally {
    tmp.dispose();
  }
}

function wgrad(
  rt: WasmRuntime,
  g: Conv2dGeometry,
  dy: WasmTensor,
  x: WasmTensor,
  out: WasmTensor,
  beta: number,
  splits: number,
  kchunk: number,
): void {
  const m = g.cout, n = g.cin * g.kh * g.kw, npos = g.oh * g.ow, ktot = g.batch * npos;
  if (m === 0 || n === 0) return;
  const threads = threadsFor(rt, m * n * ktot);
  const parts = splits >= threads || n < 8 * threads
    ? splitRange(splits, threads, 1).map(([z0, z1]) => [z0, z1, 0, n])
    : splitRange(n, threads, 1, 8).map(([n0, n1]) => [0, splits, n0, n1]);
  const chunk = Math.max(1, Math.min(CONV2D_BLOCKS.wgradChunk, npos));
  const colFloats = Math.ceil((Math.max(...parts.map((q) => q[3] - q[2])) * chunk) / 4) * 4;
  const tmp = rt.empty([G_WORDS + colFloats * parts.length], "f32", "conv2d.tmp");
  try {
    const cols = tmp.ptr + 4 * G_WORDS;
    writeBlock(rt, tmp.ptr, {
      ...windowOf(g),
      m,
      k: 0,
      a: dy.ptr,
      src: x.ptr,
      out: out.ptr,
      bias: 0,
      act: 0,
      beta,
      chunk,
      srcImage: g.cin * g.h * g.w,
      outImage: 0,
      n,
      ktot,
      kchunk,
    });
    rt.parallel(
      "conv2d_wgrad",
      parts.map(([z0, z1, n0, n1], t) => [
        tmp.ptr,
        z0,
        z1,
        n0,
        n1,
        cols + 4 * colFloats * t,
        rt.scratch(t),
      ]),
    );
  } finally {
    tmp.dispose();
  }
}

/** shaders/conv2d_pack.wgsl: a batched transpose with rows padded to a multiple of 4. */
const packMain: Twin = (rt, [src, dst], p) => {
  const [batch, rows, cols, rowsPad] = ["batch", "rows", "cols", "rows_pad"].map((name) =>
    count("conv2d.pack", p, name)
  );
  if (batch === 0 || cols === 0 || rowsPad === 0) return;
  if (rows === 0 || rowsPad % 4 !== 0) {
    throw new Error(`Kernel 'conv2d.pack': rows ${rows} and rows_pad ${rowsPad} (a multiple of 4)`);
  }
  const threads = threadsFor(rt, batch * cols * rowsPad);
  const parts = batch >= threads
    ? splitRange(batch, threads, 1).map(([t0, t1]) => [t0, t1, 0, cols])
    : splitRange(cols, threads, 1).map(([j0, j1]) => [0, batch, j0, j1]);
  rt.parallel(
    "conv2d_pack",
    parts.map(([t0, t1, j0, j1]) => [src.ptr, dst.ptr, rows, cols, rowsPad, t0, t1, j0, j1]),
  );
};

/** Twins by kernel name, then entry point. */
export const CONV2D_TWINS: TwinFamily = {
  conv2d: { main: conv2dMain },
  "conv2d.pack": { main: packMain },
};
