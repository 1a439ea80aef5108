/**
 * WebAssembly twins of shaders/conv2d.wgsl and shaders/conv2d_pack.wgsl (see src/wasm/README.md,
 * "one backend interface"), by kernel name (the `name` of the `Kernel` the op dispatches), then
 * entry point.
 *
 * `conv2d` computes what the WGSL's MODE computes (forward with bias and the fused activation,
 * input gradient, weight gradient into one split-K slab per grid z) by im2col + the packed
 * `sgemm` (wasm/assembly/conv2d.ts). The tiling constants (SHARED, TX, TY, RM, BK, CN, RUN3,
 * APACK, NO_PAD, UNIT_STRIDE) choose how the GPU computes, not what, and are ignored; so is the
 * packed copy of A (binding 4), which the WGSL reads only as another layout of binding 0. The
 * GEMM sizes are taken from the geometry params, since RUN3 replaces `n` by a count of runs.
 *
 * Threading plan: modes 0 and 1 split the batch by images across threads (by blocks of grid
 * positions when there are fewer images than threads); mode 2 splits the split-K slabs (when
 * there are at least as many as threads) or else the columns (c, ky, kx) of dW in multiples of
 * 8. Never along a reduction: results are bitwise equal for any thread count.
 *
 * @module
 */

import type { WasmRuntime } from "../runtime.ts";
import type { WasmTensor } from "../tensor.ts";
import type { Twin, TwinFamily } from "./twin.ts";

/** Words of the geometry block read by wasm/assembly/conv2d.ts (its G_* indices). */
const G_WORDS = 32;
/** Target size of one thread's unfold buffer in floats (256 KiB: it stays in L2). */
const COL_FLOATS = 1 << 16;
/** Most positions per weight-gradient GEMM call (sgemm's depth block). */
const WGRAD_CHUNK = 256;
/** Below this many multiply-adds a convolution runs on one thread. */
const PARALLEL_MIN_MACS = 1 << 17;

interface Geometry {
  batch: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

function geometry(p: Readonly<Record<string, number>>): Geometry {
  const names = ["batch", "cin", "h", "w", "cout", "oh", "ow", "kh", "kw", "sh", "sw", "ph", "pw"];
  const g: Record<string, number> = {};
  for (const name of names) {
    const v = p[name];
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(`Kernel 'conv2d': param '${name}' is missing or not a count (${v})`);
    }
    g[name] = v;
  }
  return g as unknown as Geometry;
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
  fy: number;
  fx: number;
  oy: number;
  ox: number;
  dy: number;
  dx: number;
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
    b.fy,
    b.fx,
    b.oy,
    b.ox,
    b.dy,
    b.dx,
  ];
  ints.forEach((x, i) => v.setInt32(4 * i, x, true));
  [b.a, b.src, b.out, b.bias].forEach((x, i) => v.setUint32(4 * (16 + i), x, true));
  v.setInt32(4 * 20, b.act, true);
  v.setFloat32(4 * 21, b.beta, true);
  [b.chunk, b.srcImage, b.outImage, b.n, b.ktot, b.kchunk].forEach((x, i) =>
    v.setInt32(4 * (22 + i), x, true)
  );
}

/** `count` items split into at most `threads` contiguous ranges (multiples of `unit` but the last). */
function ranges(count: number, threads: number, unit = 1): [number, number][] {
  const step = Math.max(unit, Math.ceil(count / threads / unit) * unit);
  const out: [number, number][] = [];
  for (let i = 0; i < count; i += step) out.push([i, Math.min(count, i + step)]);
  return out;
}

const conv2dMain: Twin = (rt, [a, src, out, bias], p, constants, workgroups) => {
  const mode = constants.MODE ?? 0;
  const g = geometry(p);
  const beta = p.beta ?? 0;
  const kk = g.kh * g.kw;
  if (mode === 2) {
    wgrad(rt, g, a, src, out, beta, workgroups[2] ?? 1, p.kchunk);
    return;
  }
  if (mode !== 0 && mode !== 1) throw new Error(`Kernel 'conv2d': MODE ${mode} is not 0, 1 or 2`);
  const fwd = mode === 0;
  const m = fwd ? g.cout : g.cin;
  const k = (fwd ? g.cin : g.cout) * kk;
  const gridH = fwd ? g.oh : g.h, gridW = fwd ? g.ow : g.w;
  const npos = gridH * gridW;
  if (m === 0 || npos === 0 || g.batch === 0) return;
  const macs = m * k * npos * g.batch;
  const threads = macs < PARALLEL_MIN_MACS ? 1 : rt.threads;
  const chunk = Math.min(npos, Math.max(8, Math.floor(COL_FLOATS / Math.max(k, 1) / 8) * 8));
  const parts = g.batch >= threads
    ? ranges(g.batch, threads).map(([b0, b1]) => [b0, b1, 0, npos])
    : ranges(npos, threads, 8).map(([q0, q1]) => [0, g.batch, q0, q1]);
  const colFloats = Math.ceil((k * chunk) / 4) * 4;
  const w1Floats = fwd ? 0 : Math.ceil((m * k) / 4) * 4;
  const tmp = rt.empty([G_WORDS + w1Floats + colFloats * parts.length], "f32", "conv2d.tmp");
  try {
    const w1 = tmp.ptr + 4 * G_WORDS;
    const cols = w1 + 4 * w1Floats;
    if (!fwd) rt.kernels.conv2d_w1(a.ptr, g.cout, g.cin, kk, w1);
    writeBlock(rt, tmp.ptr, {
      m,
      k,
      planeH: fwd ? g.h : g.oh,
      planeW: fwd ? g.w : g.ow,
      gridH,
      gridW,
      kh: g.kh,
      kw: g.kw,
      sy: fwd ? g.sh : 1,
      sx: fwd ? g.sw : 1,
      fy: fwd ? 1 : -1,
      fx: fwd ? 1 : -1,
      oy: fwd ? -g.ph : g.ph,
      ox: fwd ? -g.pw : g.pw,
      dy: fwd ? 1 : g.sh,
      dx: fwd ? 1 : g.sw,
      a: fwd ? a.ptr : w1,
      src: src.ptr,
      out: out.ptr,
      bias: fwd && (constants.HAS_BIAS ?? 0) !== 0 ? bias.ptr : 0,
      act: fwd ? constants.ACT ?? 0 : 0,
      beta,
      chunk,
      srcImage: fwd ? g.cin * g.h * g.w : g.cout * g.oh * g.ow,
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

function wgrad(
  rt: WasmRuntime,
  g: Geometry,
  dy: WasmTensor,
  x: WasmTensor,
  out: WasmTensor,
  beta: number,
  splits: number,
  kchunkParam: number | undefined,
): void {
  const m = g.cout, n = g.cin * g.kh * g.kw, npos = g.oh * g.ow, ktot = g.batch * npos;
  if (m === 0 || n === 0) return;
  // The WGSL's depth range of slab z: [z·kchunk, min(k, (z + 1)·kchunk)).
  const kchunk = kchunkParam;
  if (!Number.isInteger(kchunk) || kchunk! < 1) {
    throw new Error(`Kernel 'conv2d' (MODE 2): param 'kchunk' is missing (${kchunkParam})`);
  }
  const macs = m * n * ktot;
  const threads = macs < PARALLEL_MIN_MACS ? 1 : rt.threads;
  const parts = splits >= threads || n < 8 * threads
    ? ranges(splits, threads).map(([z0, z1]) => [z0, z1, 0, n])
    : ranges(n, threads, 8).map(([n0, n1]) => [0, splits, n0, n1]);
  const chunk = Math.max(1, Math.min(WGRAD_CHUNK, npos));
  const colFloats = Math.ceil((Math.max(...parts.map((q) => q[3] - q[2])) * chunk) / 4) * 4;
  const tmp = rt.empty([G_WORDS + colFloats * parts.length], "f32", "conv2d.tmp");
  try {
    const cols = tmp.ptr + 4 * G_WORDS;
    writeBlock(rt, tmp.ptr, {
      m,
      k: 0,
      planeH: g.h,
      planeW: g.w,
      gridH: g.oh,
      gridW: g.ow,
      kh: g.kh,
      kw: g.kw,
      sy: g.sh,
      sx: g.sw,
      fy: 1,
      fx: 1,
      oy: -g.ph,
      ox: -g.pw,
      dy: 1,
      dx: 1,
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
      kchunk: kchunk!,
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
  const { batch, rows, cols, rows_pad: rowsPad } = p;
  for (
    const [name, v] of [["batch", batch], ["rows", rows], ["cols", cols], ["rows_pad", rowsPad]]
  ) {
    if (!Number.isInteger(v) || (v as number) < 0) {
      throw new Error(`Kernel 'conv2d.pack': param '${name}' is missing or not a count (${v})`);
    }
  }
  if (batch === 0 || cols === 0 || rowsPad === 0) return;
  if (rows === 0 || rowsPad % 4 !== 0) {
    throw new Error(`Kernel 'conv2d.pack': rows ${rows} and rows_pad ${rowsPad} (a multiple of 4)`);
  }
  const threads = batch * cols * rowsPad < PARALLEL_MIN_MACS ? 1 : rt.threads;
  const parts = batch >= threads
    ? ranges(batch, threads).map(([t0, t1]) => [t0, t1, 0, cols])
    : ranges(cols, threads).map(([j0, j1]) => [0, batch, j0, j1]);
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
