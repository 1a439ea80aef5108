/**
 * Float64 CPU references for src/metrics and shaders/metrics.wgsl: per-sample prediction
 * statistics, plane grid points, saliency reduction and occlusion of linear models. Plain
 * loops, written from the definitions (see the doc comments of the GPU versions).
 *
 * @module
 */

/** `[max softmax, arg max, correct, −log p_label]` per row of (n, k) logits. */
export function predStatsRef(
  logits: ArrayLike<number>,
  n: number,
  k: number,
  labels?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(4 * n);
  for (let i = 0; i < n; i++) {
    let m = logits[i * k], am = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j] > m) (m = logits[i * k + j]), (am = j);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(logits[i * k + j] - m);
    out[4 * i] = 1 / s;
    out[4 * i + 1] = am;
    if (labels) {
      out[4 * i + 2] = labels[i] === am ? 1 : 0;
      out[4 * i + 3] = Math.log(s) - (logits[i * k + labels[i]] - m);
    }
  }
  return out;
}

/** Grid point (r, c) of a res × res plane: `x + a u + b v` (row 0 = b = +range). */
export function planePointRef(
  x: ArrayLike<number>,
  u: ArrayLike<number>,
  v: ArrayLike<number>,
  r: number,
  c: number,
  res: number,
  range: number,
): Float64Array {
  const a = -range + (2 * range * c) / (res - 1);
  const b = range - (2 * range * r) / (res - 1);
  return Float64Array.from(x, (xi, k) => xi + a * u[k] + b * v[k]);
}

/** Logits `W x + bias` of a linear model, W (k, d). */
export function linearRef(
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  x: ArrayLike<number>,
  k: number,
  d: number,
): Float64Array {
  const z = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let s = bias ? bias[j] : 0;
    for (let i = 0; i < d; i++) s += w[j * d + i] * x[i];
    z[j] = s;
  }
  return z;
}

/**
 * Occlusion map of a linear model (logit output, target t): the drop of window S is
 * `Σ_{i∈S} W[t, i] (x_i − baseline)` over all channels of the window's pixels; each pixel gets
 * the mean drop of the windows covering it (Captum windows: starts at multiples of the stride,
 * `ceil((H − win) / stride) + 1` per axis, cut at the border).
 */
export function occlusionLinearRef(
  w: ArrayLike<number>,
  x: ArrayLike<number>,
  t: number,
  c: number,
  h: number,
  wd: number,
  win: number,
  stride: number,
  baseline: number,
): Float64Array {
  const d = c * h * wd;
  const nwy = Math.ceil((h - Math.min(win, h)) / stride) + 1;
  const nwx = Math.ceil((wd - win) / stride) + 1;
  const sum = new Float64Array(h * wd), cnt = new Float64Array(h * wd);
  for (let wy = 0; wy < nwy; wy++) {
    for (let wx = 0; wx < nwx; wx++) {
      const top = wy * stride, left = wx * stride;
      let drop = 0;
      for (let ch = 0; ch < c; ch++) {
        for (let r = top; r < Math.min(h, top + win); r++) {
          for (let q = left; q < Math.min(wd, left + win); q++) {
            const i = (ch * h + r) * wd + q;
            drop += w[t * d + i] * (x[i] - baseline);
          }
        }
      }
      for (let r = top; r < Math.min(h, top + win); r++) {
        for (let q = left; q < Math.min(wd, left + win); q++) {
          sum[r * wd + q] += drop;
          cnt[r * wd + q]++;
        }
      }
    }
  }
  return sum.map((s, i) => s / cnt[i]);
}
