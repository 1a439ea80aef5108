/**
 * Float64 CPU references of the layers (PyTorch 1.13 semantics): forward, backward (input and
 * parameter gradients) and, where it is not the forward itself, the jvp. Plain loops over
 * `ArrayLike<number>`; shapes are NCHW, weights OIHW / (out, in).
 *
 * @module
 */

/** Geometry of a 2-D window sweep. */
export interface Window2d {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
}

/** Output size of a window sweep (floor mode). */
export function windowOutputSize(h: number, w: number, g: Window2d): [number, number] {
  return [
    Math.floor((h + 2 * g.padding[0] - g.kernel[0]) / g.stride[0]) + 1,
    Math.floor((w + 2 * g.padding[1] - g.kernel[1]) / g.stride[1]) + 1,
  ];
}

/**
 * Convolution forward: `y[b,o,oy,ox] = bias[o] + Σ W[o,c,ky,kx] x[b,c,oy·sh-ph+ky,ox·sw-pw+kx]`.
 * @param x (B, C, H, W)
 * @param xs [B, C, H, W]
 * @param w (O, C, kh, kw)
 * @param o O
 * @param bias (O,) or null
 * @returns y (B, O, OH, OW) and its shape
 */
export function conv2dRef(
  x: ArrayLike<number>,
  xs: readonly number[],
  w: ArrayLike<number>,
  o: number,
  bias: ArrayLike<number> | null,
  g: Window2d,
): { y: Float64Array; shape: number[] } {
  const [B, C, H, W] = xs;
  const [kh, kw] = g.kernel;
  const [oh, ow] = windowOutputSize(H, W, g);
  const y = new Float64Array(B * o * oh * ow);
  for (let b = 0; b < B; b++) {
    for (let oc = 0; oc < o; oc++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let s = bias ? bias[oc] : 0;
          for (let c = 0; c < C; c++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * g.stride[0] - g.padding[0] + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * g.stride[1] - g.padding[1] + kx;
                if (ix < 0 || ix >= W) continue;
                s += w[((oc * C + c) * kh + ky) * kw + kx] * x[((b * C + c) * H + iy) * W + ix];
              }
            }
          }
          y[((b * o + oc) * oh + oy) * ow + ox] = s;
        }
      }
    }
  }
  return { y, shape: [B, o, oh, ow] };
}

/**
 * Convolution backward: input gradient and (not accumulated) weight and bias gradients.
 * @returns dx (B, C, H, W), dw (O, C, kh, kw), db (O,)
 */
export function conv2dBackwardRef(
  x: ArrayLike<number>,
  xs: readonly number[],
  w: ArrayLike<number>,
  o: number,
  dy: ArrayLike<number>,
  g: Window2d,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [B, C, H, W] = xs;
  const [kh, kw] = g.kernel;
  const [oh, ow] = windowOutputSize(H, W, g);
  const dx = new Float64Array(B * C * H * W);
  const dw = new Float64Array(o * C * kh * kw);
  const db = new Float64Array(o);
  for (let b = 0; b < B; b++) {
    for (let oc = 0; oc < o; oc++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const d = dy[((b * o + oc) * oh + oy) * ow + ox];
          db[oc] += d;
          for (let c = 0; c < C; c++) {
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * g.stride[0] - g.padding[0] + ky;
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * g.stride[1] - g.padding[1] + kx;
                if (ix < 0 || ix >= W) continue;
                const wi = ((oc * C + c) * kh + ky) * kw + kx;
                const xi = ((b * C + c) * H + iy) * W + ix;
                dx[xi] += w[wi] * d;
                dw[wi] += x[xi] * d;
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}

/**
 * Linear forward `y = x Wᵀ + b`.
 * @param x (B, in)
 * @param w (out, in)
 * @returns (B, out)
 */
export function linearRef(
  x: ArrayLike<number>,
  batch: number,
  inF: number,
  w: ArrayLike<number>,
  outF: number,
  bias: ArrayLike<number> | null,
): Float64Array {
  const y = new Float64Array(batch * outF);
  for (let b = 0; b < batch; b++) {
    for (let o = 0; o < outF; o++) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < inF; i++) s += x[b * inF + i] * w[o * inF + i];
      y[b * outF + o] = s;
    }
  }
  return y;
}

/** Linear backward: `dx = dy W`, `dw = dyᵀ x`, `db = Σ_b dy`. */
export function linearBackwardRef(
  x: ArrayLike<number>,
  batch: number,
  inF: number,
  w: ArrayLike<number>,
  outF: number,
  dy: ArrayLike<number>,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const dx = new Float64Array(batch * inF);
  const dw = new Float64Array(outF * inF);
  const db = new Float64Array(outF);
  for (let b = 0; b < batch; b++) {
    for (let o = 0; o < outF; o++) {
      const d = dy[b * outF + o];
      db[o] += d;
      for (let i = 0; i < inF; i++) {
        dx[b * inF + i] += d * w[o * inF + i];
        dw[o * inF + i] += d * x[b * inF + i];
      }
    }
  }
  return { dx, dw, db };
}

/**
 * Max pooling: padding never wins, ties keep the first, NaN propagates (ATen's CPU kernel).
 * @param x (B, C, H, W)
 * @returns y (B, C, OH, OW), idx (flat iy·W + ix within the plane), shape
 */
export function maxPool2dRef(
  x: ArrayLike<number>,
  xs: readonly number[],
  g: Window2d,
): { y: Float64Array; idx: Uint32Array; shape: number[] } {
  const [B, C, H, W] = xs;
  const [oh, ow] = windowOutputSize(H, W, g);
  const y = new Float64Array(B * C * oh * ow);
  const idx = new Uint32Array(y.length);
  for (let pl = 0; pl < B * C; pl++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const y0 = oy * g.stride[0] - g.padding[0], x0 = ox * g.stride[1] - g.padding[1];
        const ys = Math.max(y0, 0), xs0 = Math.max(x0, 0);
        const ye = Math.min(y0 + g.kernel[0], H), xe = Math.min(x0 + g.kernel[1], W);
        let best = -Infinity, at = ys * W + xs0;
        for (let iy = ys; iy < ye; iy++) {
          for (let ix = xs0; ix < xe; ix++) {
            const v = x[pl * H * W + iy * W + ix];
            if (v > best || Number.isNaN(v)) {
              best = v;
              at = iy * W + ix;
            }
          }
        }
        const o = (pl * oh + oy) * ow + ox;
        y[o] = best;
        idx[o] = at;
      }
    }
  }
  return { y, idx, shape: [B, C, oh, ow] };
}

/** Max-pool backward: scatter-ADD of dy at the argmax (windows may overlap). */
export function maxPool2dBackwardRef(
  idx: ArrayLike<number>,
  dy: ArrayLike<number>,
  xs: readonly number[],
  ohw: number,
): Float64Array {
  const [B, C, H, W] = xs;
  const dx = new Float64Array(B * C * H * W);
  for (let pl = 0; pl < B * C; pl++) {
    for (let o = 0; o < ohw; o++) dx[pl * H * W + idx[pl * ohw + o]] += dy[pl * ohw + o];
  }
  return dx;
}

/** Max-pool jvp: the tangent gathered at the argmax. */
export function maxPool2dJvpRef(
  idx: ArrayLike<number>,
  tx: ArrayLike<number>,
  xs: readonly number[],
  ohw: number,
): Float64Array {
  const [B, C, H, W] = xs;
  const ty = new Float64Array(B * C * ohw);
  for (let pl = 0; pl < B * C; pl++) {
    for (let o = 0; o < ohw; o++) ty[pl * ohw + o] = tx[pl * H * W + idx[pl * ohw + o]];
  }
  return ty;
}

function avgDivisor(
  oy: number,
  ox: number,
  H: number,
  W: number,
  g: Window2d,
  includePad: boolean,
): number {
  if (includePad) return g.kernel[0] * g.kernel[1];
  const y0 = oy * g.stride[0] - g.padding[0], x0 = ox * g.stride[1] - g.padding[1];
  const ny = Math.min(y0 + g.kernel[0], H) - Math.max(y0, 0);
  const nx = Math.min(x0 + g.kernel[1], W) - Math.max(x0, 0);
  return ny * nx;
}

/** Average pooling (count_include_pad as given; PyTorch's default is true). */
export function avgPool2dRef(
  x: ArrayLike<number>,
  xs: readonly number[],
  g: Window2d,
  includePad = true,
): { y: Float64Array; shape: number[] } {
  const [B, C, H, W] = xs;
  const [oh, ow] = windowOutputSize(H, W, g);
  const y = new Float64Array(B * C * oh * ow);
  for (let pl = 0; pl < B * C; pl++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const y0 = oy * g.stride[0] - g.padding[0], x0 = ox * g.stride[1] - g.padding[1];
        let s = 0;
        for (let iy = Math.max(y0, 0); iy < Math.min(y0 + g.kernel[0], H); iy++) {
          for (let ix = Math.max(x0, 0); ix < Math.min(x0 + g.kernel[1], W); ix++) {
            s += x[pl * H * W + iy * W + ix];
          }
        }
        y[(pl * oh + oy) * ow + ox] = s / avgDivisor(oy, ox, H, W, g, includePad);
      }
    }
  }
  return { y, shape: [B, C, oh, ow] };
}

/** Average-pool backward: each window spreads dy / divisor over its in-image inputs. */
export function avgPool2dBackwardRef(
  dy: ArrayLike<number>,
  xs: readonly number[],
  g: Window2d,
  includePad = true,
): Float64Array {
  const [B, C, H, W] = xs;
  const [oh, ow] = windowOutputSize(H, W, g);
  const dx = new Float64Array(B * C * H * W);
  for (let pl = 0; pl < B * C; pl++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const d = dy[(pl * oh + oy) * ow + ox] / avgDivisor(oy, ox, H, W, g, includePad);
        const y0 = oy * g.stride[0] - g.padding[0], x0 = ox * g.stride[1] - g.padding[1];
        for (let iy = Math.max(y0, 0); iy < Math.min(y0 + g.kernel[0], H); iy++) {
          for (let ix = Math.max(x0, 0); ix < Math.min(x0 + g.kernel[1], W); ix++) {
            dx[pl * H * W + iy * W + ix] += d;
          }
        }
      }
    }
  }
  return dx;
}

/** Activation kinds of src/layers/activation.ts. */
export type ActivationKind = "relu" | "leaky_relu" | "tanh" | "sigmoid" | "softplus";

/** Activation parameters: leaky slope (0.01), softplus beta (1) and threshold (20). */
export interface ActivationParams {
  slope?: number;
  beta?: number;
  threshold?: number;
}

function sigmoid(v: number): number {
  return v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
}

/** σ(a), σ'(a), σ''(a) of one activation at one point (PyTorch conventions at the kinks). */
export function activationScalarRef(
  kind: ActivationKind,
  a: number,
  p: ActivationParams = {},
): [number, number, number] {
  switch (kind) {
    case "relu":
      return [a > 0 ? a : 0, a > 0 ? 1 : 0, 0];
    case "leaky_relu": {
      const s = p.slope ?? 0.01;
      return [a > 0 ? a : s * a, a > 0 ? 1 : s, 0];
    }
    case "tanh": {
      const t = Math.tanh(a);
      return [t, 1 - t * t, -2 * t * (1 - t * t)];
    }
    case "sigmoid": {
      const s = sigmoid(a);
      return [s, s * (1 - s), s * (1 - s) * (1 - 2 * s)];
    }
    case "softplus": {
      const beta = p.beta ?? 1, thr = p.threshold ?? 20;
      if (beta * a > thr) return [a, 1, 0];
      const s = sigmoid(beta * a);
      return [Math.log1p(Math.exp(beta * a)) / beta, s, beta * s * (1 - s)];
    }
  }
}

/** Elementwise activation: y, σ' and σ'' at every point. */
export function activationRef(
  kind: ActivationKind,
  x: ArrayLike<number>,
  p: ActivationParams = {},
): { y: Float64Array; d1: Float64Array; d2: Float64Array } {
  const n = x.length;
  const y = new Float64Array(n), d1 = new Float64Array(n), d2 = new Float64Array(n);
  for (let i = 0; i < n; i++) [y[i], d1[i], d2[i]] = activationScalarRef(kind, x[i], p);
  return { y, d1, d2 };
}

/** Per-channel normalization `(x - mean[c]) / std[c]` over (B, C, ...) with `s` values per channel. */
export function normalizeRef(
  x: ArrayLike<number>,
  c: number,
  s: number,
  mean: readonly number[],
  std: readonly number[],
): Float64Array {
  return Float64Array.from({ length: x.length }, (_, i) => {
    const ch = Math.floor(i / s) % c;
    return (x[i] - mean[ch]) / std[ch];
  });
}
