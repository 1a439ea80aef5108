/**
 * Parameter initializers with PyTorch 1.13's formulas (`torch.nn.init`,
 * `nn.Linear` / `nn.Conv*d.reset_parameters`), seeded and reproducible.
 *
 * They run on the host and return a `Float32Array` to upload
 * (`rt.upload(data, shape)` or `rt.write(tensor, data)`): initialization
 * happens once per model, is tiny next to training, and orthogonal init
 * needs a QR factorization that is simpler and more accurate in float64 on
 * the CPU. The random numbers come from Philox4x32-10 (`./philox.ts`), a
 * counter-based generator, so a value depends only on (seed, stream, index)
 * and a GPU kernel could reproduce it. The streams are not PyTorch's: values
 * match torch in distribution, not bit for bit.
 *
 * Fans follow `torch.nn.init._calculate_fan_in_and_fan_out`: for a weight of
 * shape (out, in, ...kernel) (Linear `[out, in]`, Conv OIHW),
 * `fanIn = in * prod(kernel)` and `fanOut = out * prod(kernel)`.
 *
 * @example
 * ```ts
 * const w = rt.upload(kaimingNormal([64, 3, 3, 3], { seed: 1, nonlinearity: "relu" }), [64, 3, 3, 3]);
 * const b = rt.upload(defaultBias([64, 3, 3, 3], { seed: 1, stream: 1 }), [64]);
 * ```
 *
 * @module
 */

import { randomNormal, type RandomSource, randomUniform } from "./philox.ts";

export type { RandomSource } from "./philox.ts";

/** Nonlinearities known to {@linkcode calculateGain} (torch's names). */
export type Nonlinearity =
  | "linear"
  | "conv1d"
  | "conv2d"
  | "conv3d"
  | "conv_transpose1d"
  | "conv_transpose2d"
  | "conv_transpose3d"
  | "sigmoid"
  | "tanh"
  | "relu"
  | "leaky_relu"
  | "selu";

const LINEAR_FNS = [
  "linear",
  "conv1d",
  "conv2d",
  "conv3d",
  "conv_transpose1d",
  "conv_transpose2d",
  "conv_transpose3d",
  "sigmoid",
];

/**
 * The recommended gain for a nonlinearity (torch.nn.init.calculate_gain):
 * 1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
 * sqrt(2 / (1 + slope²)) for leaky_relu (slope `param`, default 0.01), 3/4 for selu.
 * @param nonlinearity torch's name
 * @param param leaky_relu's negative slope
 * @returns the gain
 */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  if (LINEAR_FNS.includes(nonlinearity)) return 1;
  switch (nonlinearity) {
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.sqrt(2);
    case "leaky_relu": {
      const slope = param ?? 0.01;
      if (!Number.isFinite(slope)) {
        throw new Error(`calculateGain: negative_slope ${param} is not a number`);
      }
      return Math.sqrt(2 / (1 + slope ** 2));
    }
    case "selu":
      return 3 / 4;
  }
  throw new Error(`calculateGain: unsupported nonlinearity '${nonlinearity}'`);
}

/**
 * Fan-in and fan-out of a weight shape (torch's `_calculate_fan_in_and_fan_out`).
 * @param shape (out, in, ...kernel), at least 2 dimensions
 * @throws Error for fewer than 2 dimensions
 */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new Error(
      `Fan in and fan out can not be computed for shape [${shape}] with fewer than 2 dimensions`,
    );
  }
  let receptive = 1;
  for (const s of shape.slice(2)) receptive *= s;
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`Invalid shape [${shape}]`);
    n *= d;
  }
  return n;
}

function toF32(x: ArrayLike<number>, scale = 1, shift = 0): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = shift + scale * x[i];
  return out;
}

/** Options of {@linkcode uniform}. */
export interface UniformOptions extends RandomSource {
  /** Default 0. */
  low?: number;
  /** Default 1. */
  high?: number;
}

/**
 * U(low, high) (torch.nn.init.uniform_).
 * @param shape any shape
 * @param opts bounds, seed, stream
 * @returns `numel(shape)` values, row-major
 */
export function uniform(shape: readonly number[], opts: UniformOptions): Float32Array {
  const { low = 0, high = 1 } = opts;
  return toF32(randomUniform(numel(shape), opts), high - low, low);
}

/** Options of {@linkcode normal}. */
export interface NormalOptions extends RandomSource {
  /** Default 0. */
  mean?: number;
  /** Default 1. */
  std?: number;
}

/**
 * N(mean, std²) (torch.nn.init.normal_).
 * @param shape any shape
 * @param opts mean, standard deviation, seed, stream
 * @returns `numel(shape)` values, row-major
 */
export function normal(shape: readonly number[], opts: NormalOptions): Float32Array {
  const { mean = 0, std = 1 } = opts;
  return toF32(randomNormal(numel(shape), opts), std, mean);
}

/** Options of the Xavier initializers. */
export interface XavierOptions extends RandomSource {
  /** Default 1. */
  gain?: number;
}

/**
 * Xavier/Glorot uniform (Glorot & Bengio 2010; torch.nn.init.xavier_uniform_):
 * U(-a, a) with `a = gain * sqrt(6 / (fanIn + fanOut))`.
 * @param shape (out, in, ...kernel)
 * @param opts gain, seed, stream
 */
export function xavierUniform(shape: readonly number[], opts: XavierOptions): Float32Array {
  const { fanIn, fanOut } = fans(shape);
  const a = Math.sqrt(3) * (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
  return uniform(shape, { ...opts, low: -a, high: a });
}

/**
 * Xavier/Glorot normal (torch.nn.init.xavier_normal_):
 * N(0, std²) with `std = gain * sqrt(2 / (fanIn + fanOut))`.
 * @param shape (out, in, ...kernel)
 * @param opts gain, seed, stream
 */
export function xavierNormal(shape: readonly number[], opts: XavierOptions): Float32Array {
  const { fanIn, fanOut } = fans(shape);
  return normal(shape, {
    ...opts,
    mean: 0,
    std: (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)),
  });
}

/** Options of the Kaiming initializers (torch's names and defaults). */
export interface KaimingOptions extends RandomSource {
  /** Negative slope of the rectifier after this layer (leaky_relu only). Default 0. */
  a?: number;
  /** "fan_in" (default: preserves forward variance) or "fan_out" (backward). */
  mode?: "fan_in" | "fan_out";
  /** Default "leaky_relu" (with a = 0, the same gain as relu). */
  nonlinearity?: Nonlinearity;
}

function kaimingStd(shape: readonly number[], opts: KaimingOptions): number {
  const mode = opts.mode ?? "fan_in";
  if (mode !== "fan_in" && mode !== "fan_out") {
    throw new Error(`Mode ${mode} not supported, please use one of fan_in, fan_out`);
  }
  const f = fans(shape);
  const fan = mode === "fan_in" ? f.fanIn : f.fanOut;
  const gain = calculateGain(opts.nonlinearity ?? "leaky_relu", opts.a ?? 0);
  return gain / Math.sqrt(fan);
}

/**
 * Kaiming/He uniform (He et al. 2015; torch.nn.init.kaiming_uniform_):
 * U(-b, b) with `b = sqrt(3) * gain / sqrt(fan)`, `gain = calculateGain(nonlinearity, a)`.
 * @param shape (out, in, ...kernel)
 * @param opts a, mode, nonlinearity, seed, stream
 */
export function kaimingUniform(shape: readonly number[], opts: KaimingOptions): Float32Array {
  if (numel(shape) === 0) return new Float32Array(0);
  const b = Math.sqrt(3) * kaimingStd(shape, opts);
  return uniform(shape, { ...opts, low: -b, high: b });
}

/**
 * Kaiming/He normal (torch.nn.init.kaiming_normal_): N(0, std²) with
 * `std = gain / sqrt(fan)`.
 * @param shape (out, in, ...kernel)
 * @param opts a, mode, nonlinearity, seed, stream
 */
export function kaimingNormal(shape: readonly number[], opts: KaimingOptions): Float32Array {
  if (numel(shape) === 0) return new Float32Array(0);
  return normal(shape, { ...opts, mean: 0, std: kaimingStd(shape, opts) });
}

/**
 * The orthogonal matrix torch.nn.init.orthogonal_ makes from a Gaussian
 * draw: QR of the (rows, cols) matrix (of its transpose when rows < cols),
 * columns of Q multiplied by the signs of diag(R) (which makes the result the
 * unique QR with a positive diagonal, hence Haar-distributed: Mezzadri 2007,
 * "How to generate random matrices from the classical compact groups"),
 * transposed back, times `gain`. Householder QR in float64.
 * @param g (rows, cols) row-major
 * @returns (rows, cols) row-major; orthonormal columns if rows >= cols, rows otherwise
 */
export function orthogonalFromGaussian(
  g: ArrayLike<number>,
  rows: number,
  cols: number,
  gain = 1,
): Float64Array {
  const wide = rows < cols;
  const m = wide ? cols : rows, n = wide ? rows : cols; // work on the tall (m, n) matrix A
  const a = new Float64Array(m * n);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) a[wide ? j * n + i : i * n + j] = g[i * cols + j];
  }
  // Householder: A = H_0 ... H_{n-1} R; v_k stored in vs, R's diagonal in d.
  const vs: Float64Array[] = [];
  const d = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let norm = 0;
    for (let i = k; i < m; i++) norm += a[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    const x0 = a[k * n + k];
    const alpha = x0 > 0 ? -norm : norm;
    const v = new Float64Array(m - k);
    for (let i = k; i < m; i++) v[i - k] = a[i * n + k];
    v[0] -= alpha;
    let vn = 0;
    for (const e of v) vn += e * e;
    d[k] = alpha;
    if (vn > 0) {
      for (let j = k; j < n; j++) {
        let s = 0;
        for (let i = k; i < m; i++) s += v[i - k] * a[i * n + j];
        s = (2 * s) / vn;
        for (let i = k; i < m; i++) a[i * n + j] -= s * v[i - k];
      }
    }
    vs.push(vn > 0 ? v.map((e) => e / Math.sqrt(vn)) : v.fill(0));
  }
  // Thin Q = H_0 ... H_{n-1} [I_n; 0], applied right to left.
  const q = new Float64Array(m * n);
  for (let j = 0; j < n; j++) q[j * n + j] = 1;
  for (let k = n - 1; k >= 0; k--) {
    const v = vs[k];
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = k; i < m; i++) s += v[i - k] * q[i * n + j];
      for (let i = k; i < m; i++) q[i * n + j] -= 2 * s * v[i - k];
    }
  }
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const v = q[i * n + j] * Math.sign(d[j]) * gain; // torch: q *= diag(r).sign()
      out[wide ? j * cols + i : i * cols + j] = v;
    }
  }
  return out;
}

/**
 * (Semi-)orthogonal init (Saxe, McClelland & Ganguli 2014; torch.nn.init.orthogonal_):
 * the tensor viewed as (shape[0], numel / shape[0]) has orthonormal rows or
 * columns, whichever are fewer, times `gain`. Conv OIHW weights are
 * orthogonal as `out x (in*kh*kw)` matrices.
 * @param shape at least 2 dimensions
 * @param opts gain, seed, stream
 */
export function orthogonal(shape: readonly number[], opts: XavierOptions): Float32Array {
  if (shape.length < 2) {
    throw new Error(
      `orthogonal: only shapes with 2 or more dimensions are supported, got [${shape}]`,
    );
  }
  const n = numel(shape);
  if (n === 0) return new Float32Array(0);
  const rows = shape[0], cols = n / rows;
  return toF32(orthogonalFromGaussian(randomNormal(n, opts), rows, cols, opts.gain ?? 1));
}

/**
 * PyTorch's default weight init of `nn.Linear` and `nn.Conv*d`:
 * kaiming_uniform with `a = sqrt(5)`, i.e. U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
 * @param shape (out, in, ...kernel)
 * @param opts seed, stream
 */
export function defaultWeight(shape: readonly number[], opts: RandomSource): Float32Array {
  return kaimingUniform(shape, { ...opts, a: Math.sqrt(5) });
}

/**
 * PyTorch's default bias init of `nn.Linear` and `nn.Conv*d`:
 * U(-1/sqrt(fanIn), 1/sqrt(fanIn)) with the weight's fan-in (0 if fanIn is 0).
 * @param weightShape the layer's weight shape (out, in, ...kernel)
 * @param opts seed, stream (use another stream than the weight's)
 * @returns `weightShape[0]` values
 */
export function defaultBias(weightShape: readonly number[], opts: RandomSource): Float32Array {
  const { fanIn } = fans(weightShape);
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform([weightShape[0]], { ...opts, low: -bound, high: bound });
}

/** All zeros (torch.nn.init.zeros_). */
export function zeros(shape: readonly number[]): Float32Array {
  return new Float32Array(numel(shape));
}

/** All ones (torch.nn.init.ones_). */
export function ones(shape: readonly number[]): Float32Array {
  return new Float32Array(numel(shape)).fill(1);
}

/** Every element `value` (torch.nn.init.constant_). */
export function constant(shape: readonly number[], value: number): Float32Array {
  return new Float32Array(numel(shape)).fill(value);
}
