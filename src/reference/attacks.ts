/**
 * Float64 CPU references of the kernels in `shaders/attacks.wgsl` (see that file for the math
 * and sources). Plain loops over per-sample rows of length D, written for clarity.
 *
 * @module
 */

const sign = (v: number): number => (v > 0 ? 1 : v < 0 ? -1 : 0);
const clip = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/**
 * L∞ step with projection and clamp: `x0 + clip((x + α sign g) - x0, -ε, ε)`, clipped to [0, 1].
 * @returns the new x
 */
export function refLinfStep(
  x0: ArrayLike<number>,
  x: ArrayLike<number>,
  g: ArrayLike<number>,
  opts: { eps: number; alpha: number },
): Float64Array {
  return Float64Array.from(x0, (v, i) => {
    const a = x[i] + opts.alpha * sign(g[i]);
    return clip(v + clip(a - v, -opts.eps, opts.eps), 0, 1);
  });
}

function norm(v: ArrayLike<number>, from: number, d: number): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += v[from + j] ** 2;
  return Math.sqrt(s);
}

/**
 * L2 step: `x + α g / max(||g||, 1e-12)`, projected onto the ε-ball around x0, clipped to [0, 1].
 * @param d per-sample size D
 */
export function refL2Step(
  x0: ArrayLike<number>,
  x: ArrayLike<number>,
  g: ArrayLike<number>,
  d: number,
  opts: { eps: number; alpha: number },
): Float64Array {
  const out = new Float64Array(x0.length);
  for (let b = 0; b * d < x0.length; b++) {
    const o = b * d;
    const s = opts.alpha / Math.max(norm(g, o, d), 1e-12);
    const delta = Array.from({ length: d }, (_, j) => x[o + j] + s * g[o + j] - x0[o + j]);
    const dn = norm(delta, 0, d);
    const f = dn > opts.eps ? opts.eps / dn : 1;
    for (let j = 0; j < d; j++) out[o + j] = clip(x0[o + j] + delta[j] * f, 0, 1);
  }
  return out;
}

/** L2 random start from Gaussian `n` (B*D) and uniforms `u` (B): radius `ε u^(1/D)`. */
export function refL2Init(
  x0: ArrayLike<number>,
  n: ArrayLike<number>,
  u: ArrayLike<number>,
  d: number,
  eps: number,
): Float64Array {
  const out = new Float64Array(x0.length);
  for (let b = 0; b * d < x0.length; b++) {
    const o = b * d;
    const r = eps * u[b] ** (1 / d) / Math.max(norm(n, o, d), 1e-12);
    for (let j = 0; j < d; j++) out[o + j] = clip(x0[o + j] + r * n[o + j], 0, 1);
  }
  return out;
}

/** APGD start: `x0 + ε t / (max|t| + 1e-12)` per sample, clipped to [0, 1]. */
export function refLinfInit(
  x0: ArrayLike<number>,
  t: ArrayLike<number>,
  d: number,
  eps: number,
): Float64Array {
  const out = new Float64Array(x0.length);
  for (let b = 0; b * d < x0.length; b++) {
    const o = b * d;
    let m = 0;
    for (let j = 0; j < d; j++) m = Math.max(m, Math.abs(t[o + j]));
    for (let j = 0; j < d; j++) out[o + j] = clip(x0[o + j] + eps * t[o + j] / (m + 1e-12), 0, 1);
  }
  return out;
}

/**
 * Per-row attack losses and logit gradients (loss_rows): 0 cross-entropy, 1 DLR, 2 CW margin.
 * @param z (B, K) logits
 * @param t (B,) labels or targets
 * @param opts loss, sign s, targeted, κ and per-row c (CW)
 * @returns loss (B,), hit (B,), dz (B, K)
 */
export function refLossRows(
  z: ArrayLike<number>,
  t: ArrayLike<number>,
  k: number,
  opts: { loss: 0 | 1 | 2; sign: number; targeted: boolean; kappa?: number; c?: ArrayLike<number> },
): { loss: Float64Array; hit: Float64Array; dz: Float64Array } {
  const b = t.length;
  const loss = new Float64Array(b), hit = new Float64Array(b), dz = new Float64Array(b * k);
  const s = opts.sign;
  for (let i = 0; i < b; i++) {
    const row = Array.from({ length: k }, (_, j) => z[i * k + j]);
    const y = t[i];
    let am = 0;
    for (let j = 1; j < k; j++) if (row[j] > row[am]) am = j;
    hit[i] = opts.targeted ? (am === y ? 1 : 0) : (am !== y ? 1 : 0);
    const g = (j: number, v: number) => (dz[i * k + j] += v);
    if (opts.loss === 0) {
      const m = Math.max(...row);
      const se = row.reduce((a, v) => a + Math.exp(v - m), 0);
      loss[i] = s * (m + Math.log(se) - row[y]);
      for (let j = 0; j < k; j++) g(j, s * (Math.exp(row[j] - m) / se - (j === y ? 1 : 0)));
      continue;
    }
    let oi = -1, ov = -Infinity;
    for (let j = 0; j < k; j++) {
      if (j === y && opts.loss === 1) continue;
      const v = j === y ? row[j] - 1e4 : row[j];
      if (v > ov) [ov, oi] = [v, j];
    }
    if (opts.loss === 1) {
      const order = row.map((v, j) => [v, j]).sort((p, q) => q[0] - p[0] || p[1] - q[1]);
      const den = order[0][0] - order[2][0] + 1e-12;
      const num = row[y] - ov;
      loss[i] = s * (-num / den);
      g(y, -s / den);
      g(oi, s / den);
      g(order[0][1], (s * num) / den / den);
      g(order[2][1], (-s * num) / den / den);
    } else {
      const c = opts.c![i], kappa = opts.kappa ?? 0;
      const margin = opts.targeted ? ov - row[y] : row[y] - ov;
      const dsign = opts.targeted ? -1 : 1;
      loss[i] = c * Math.max(margin, -kappa);
      if (margin > -kappa) {
        g(y, c * dsign);
        g(oi, -c * dsign);
      }
    }
  }
  return { loss, hit, dz };
}

/** APGD momentum step (apgd_step) with per-sample step sizes `eta` (B). */
export function refApgdStep(
  x0: ArrayLike<number>,
  x: ArrayLike<number>,
  xOld: ArrayLike<number>,
  g: ArrayLike<number>,
  eta: ArrayLike<number>,
  d: number,
  opts: { eps: number; a: number },
): Float64Array {
  return Float64Array.from(x0, (v, i) => {
    const lo = v - opts.eps, hi = v + opts.eps;
    const z = clip(clip(x[i] + eta[Math.floor(i / d)] * sign(g[i]), lo, hi), 0, 1);
    return clip(clip(x[i] + (z - x[i]) * opts.a + (x[i] - xOld[i]) * (1 - opts.a), lo, hi), 0, 1);
  });
}

/** One Adam step of CW in tanh space (cw_step); returns the new w, m, v. */
export function refCwStep(
  x0: ArrayLike<number>,
  gz: ArrayLike<number>,
  w: ArrayLike<number>,
  m: ArrayLike<number>,
  v: ArrayLike<number>,
  opts: { lr: number; t: number },
): { w: Float64Array; m: Float64Array; v: Float64Array } {
  const n = x0.length;
  const W = new Float64Array(n), M = new Float64Array(n), V = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const th = Math.tanh(w[i]);
    const gw = (2 * ((th + 1) / 2 - x0[i]) + gz[i]) * (1 - th * th) / 2;
    M[i] = 0.9 * m[i] + 0.1 * gw;
    V[i] = 0.999 * v[i] + 0.001 * gw * gw;
    const mh = M[i] / (1 - 0.9 ** opts.t), vh = V[i] / (1 - 0.999 ** opts.t);
    W[i] = w[i] - opts.lr * mh / (Math.sqrt(vh) + 1e-8);
  }
  return { w: W, m: M, v: V };
}
