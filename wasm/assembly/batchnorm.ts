// regula WebAssembly kernels: the twins of the batchnorm WGSL family (src/wasm/kernels/batchnorm.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// shaders/batchnorm.wgsl and batchnorm_state.wgsl (see there for the math; Ioffe & Szegedy 2015,
// PyTorch 1.13 semantics). Data are (B, C, S), stats is (5, C): mean, invstd, unbiased batch
// variance, Σdy, Σdy·x̂.
//
// The per-channel reductions (stats, bwd_reduce) take a range of channels and sum each channel
// whole, in a fixed order: f32x4 running sums along the S contiguous entries of each row when
// S > 1; with S = 1 (BatchNorm1d) four adjacent channels per f32x4, each lane a plain sum over the
// batch (the same bits as the scalar tail). A channel's bits so never depend on the thread split;
// the WGSL sums with a tree in workgroup memory, so the two agree to float32 rounding only. The
// variance is the WGSL's second pass around the mean. The elementwise passes (affine, bwd_dx)
// take a range of elements, four per f32x4 within each run of one channel.
// Pointers are byte offsets of element 0 of each buffer.

@inline function at(base: usize, i: usize): usize {
  return base + (i << 2);
}

/** Σ p[j] over n contiguous floats (eight running sums, a fixed tree, then the tail). */
@inline function rowSum(p: usize, n: i32): f32 {
  let a = f32x4.splat(0);
  let b = f32x4.splat(0);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const o = <usize>j << 2;
    a = f32x4.add(a, v128.load(p + o));
    b = f32x4.add(b, v128.load(p + o, 16));
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

/** Σ (p[j] - mean)² over n contiguous floats, in rowSum's order. */
@inline function rowSqDev(p: usize, n: i32, mean: f32): f32 {
  const vm = f32x4.splat(mean);
  let a = f32x4.splat(0);
  let b = f32x4.splat(0);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const o = <usize>j << 2;
    const d0 = f32x4.sub(v128.load(p + o), vm);
    const d1 = f32x4.sub(v128.load(p + o, 16), vm);
    a = f32x4.add(a, f32x4.mul(d0, d0));
    b = f32x4.add(b, f32x4.mul(d1, d1));
  }
  if (j + 4 <= n) {
    const d0 = f32x4.sub(v128.load(p + (<usize>j << 2)), vm);
    a = f32x4.add(a, f32x4.mul(d0, d0));
    j += 4;
  }
  a = f32x4.add(a, b);
  let s = (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) +
    (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
  for (; j < n; j++) {
    const d = load<f32>(p + (<usize>j << 2)) - mean;
    s += d * d;
  }
  return s;
}

@inline function putStats(stats: usize, channels: usize, c: usize, mean: f32, q: f32, m: u32, eps: f32): void {
  const fm = <f32>m;
  const varb = q / fm;
  store<f32>(at(stats, c), mean);
  store<f32>(at(stats, channels + c), <f32>1 / Mathf.sqrt(varb + eps));
  store<f32>(at(stats, 2 * channels + c), m > 1 ? varb * fm / <f32>(m - 1) : varb);
}

/**
 * stats_main on channels [c0, c0 + count): mean, 1/sqrt(biased var + eps) and the unbiased
 * variance of each channel's B·S entries, into rows 0, 1, 2 of stats.
 * @param x (B, C, S) f32
 * @param stats (5, C) f32
 */
export function batchnorm_stats(
  c0: u32,
  count: u32,
  b: u32,
  channels: u32,
  s: u32,
  x: usize,
  stats: usize,
  eps: f32,
): void {
  const m = b * s;
  const fm = <f32>m;
  const end = c0 + count;
  let c = c0;
  if (s == 1) {
    const step = <usize>channels << 2;
    const vfm = f32x4.splat(fm);
    for (; c + 4 <= end; c += 4) {
      let acc = f32x4.splat(0);
      let p = at(x, c);
      for (let i: u32 = 0; i < b; i++) {
        acc = f32x4.add(acc, v128.load(p));
        p += step;
      }
      const mean = f32x4.div(acc, vfm);
      let q = f32x4.splat(0);
      p = at(x, c);
      for (let i: u32 = 0; i < b; i++) {
        const d = f32x4.sub(v128.load(p), mean);
        q = f32x4.add(q, f32x4.mul(d, d));
        p += step;
      }
      putStats(stats, channels, c, f32x4.extract_lane(mean, 0), f32x4.extract_lane(q, 0), m, eps);
      putStats(stats, channels, c + 1, f32x4.extract_lane(mean, 1), f32x4.extract_lane(q, 1), m, eps);
      putStats(stats, channels, c + 2, f32x4.extract_lane(mean, 2), f32x4.extract_lane(q, 2), m, eps);
      putStats(stats, channels, c + 3, f32x4.extract_lane(mean, 3), f32x4.extract_lane(q, 3), m, eps);
    }
    for (; c < end; c++) {
      let acc: f32 = 0;
      for (let i: u32 = 0; i < b; i++) acc += load<f32>(at(x, <usize>i * channels + c));
      const mean = acc / fm;
      let q: f32 = 0;
      for (let i: u32 = 0; i < b; i++) {
        const d = load<f32>(at(x, <usize>i * channels + c)) - mean;
        q += d * d;
      }
      putStats(stats, channels, c, mean, q, m, eps);
    }
    return;
  }
  for (; c < end; c++) {
    let acc: f32 = 0;
    for (let i: u32 = 0; i < b; i++) acc += rowSum(at(x, (<usize>i * channels + c) * s), s);
    const mean = acc / fm;
    let q: f32 = 0;
    for (let i: u32 = 0; i < b; i++) q += rowSqDev(at(x, (<usize>i * channels + c) * s), s, mean);
    putStats(stats, channels, c, mean, q, m, eps);
  }
}

/**
 * bwd_reduce_main on channels [c0, c0 + count): Σdy and Σdy·x̂ (x̂ = (x - mean)·invstd from rows
 * 0 and 1 of stats) into rows 3 and 4 of stats.
 * @param dy (B, C, S) f32
 * @param x (B, C, S) f32 the cached input
 * @param stats (5, C) f32
 */
export function batchnorm_bwdReduce(
  c0: u32,
  count: u32,
  b: u32,
  channels: u32,
  s: u32,
  dy: usize,
  x: usize,
  stats: usize,
): void {
  const end = c0 + count;
  let c = c0;
  if (s == 1) {
    const step = <usize>channels << 2;
    for (; c + 4 <= end; c += 4) {
      const mean = v128.load(at(stats, c));
      const invstd = v128.load(at(stats, <usize>channels + c));
      let sd = f32x4.splat(0);
      let sdx = f32x4.splat(0);
      let pd = at(dy, c);
      let px = at(x, c);
      for (let i: u32 = 0; i < b; i++) {
        const d = v128.load(pd);
        sd = f32x4.add(sd, d);
        sdx = f32x4.add(sdx, f32x4.mul(f32x4.mul(d, f32x4.sub(v128.load(px), mean)), invstd));
        pd += step;
        px += step;
      }
      v128.store(at(stats, 3 * <usize>channels + c), sd);
      v128.store(at(stats, 4 * <usize>channels + c), sdx);
    }
    for (; c < end; c++) {
      const mean = load<f32>(at(stats, c));
      const invstd = load<f32>(at(stats, <usize>channels + c));
      let sd: f32 = 0;
      let sdx: f32 = 0;
      for (let i: u32 = 0; i < b; i++) {
        const k = <usize>i * channels + c;
        const d = load<f32>(at(dy, k));
        sd += d;
        sdx += d * (load<f32>(at(x, k)) - mean) * invstd;
      }
      store<f32>(at(stats, 3 * <usize>channels + c), sd);
      store<f32>(at(stats, 4 * <usize>channels + c), sdx);
    }
    return;
  }
  for (; c < end; c++) {
    const mean = load<f32>(at(stats, c));
    const invstd = load<f32>(at(stats, <usize>channels + c));
    const vm = f32x4.splat(mean);
    const vi = f32x4.splat(invstd);
    // Four running sums of each along the rows' first 4·floor(S/4) entries, one for the rest.
    let vd = f32x4.splat(0);
    let vdx = f32x4.splat(0);
    let sd: f32 = 0;
    let sdx: f32 = 0;
    for (let i: u32 = 0; i < b; i++) {
      const k = (<usize>i * channels + c) * s;
      const pd = at(dy, k);
      const px = at(x, k);
      let j: u32 = 0;
      for (; j + 4 <= s; j += 4) {
        const o = <usize>j << 2;
        const d = v128.load(pd + o);
        vd = f32x4.add(vd, d);
        vdx = f32x4.add(vdx, f32x4.mul(f32x4.mul(d, f32x4.sub(v128.load(px + o), vm)), vi));
      }
      for (; j < s; j++) {
        const o = <usize>j << 2;
        const d = load<f32>(pd + o);
        sd += d;
        sdx += d * (load<f32>(px + o) - mean) * invstd;
      }
    }
    sd += (f32x4.extract_lane(vd, 0) + f32x4.extract_lane(vd, 1)) +
      (f32x4.extract_lane(vd, 2) + f32x4.extract_lane(vd, 3));
    sdx += (f32x4.extract_lane(vdx, 0) + f32x4.extract_lane(vdx, 1)) +
      (f32x4.extract_lane(vdx, 2) + f32x4.extract_lane(vdx, 3));
    store<f32>(at(stats, 3 * <usize>channels + c), sd);
    store<f32>(at(stats, 4 * <usize>channels + c), sdx);
  }
}

/**
 * affine_main on elements [i0, i0 + count): mode 0 y = (x - mean)·gamma·invstd + beta;
 * mode 1 (jvp) y = x·gamma·invstd, c = (i / S) % C.
 * @param x (B, C, S) f32
 * @param y (B, C, S) f32
 * @param gamma (C,) f32
 * @param beta (C,) f32 (mode 0)
 * @param stats (5, C) f32 (rows 0 and 1)
 */
export function batchnorm_affine(
  i0: u32,
  count: u32,
  channels: u32,
  s: u32,
  x: usize,
  y: usize,
  gamma: usize,
  beta: usize,
  stats: usize,
  mode: u32,
): void {
  const end = i0 + count;
  let i = i0;
  while (i < end) {
    const row = i / s;
    const c = row % channels;
    const stop = min<u32>(end, (row + 1) * s);
    const g = load<f32>(at(gamma, c)) * load<f32>(at(stats, <usize>channels + c));
    const vg = f32x4.splat(g);
    if (mode == 0) {
      const mean = load<f32>(at(stats, c));
      const sh = load<f32>(at(beta, c));
      const vm = f32x4.splat(mean);
      const vs = f32x4.splat(sh);
      for (; i + 4 <= stop; i += 4) {
        v128.store(at(y, i), f32x4.add(f32x4.mul(f32x4.sub(v128.load(at(x, i)), vm), vg), vs));
      }
      for (; i < stop; i++) store<f32>(at(y, i), (load<f32>(at(x, i)) - mean) * g + sh);
    } else {
      for (; i + 4 <= stop; i += 4) v128.store(at(y, i), f32x4.mul(v128.load(at(x, i)), vg));
      for (; i < stop; i++) store<f32>(at(y, i), load<f32>(at(x, i)) * g);
    }
  }
}

/**
 * bwd_dx_main on elements [i0, i0 + count): mode 0 (train) dx = gamma·invstd·(dy - Σdy/M -
 * x̂·Σdy·x̂/M), M = B·S; mode 1 (eval) dx = gamma·invstd·dy.
 * @param dy (B, C, S) f32
 * @param x (B, C, S) f32 the cached input (mode 0)
 * @param dx (B, C, S) f32
 * @param gamma (C,) f32
 * @param stats (5, C) f32
 */
export function batchnorm_bwdDx(
  i0: u32,
  count: u32,
  b: u32,
  channels: u32,
  s: u32,
  dy: usize,
  x: usize,
  dx: usize,
  gamma: usize,
  stats: usize,
  mode: u32,
): void {
  const fm = <f32>(b * s);
  const vfm = f32x4.splat(fm);
  const end = i0 + count;
  let i = i0;
  while (i < end) {
    const row = i / s;
    const c = row % channels;
    const stop = min<u32>(end, (row + 1) * s);
    const invstd = load<f32>(at(stats, <usize>channels + c));
    const g = load<f32>(at(gamma, c)) * invstd;
    const vg = f32x4.splat(g);
    if (mode == 1) {
      for (; i + 4 <= stop; i += 4) v128.store(at(dx, i), f32x4.mul(vg, v128.load(at(dy, i))));
      for (; i < stop; i++) store<f32>(at(dx, i), g * load<f32>(at(dy, i)));
      continue;
    }
    const mean = load<f32>(at(stats, c));
    const t1 = load<f32>(at(stats, 3 * <usize>channels + c)) / fm;
    const sdx = load<f32>(at(stats, 4 * <usize>channels + c));
    const vm = f32x4.splat(mean);
    const vi = f32x4.splat(invstd);
    const vt1 = f32x4.splat(t1);
    const vsdx = f32x4.splat(sdx);
    for (; i + 4 <= stop; i += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(at(x, i)), vm), vi);
      const t2 = f32x4.div(f32x4.mul(xh, vsdx), vfm);
      v128.store(at(dx, i), f32x4.mul(vg, f32x4.sub(f32x4.sub(v128.load(at(dy, i)), vt1), t2)));
    }
    for (; i < stop; i++) {
      const xh = (load<f32>(at(x, i)) - mean) * invstd;
      store<f32>(at(dx, i), g * (load<f32>(at(dy, i)) - t1 - xh * sdx / fm));
    }
  }
}

/**
 * update_running_main: running = (1 - momentum)·running + momentum·batch (mean from stats row 0,
 * unbiased variance from row 2) for the first `channels` channels; tracked[0] += 1 if any.
 * @param stats (5, C) f32 (C = `stride`)
 * @param runningMean (C,) f32
 * @param runningVar (C,) f32
 * @param tracked (1,) i32
 */
export function batchnorm_updateRunning(
  channels: u32,
  stride: u32,
  stats: usize,
  runningMean: usize,
  runningVar: usize,
  tracked: usize,
  momentum: f32,
): void {
  const keep = <f32>1 - momentum;
  for (let c: u32 = 0; c < channels; c++) {
    const pm = at(runningMean, c);
    const pv = at(runningVar, c);
    store<f32>(pm, keep * load<f32>(pm) + momentum * load<f32>(at(stats, c)));
    store<f32>(pv, keep * load<f32>(pv) + momentum * load<f32>(at(stats, 2 * <usize>stride + c)));
  }
  if (channels > 0) store<i32>(tracked, load<i32>(tracked) + 1);
}

/**
 * eval_stats_main: stats row 0 = running mean, row 1 = 1/sqrt(running var + eps), for the first
 * `channels` channels.
 * @param stats (5, C) f32 (C = `stride`)
 */
export function batchnorm_evalStats(
  channels: u32,
  stride: u32,
  stats: usize,
  runningMean: usize,
  runningVar: usize,
  eps: f32,
): void {
  for (let c: u32 = 0; c < channels; c++) {
    store<f32>(at(stats, c), load<f32>(at(runningMean, c)));
    store<f32>(at(stats, <usize>stride + c), <f32>1 / Mathf.sqrt(load<f32>(at(runningVar, c)) + eps));
  }
}

/**
 * accum_grads_main: dgamma += Σdy·x̂ (stats row 4), dbeta += Σdy (row 3), first `channels`.
 * @param stats (5, C) f32 (C = `stride`)
 */
export function batchnorm_accumGrads(
  channels: u32,
  stride: u32,
  stats: usize,
  dgamma: usize,
  dbeta: usize,
): void {
  for (let c: u32 = 0; c < channels; c++) {
    const pg = at(dgamma, c);
    const pb = at(dbeta, c);
    store<f32>(pg, load<f32>(pg) + load<f32>(at(stats, 4 * <usize>stride + c)));
    store<f32>(pb, load<f32>(pb) + load<f32>(at(stats, 3 * <usize>stride + c)));
  }
}
