// regula WebAssembly kernels: the twins of the metrics WGSL family (src/wasm/kernels/metrics.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// The math of every kernel is shaders/metrics.wgsl's (see its header); each export computes the
// output items [i0, i1) of one entry point, so the host splits a dispatch across threads by output
// rows or elements and every item is computed by the same operations whatever the split.
// Pointers are byte offsets into the memory, counts are elements; u32 arithmetic wraps as in WGSL,
// and integer division by a zero param gives WGSL's results (x / 0 = x, x % 0 = 0).

import { at } from "./_common";
import { hsum } from "./_vmath";

@inline function udiv(a: u32, b: u32): u32 {
  return b == 0 ? a : a / b;
}

@inline function urem(a: u32, b: u32): u32 {
  return b == 0 ? 0 : a % b;
}

/**
 * plane_points, points [i0, i1) of the chunk: y[i, k] = x[k] + a u[k] + b v[k] (clamped to
 * [0, 1] when clip = 1), with (a, b) the grid coordinates of point start + i.
 * xa: (3, d) f32 [x; u; v]; y: (n, d) f32.
 */
export function metrics_planePoints(
  xa: usize,
  y: usize,
  d: u32,
  res: u32,
  start: u32,
  half: f32,
  clip: u32,
  i0: u32,
  i1: u32,
): void {
  const den = <f32>(max<u32>(res, 2) - 1);
  const two: f32 = 2.0;
  const zero = f32x4.splat(0);
  const one = f32x4.splat(1);
  const xu = at(xa, d);
  const xv = at(xa, 2 * d);
  for (let i = i0; i < i1; i++) {
    const pt = start + i;
    const r = udiv(pt, res);
    const c = urem(pt, res);
    const a: f32 = -half + two * half * <f32>c / den;
    const b: f32 = half - two * half * <f32>r / den;
    const va = f32x4.splat(a);
    const vb = f32x4.splat(b);
    const row = at(y, i * d);
    let k: u32 = 0;
    for (; k + 4 <= d; k += 4) {
      const off = <usize>k << 2;
      let v = f32x4.add(
        f32x4.add(v128.load(xa + off), f32x4.mul(va, v128.load(xu + off))),
        f32x4.mul(vb, v128.load(xv + off)),
      );
      if (clip == 1) v = f32x4.min(f32x4.max(v, zero), one);
      v128.store(row + off, v);
    }
    for (; k < d; k++) {
      let v = load<f32>(at(xa, k)) + a * load<f32>(at(xu, k)) + b * load<f32>(at(xv, k));
      if (clip == 1) v = min<f32>(max<f32>(v, 0), 1);
      store<f32>(at(row, k), v);
    }
  }
}

/**
 * pred_stats, rows [i0, i1): y[i] = (max softmax, arg max (first on ties), correct, NLL); the NLL
 * is NaN for a label outside [0, k). xa: (n, k) f32 logits; xu: (n,) u32 labels (read when
 * flag = 1); y: (n, 4) f32.
 */
export function metrics_predStats(
  xa: usize,
  xu: usize,
  y: usize,
  k: u32,
  flag: u32,
  i0: u32,
  i1: u32,
): void {
  for (let i = i0; i < i1; i++) {
    const base = at(xa, i * k);
    let m = load<f32>(base);
    let am: u32 = 0;
    for (let j: u32 = 1; j < k; j++) {
      const z = load<f32>(at(base, j));
      if (z > m) {
        m = z;
        am = j;
      }
    }
    let s: f32 = 0;
    for (let j: u32 = 0; j < k; j++) s += Mathf.exp(load<f32>(at(base, j)) - m);
    let correct: f32 = 0;
    let nll: f32 = 0;
    if (flag == 1) {
      const lab = load<u32>(at(xu, i));
      if (lab < k) {
        correct = lab == am ? 1 : 0;
        nll = Mathf.log(s) - (load<f32>(at(base, lab)) - m);
      } else {
        nll = reinterpret<f32>(0x7fc00000);
      }
    }
    const out = at(y, 4 * i);
    store<f32>(out, 1 / s);
    store<f32>(out, <f32>am, 4);
    store<f32>(out, correct, 8);
    store<f32>(out, nll, 12);
  }
}

/**
 * sumsq_rows, rows [i0, i1): y[i] += scale * sum_k xa[i, k]^2, summed in blocks of 64 as the
 * WGSL does (each block in four SIMD lanes). xa: (n, d) f32; y: (n,) f32.
 */
export function metrics_sumsqRows(
  xa: usize,
  y: usize,
  d: u32,
  scale: f32,
  i0: u32,
  i1: u32,
): void {
  for (let i = i0; i < i1; i++) {
    const row = at(xa, i * d);
    let s: f32 = 0;
    let k: u32 = 0;
    for (; k + 64 <= d; k += 64) {
      const p = row + (<usize>k << 2);
      let acc = f32x4.splat(0);
      for (let v: usize = 0; v < 256; v += 16) {
        const g = v128.load(p + v);
        acc = f32x4.add(acc, f32x4.mul(g, g));
      }
      s += hsum(acc);
    }
    let blk: f32 = 0;
    for (; k < d; k++) {
      const g = load<f32>(at(row, k));
      blk += g * g;
    }
    const out = at(y, i);
    store<f32>(out, load<f32>(out) + scale * (s + blk));
  }
}

/**
 * onehot, rows [i0, i1): y[i, j] = [j == c] with c = cls (flag = 0) or xu[i] (flag = 1).
 * xu: (n,) u32; y: (n, k) f32.
 */
export function metrics_onehot(
  xu: usize,
  y: usize,
  k: u32,
  cls: u32,
  flag: u32,
  i0: u32,
  i1: u32,
): void {
  for (let i = i0; i < i1; i++) {
    const row = at(y, i * k);
    memory.fill(row, 0, <usize>k << 2);
    const c = flag == 1 ? load<u32>(at(xu, i)) : cls;
    if (c < k) store<f32>(at(row, c), 1);
  }
}

/**
 * saliency_max, output elements [e0, e1) of (n, d): y[i, q] = max(0, max_c |xa[i, c, q]|).
 * xa: (n, k, d) f32; y: (n, d) f32.
 */
export function metrics_saliencyMax(
  xa: usize,
  y: usize,
  k: u32,
  d: u32,
  e0: u32,
  e1: u32,
): void {
  let e = e0;
  while (e < e1) {
    const i = e / d;
    let q = e - i * d;
    const qEnd = min<u32>(d, q + (e1 - e));
    e += qEnd - q;
    const g = at(xa, i * k * d);
    const out = at(y, i * d);
    for (; q + 4 <= qEnd; q += 4) {
      let m = f32x4.splat(0);
      for (let c: u32 = 0; c < k; c++) m = f32x4.max(m, f32x4.abs(v128.load(at(g, c * d + q))));
      v128.store(at(out, q), m);
    }
    for (; q < qEnd; q++) {
      let m: f32 = 0;
      for (let c: u32 = 0; c < k; c++) m = max<f32>(m, Mathf.abs(load<f32>(at(g, c * d + q))));
      store<f32>(at(out, q), m);
    }
  }
}

/**
 * occlude, windows [i0, i1): y[i] = x with the window of index start + i (top-left
 * ((w / nwx) stride, (w % nwx) stride), win x win, cut at the border) set to baseline in every
 * channel. xa: (k, h, w) f32 image; y: (n, k, h, w) f32.
 */
export function metrics_occlude(
  xa: usize,
  y: usize,
  k: u32,
  h: u32,
  w: u32,
  win: u32,
  stride: u32,
  nwx: u32,
  start: u32,
  baseline: f32,
  i0: u32,
  i1: u32,
): void {
  const plane = h * w;
  const per = k * plane;
  for (let i = i0; i < i1; i++) {
    const dst = at(y, i * per);
    memory.copy(dst, xa, <usize>per << 2);
    const wi = start + i;
    const top = udiv(wi, nwx) * stride;
    const left = urem(wi, nwx) * stride;
    const rEnd = min<u32>(top + win, h);
    const qEnd = min<u32>(left + win, w);
    for (let c: u32 = 0; c < k; c++) {
      for (let r = top; r < rEnd; r++) {
        const row = at(dst, c * plane + r * w);
        for (let q = left; q < qEnd; q++) store<f32>(at(row, q), baseline);
      }
    }
  }
}

/**
 * tv_rows, rows [i0, i1) of the (planes * res) map rows: y[2 i] = sum_q sqrt(Dx^2 + Dy^2),
 * y[2 i + 1] = sum_q (|Dx| + |Dy|) of the class-change indicator. xu: (planes, res, res) u32;
 * y: (planes * res, 2) f32.
 */
export function metrics_tvRows(xu: usize, y: usize, res: u32, i0: u32, i1: u32): void {
  for (let i = i0; i < i1; i++) {
    const r = urem(i, res);
    const base = at(xu, i * res);
    const below = at(base, res);
    let iso: f32 = 0;
    let aniso: f32 = 0;
    for (let q: u32 = 0; q < res; q++) {
      const c = load<u32>(at(base, q));
      let dx: f32 = 0;
      let dy: f32 = 0;
      if (q + 1 < res && load<u32>(at(base, q + 1)) != c) dx = 1;
      if (r + 1 < res && load<u32>(at(below, q)) != c) dy = 1;
      iso += Mathf.sqrt(dx + dy);
      aniso += dx + dy;
    }
    const out = at(y, 2 * i);
    store<f32>(out, iso);
    store<f32>(out, aniso, 4);
  }
}
