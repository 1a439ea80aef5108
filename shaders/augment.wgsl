// Batch assembly and data augmentation: gathers the samples of a batch from a dataset resident on
// the GPU (f32 values, or 8-bit pixels packed four to a u32 word and converted through a 256-entry
// table, so that the result is bit-identical to the host's bytes / 255), and optionally resamples
// each sample through its own affine transform with bilinear interpolation and zero fill.
//
// Threading plan: one invocation per output element t = (b, j), t = b * sample + j, over a 2-D
// grid of 256-wide workgroups (t = (wid.y * nwg.x + wid.x) * 256 + lid.x, see Runtime.grid). The
// sample read is s = order[offset + b] (INDEXED = 1, a shuffled epoch) or s = b (INDEXED = 0, a
// batch already in `src`); the invocation with j = 0 also copies the label (LABELS = 1). Every
// output element is written exactly once; nothing is shared between invocations.
//
// Augmentation (AFFINE = 1), per output pixel (i, j) of channel c, with the 12 floats of position
// q = offset + b in `mats`: [p00 p01 p02 p10 p11 p12 m00 m01 m02 m10 m11 m12]:
//   (u, v) = P (j, i, 1)ᵀ   — integer map: horizontal flip and crop shift (the "padding" window);
//                             (u, v) outside [0, W-1] x [0, H-1] gives 0, as zero padding does;
//   (x, y) = M (u, v, 1)ᵀ   — inverse of the random affine (rotation, scale, translation), built
//                             on the host with wgpu-matrix (src/data/augment.ts);
//   out = (1-fy) ((1-fx) s00 + fx s01) + fy ((1-fx) s10 + fx s11), x0 = floor(x), fx = x - x0
//   (likewise y), s_ab = src(c, y0 + a, x0 + b), 0 outside the image (zero fill).
// The crop is CIFAR's "pad 4, random 32x32 crop" (He, Zhang, Ren & Sun 2016, Deep Residual
// Learning, section 4.2); bilinear interpolation as in OpenCV's warpAffine with a constant border.
// Pixel centres are at integer coordinates. With fx = fy = 0 (identity, flips, integer shifts)
// the result is exactly the source pixel. Float64 reference: src/reference/augment.ts.
//
// VEC4 = 1 (plain gather of samples whose size is a multiple of 4): one invocation per 4 output
// elements instead, t = b * sample + j with j a multiple of 4, reading one word of bytes (or four
// f32) and writing four values: 4x fewer invocations and source reads.
//
// SOURCE: 0 = `src` holds f32 bits; 1 = `src` holds bytes, element e in byte e & 3 (little end
// first, as WebGPU stores a Uint8Array) of word e >> 2, value lut[byte].

override SOURCE: u32 = 0u;
override INDEXED: u32 = 1u;
override AFFINE: u32 = 0u;
override LABELS: u32 = 1u;
override VEC4: u32 = 0u;

struct Params { count: u32, offset: u32, channels: u32, height: u32, width: u32, sample: u32 }

@group(0) @binding(0) var<storage, read> src: array<u32>; // (N * sample) f32 bits, or bytes
@group(0) @binding(1) var<storage, read> labels: array<i32>; // (N,)
@group(0) @binding(2) var<storage, read> order: array<u32>; // (positions,) sample per position
@group(0) @binding(3) var<storage, read> mats: array<f32>; // (positions, 12)
@group(0) @binding(4) var<storage, read> lut: array<f32>; // (256,) byte -> value
@group(0) @binding(5) var<storage, read_write> out_x: array<f32>; // (count, sample)
@group(0) @binding(6) var<storage, read_write> out_y: array<i32>; // (count,)
@group(0) @binding(7) var<uniform> p: Params;

const WG: u32 = 256u;

fn load(e: u32) -> f32 {
  if (SOURCE == 0u) {
    return bitcast<f32>(src[e]);
  }
  let w = src[e >> 2u];
  return lut[(w >> ((e & 3u) * 8u)) & 0xffu];
}

// Pixel (yy, xx) of the plane starting at `base`, or 0 outside the image.
fn tap(base: u32, yy: i32, xx: i32) -> f32 {
  if (xx < 0 || yy < 0 || xx >= i32(p.width) || yy >= i32(p.height)) {
    return 0.0;
  }
  return load(base + u32(yy) * p.width + u32(xx));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  var t = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (VEC4 == 1u) {
    t *= 4u;
  }
  if (t >= p.count * p.sample) {
    return;
  }
  let b = t / p.sample;
  let j = t - b * p.sample;
  let q = p.offset + b;
  var s = b;
  if (INDEXED == 1u) {
    s = order[q];
  }
  if (LABELS == 1u && j == 0u) {
    out_y[b] = labels[s];
  }
  let base = s * p.sample;
  if (VEC4 == 1u) {
    // base + j is a multiple of 4: one aligned word of bytes.
    if (SOURCE == 1u) {
      let w = src[(base + j) >> 2u];
      out_x[t] = lut[w & 0xffu];
      out_x[t + 1u] = lut[(w >> 8u) & 0xffu];
      out_x[t + 2u] = lut[(w >> 16u) & 0xffu];
      out_x[t + 3u] = lut[w >> 24u];
    } else {
      for (var k = 0u; k < 4u; k++) {
        out_x[t + k] = bitcast<f32>(src[base + j + k]);
      }
    }
    return;
  }
  if (AFFINE == 0u) {
    out_x[t] = load(base + j);
    return;
  }
  let plane = p.height * p.width;
  let c = j / plane;
  let r = j - c * plane;
  let i = f32(r / p.width);
  let jj = f32(r % p.width);
  let m = q * 12u;
  let u = mats[m] * jj + mats[m + 1u] * i + mats[m + 2u];
  let v = mats[m + 3u] * jj + mats[m + 4u] * i + mats[m + 5u];
  if (!(u >= 0.0 && v >= 0.0 && u <= f32(p.width - 1u) && v <= f32(p.height - 1u))) {
    out_x[t] = 0.0;
    return;
  }
  // Clamped so that the integer conversion stays in range; every tap is outside the image beyond
  // [-1, size], so the clamp does not change the result.
  let x = clamp(mats[m + 6u] * u + mats[m + 7u] * v + mats[m + 8u], -2.0, f32(p.width) + 1.0);
  let y = clamp(mats[m + 9u] * u + mats[m + 10u] * v + mats[m + 11u], -2.0, f32(p.height) + 1.0);
  let x0 = floor(x);
  let y0 = floor(y);
  let fx = x - x0;
  let fy = y - y0;
  let xi = i32(x0);
  let yi = i32(y0);
  let pb = base + c * plane;
  let top = (1.0 - fx) * tap(pb, yi, xi) + fx * tap(pb, yi, xi + 1);
  let bot = (1.0 - fx) * tap(pb, yi + 1, xi) + fx * tap(pb, yi + 1, xi + 1);
  out_x[t] = (1.0 - fy) * top + fy * bot;
}
