// regula WebAssembly kernels: the twins of the attacks WGSL family (src/wasm/kernels/attacks.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).

import { at } from "./_common";

/**
 * The steps of the adversarial attacks (shaders/attacks.wgsl, whose header gives the math and
 * its sources): FGSM/PGD L∞ sign steps, L2 steps and random starts, per-row attack losses,
 * best-so-far selection, APGD, Carlini–Wagner in tanh space, DeepFool.
 *
 * Threading plan: the host (src/wasm/kernels/attacks.ts) splits every call into independent
 * ranges of output items, one range per thread: elements `[i0, i1)` for the elementwise kernels,
 * samples `[b0, b1)` for the per-sample ones, logit rows `[b0, b1)` for the row ones. Nothing is
 * reduced across a range boundary, so a result never depends on the split.
 *
 * Order of the sums: a per-sample squared norm is summed in the WGSL's order, 256 lane sums
 * (lane l takes elements l, l + 256, ...; the WGSL's invocations) meeting in the same halving
 * tree as its `wg_reduce`, here four lanes per f32x4. The norms, and the flags decided from them
 * (cw_track's "better", deepfool_cand's closest class), are then the WebGPU kernel's to the bit
 * wherever the GPU rounds each multiply and add (no FMA contraction) and its sqrt correctly.
 *
 * SIMD: the per-pixel steps (L∞ step, clamps, APGD, DeepFool step, L2 step and start) run four
 * lanes at a time with a scalar tail doing the same f32 operations, so which elements fall in a
 * tail never changes a result. The tanh/log/exp kernels are scalar (`Mathf`).
 *
 * Memory: pointers are byte offsets of f32 (or u32 label) arrays; `red` is 1 KiB (256 f32),
 * 16-byte aligned, private to the calling thread.
 */

const WG: i32 = 256;
// -FLT_MAX and FLT_MAX, the WGSL's LOWEST and HIGHEST.
const LOWEST: f32 = -3.40282346638528859812e38;
const HIGHEST: f32 = 3.40282346638528859812e38;
const TINY: f32 = 1e-12;

@inline function ld(base: usize, index: i32): f32 {
  return load<f32>(at(base, index));
}

@inline function st(base: usize, index: i32, v: f32): void {
  store<f32>(at(base, index), v);
}

/** WGSL clamp(v, lo, hi) = min(max(v, lo), hi). */
@inline function clampf(v: f32, lo: f32, hi: f32): f32 {
  return min<f32>(max<f32>(v, lo), hi);
}

@inline function clamp4(v: v128, lo: v128, hi: v128): v128 {
  return f32x4.min(f32x4.max(v, lo), hi);
}

/** torch.sign: -1, 0 or 1 (0 for ±0 and NaN), as the WGSL's sgn. */
@inline function sgnf(v: f32): f32 {
  return v > 0 ? 1 : v < 0 ? -1 : 0;
}

/** sgnf on four lanes; `zero`, `one`, `minusOne` are splats the caller hoists out of its loop. */
@inline function sgn4(v: v128, zero: v128, one: v128, minusOne: v128): v128 {
  return v128.or(v128.and(f32x4.gt(v, zero), one), v128.and(f32x4.lt(v, zero), minusOne));
}

// What the per-sample norms read (the WGSL's row_elem).
const ROW_SRC1: i32 = 0; // src1
const ROW_OFFSET: i32 = 1; // src1 - src0
const ROW_STEPPED: i32 = 2; // (dst0 + f src1) - src0

@inline function rowElem(what: i32, s0: usize, s1: usize, d0: usize, j: i32, f: f32): f32 {
  if (what == ROW_SRC1) return ld(s1, j);
  if (what == ROW_OFFSET) return ld(s1, j) - ld(s0, j);
  return (ld(d0, j) + f * ld(s1, j)) - ld(s0, j);
}

@inline function rowElem4(what: i32, s0: usize, s1: usize, d0: usize, o: usize, vf: v128): v128 {
  if (what == ROW_SRC1) return v128.load(s1 + o);
  if (what == ROW_OFFSET) return f32x4.sub(v128.load(s1 + o), v128.load(s0 + o));
  return f32x4.sub(
    f32x4.add(v128.load(d0 + o), f32x4.mul(vf, v128.load(s1 + o))),
    v128.load(s0 + o),
  );
}

/**
 * ||r||² of one sample's row r_j = rowElem(what, ..., j, f), j < d (pointers at the sample's first
 * element), in the WGSL's order: 256 lane sums, then wg_reduce's halving tree.
 */
function rowSumsq(what: i32, s0: usize, s1: usize, d0: usize, d: i32, f: f32, red: usize): f32 {
  const zero = f32x4.splat(0);
  for (let q = 0; q < WG; q += 4) v128.store(at(red, q), zero);
  const vf = f32x4.splat(f);
  for (let c = 0; c < d; c += WG) {
    const m = min<i32>(WG, d - c);
    let l = 0;
    for (; l + 4 <= m; l += 4) {
      const v = rowElem4(what, s0, s1, d0, <usize>(c + l) << 2, vf);
      const r = at(red, l);
      v128.store(r, f32x4.add(v128.load(r), f32x4.mul(v, v)));
    }
    for (; l < m; l++) {
      const v = rowElem(what, s0, s1, d0, c + l, f);
      st(red, l, ld(red, l) + v * v);
    }
  }
  for (let h = WG >> 1; h >= 4; h >>= 1) {
    for (let l = 0; l < h; l += 4) {
      const r = at(red, l);
      v128.store(r, f32x4.add(v128.load(r), v128.load(at(red, l + h))));
    }
  }
  st(red, 0, ld(red, 0) + ld(red, 2));
  st(red, 1, ld(red, 1) + ld(red, 3));
  return ld(red, 0) + ld(red, 1);
}

/** max_j |t_j| over one sample's d elements (from 0; the order of a max does not matter). */
function rowMaxAbs(t: usize, d: i32): f32 {
  let v = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= d; j += 4) v = f32x4.max(v, f32x4.abs(v128.load(at(t, j))));
  let m = max<f32>(
    max<f32>(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)),
    max<f32>(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)),
  );
  for (; j < d; j++) m = max<f32>(m, abs<f32>(ld(t, j)));
  return m;
}

/** x = clip_[0,1](x0 + r n) over one sample's d elements (the WGSL's start_at). */
function startAt(x0: usize, n: usize, x: usize, d: i32, r: f32): void {
  const vr = f32x4.splat(r), zero = f32x4.splat(0), one = f32x4.splat(1);
  let j = 0;
  for (; j + 4 <= d; j += 4) {
    const o = <usize>j << 2;
    const v = f32x4.add(v128.load(x0 + o), f32x4.mul(vr, v128.load(n + o)));
    v128.store(x + o, clamp4(v, zero, one));
  }
  for (; j < d; j++) st(x, j, clampf(ld(x0, j) + r * ld(n, j), 0, 1));
}

/** dst[0:d] = src[0:d]. */
@inline function copyRow(dst: usize, src: usize, d: i32): void {
  memory.copy(dst, src, <usize>d << 2);
}

// ---- elementwise -----------------------------------------------------------------------------

/**
 * linf_step over elements [i0, i1): x = clip_[0,1](x0 + clip_[-eps,eps]((x + alpha sign g) - x0)).
 * @param x0 clean input (n) f32; @param g gradient (n) f32; @param x point (n) f32, in/out
 */
export function attacks_linfStep(
  x0: usize,
  g: usize,
  x: usize,
  i0: i32,
  i1: i32,
  eps: f32,
  alpha: f32,
): void {
  const ve = f32x4.splat(eps), vne = f32x4.splat(-eps), va = f32x4.splat(alpha);
  const zero = f32x4.splat(0), one = f32x4.splat(1), minusOne = f32x4.splat(-1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const v0 = v128.load(x0 + o);
    const sg = sgn4(v128.load(g + o), zero, one, minusOne);
    const a = f32x4.add(v128.load(x + o), f32x4.mul(va, sg));
    const delta = clamp4(f32x4.sub(a, v0), vne, ve);
    v128.store(x + o, clamp4(f32x4.add(v0, delta), zero, one));
  }
  for (; i < i1; i++) {
    const v0 = ld(x0, i);
    const a = ld(x, i) + alpha * sgnf(ld(g, i));
    st(x, i, clampf(v0 + clampf(a - v0, -eps, eps), 0, 1));
  }
}

/**
 * add_clamp over [i0, i1): x = clip_[0,1](x0 + u).
 * @param x0 (n) f32; @param u offset (n) f32; @param x (n) f32, out
 */
export function attacks_addClamp(x0: usize, u: usize, x: usize, i0: i32, i1: i32): void {
  const zero = f32x4.splat(0), one = f32x4.splat(1);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, clamp4(f32x4.add(v128.load(x0 + o), v128.load(u + o)), zero, one));
  }
  for (; i < i1; i++) st(x, i, clampf(ld(x0, i) + ld(u, i), 0, 1));
}

/**
 * apgd_step over [i0, i1): z = P(x + eta_b sign g), x_old = x,
 * x = P(x + (z - x) a + (x - x_old) (1 - a)), P = clip to [x0 - eps, x0 + eps] then to [0, 1].
 * @param x0 (n) f32; @param g (n) f32; @param x (n) f32, in/out; @param xo x_old (n) f32, in/out
 * @param state (B, s) f32, eta_b at column 0; @param d per-sample size
 */
export function attacks_apgdStep(
  x0: usize,
  g: usize,
  x: usize,
  xo: usize,
  state: usize,
  i0: i32,
  i1: i32,
  d: i32,
  s: i32,
  eps: f32,
  a: f32,
): void {
  const ca = <f32>1 - a;
  const zero = f32x4.splat(0), one = f32x4.splat(1), minusOne = f32x4.splat(-1);
  const va = f32x4.splat(a), vb = f32x4.splat(ca);
  const ve = f32x4.splat(eps);
  let i = i0;
  while (i < i1) {
    const b = i / d;
    const end = min<i32>(i1, (b + 1) * d);
    const eta = ld(state, b * s);
    const vEta = f32x4.splat(eta);
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      const v0 = v128.load(x0 + o);
      const lo = f32x4.sub(v0, ve), hi = f32x4.add(v0, ve);
      const vx = v128.load(x + o);
      const vo = v128.load(xo + o);
      const sg = sgn4(v128.load(g + o), zero, one, minusOne);
      const stepped = f32x4.add(vx, f32x4.mul(vEta, sg));
      const z = clamp4(clamp4(stepped, lo, hi), zero, one);
      const mom = f32x4.add(
        f32x4.add(vx, f32x4.mul(f32x4.sub(z, vx), va)),
        f32x4.mul(f32x4.sub(vx, vo), vb),
      );
      v128.store(xo + o, vx);
      v128.store(x + o, clamp4(clamp4(mom, lo, hi), zero, one));
    }
    for (; i < end; i++) {
      const v0 = ld(x0, i);
      const lo = v0 - eps, hi = v0 + eps;
      const vx = ld(x, i);
      const vo = ld(xo, i);
      const z = clampf(clampf(vx + eta * sgnf(ld(g, i)), lo, hi), 0, 1);
      const mom = (vx + (z - vx) * a) + (vx - vo) * ca;
      st(xo, i, vx);
      st(x, i, clampf(clampf(mom, lo, hi), 0, 1));
    }
  }
}

/**
 * tanh_map over [i0, i1): x' = (tanh w + 1) / 2.
 * @param w (n) f32; @param xp (n) f32, out
 */
export function attacks_tanhMap(w: usize, xp: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) st(xp, i, (Mathf.tanh(ld(w, i)) + 1) * 0.5);
}

/**
 * atanh_init over [i0, i1): w = atanh((2 x0 - 1)(1 - 1e-6)), m = v = 0.
 * @param x0 (n) f32; @param w, m, v (n) f32, out
 */
export function attacks_atanhInit(x0: usize, w: usize, m: usize, v: usize, i0: i32, i1: i32): void {
  const shrink = <f32>(1.0 - 1e-6);
  for (let i = i0; i < i1; i++) {
    const y = (<f32>2 * ld(x0, i) - 1) * shrink;
    st(w, i, <f32>0.5 * Mathf.log((1 + y) / (1 - y)));
    st(m, i, 0);
    st(v, i, 0);
  }
}

/**
 * cw_step over [i0, i1): one Adam step in tanh space (see the WGSL's cw_step).
 * @param x0 (n) f32; @param gz J^T df (n) f32; @param w, m, v (n) f32, in/out
 * @param lr learning rate; @param f0 1 - beta1^t; @param f1 1 - beta2^t
 */
export function attacks_cwStep(
  x0: usize,
  gz: usize,
  w: usize,
  m: usize,
  v: usize,
  i0: i32,
  i1: i32,
  lr: f32,
  f0: f32,
  f1: f32,
): void {
  for (let i = i0; i < i1; i++) {
    const wi = ld(w, i);
    const th = Mathf.tanh(wi);
    const xp = (th + 1) * <f32>0.5;
    const gx = <f32>2 * (xp - ld(x0, i)) + ld(gz, i);
    const gw = gx * (1 - th * th) * <f32>0.5;
    const mi = <f32>0.9 * ld(m, i) + <f32>0.1 * gw;
    const vi = <f32>0.999 * ld(v, i) + <f32>0.001 * gw * gw;
    st(m, i, mi);
    st(v, i, vi);
    st(w, i, wi - lr * (mi / f0) / (Mathf.sqrt(vi / f1) + <f32>1e-8));
  }
}

/**
 * deepfool_step over [i0, i1), for active samples only: r_tot += coef_b w; x = clip_[0,1](x0 +
 * alpha r_tot).
 * @param x0 (n) f32; @param x (n) f32, out; @param w best direction (n) f32
 * @param r r_tot (n) f32, in/out; @param state (B, s) f32: coef at column 1, active at column 2
 */
export function attacks_deepfoolStep(
  x0: usize,
  x: usize,
  w: usize,
  r: usize,
  state: usize,
  i0: i32,
  i1: i32,
  d: i32,
  s: i32,
  alpha: f32,
): void {
  const zero = f32x4.splat(0), one = f32x4.splat(1), va = f32x4.splat(alpha);
  let i = i0;
  while (i < i1) {
    const b = i / d;
    const end = min<i32>(i1, (b + 1) * d);
    if (ld(state, b * s + 2) < 0.5) {
      i = end;
      continue;
    }
    const coef = ld(state, b * s + 1);
    const vc = f32x4.splat(coef);
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      const ri = f32x4.add(v128.load(r + o), f32x4.mul(vc, v128.load(w + o)));
      v128.store(r + o, ri);
      v128.store(x + o, clamp4(f32x4.add(v128.load(x0 + o), f32x4.mul(va, ri)), zero, one));
    }
    for (; i < end; i++) {
      const ri = ld(r, i) + coef * ld(w, i);
      st(r, i, ri);
      st(x, i, clampf(ld(x0, i) + alpha * ri, 0, 1));
    }
  }
}

/**
 * onehot_diff over [i0, i1) of (B, k): e_c0 - e_t per row, 0 where c0 = t or the sample is
 * inactive. @param dz (B, k) f32, out; @param labels (B) u32; @param state (B, s) f32
 */
export function attacks_onehotDiff(
  dz: usize,
  labels: usize,
  state: usize,
  i0: i32,
  i1: i32,
  k: i32,
  s: i32,
  c0: u32,
): void {
  for (let i = i0; i < i1; i++) {
    const b = i / k;
    const j = <u32>(i % k);
    const t = load<u32>(at(labels, b));
    const on = ld(state, b * s + 2) > 0.5 && c0 != t;
    st(dz, i, on ? <f32>(j == c0 ? 1 : 0) - <f32>(j == t ? 1 : 0) : 0);
  }
}

// ---- per sample ------------------------------------------------------------------------------

/**
 * l2_step over samples [b0, b1) of d elements: x' = x + alpha g / max(||g||, 1e-12), projected
 * onto the eps-ball around x0, clipped to [0, 1].
 * @param x0 (B, d) f32; @param g (B, d) f32; @param x (B, d) f32, in/out; @param red scratch
 */
export function attacks_l2Step(
  x0: usize,
  g: usize,
  x: usize,
  b0: i32,
  b1: i32,
  d: i32,
  eps: f32,
  alpha: f32,
  red: usize,
): void {
  const zero = f32x4.splat(0), one = f32x4.splat(1);
  for (let b = b0; b < b1; b++) {
    const base = <usize>b * <usize>d << 2;
    const s0 = x0 + base, s1 = g + base, d0 = x + base;
    const gn = max<f32>(Mathf.sqrt(rowSumsq(ROW_SRC1, s0, s1, d0, d, 0, red)), TINY);
    const step = alpha / gn;
    const dn = Mathf.sqrt(rowSumsq(ROW_STEPPED, s0, s1, d0, d, step, red));
    const f: f32 = dn > eps ? eps / dn : 1;
    const vf = f32x4.splat(f), vs = f32x4.splat(step);
    let j = 0;
    for (; j + 4 <= d; j += 4) {
      const o = <usize>j << 2;
      const delta = rowElem4(ROW_STEPPED, s0, s1, d0, o, vs);
      v128.store(d0 + o, clamp4(f32x4.add(v128.load(s0 + o), f32x4.mul(delta, vf)), zero, one));
    }
    for (; j < d; j++) {
      const delta = rowElem(ROW_STEPPED, s0, s1, d0, j, step);
      st(d0, j, clampf(ld(s0, j) + delta * f, 0, 1));
    }
  }
}

/**
 * l2_init over samples [b0, b1): x = clip_[0,1](x0 + eps u_b^(1/d) n / max(||n||, 1e-12)).
 * @param x0 (B, d) f32; @param n (B, d) f32; @param u (B) f32; @param x (B, d) f32, out
 */
export function attacks_l2Init(
  x0: usize,
  n: usize,
  u: usize,
  x: usize,
  b0: i32,
  b1: i32,
  d: i32,
  eps: f32,
  red: usize,
): void {
  for (let b = b0; b < b1; b++) {
    const base = <usize>b * <usize>d << 2;
    const nn = max<f32>(Mathf.sqrt(rowSumsq(ROW_SRC1, 0, n + base, 0, d, 0, red)), TINY);
    const r = eps * Mathf.pow(ld(u, b), <f32>1 / <f32>d) / nn;
    startAt(x0 + base, n + base, x + base, d, r);
  }
}

/**
 * linf_init over samples [b0, b1): x = clip_[0,1](x0 + eps t / (max|t| + 1e-12)).
 * @param x0 (B, d) f32; @param t (B, d) f32; @param x (B, d) f32, out
 */
export function attacks_linfInit(
  x0: usize,
  t: usize,
  x: usize,
  b0: i32,
  b1: i32,
  d: i32,
  eps: f32,
): void {
  for (let b = b0; b < b1; b++) {
    const base = <usize>b * <usize>d << 2;
    const m = rowMaxAbs(t + base, d);
    startAt(x0 + base, t + base, x + base, d, eps / (m + TINY));
  }
}

/**
 * select_best over samples [b0, b1): the candidate replaces the best when it hits and the best
 * does not, or both agree and its loss is higher.
 * @param cand (B, d) f32; @param best (B, d) f32, in/out; @param score (B, 2) [loss, hit] f32,
 *   in/out; @param rows (B, s) f32 candidate scores, loss at column c0, hit at column c1
 */
export function attacks_selectBest(
  cand: usize,
  best: usize,
  score: usize,
  rows: usize,
  b0: i32,
  b1: i32,
  d: i32,
  s: i32,
  c0: i32,
  c1: i32,
): void {
  for (let b = b0; b < b1; b++) {
    const l = ld(rows, b * s + c0);
    const h = ld(rows, b * s + c1);
    const bl = ld(score, 2 * b);
    const bh = ld(score, 2 * b + 1);
    if (!(h > bh || (h == bh && l > bl))) continue;
    const base = <usize>b * <usize>d << 2;
    copyRow(best + base, cand + base, d);
    st(score, 2 * b, l);
    st(score, 2 * b + 1, h);
  }
}

// APGD state columns (the WGSL's A_*).
const A_ETA: i32 = 0;
const A_BEST: i32 = 1;
const A_PREV: i32 = 2;
const A_INCR: i32 = 3;
const A_LAST: i32 = 4;
const A_REDUCED: i32 = 5;
const A_HIT: i32 = 6;

/**
 * apgd_track over samples [b0, b1): keeps the best-loss point and gradient, the latest hit and
 * the count of loss increases.
 * @param x, g (B, d) f32; @param xBest, gBest, xHit (B, d) f32, in/out
 * @param state (B, s) f32, in/out; @param rows (B, 2) [loss, hit] f32 at x
 */
export function attacks_apgdTrack(
  x: usize,
  g: usize,
  xBest: usize,
  gBest: usize,
  xHit: usize,
  state: usize,
  rows: usize,
  b0: i32,
  b1: i32,
  d: i32,
  s: i32,
): void {
  for (let b = b0; b < b1; b++) {
    const sb = b * s;
    const l = ld(rows, 2 * b);
    const h = ld(rows, 2 * b + 1);
    const improved = l > ld(state, sb + A_BEST);
    const increased = l > ld(state, sb + A_PREV);
    const base = <usize>b * <usize>d << 2;
    if (h > 0.5) {
      copyRow(xHit + base, x + base, d);
      st(state, sb + A_HIT, 1);
    }
    if (improved) {
      copyRow(xBest + base, x + base, d);
      copyRow(gBest + base, g + base, d);
    }
    if (increased) st(state, sb + A_INCR, ld(state, sb + A_INCR) + 1);
    st(state, sb + A_PREV, l);
    if (improved) st(state, sb + A_BEST, l);
  }
}

/**
 * apgd_check over samples [b0, b1): halves eta and restarts from the best point when the loss
 * went up in at most f0 = rho k steps, or eta was not reduced last time and the best did not
 * improve. @param xBest, gBest (B, d) f32; @param x, g (B, d) f32, in/out; @param state in/out
 */
export function attacks_apgdCheck(
  xBest: usize,
  gBest: usize,
  x: usize,
  g: usize,
  state: usize,
  b0: i32,
  b1: i32,
  d: i32,
  s: i32,
  f0: f32,
): void {
  for (let b = b0; b < b1; b++) {
    const sb = b * s;
    const osc = ld(state, sb + A_INCR) <= f0;
    const noimpr = ld(state, sb + A_REDUCED) < 0.5 &&
      ld(state, sb + A_LAST) >= ld(state, sb + A_BEST);
    const fl = osc || noimpr;
    st(state, sb + A_REDUCED, fl ? 1 : 0);
    st(state, sb + A_LAST, ld(state, sb + A_BEST));
    st(state, sb + A_INCR, 0);
    if (!fl) continue;
    st(state, sb + A_ETA, ld(state, sb + A_ETA) * <f32>0.5);
    const base = <usize>b * <usize>d << 2;
    copyRow(x + base, xBest + base, d);
    copyRow(g + base, gBest + base, d);
  }
}

// CW state columns (the WGSL's C_*).
const C_C: i32 = 0;
const C_LO: i32 = 1;
const C_HI: i32 = 2;
const C_BEST: i32 = 3;
const C_HIT: i32 = 4;

/**
 * cw_track over samples [b0, b1): on a hit, marks it and keeps x' when ||x' - x0||² is the
 * smallest so far. @param x0, xp (B, d) f32; @param best (B, d) f32, in/out
 * @param state (B, s) f32, in/out; @param rows (B, 2) [loss, hit] f32 at x'
 */
export function attacks_cwTrack(
  x0: usize,
  xp: usize,
  best: usize,
  state: usize,
  rows: usize,
  b0: i32,
  b1: i32,
  d: i32,
  s: i32,
  red: usize,
): void {
  for (let b = b0; b < b1; b++) {
    if (!(ld(rows, 2 * b + 1) > 0.5)) continue;
    const sb = b * s;
    const base = <usize>b * <usize>d << 2;
    const l2 = rowSumsq(ROW_OFFSET, x0 + base, xp + base, 0, d, 0, red);
    st(state, sb + C_HIT, 1);
    if (l2 < ld(state, sb + C_BEST)) {
      st(state, sb + C_BEST, l2);
      copyRow(best + base, xp + base, d);
    }
  }
}

// DeepFool state columns (the WGSL's D_*).
const D_RATIO: i32 = 0;
const D_COEF: i32 = 1;
const D_ACTIVE: i32 = 2;

/**
 * deepfool_cand over samples [b0, b1): class c0 replaces the best when |f| / ||w|| is smaller.
 * @param w grad(z_c0 - z_t) (B, d) f32; @param logits (B, k) f32; @param labels (B) u32
 * @param wBest (B, d) f32, in/out; @param state (B, s) f32, in/out
 */
export function attacks_deepfoolCand(
  w: usize,
  logits: usize,
  labels: usize,
  wBest: usize,
  state: usize,
  b0: i32,
  b1: i32,
  d: i32,
  k: i32,
  s: i32,
  c0: u32,
  red: usize,
): void {
  const ku = <u32>k;
  for (let b = b0; b < b1; b++) {
    const sb = b * s;
    const t = load<u32>(at(labels, b));
    if (!(ld(state, sb + D_ACTIVE) > 0.5 && c0 != t && t < ku)) continue;
    const base = <usize>b * <usize>d << 2;
    const n2 = rowSumsq(ROW_SRC1, 0, w + base, 0, d, 0, red);
    const row = b * k;
    const f = abs<f32>(
      ld(logits, row + <i32>min<u32>(c0, ku - 1)) - ld(logits, row + <i32>min<u32>(t, ku - 1)),
    );
    const nrm = max<f32>(Mathf.sqrt(n2), TINY);
    const ratio = f / nrm;
    if (!(ratio < ld(state, sb + D_RATIO))) continue;
    st(state, sb + D_RATIO, ratio);
    st(state, sb + D_COEF, (f + <f32>1e-4) / (nrm * nrm));
    copyRow(wBest + base, w + base, d);
  }
}

// ---- per row ---------------------------------------------------------------------------------

const NONE: u32 = 0xffffffff;

// The result of logitArgmax's last call (index; the value is its return).
let argIndex: u32 = 0;

/**
 * The first largest of the k logits from `row`, skipping classes s1 and s2: returns the value
 * (LOWEST when none is above it) and leaves the index (0 then) in argIndex.
 */
function logitArgmax(row: usize, k: u32, s1: u32, s2: u32): f32 {
  let ri: u32 = 0;
  let rv = LOWEST;
  for (let j: u32 = 0; j < k; j++) {
    const z = load<f32>(row + (<usize>j << 2));
    if (j != s1 && j != s2 && z > rv) {
      ri = j;
      rv = z;
    }
  }
  argIndex = ri;
  return rv;
}

/**
 * loss_rows over rows [b0, b1): the per-row attack loss (0 cross-entropy, 1 DLR, 2 CW margin)
 * with its logit gradient, and whether the row is a hit (see the WGSL's loss_rows).
 * @param logits (B, k) f32; @param labels (B) u32 labels or targets
 * @param state (B, s) f32, c_b at column 0 (loss 2 only); @param dz (B, k) f32, out
 * @param out (B, 2) [loss, hit] f32, out; @param sign +1 or -1; @param kappa CW confidence
 */
export function attacks_lossRows(
  logits: usize,
  labels: usize,
  state: usize,
  dz: usize,
  out: usize,
  b0: i32,
  b1: i32,
  k: i32,
  s: i32,
  sign: f32,
  kappa: f32,
  loss: i32,
  targeted: i32,
): void {
  const ku = <u32>k;
  for (let b = b0; b < b1; b++) {
    const z = at(logits, b * k);
    const g = at(dz, b * k);
    const t = load<u32>(at(labels, b));
    const m1 = logitArgmax(z, ku, NONE, NONE);
    const am = argIndex;
    for (let j = 0; j < k; j++) st(g, j, 0);
    if (!(t < ku)) {
      st(out, 2 * b, reinterpret<f32>(<u32>0x7fc00000));
      st(out, 2 * b + 1, 0);
      continue;
    }
    const correct = am == t;
    const hit: f32 = (targeted == 1 ? correct : !correct) ? 1 : 0;
    const ti = <i32>t;
    const zt = ld(z, ti);
    let l: f32 = 0;
    if (loss == 0) {
      let sum: f32 = 0;
      for (let j = 0; j < k; j++) sum += Mathf.exp(ld(z, j) - m1);
      l = sign * (m1 + Mathf.log(sum) - zt);
      for (let j = 0; j < k; j++) {
        const pj = Mathf.exp(ld(z, j) - m1) / sum;
        st(g, j, sign * (pj - <f32>(j == ti ? 1 : 0)));
      }
    } else if (loss == 1) {
      const ov = logitArgmax(z, ku, t, NONE);
      const oi = <i32>argIndex;
      logitArgmax(z, ku, am, NONE);
      const a2 = argIndex;
      const thv = logitArgmax(z, ku, am, a2);
      const th = <i32>argIndex;
      const den = m1 - thv + TINY;
      const num = zt - ov;
      l = sign * (-num / den);
      st(g, ti, ld(g, ti) + sign * (<f32>-1 / den));
      st(g, oi, ld(g, oi) + sign * (<f32>1 / den));
      // (num / den) / den, the WGSL's order (an exact 0 gradient when the loss saturates)
      const q = (num / den) / den;
      st(g, <i32>am, ld(g, <i32>am) + sign * q);
      st(g, th, ld(g, th) - sign * q);
    } else {
      let ov = LOWEST;
      let oi = 0;
      for (let j = 0; j < k; j++) {
        const v = ld(z, j) - <f32>(j == ti ? 1e4 : 0);
        if (v > ov) {
          ov = v;
          oi = j;
        }
      }
      const c = ld(state, b * s);
      let margin = zt - ov;
      let dsign: f32 = 1;
      if (targeted == 1) {
        margin = ov - zt;
        dsign = -1;
      }
      l = c * max<f32>(margin, -kappa);
      if (margin > -kappa) {
        st(g, ti, ld(g, ti) + c * dsign);
        st(g, oi, ld(g, oi) - c * dsign);
      }
    }
    st(out, 2 * b, l);
    st(out, 2 * b + 1, hit);
  }
}

/**
 * cw_search over rows [b0, b1): Carlini–Wagner's binary search step over c.
 * @param state (B, s) f32 [c, lo, hi, best, hit], in/out
 */
export function attacks_cwSearch(state: usize, b0: i32, b1: i32, s: i32): void {
  for (let b = b0; b < b1; b++) {
    const sb = b * s;
    const c = ld(state, sb + C_C);
    if (ld(state, sb + C_HIT) > 0.5) {
      const hi = min<f32>(ld(state, sb + C_HI), c);
      st(state, sb + C_HI, hi);
      st(state, sb + C_C, (ld(state, sb + C_LO) + hi) * <f32>0.5);
    } else {
      const lo = max<f32>(ld(state, sb + C_LO), c);
      st(state, sb + C_LO, lo);
      const hi = ld(state, sb + C_HI);
      st(state, sb + C_C, hi < <f32>1e9 ? (lo + hi) * <f32>0.5 : c * <f32>10);
    }
    st(state, sb + C_HIT, 0);
  }
}

/**
 * deepfool_begin over rows [b0, b1): ratio = FLT_MAX, coef = 0, active = (argmax == t && active).
 * @param logits (B, k) f32; @param labels (B) u32; @param state (B, s) f32, in/out
 */
export function attacks_deepfoolBegin(
  logits: usize,
  labels: usize,
  state: usize,
  b0: i32,
  b1: i32,
  k: i32,
  s: i32,
): void {
  for (let b = b0; b < b1; b++) {
    logitArgmax(at(logits, b * k), <u32>k, NONE, NONE);
    const sb = b * s;
    const on = argIndex == load<u32>(at(labels, b)) && ld(state, sb + D_ACTIVE) > 0.5;
    st(state, sb + D_RATIO, HIGHEST);
    st(state, sb + D_COEF, 0);
    st(state, sb + D_ACTIVE, on ? 1 : 0);
  }
}

/**
 * mask_label over rows [b0, b1): scores[b, t_b] = -1 where t_b < k.
 * @param scores (B, k) f32, in/out; @param labels (B) u32
 */
export function attacks_maskLabel(scores: usize, labels: usize, b0: i32, b1: i32, k: i32): void {
  for (let b = b0; b < b1; b++) {
    const t = load<u32>(at(labels, b));
    if (t < <u32>k) st(scores, b * k + <i32>t, -1);
  }
}
