// regula WebAssembly kernels: the twins of the layers WGSL family (src/wasm/kernels/layers.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// shaders/layers.wgsl's small kernels. The elementwise ones (sum_parts, channel_affine, act2) run
// a range [i0, i0 + count) of output elements, four per f32x4 where the math allows; the per-channel
// sums (channel_sum, bn_gamma) run a range of channels, each summed whole by the thread that owns
// it in a fixed order (_sums.ts along each row's S contiguous entries, then the rows in blocks of
// ROWS; with S = 1 four adjacent channels per f32x4, each lane summing its channel's rows in the
// same blocks as the scalar tail), so a channel's bits do not depend on the thread split. The
// WGSL sums with a tree in workgroup memory instead: the two agree to float32 rounding only.
// Pointers are byte offsets of element 0 of each buffer.

import { at } from "./_common";
import { channelMap, SCALE, SCALE_SHIFT } from "./_channels";
import { channel, channels4, DOT, SUM } from "./_sums";

/**
 * sum_parts_main on elements [i0, i0 + count): out[i] = Σ_{z < parts} u[z·len + i] (z ascending),
 * then + beta·out[i] when beta != 0.
 * @param u (parts, len) f32
 * @param out (len,) f32
 */
export function layers_sumParts(
  i0: i32,
  count: i32,
  len: i32,
  parts: i32,
  u: usize,
  out: usize,
  beta: f32,
): void {
  const vb = f32x4.splat(beta);
  const hasBeta = beta != 0;
  const stride = <usize>len << 2;
  let i = i0;
  const end = i0 + count;
  for (; i + 4 <= end; i += 4) {
    let s = f32x4.splat(0);
    let p = at(u, i);
    for (let z = 0; z < parts; z++) {
      s = f32x4.add(s, v128.load(p));
      p += stride;
    }
    if (hasBeta) s = f32x4.add(s, f32x4.mul(vb, v128.load(at(out, i))));
    v128.store(at(out, i), s);
  }
  for (; i < end; i++) {
    let s: f32 = 0;
    let p = at(u, i);
    for (let z = 0; z < parts; z++) {
      s += load<f32>(p);
      p += stride;
    }
    if (hasBeta) s += beta * load<f32>(at(out, i));
    store<f32>(at(out, i), s);
  }
}

/**
 * channel_sum_main on channels [c0, c0 + count): out[c] = Σ_{b < n, q < s} u[(b·C + c)·s + q],
 * then + beta·out[c] when beta != 0.
 * @param u (n, C, s) f32
 * @param out (C,) f32
 */
export function layers_channelSum(
  c0: i32,
  count: i32,
  n: i32,
  channels: i32,
  s: i32,
  u: usize,
  out: usize,
  beta: f32,
): void {
  const hasBeta = beta != 0;
  const end = c0 + count;
  let c = c0;
  if (s == 1) {
    const step = <usize>channels << 2;
    const vb = f32x4.splat(beta);
    const none = f32x4.splat(0);
    for (; c + 4 <= end; c += 4) {
      let acc = channels4(SUM, at(u, c), 0, n, step, none, none);
      if (hasBeta) acc = f32x4.add(acc, f32x4.mul(vb, v128.load(at(out, c))));
      v128.store(at(out, c), acc);
    }
  }
  const rowBytes = (<usize>channels * s) << 2;
  for (; c < end; c++) {
    let acc = channel(SUM, at(u, <usize>c * s), 0, n, rowBytes, s, 0, 0);
    if (hasBeta) acc += beta * load<f32>(at(out, c));
    store<f32>(at(out, c), acc);
  }
}

/**
 * channel_affine_main on elements [i0, i0 + count): out[i] = u[i]·v[c] (+ w[c] when hasShift),
 * c = (i / s) % C.
 * @param u (..., C, s) f32
 * @param v (C,) f32 scale
 * @param w (C,) f32 shift (read only when hasShift)
 * @param out like u
 */
export function layers_channelAffine(
  i0: u32,
  count: u32,
  channels: u32,
  s: u32,
  u: usize,
  v: usize,
  w: usize,
  out: usize,
  hasShift: i32,
): void {
  if (hasShift) {
    channelMap(SCALE_SHIFT, i0, count, channels, s, u, 0, out, v, 0, w, 0, 0, 0, 0);
  } else {
    channelMap(SCALE, i0, count, channels, s, u, 0, out, v, 0, 0, 0, 0, 0, 0);
  }
}

/** shaders/layers.wgsl's sigmoid: exp(-|x|) based, so no overflow on either side. */
@inline function sigmoid(x: f32): f32 {
  const e = Mathf.exp(-Mathf.abs(x));
  const r = <f32>1 / (<f32>1 + e);
  return x >= 0 ? r : e * r;
}

/**
 * act2_main on elements [i0, i0 + count): out[i] = σ''(a_i) (· v[i] if factors >= 1)
 * (· w[i] if factors >= 2), σ'' from the cached u: act 1 tanh (u = tanh a), 2 sigmoid (u = σ(a)),
 * 3 softplus (u = a, alpha = β, beta = threshold: 0 where β·a > threshold); any other act gives 0.
 * @param u (n,) f32
 * @param v (n,) f32 first factor
 * @param w (n,) f32 second factor
 * @param out (n,) f32
 */
export function layers_act2(
  i0: i32,
  count: i32,
  act: i32,
  factors: i32,
  u: usize,
  v: usize,
  w: usize,
  out: usize,
  alpha: f32,
  beta: f32,
): void {
  const end = i0 + count;
  let i = i0;
  if (act == 1 || act == 2) {
    const one = f32x4.splat(1);
    const two = f32x4.splat(2);
    const m2 = f32x4.splat(-2);
    for (; i + 4 <= end; i += 4) {
      const t = v128.load(at(u, i));
      let d = act == 1
        ? f32x4.mul(f32x4.mul(f32x4.mul(m2, t), f32x4.sub(one, t)), f32x4.add(one, t))
        : f32x4.mul(f32x4.mul(t, f32x4.sub(one, t)), f32x4.sub(one, f32x4.mul(two, t)));
      if (factors >= 1) d = f32x4.mul(d, v128.load(at(v, i)));
      if (factors >= 2) d = f32x4.mul(d, v128.load(at(w, i)));
      v128.store(at(out, i), d);
    }
  }
  for (; i < end; i++) {
    const t = load<f32>(at(u, i));
    let d: f32 = 0;
    if (act == 1) {
      d = <f32>-2 * t * (<f32>1 - t) * (<f32>1 + t);
    } else if (act == 2) {
      d = t * (<f32>1 - t) * (<f32>1 - <f32>2 * t);
    } else if (act == 3) {
      const bx = alpha * t;
      const s = sigmoid(bx);
      d = bx > beta ? <f32>0 : alpha * s * (<f32>1 - s);
    }
    if (factors >= 1) d *= load<f32>(at(v, i));
    if (factors >= 2) d *= load<f32>(at(w, i));
    store<f32>(at(out, i), d);
  }
}

/**
 * bn_gamma_main on channels [c0, c0 + count): out[c] += (Σ_{b < n, q < s} u[k]·v[k]) /
 * sqrt(w[c] + eps), k = (b·C + c)·s + q (summed as channel_sum).
 * @param u (n, C, s) f32 backward signal
 * @param v (n, C, s) f32 tangent
 * @param w (C,) f32 running variance
 * @param out (C,) f32, accumulated into
 */
export function layers_bnGamma(
  c0: i32,
  count: i32,
  n: i32,
  channels: i32,
  s: i32,
  u: usize,
  v: usize,
  w: usize,
  out: usize,
  eps: f32,
): void {
  const end = c0 + count;
  let c = c0;
  if (s == 1) {
    const step = <usize>channels << 2;
    const veps = f32x4.splat(eps);
    const none = f32x4.splat(0);
    for (; c + 4 <= end; c += 4) {
      const acc = channels4(DOT, at(u, c), at(v, c), n, step, none, none);
      const o = at(out, c);
      const r = f32x4.div(acc, f32x4.sqrt(f32x4.add(v128.load(at(w, c)), veps)));
      v128.store(o, f32x4.add(v128.load(o), r));
    }
  }
  const rowBytes = (<usize>channels * s) << 2;
  for (; c < end; c++) {
    const k = <usize>c * s;
    const acc = channel(DOT, at(u, k), at(v, k), n, rowBytes, s, 0, 0);
    const o = at(out, c);
    store<f32>(o, load<f32>(o) + acc / Mathf.sqrt(load<f32>(at(w, c)) + eps));
  }
}
