// regula WebAssembly kernels: the twins of the layers WGSL family (src/wasm/kernels/layers.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// shaders/layers.wgsl's small kernels. The elementwise ones (sum_parts, channel_affine, act2) run
// a range [i0, i0 + count) of output elements, four per f32x4 where the math allows; the per-channel
// sums (channel_sum, bn_gamma) run a range of channels, each summed whole by the thread that owns
// it in plain order (four or eight running partial sums along contiguous data, then added in a
// fixed order), so a channel's bits do not depend on the thread split. The WGSL sums with a tree in
// workgroup memory instead: the two agree to float32 rounding, not bit for bit.
// Pointers are byte offsets of element 0 of each buffer.

@inline function at(base: usize, i: usize): usize {
  return base + (i << 2);
}

/** Plain sum of n contiguous floats (eight running sums, then a fixed tree, then the tail). */
@inline function sumContiguous(p: usize, n: i32): f32 {
  let a = f32x4.splat(0);
  let b = f32x4.splat(0);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    a = f32x4.add(a, v128.load(p + (<usize>j << 2)));
    b = f32x4.add(b, v128.load(p + (<usize>j << 2), 16));
  }
  if (j + 4 <= n) {
    a = f32x4.add(a, v128.load(p + (<usize>j << 2)));
    j += 4;
  }
  a = f32x4.add(a, b);
  let s = (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) +
    (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
  for (; j < n; j++) s += load<f32>(p + (<usize>j << 2));
  return s;
}

/** Plain sum of x[i]·y[i] over n contiguous floats (as sumContiguous). */
@inline function dotContiguous(p: usize, q: usize, n: i32): f32 {
  let a = f32x4.splat(0);
  let b = f32x4.splat(0);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const o = <usize>j << 2;
    a = f32x4.add(a, f32x4.mul(v128.load(p + o), v128.load(q + o)));
    b = f32x4.add(b, f32x4.mul(v128.load(p + o, 16), v128.load(q + o, 16)));
  }
  if (j + 4 <= n) {
    const o = <usize>j << 2;
    a = f32x4.add(a, f32x4.mul(v128.load(p + o), v128.load(q + o)));
    j += 4;
  }
  a = f32x4.add(a, b);
  let s = (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) +
    (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
  for (; j < n; j++) s += load<f32>(p + (<usize>j << 2)) * load<f32>(q + (<usize>j << 2));
  return s;
}

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
 * then + beta·out[c] when beta != 0. With s = 1 four adjacent channels are summed per f32x4
 * (each lane a plain sum over b, the same bits as the scalar tail).
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
    for (; c + 4 <= end; c += 4) {
      let acc = f32x4.splat(0);
      let p = at(u, c);
      for (let b = 0; b < n; b++) {
        acc = f32x4.add(acc, v128.load(p));
        p += step;
      }
      if (hasBeta) acc = f32x4.add(acc, f32x4.mul(vb, v128.load(at(out, c))));
      v128.store(at(out, c), acc);
    }
    for (; c < end; c++) {
      let acc: f32 = 0;
      let p = at(u, c);
      for (let b = 0; b < n; b++) {
        acc += load<f32>(p);
        p += step;
      }
      if (hasBeta) acc += beta * load<f32>(at(out, c));
      store<f32>(at(out, c), acc);
    }
    return;
  }
  for (; c < end; c++) {
    let acc: f32 = 0;
    for (let b = 0; b < n; b++) {
      acc += sumContiguous(at(u, (<usize>b * channels + c) * s), s);
    }
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
  const end = i0 + count;
  let i = i0;
  while (i < end) {
    // One run of equal c: the rest of the current row of s elements.
    const row = i / s;
    const c = row % channels;
    const stop = min<u32>(end, (row + 1) * s);
    const sc = load<f32>(at(v, c));
    const sh: f32 = hasShift ? load<f32>(at(w, c)) : 0;
    const vsc = f32x4.splat(sc);
    const vsh = f32x4.splat(sh);
    if (hasShift) {
      for (; i + 4 <= stop; i += 4) {
        v128.store(at(out, i), f32x4.add(f32x4.mul(v128.load(at(u, i)), vsc), vsh));
      }
      for (; i < stop; i++) store<f32>(at(out, i), load<f32>(at(u, i)) * sc + sh);
    } else {
      for (; i + 4 <= stop; i += 4) v128.store(at(out, i), f32x4.mul(v128.load(at(u, i)), vsc));
      for (; i < stop; i++) store<f32>(at(out, i), load<f32>(at(u, i)) * sc);
    }
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
 * sqrt(w[c] + eps), k = (b·C + c)·s + q.
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
  for (let c = c0; c < c0 + count; c++) {
    let acc: f32 = 0;
    for (let b = 0; b < n; b++) {
      const k = (<usize>b * channels + c) * s;
      acc += dotContiguous(at(u, k), at(v, k), s);
    }
    const o = at(out, c);
    store<f32>(o, load<f32>(o) + acc / Mathf.sqrt(load<f32>(at(w, c)) + eps));
  }
}
