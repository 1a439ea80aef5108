/**
 * Float64 CPU reference of shaders/augment.wgsl: batch gather by index and
 * the per-sample resampling (integer map P, inverse affine M, bilinear with
 * zero fill), and of the same augmentation written out from the parameters
 * (`augmentImageRef`), independent of the 12-float encoding.
 *
 * @module
 */

/**
 * Rows `order[offset + b]` of a dataset, `b < count`.
 * @param x (N, sample) values
 * @param y (N,) labels
 * @param sample values per sample
 * @param order sample index per position
 * @param offset first position
 * @param count batch size
 * @returns (count, sample) values and (count,) labels
 */
export function gatherRef(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  sample: number,
  order: ArrayLike<number>,
  offset: number,
  count: number,
): { x: Float64Array; y: Int32Array } {
  const ox = new Float64Array(count * sample);
  const oy = new Int32Array(count);
  for (let b = 0; b < count; b++) {
    const s = order[offset + b];
    oy[b] = y[s];
    for (let j = 0; j < sample; j++) ox[b * sample + j] = x[s * sample + j];
  }
  return { x: ox, y: oy };
}

/**
 * Resamples a batch as the kernel does, in float64, from 12 floats per sample
 * `[p00 p01 p02 p10 p11 p12 m00 m01 m02 m10 m11 m12]`.
 * @param x (B, C, H, W) values
 * @param dims [B, C, H, W]
 * @param mats (B, 12) transforms
 * @returns (B, C, H, W)
 */
export function augmentRef(
  x: ArrayLike<number>,
  dims: readonly [number, number, number, number],
  mats: ArrayLike<number>,
): Float64Array {
  const [nb, nc, h, w] = dims;
  const out = new Float64Array(nb * nc * h * w);
  const at = (base: number, yy: number, xx: number) =>
    xx < 0 || yy < 0 || xx >= w || yy >= h ? 0 : x[base + yy * w + xx];
  for (let b = 0; b < nb; b++) {
    const m = b * 12;
    for (let c = 0; c < nc; c++) {
      const base = (b * nc + c) * h * w;
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const u = mats[m] * j + mats[m + 1] * i + mats[m + 2];
          const v = mats[m + 3] * j + mats[m + 4] * i + mats[m + 5];
          let val = 0;
          if (u >= 0 && v >= 0 && u <= w - 1 && v <= h - 1) {
            const sx = mats[m + 6] * u + mats[m + 7] * v + mats[m + 8];
            const sy = mats[m + 9] * u + mats[m + 10] * v + mats[m + 11];
            const x0 = Math.floor(sx), y0 = Math.floor(sy);
            const fx = sx - x0, fy = sy - y0;
            val = (1 - fy) * ((1 - fx) * at(base, y0, x0) + fx * at(base, y0, x0 + 1)) +
              fy * ((1 - fx) * at(base, y0 + 1, x0) + fx * at(base, y0 + 1, x0 + 1));
          }
          out[base + i * w + j] = val;
        }
      }
    }
  }
  return out;
}

/** Parameters of one sample, as in src/data/augment.ts `SampleTransform`. */
export interface TransformParams {
  /** Rotation in radians. */
  angle: number;
  /** Translation in pixels. */
  tx: number;
  /** Translation in pixels. */
  ty: number;
  /** Scale factor. */
  scale: number;
  /** Horizontal flip. */
  flip: boolean;
  /** Crop shift in pixels. */
  dx: number;
  /** Crop shift in pixels. */
  dy: number;
}

/**
 * One image augmented straight from its parameters, step by step as the module doc of
 * src/data/augment.ts describes (affine warp about the centre, then zero-padded crop, then
 * flip), without matrices: an independent check of the composition.
 * @param img (C, H, W) values
 * @param dims [C, H, W]
 * @param t parameters
 * @returns (C, H, W)
 */
export function augmentImageRef(
  img: ArrayLike<number>,
  dims: readonly [number, number, number],
  t: TransformParams,
): Float64Array {
  const [nc, h, w] = dims;
  const cx = (w - 1) / 2, cy = (h - 1) / 2;
  const cos = Math.cos(t.angle), sin = Math.sin(t.angle);
  const out = new Float64Array(nc * h * w);
  for (let c = 0; c < nc; c++) {
    const base = c * h * w;
    const at = (yy: number, xx: number) =>
      xx < 0 || yy < 0 || xx >= w || yy >= h ? 0 : img[base + yy * w + xx];
    // The warped image at (u, v): A maps source p to s R (p - c) + c + t, so the source point
    // is R(-θ) ((u, v) - c - t) / s + c.
    const warped = (u: number, v: number) => {
      const ax = u - cx - t.tx, ay = v - cy - t.ty;
      const sx = (cos * ax + sin * ay) / t.scale + cx;
      const sy = (-sin * ax + cos * ay) / t.scale + cy;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
        fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
    };
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const jf = t.flip ? w - 1 - j : j;
        const u = jf + t.dx, v = i + t.dy;
        out[base + i * w + j] = u < 0 || v < 0 || u > w - 1 || v > h - 1 ? 0 : warped(u, v);
      }
    }
  }
  return out;
}
