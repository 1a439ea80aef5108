/**
 * 2-D convolution, PyTorch `torch.nn.Conv2d` semantics (NCHW, OIHW weights, zero padding,
 * groups = 1, dilation = 1): the three implicit-GEMM kernels of shaders/conv2d.wgsl as plain
 * functions ({@linkcode conv2dForward}, {@linkcode conv2dInputGrad}, {@linkcode conv2dWeightGrad})
 * and the {@linkcode Conv2d} layer built on them.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import type { Conv2dGeometry } from "../_conv_geometry.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import { Activation } from "./activation.ts";
import {
  cachedInput,
  channelSum,
  checkBatch,
  checkGradShape,
  checkTensor,
  pair,
  reuse,
  sameShape,
  sumParts,
} from "./_util.ts";
import convSrc from "../../shaders/conv2d.wgsl" with { type: "text" };
import packSrc from "../../shaders/conv2d_pack.wgsl" with { type: "text" };

const CONV: Kernel = { name: "conv2d", code: convSrc };
const PACK: Kernel = { name: "conv2d.pack", code: packSrc };

/** How the implicit GEMM is tiled (see the threading plan in shaders/conv2d.wgsl). */
export interface Conv2dTiling {
  /** Stage slabs in workgroup memory (GPUs) or read operands directly (CPU adapters). */
  shared: boolean;
  /** Threads per workgroup along the GEMM columns (spatial positions). */
  tx: number;
  /** Threads per workgroup along the GEMM rows (channels). */
  ty: number;
  /** Rows per thread, 1..8 shared, 1..16 direct (each thread computes rm rows × 4·cn columns). */
  rm: number;
  /** Depth of a staged slab (shared only); must divide tx·ty, as must 4·tx. */
  bk: number;
  /**
   * Groups of four columns per thread, 1..4 (direct loads only; default 1): each thread then
   * computes rm rows × 4·cn columns, reusing every A value for 4·cn columns.
   */
  cn?: number;
  /**
   * Direct loads only, unit stride along x and a 3-wide kernel (forward and input gradient: 3-
   * or 5-wide) (default: on where it applies): forward and input gradient take each column
   * group as a run of four neighbouring x positions, whose kw kx steps share 4 + kw - 1 input
   * loads; the weight gradient takes it as a (c, ky) triple of kx columns whose inputs slide by one per depth step, one load each (see
   * RUN3 in shaders/conv2d.wgsl).
   */
  run?: boolean;
  /**
   * With `run` in the forward, a 3×3 kernel, unit stride and cn 4 (default: on where the
   * output height is a multiple of 4): a thread's four column groups are one run of x positions in four
   * neighbouring rows, which share their input rows, 6 row loads per channel instead of 12
   * (ROWS in shaders/conv2d.wgsl).
   */
  rows?: boolean;
  /**
   * With `run` in the forward (padded) and the input gradient, 5-wide kernels too (default: on
   * where it applies): `RUNW` = 5 in shaders/conv2d.wgsl.
   */
  wide?: boolean;
  /**
   * With `run` in the weight gradient, packed dy, ty 1 and rm 16 (default: on where it
   * applies): the vec4 lanes run over four output channels instead of the three kx columns, so
   * no lane multiplies a zero, and each thread takes five (c, ky) triples instead of four
   * (TRIO in shaders/conv2d.wgsl).
   */
  trio?: boolean;
  /**
   * With `run`, 1 row per workgroup row and rm a multiple of 4 (default: on where it applies):
   * the weights are first packed (transposed, rows padded to 4) so that four rows of A are one
   * vec4 load (APACK in shaders/conv2d.wgsl).
   */
  pack?: boolean;
}

/** Stride and zero padding, each a number or a `[height, width]` pair. */
export interface Conv2dGeometryOptions {
  /** Default 1. */
  stride?: number | readonly [number, number];
  /** Default 0. */
  padding?: number | readonly [number, number];
}

/**
 * The tiling used for a GEMM with `m` rows (output channels, or input channels for the input
 * gradient) and `n` columns. CPU adapters: direct loads, 8 lanes along the columns, up to 16 rows
 * × 16 columns per thread (rm rows × 4·cn columns; fewer when m or n is small). Measured on Mesa
 * llvmpipe (256-bit lanes, 2 cores) with interleaved runs: 8 × 16 runs DDNet's 64- and
 * 128-channel 3×3 convolutions 1.5-1.7x faster than the former 8 × 4 in all three modes, as it
 * loads each weight once per 16 gathered inputs instead of 4; 16 rows add 0-30% (each gathered
 * input then feeds 16 rows). Without padding, modes 0 and 2 skip the bounds tests (NO_PAD).
 * Where they apply, A is packed for vec4 loads (`pack`) and 3-wide kernels take the run path
 * (`run`): DDNet b64 training 1.34x faster end to end (see shaders/conv2d.wgsl).
 * GPUs: 256 threads, workgroup tiles from 8×128 (few channels, e.g. LeNet's 6) to 64×64.
 * @param rt runtime (its adapter decides)
 * @param m GEMM rows
 * @param n GEMM columns (default: many)
 * @returns the tiling
 */
export function conv2dTiling(rt: Backend, m: number, n = Infinity): Conv2dTiling {
  if (rt.isCpuAdapter) {
    // Few distinct variants (each is a pipeline compiled on first use, ~0.5-1.5 s on llvmpipe).
    const rm = [2, 4, 6, 8].find((r) => m <= r) ?? 16;
    const cn = n >= 128 ? 4 : n >= 64 ? 2 : 1;
    // The wider run-path variants (5-wide kernels, four-row runs, five triples) were measured and
    // tested on Mesa's llvmpipe/lavapipe; Chromium's SwiftShader loses the device on the 5-wide
    // one (its GPU process drops the instance: tests/demo_test.ts, the MNIST page), so other CPU
    // adapters keep the 3-wide run path of before.
    const mesa = /llvmpipe|lavapipe/i.test(rt.description);
    return {
      shared: false,
      tx: 8,
      ty: 1,
      rm,
      bk: 16,
      cn,
      ...(mesa ? {} : { wide: false, rows: false, trio: false }),
    };
  }
  if (m <= 8) return { shared: true, tx: 32, ty: 8, rm: 1, bk: 16 };
  if (m <= 16) return { shared: true, tx: 32, ty: 8, rm: 2, bk: 16 };
  if (m <= 32) return { shared: true, tx: 16, ty: 16, rm: 2, bk: 16 };
  return { shared: true, tx: 16, ty: 16, rm: 4, bk: 16 };
}

/** The device tiling with `override` applied; a shared tiling without `cn` gets cn = 1. */
function tilingFor(
  rt: Backend,
  m: number,
  n: number,
  override: Partial<Conv2dTiling> | undefined,
): Conv2dTiling {
  const t = { ...conv2dTiling(rt, m, n), ...override };
  if (override?.shared !== undefined && override.cn === undefined) {
    t.cn = override.shared ? 1 : conv2dTiling(rt, m, n).cn ?? 1;
  }
  return t;
}

/** Output height and width of a convolution (or pooling) window sweep. */
export function conv2dOutputSize(
  h: number,
  w: number,
  kernel: readonly [number, number],
  stride: readonly [number, number],
  padding: readonly [number, number],
): [number, number] {
  return [
    Math.floor((h + 2 * padding[0] - kernel[0]) / stride[0]) + 1,
    Math.floor((w + 2 * padding[1] - kernel[1]) / stride[1]) + 1,
  ];
}

function geometry(
  op: string,
  xShape: readonly number[],
  wShape: readonly number[],
  opts: Conv2dGeometryOptions,
): Conv2dGeometry {
  const [sh, sw] = pair(opts.stride ?? 1, "stride", op, 1);
  const [ph, pw] = pair(opts.padding ?? 0, "padding", op, 0);
  if (xShape.length !== 4 || wShape.length !== 4 || xShape[1] !== wShape[1]) {
    throw new Error(
      `${op}: input ${fmtShape(xShape)} must be (B, C, H, W) and weight ${fmtShape(wShape)} ` +
        `(O, C, kh, kw) with the same C`,
    );
  }
  const [batch, cin, h, w] = xShape;
  const [cout, , kh, kw] = wShape;
  const [oh, ow] = conv2dOutputSize(h, w, [kh, kw], [sh, sw], [ph, pw]);
  if (oh < 1 || ow < 1) {
    throw new Error(
      `${op}: input ${h}x${w} with padding ${ph},${pw} is smaller than the ${kh}x${kw} kernel`,
    );
  }
  return { batch, cin, h, w, cout, oh, ow, kh, kw, sh, sw, ph, pw };
}

/**
 * Does this convolution take the RUN3 path of shaders/conv2d.wgsl (direct loads; kw = 3, or 5 in
 * modes 0 and 1)?
 */
function runPath(g: Conv2dGeometry, mode: 0 | 1 | 2, t: Conv2dTiling): boolean {
  // Mode 2 runs over (c, ky) triples: with few of them (DDNet's first layer has 9) most lanes of
  // the last column block idle, and it measured slower than the plain gathers.
  // kw = 5, measured on llvmpipe with LeNet's layers (interleaved, GPU time per dispatch): input
  // gradient 2.2x (conv1, 1 channel) and 1.4x (conv2) faster, padded forward 1.4x (conv1); the
  // unpadded forward (conv2, 16 rows, APACK) 1.6x slower, so it keeps the gathers.
  const width = g.kw === 3 ||
    (g.kw === 5 && (t.wide ?? true) && (mode === 1 || (mode === 0 && g.ph + g.pw > 0)));
  return !t.shared && (t.run ?? true) && width && g.sw === 1 && (mode !== 1 || g.sh === 1) &&
    (mode !== 2 || g.cin * g.kh >= 4 * t.tx * (t.cn ?? 1));
}

/**
 * Does a run-path forward take its runs four rows at a time (ROWS in
 * shaders/conv2d.wgsl)?
 */
function rowsPath(g: Conv2dGeometry, mode: 0 | 1 | 2, t: Conv2dTiling): boolean {
  // Measured on llvmpipe (DDNet b64, GPU time per dispatch), one process per code version,
  // alternated, machine loaded: forward 1.1-1.2x with 28 and 12 output rows, 0.9-1.1x with 10
  // (two rows of every twelve computed for nothing), so by default only where OH is a multiple
  // of 4. (Interleaved in one process the gain read 1.3-1.5x; the separate runs are what the
  // training bench sees.) The input gradient (bounds-tested loads) gained 0-4 % where H is a
  // multiple of 4 and lost up to 10 % where it is not, so it keeps one row per group.
  return (t.rows ?? g.oh % 4 === 0) && mode === 0 && g.kh === 3 && g.kw === 3 && g.sh === 1 &&
    g.sw === 1 && (t.cn ?? 1) === 4;
}

function launch(
  rt: Backend,
  mode: 0 | 1 | 2,
  g: Conv2dGeometry,
  a: Tensor,
  src: Tensor,
  out: Tensor,
  bias: Tensor | null,
  gemm: { m: number; n: number; k: number; splits: number; kchunk: number },
  beta: number,
  tiling: Conv2dTiling,
  act = 0,
): void {
  const t = tiling;
  const cn = t.cn ?? 1;
  const bm = t.rm * t.ty, bn = 4 * cn * t.tx, nt = t.tx * t.ty;
  if (!(Number.isInteger(cn) && cn >= 1 && cn <= 4) || (t.shared && cn !== 1)) {
    throw new Error(`conv2d: tiling ${JSON.stringify(t)}: cn must be in 1..4, and 1 when shared`);
  }
  if (t.shared && (nt % bn !== 0 || nt % t.bk !== 0)) {
    throw new Error(`conv2d: tiling ${JSON.stringify(t)}: 4·tx and bk must divide tx·ty`);
  }
  if (!(Number.isInteger(t.rm) && t.rm >= 1 && t.rm <= (t.shared ? 8 : 16))) {
    throw new Error(`conv2d: tiling ${JSON.stringify(t)}: rm must be in 1..8 (1..16 unshared)`);
  }
  const { m, n, k, splits, kchunk } = gemm;
  const run = runPath(g, mode, t);
  const rows = run && rowsPath(g, mode, t);
  const pack = !t.shared && (t.pack ?? true) && t.ty === 1 && t.rm % 4 === 0;
  // Mode 2 on the run path with packed dy, 16 rows and cn 4: five triples per thread (TRIO).
  const trio = run && mode === 2 && pack && t.rm === 16 && cn === 4 && (t.trio ?? true);
  // Column units of the grid: runs of 4 x positions (modes 0, 1) or (c, ky) triples (mode 2).
  const cols = !run
    ? n
    : rows
    ? g.batch * (mode === 0
      ? Math.ceil(g.oh / 4) * Math.ceil(g.ow / 4)
      : Math.ceil(g.h / 4) * Math.ceil(g.w / 4))
    : mode === 0
    ? g.batch * g.oh * Math.ceil(g.ow / 4)
    : mode === 1
    ? g.batch * g.h * Math.ceil(g.w / 4)
    : g.cin * g.kh;
  if (m === 0 || n === 0) return;
  let packed: Tensor | null = null;
  if (pack) {
    const mPad = Math.ceil(m / 4) * 4;
    packed = rt.empty([k * mPad], "f32", "conv2d.packed");
    const [batch, rows, cols] = mode === 0
      ? [1, m, k]
      : mode === 1
      ? [g.cout, g.cin, g.kh * g.kw]
      : [g.batch, g.cout, g.oh * g.ow];
    rt.dispatch(PACK, {
      bindings: [a, packed],
      params: { batch, rows, cols, rows_pad: mPad },
      workgroups: rt.grid(k * mPad / 4, 64),
    });
  }
  // The vec4 binding of `ap` needs 16 bytes even where APACK is off.
  const ap = packed ?? [a, src, out].find((x) => x.capacity >= 16) ?? rt.placeholder(0);
  rt.dispatch(CONV, {
    bindings: [a, src, out, bias ?? a, ap],
    params: { ...g, m, n: run && mode !== 2 ? cols : n, k, kchunk, beta },
    workgroups: [
      Math.ceil(cols / (rows ? t.tx : trio ? 5 * t.tx : run ? cn * t.tx : bn)),
      Math.ceil(m / bm),
      splits,
    ],
    constants: {
      MODE: mode,
      SHARED: t.shared ? 1 : 0,
      TX: t.tx,
      TY: t.ty,
      RM: t.rm,
      BK: t.bk,
      HAS_BIAS: bias ? 1 : 0,
      UNIT_STRIDE: g.sh === 1 && g.sw === 1 ? 1 : 0,
      CN: cn,
      NO_PAD: g.ph === 0 && g.pw === 0 && !t.shared && mode !== 1 ? 1 : 0,
      RUN3: run ? 1 : 0,
      RUNW: run && mode !== 2 ? g.kw : 3,
      APACK: pack ? 1 : 0,
      ROWS: rows ? 1 : 0,
      TRIO: trio ? 1 : 0,
      ACT: act,
    },
  });
  packed?.dispose();
}

function checkOut(op: string, out: Tensor, shape: readonly number[], inputs: Tensor[]): void {
  checkTensor(op, out, "out");
  if (!sameShape(out.shape, shape)) {
    throw new Error(`${op}: out ${fmtShape(out.shape)} must be ${fmtShape(shape)}`);
  }
  for (const t of inputs) {
    if (t.storage === out.storage) {
      throw new Error(`${op}: out must not share its buffer with an input`);
    }
  }
}

/** Activations {@linkcode conv2dForward} can apply in its output kernel. */
export type Conv2dActivation = "relu" | "tanh" | "sigmoid";

/** ACT codes of shaders/conv2d.wgsl. */
const ACT_CODE: Record<Conv2dActivation, number> = { relu: 1, tanh: 2, sigmoid: 3 };

/** Options of {@linkcode conv2dForward}. */
export interface Conv2dForwardOptions extends Conv2dGeometryOptions {
  /** (O,) f32, added per output channel. */
  bias?: Tensor | null;
  /**
   * Applied to `conv + bias` in the same kernel (PyTorch's relu, tanh, sigmoid, by the formulas
   * of the elementwise kernels). Default none.
   */
  activation?: Conv2dActivation | null;
  /** (B, O, OH, OW) f32 destination. */
  out?: Tensor;
  /** Override the tiling. */
  tiling?: Partial<Conv2dTiling>;
}

/**
 * `y = conv2d(x, W) + bias` (cross-correlation, as PyTorch), optionally `σ(conv2d(x, W) + bias)`.
 * @param rt runtime
 * @param x (B, C, H, W) f32
 * @param weight (O, C, kh, kw) f32
 * @param opts stride, padding, bias (O,), activation, out, tiling
 * @returns (B, O, OH, OW) f32, OH = floor((H + 2·ph - kh) / sh) + 1: `opts.out` or a new tensor
 *   the caller must dispose
 * @example
 * ```ts
 * const y = conv2dForward(rt, x, w, { stride: 2, padding: 1, bias: b });
 * ```
 */
export function conv2dForward(
  rt: Backend,
  x: Tensor,
  weight: Tensor,
  opts: Conv2dForwardOptions = {},
): Tensor {
  const op = "conv2dForward";
  checkTensor(op, x, "input");
  checkTensor(op, weight, "weight");
  const g = geometry(op, x.shape, weight.shape, opts);
  const bias = opts.bias ?? null;
  if (bias) {
    checkTensor(op, bias, "bias");
    if (!sameShape(bias.shape, [g.cout])) {
      throw new Error(`${op}: bias ${fmtShape(bias.shape)} must be [${g.cout}]`);
    }
  }
  const act = opts.activation ? ACT_CODE[opts.activation] : 0;
  if (act === undefined) {
    throw new Error(
      `${op}: unknown activation '${opts.activation}' (use ${Object.keys(ACT_CODE).join(", ")})`,
    );
  }
  const shape = [g.batch, g.cout, g.oh, g.ow];
  if (opts.out) checkOut(op, opts.out, shape, [x, weight, ...(bias ? [bias] : [])]);
  const out = opts.out ?? rt.empty(shape, "f32", "conv2d.out");
  const k = g.cin * g.kh * g.kw;
  const tiling = tilingFor(rt, g.cout, g.batch * g.oh * g.ow, opts.tiling);
  launch(
    rt,
    0,
    g,
    weight,
    x,
    out,
    bias,
    { m: g.cout, n: g.batch * g.oh * g.ow, k, splits: 1, kchunk: k },
    0,
    tiling,
    act,
  );
  return out;
}

/** Options of {@linkcode conv2dInputGrad}. */
export interface Conv2dInputGradOptions extends Conv2dGeometryOptions {
  /** (B, C, H, W) of the forward input (H, W are not recoverable from dy when stride > 1). */
  inputShape: readonly number[];
  /** (B, C, H, W) f32 destination. */
  out?: Tensor;
  /** Override the tiling. */
  tiling?: Partial<Conv2dTiling>;
}

/**
 * `dx = conv2dᵀ(dy, W)`: the input gradient (a transposed convolution); also the vector-Jacobian
 * product of the convolution.
 * @param rt runtime
 * @param dy (B, O, OH, OW) f32
 * @param weight (O, C, kh, kw) f32
 * @param opts inputShape (required), stride, padding, out, tiling
 * @returns (B, C, H, W) f32: `opts.out` or a new tensor the caller must dispose
 */
export function conv2dInputGrad(
  rt: Backend,
  dy: Tensor,
  weight: Tensor,
  opts: Conv2dInputGradOptions,
): Tensor {
  const op = "conv2dInputGrad";
  checkTensor(op, dy, "dy");
  checkTensor(op, weight, "weight");
  const g = geometry(op, opts.inputShape, weight.shape, opts);
  if (!sameShape(dy.shape, [g.batch, g.cout, g.oh, g.ow])) {
    throw new Error(
      `${op}: dy ${fmtShape(dy.shape)} must be ${
        fmtShape([g.batch, g.cout, g.oh, g.ow])
      } for input ` +
        `${fmtShape(opts.inputShape)} and weight ${fmtShape(weight.shape)}`,
    );
  }
  const shape = [g.batch, g.cin, g.h, g.w];
  if (opts.out) checkOut(op, opts.out, shape, [dy, weight]);
  const out = opts.out ?? rt.empty(shape, "f32", "conv2d.dx");
  const k = g.cout * g.kh * g.kw;
  const tiling = tilingFor(rt, g.cin, g.batch * g.h * g.w, opts.tiling);
  launch(
    rt,
    1,
    g,
    weight,
    dy,
    out,
    null,
    { m: g.cin, n: g.batch * g.h * g.w, k, splits: 1, kchunk: k },
    0,
    tiling,
  );
  return out;
}

/** Options of {@linkcode conv2dWeightGrad}. */
export interface Conv2dWeightGradOptions extends Conv2dGeometryOptions {
  /** (O, C, kh, kw) f32, updated: `dWeight = beta·dWeight + Σ dy ⊗ x`. */
  dWeight: Tensor;
  /** (O,) f32, updated: `dBias = beta·dBias + Σ dy`. */
  dBias?: Tensor | null;
  /** Scale of the previous gradient. Default 1 (accumulate). */
  beta?: number;
  /** Override the tiling. */
  tiling?: Partial<Conv2dTiling>;
  /** Number of K splits (default: enough workgroups for the device). */
  splits?: number;
}

/**
 * Weight (and bias) gradient of a convolution, accumulated: `dW[o,c,ky,kx] += Σ_{b,oy,ox}
 * dy[b,o,oy,ox] x[b,c,oy·sh-ph+ky,ox·sw-pw+kx]`, `db[o] += Σ dy[b,o,·,·]`. With `x` replaced by
 * a tangent this is also the `b ⊗ r` term of the Jacobian-regularizer gradient (DESIGN.md step 4).
 * Deterministic: K is split over workgroups and the splits are summed in a fixed order.
 * @param rt runtime
 * @param dy (B, O, OH, OW) f32
 * @param x (B, C, H, W) f32, the forward input (or a tangent of it)
 * @param opts dWeight (required, updated in place), dBias, beta, stride, padding
 */
export function conv2dWeightGrad(
  rt: Backend,
  dy: Tensor,
  x: Tensor,
  opts: Conv2dWeightGradOptions,
): void {
  const op = "conv2dWeightGrad";
  checkTensor(op, dy, "dy");
  checkTensor(op, x, "input");
  checkTensor(op, opts.dWeight, "dWeight");
  const g = geometry(op, x.shape, opts.dWeight.shape, opts);
  if (!sameShape(dy.shape, [g.batch, g.cout, g.oh, g.ow])) {
    throw new Error(
      `${op}: dy ${fmtShape(dy.shape)} must be ${
        fmtShape([g.batch, g.cout, g.oh, g.ow])
      } for input ` +
        `${fmtShape(x.shape)} and weight ${fmtShape(opts.dWeight.shape)}`,
    );
  }
  for (const t of [dy, x]) {
    if (t.storage === opts.dWeight.storage) {
      throw new Error(`${op}: dWeight must not share its buffer with an input`);
    }
  }
  const beta = opts.beta ?? 1;
  const m = g.cout, n = g.cin * g.kh * g.kw, k = g.batch * g.oh * g.ow;
  const tiling = tilingFor(rt, m, n, opts.tiling);
  const tiles = Math.ceil(m / (tiling.rm * tiling.ty)) *
    Math.ceil(n / (4 * (tiling.cn ?? 1) * tiling.tx));
  const target = rt.isCpuAdapter ? 16 : 512;
  let splits = opts.splits ??
    Math.max(1, Math.min(Math.ceil(target / tiles), Math.floor(k / (8 * tiling.bk))));
  // The run path splits K into whole rows of dy.
  const unit = runPath(g, 2, tiling) ? g.ow : tiling.bk;
  const kchunk = Math.max(unit, Math.ceil(Math.ceil(k / splits) / unit) * unit);
  splits = Math.max(1, Math.ceil(k / kchunk));
  if (splits === 1) {
    launch(
      rt,
      2,
      g,
      dy,
      x,
      opts.dWeight,
      null,
      { m, n, k, splits: 1, kchunk: Math.max(k, 1) },
      beta,
      tiling,
    );
  } else {
    const parts = rt.empty([splits, m, n], "f32", "conv2d.splitk");
    launch(rt, 2, g, dy, x, parts, null, { m, n, k, splits, kchunk }, 0, tiling);
    sumParts(rt, parts, splits, opts.dWeight, beta);
    parts.dispose();
  }
  const db = opts.dBias;
  if (db) {
    checkTensor(op, db, "dBias");
    if (!sameShape(db.shape, [g.cout])) {
      throw new Error(`${op}: dBias ${fmtShape(db.shape)} must be [${g.cout}]`);
    }
    channelSum(rt, dy, g.batch, g.cout, g.oh * g.ow, db, beta);
  }
}

/** Options of {@linkcode Conv2d}. */
export interface Conv2dOptions extends Conv2dGeometryOptions {
  /** Learn an additive bias per output channel. Default true. */
  bias?: boolean;
}

/**
 * `torch.nn.Conv2d(in, out, kernel, stride, padding, bias)`. Parameters `weight` (O, C, kh, kw)
 * and `bias` (O,) are created zero-filled (initializers set them), each with a `grad`.
 *
 * `backward(dy)` = {@linkcode Conv2d.inputGrad} + {@linkcode Conv2d.weightGrad} at the cached
 * input; `jvp(tx)` is the forward without bias.
 */
export class Conv2d implements Layer {
  training = true;
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly dWeight: Tensor;
  readonly dBias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  #input: Tensor | null = null;
  #inputShape: number[] | null = null;
  #y: Tensor | null = null;
  #dx: Tensor | null = null;
  #ty: Tensor | null = null;

  /**
   * @param rt runtime
   * @param name module path ("conv1", "features.0")
   * @param inChannels C
   * @param outChannels O
   * @param kernelSize k or [kh, kw]
   * @param options stride, padding (numbers or pairs), bias (default true)
   */
  constructor(
    readonly rt: Backend,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | readonly [number, number],
    options: Conv2dOptions = {},
  ) {
    const where = `${name || "conv2d"} (Conv2d)`;
    for (const [what, v] of [["inChannels", inChannels], ["outChannels", outChannels]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new Error(`${where}: ${what} must be a positive integer, got ${v}`);
      }
    }
    this.kernelSize = pair(kernelSize, "kernel size", where, 1);
    this.stride = pair(options.stride ?? 1, "stride", where, 1);
    this.padding = pair(options.padding ?? 0, "padding", where, 0);
    const [kh, kw] = this.kernelSize;
    const wShape = [outChannels, inChannels, kh, kw];
    const n = name ? `${name}.` : "";
    this.weight = rt.zeros(wShape, "f32", `${n}weight`);
    this.dWeight = rt.zeros(wShape, "f32", `${n}weight.grad`);
    const hasBias = options.bias ?? true;
    this.bias = hasBias ? rt.zeros([outChannels], "f32", `${n}bias`) : null;
    this.dBias = hasBias ? rt.zeros([outChannels], "f32", `${n}bias.grad`) : null;
  }

  /** "conv2 (Conv2d 6->16, k5)" */
  describe(): string {
    const [kh, kw] = this.kernelSize;
    const k = kh === kw ? `k${kh}` : `k${kh}x${kw}`;
    const s = this.stride[0] === this.stride[1] ? this.stride[0] : this.stride.join("x");
    const p = this.padding[0] === this.padding[1] ? this.padding[0] : this.padding.join("x");
    return `${this.name || "conv2d"} (Conv2d ${this.inChannels}->${this.outChannels}, ${k}` +
      `${s !== 1 ? `, s${s}` : ""}${p !== 0 ? `, p${p}` : ""})`;
  }

  /** (B, C, H, W) -> (B, O, OH, OW). */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== 4 || inputShape[1] !== this.inChannels) {
      throw new Error(
        `${this.describe()}: expected input [B,${this.inChannels},H,W], got ${
          fmtShape(inputShape)
        }`,
      );
    }
    checkBatch(this.describe(), inputShape);
    const [oh, ow] = conv2dOutputSize(
      inputShape[2],
      inputShape[3],
      this.kernelSize,
      this.stride,
      this.padding,
    );
    if (oh < 1 || ow < 1) {
      throw new Error(
        `${this.describe()}: input ${fmtShape(inputShape)} is smaller than the ${
          this.kernelSize.join("x")
        } ` +
          `kernel with padding ${this.padding.join(",")}`,
      );
    }
    return [inputShape[0], this.outChannels, oh, ow];
  }

  #geo(): Conv2dGeometryOptions {
    return { stride: this.stride, padding: this.padding };
  }

  /** @param x (B, C, H, W) f32; @returns layer-owned (B, O, OH, OW) */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    const shape = this.outputShape(x.shape);
    this.#y = reuse(this.rt, this.#y, shape, `${this.name}.out`);
    conv2dForward(this.rt, x, this.weight, { ...this.#geo(), bias: this.bias, out: this.#y });
    this.#input = x;
    this.#inputShape = [...x.shape];
    return this.#y;
  }

  /**
   * The forward of this layer and of `next` in one kernel, where `next` is an activation whose
   * derivatives come from its output (ReLU, Tanh, Sigmoid: the pre-activation is not needed, so
   * none is stored): `σ(conv(x) + b)` is written into `next`'s output, and both layers cache
   * what their backward and jvp need, as if each had run its forward. Sequential.forward calls
   * it for each layer followed by another.
   * @param x (B, C, H, W) f32
   * @param next the layer after this one
   * @returns `next`'s layer-owned output, or null where the pair does not fuse (then nothing
   *   ran)
   */
  forwardFused(x: Tensor, next: Layer): Tensor | null {
    if (!(next instanceof Activation)) return null;
    const kind = next.outputDerivedKind;
    if (kind !== "relu" && kind !== "tanh" && kind !== "sigmoid") return null;
    checkTensor(this.describe(), x, "input");
    const shape = this.outputShape(x.shape);
    const y = next.forwardWith(shape, (out) =>
      conv2dForward(this.rt, x, this.weight, {
        ...this.#geo(),
        bias: this.bias,
        activation: kind,
        out,
      }));
    this.#input = x;
    this.#inputShape = [...x.shape];
    return y;
  }

  #cachedInput(what: string): Tensor {
    return cachedInput(this.describe(), this.#inputShape ? this.#input : null, what);
  }

  /** @param dy (B, O, OH, OW) f32; @returns layer-owned dx; accumulates weight.grad, bias.grad */
  backward(dy: Tensor): Tensor {
    const x = this.#cachedInput("backward");
    const dx = this.inputGrad(dy);
    this.weightGrad(dy, x);
    return dx;
  }

  /**
   * `backward` without the input gradient: accumulates dW and db at the cached input. For the
   * first layer of a model in training, whose input gradient nobody reads.
   * @param dy gradient of the output
   */
  paramGrad(dy: Tensor): void {
    this.weightGrad(dy, this.#cachedInput("paramGrad"));
  }

  /**
   * The input gradient alone (no parameter gradients): `Wᵀ dy` at the last forward's geometry.
   * @param dy (B, O, OH, OW) f32
   * @returns layer-owned (B, C, H, W), the same buffer `backward` returns
   */
  inputGrad(dy: Tensor): Tensor {
    this.#cachedInput("inputGrad");
    const inputShape = this.#inputShape!;
    checkTensor(this.describe(), dy, "gradient");
    checkGradShape(this.describe(), dy, this.outputShape(inputShape));
    this.#dx = reuse(this.rt, this.#dx, inputShape, `${this.name}.dx`);
    conv2dInputGrad(this.rt, dy, this.weight, { ...this.#geo(), inputShape, out: this.#dx });
    return this.#dx;
  }

  /**
   * Accumulates `weight.grad += dy ⊗ x` and `bias.grad += Σ dy` for any `x` of the input's shape
   * (the forward input, or a tangent for the Jacobian regularizer).
   * @param dy (B, O, OH, OW) f32
   * @param x (B, C, H, W) f32
   * @param opts `bias: false` leaves bias.grad alone
   */
  weightGrad(dy: Tensor, x: Tensor, opts: { bias?: boolean } = {}): void {
    checkTensor(this.describe(), x, "input");
    checkTensor(this.describe(), dy, "gradient");
    checkGradShape(this.describe(), dy, this.outputShape(x.shape));
    conv2dWeightGrad(this.rt, dy, x, {
      ...this.#geo(),
      dWeight: this.dWeight,
      dBias: (opts.bias ?? true) ? this.dBias : null,
    });
  }

  /**
   * In the Jacobian recipe: the input gradient alone going down, and `dW += b ⊗ r` (the
   * weight-gradient kernel fed the backward signal and the tangent, no bias term: the bias does
   * not enter the Jacobian).
   */
  readonly jacobian: JacobianRole = {
    vjp: (b) => this.inputGrad(b),
    tangent: (b, r) => {
      this.weightGrad(b, r, { bias: false });
      return null;
    },
  };

  /** @param tx (B, C, H, W) tangent; @returns layer-owned `W * tx` (no bias) */
  jvp(tx: Tensor): Tensor {
    checkTensor(this.describe(), tx, "tangent");
    const shape = this.outputShape(tx.shape);
    this.#ty = reuse(this.rt, this.#ty, shape, `${this.name}.jvp`);
    conv2dForward(this.rt, tx, this.weight, { ...this.#geo(), out: this.#ty });
    return this.#ty;
  }

  /** `weight` (O, C, kh, kw) and `bias` (O,). */
  params(): Param[] {
    const n = this.name ? `${this.name}.` : "";
    const ps: Param[] = [{
      name: `${n}weight`,
      value: this.weight,
      grad: this.dWeight,
      kind: "weight",
    }];
    if (this.bias) ps.push({ name: `${n}bias`, value: this.bias, grad: this.dBias!, kind: "bias" });
    return ps;
  }

  dispose(): void {
    for (
      const t of [this.weight, this.bias, this.dWeight, this.dBias, this.#y, this.#dx, this.#ty]
    ) t?.dispose();
    this.#input = null;
  }
}
