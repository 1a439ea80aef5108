// regula WebAssembly kernels: the twins of the augment WGSL family (src/wasm/kernels/augment.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// The math is shaders/augment.wgsl's (see its header): gather the samples of a batch (f32 values,
// or bytes through a 256-entry table), optionally resampled through a per-sample integer map P
// (flip, padded crop) and inverse affine M with bilinear interpolation and zero fill. Pointers are
// byte offsets into the memory, counts are elements.

import { at } from "./_common";

/** WGSL's clamp(v, lo, hi) = min(max(v, lo), hi), with NaN taken to lo so the i32 cast is defined. */
@inline function clampf(v: f32, lo: f32, hi: f32): f32 {
  return v >= lo ? (v <= hi ? v : hi) : lo;
}

/** Element e of the source: f32 bits (source = 0) or lut[byte e] (source = 1). */
@inline function loadSrc(src: usize, lut: usize, source: u32, e: u32): f32 {
  if (source == 0) return load<f32>(at(src, e));
  return load<f32>(at(lut, <u32>load<u8>(src + <usize>e)));
}

/** Pixel (yy, xx) of the plane whose first element is `pb`, or 0 outside the image. */
@inline function tap(
  src: usize,
  lut: usize,
  source: u32,
  pb: u32,
  width: u32,
  height: u32,
  yy: i32,
  xx: i32,
): f32 {
  if (xx < 0 || yy < 0 || xx >= <i32>width || yy >= <i32>height) return 0;
  return loadSrc(src, lut, source, pb + <u32>yy * width + <u32>xx);
}

/**
 * The augment kernel over output elements [t0, t1) of (count, sample): element t = b * sample + j
 * reads sample s = order[offset + b] (indexed = 1) or b, plain (affine = 0) or resampled through
 * the 12 floats mats[offset + b]; the element with j = 0 also copies labels[s] to outY[b]
 * (withLabels = 1).
 * src: (N * sample) f32 bits, or bytes (source = 1); labels: (N,) i32; order: (positions,) u32;
 * mats: (positions, 12) f32; lut: (256,) f32; outX: (count, sample) f32; outY: (count,) i32.
 */
export function augment_gather(
  src: usize,
  labels: usize,
  order: usize,
  mats: usize,
  lut: usize,
  outX: usize,
  outY: usize,
  offset: u32,
  height: u32,
  width: u32,
  sample: u32,
  source: u32,
  indexed: u32,
  affine: u32,
  withLabels: u32,
  t0: u32,
  t1: u32,
): void {
  const plane = height * width;
  const wMax = <f32>(width - 1);
  const hMax = <f32>(height - 1);
  const xHi = <f32>width + 1;
  const yHi = <f32>height + 1;
  const lo: f32 = -2.0;
  const one: f32 = 1.0;
  let t = t0;
  while (t < t1) {
    const b = t / sample;
    let j = t - b * sample;
    const jEnd = min<u32>(sample, j + (t1 - t));
    t += jEnd - j;
    const q = offset + b;
    const s = indexed == 1 ? load<u32>(at(order, q)) : b;
    if (withLabels == 1 && j == 0) store<i32>(at(outY, b), load<i32>(at(labels, s)));
    const base = s * sample;
    const out = at(outX, b * sample);
    if (affine == 0) {
      if (source == 0) {
        memory.copy(at(out, j), at(src, base + j), <usize>(jEnd - j) << 2);
      } else {
        for (; j < jEnd; j++) store<f32>(at(out, j), loadSrc(src, lut, 1, base + j));
      }
      continue;
    }
    const m = at(mats, q * 12);
    const p00 = load<f32>(m), p01 = load<f32>(m, 4), p02 = load<f32>(m, 8);
    const p10 = load<f32>(m, 12), p11 = load<f32>(m, 16), p12 = load<f32>(m, 20);
    const m00 = load<f32>(m, 24), m01 = load<f32>(m, 28), m02 = load<f32>(m, 32);
    const m10 = load<f32>(m, 36), m11 = load<f32>(m, 40), m12 = load<f32>(m, 44);
    for (; j < jEnd; j++) {
      const c = j / plane;
      const r = j - c * plane;
      const fi = <f32>(r / width);
      const fj = <f32>(r % width);
      const u = p00 * fj + p01 * fi + p02;
      const v = p10 * fj + p11 * fi + p12;
      if (!(u >= 0 && v >= 0 && u <= wMax && v <= hMax)) {
        store<f32>(at(out, j), 0);
        continue;
      }
      const x = clampf(m00 * u + m01 * v + m02, lo, xHi);
      const y = clampf(m10 * u + m11 * v + m12, lo, yHi);
      const x0 = Mathf.floor(x);
      const y0 = Mathf.floor(y);
      const fx = x - x0;
      const fy = y - y0;
      const xi = <i32>x0;
      const yi = <i32>y0;
      const pb = base + c * plane;
      const top = (one - fx) * tap(src, lut, source, pb, width, height, yi, xi) +
        fx * tap(src, lut, source, pb, width, height, yi, xi + 1);
      const bot = (one - fx) * tap(src, lut, source, pb, width, height, yi + 1, xi) +
        fx * tap(src, lut, source, pb, width, height, yi + 1, xi + 1);
      store<f32>(at(out, j), (one - fy) * top + fy * bot);
    }
  }
}
