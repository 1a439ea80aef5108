// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel
// random numbers: as easy as 1, 2, 3", SC'11), with 32-bit integer ops only.
//
// Threading plan: invocation j = (wid.y * nwg.x + wid.x) * 256 + lid.x computes one Philox block,
// philox(counter = (j, 0, ctr_lo, ctr_hi), key = (k0, k1)), i.e. four u32 words, and writes
// elements 4j .. 4j+3 (those below n). Element i is therefore word i % 4 of block i / 4: a pure
// function of (seed, counter, i), the same for any launch shape, on any backend, and
// bit-identical to src/reference/random.ts. Different `counter` values give independent
// substreams of up to 2^34 elements each.
//
// Philox4x32 round (Random123 philox.h): with (hi0, lo0) = M0 * c0 and (hi1, lo1) = M1 * c2 as
// 32x32 -> 64-bit products, c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0); the key is bumped by
// the Weyl constants (W0, W1) between rounds; 10 rounds. WGSL has no 64-bit product, so mulhi
// is assembled from four 16x16 -> 32-bit partial products.
//
// Output transforms (DIST override; floats are stored through bitcast so one u32 binding serves):
// - 0 bits:      the raw u32 word.
// - 1 uniform:   lo + span * f, f = (u >> 8) * 2^-24 in [0, 1 - 2^-24] (exact in f32, never 1).
// - 2 normal:    Box-Muller on the word pairs (w0, w1) and (w2, w3) of a block:
//                r = sqrt(-2 log u1), u1 = ((w0 >> 8) + 1) * 2^-24 in (0, 1] (no log 0), theta =
//                pi (2 (w1 >> 8) 2^-24 - 1) in [-pi, pi); lanes 0, 1 = mean + std r (cos theta,
//                sin theta), lanes 2, 3 likewise from (w2, w3). |z| <= sqrt(2 ln 2^24) = 5.77:
//                the tail beyond has probability 8e-9 and is cut off. log, cos and sin are
//                computed here (log_unit, cos_sin_pi) to a few ulp rather than by the builtins,
//                whose WGSL error bounds are absolute and loose, so that every backend agrees
//                with src/reference/random.ts to ~1e-6.
// - 3 bernoulli: keep iff (u >> 8) < thr, value = keep ? scale : 0 (inverted dropout). thr =
//                ceil((1 - p) 2^24), so keep iff f < 1 - p exactly, P(keep) = thr / 2^24.

override DIST: u32 = 0u;

struct Params { n: u32, k0: u32, k1: u32, ctr_lo: u32, ctr_hi: u32, a: f32, b: f32, thr: u32 }

@group(0) @binding(0) var<storage, read_write> out: array<u32>; // (n,) u32 or f32 bits
@group(0) @binding(1) var<uniform> p: Params;

const WG: u32 = 256u;
const M0: u32 = 0xD2511F53u;
const M1: u32 = 0xCD9E8D57u;
const W0: u32 = 0x9E3779B9u;
const W1: u32 = 0xBB67AE85u;
const INV24: f32 = 5.9604644775390625e-8; // 2^-24
const PI: f32 = 3.141592653589793;

// (high, low) words of the 64-bit product a * b.
fn mulhilo(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let hi = a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2u(hi, a * b);
}

fn philox4x32_10(ctr: vec4u, key: vec2u) -> vec4u {
  var c = ctr;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) { k += vec2u(W0, W1); }
    let p0 = mulhilo(M0, c.x);
    let p1 = mulhilo(M1, c.z);
    c = vec4u(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
  }
  return c;
}

fn unit(u: u32) -> f32 {
  return f32(u >> 8u) * INV24;
}

// log(u) for u in (0, 1] without the builtin: WGSL only bounds log's absolute error (2^-21 on
// [0.5, 2]), llvmpipe is that loose (5% relative error at u = 1 - 2^-19), and other backends
// differ, so normals would not agree across backends. u = m 2^e with m in [sqrt(1/2), sqrt(2))
// read from the bits (u >= 2^-24 is normal); log m = 2 atanh(s), s = (m - 1) / (m + 1) in
// [-0.172, 0.172] (m - 1 is exact), odd series to s^13 (relative remainder below 1e-11); e ln 2
// with ln 2 = C1 + C2, C1 = 355/512 so that e C1 is exact (the split of Cephes' logf).
// Error: a few ulp of log u.
const LN2_C1: f32 = 0.693359375;
const LN2_C2: f32 = -2.12194440e-4;
const SQRT2: f32 = 1.4142135623730951;

fn log_unit(u: f32) -> f32 {
  let bits = bitcast<u32>(u);
  var e = i32(bits >> 23u) - 127;
  var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
  if (m > SQRT2) {
    m = 0.5 * m;
    e += 1;
  }
  let s = (m - 1.0) / (m + 1.0);
  let q = s * s;
  let lm = 2.0 * s * (1.0 + q * (1.0 / 3.0 + q * (0.2 + q * (1.0 / 7.0 + q * (1.0 / 9.0 +
    q * (1.0 / 11.0 + q * (1.0 / 13.0)))))));
  let fe = f32(e);
  return (lm + fe * LN2_C2) + fe * LN2_C1;
}

// (cos(pi x), sin(pi x)) for x in [-1, 1) without the builtins, whose error WGSL bounds only by
// 2^-11 absolute (SwiftShader was measured 8.8e-4 off). x = k / 2 + r, k = round(2 x), r in
// [-1/4, 1/4] (exact: x is a multiple of 2^-23); sin and cos of y = pi r, |y| <= pi / 4, by their
// Taylor series to y^11 and y^12 (remainders below 7e-12 and 4e-13), then rotated by the quadrant
// k mod 4. Taking pi x rather than a reduced theta avoids reducing by an inexact pi.
// Error: a few ulp of 1.
fn cos_sin_pi(x: f32) -> vec2f {
  let k = round(2.0 * x);
  let y = PI * (x - 0.5 * k);
  let q = y * y;
  let s = y * (1.0 + q * (-1.0 / 6.0 + q * (1.0 / 120.0 + q * (-1.0 / 5040.0 +
    q * (1.0 / 362880.0 + q * (-1.0 / 39916800.0))))));
  let c = 1.0 + q * (-0.5 + q * (1.0 / 24.0 + q * (-1.0 / 720.0 + q * (1.0 / 40320.0 +
    q * (-1.0 / 3628800.0 + q * (1.0 / 479001600.0))))));
  switch (u32(i32(k)) & 3u) {
    case 1u: { return vec2f(-s, c); }
    case 2u: { return vec2f(-c, -s); }
    case 3u: { return vec2f(s, -c); }
    default: { return vec2f(c, s); }
  }
}

fn box_muller(w0: u32, w1: u32) -> vec2f {
  let u1 = (f32(w0 >> 8u) + 1.0) * INV24;
  let r = sqrt(-2.0 * log_unit(u1));
  // theta = pi x, x = 2 f - 1 in [-1, 1) (exact in f32).
  let cs = cos_sin_pi(2.0 * unit(w1) - 1.0);
  return vec2f(p.a + p.b * r * cs.x, p.a + p.b * r * cs.y);
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let j = (wid.y * nwg.x + wid.x) * WG + lid.x;
  let base = j * 4u;
  if (base >= p.n) { return; }
  let w = philox4x32_10(vec4u(j, 0u, p.ctr_lo, p.ctr_hi), vec2u(p.k0, p.k1));
  var v = w;
  switch DIST {
    case 1u: {
      let f = vec4f(unit(w.x), unit(w.y), unit(w.z), unit(w.w));
      v = bitcast<vec4u>(vec4f(p.a) + vec4f(p.b) * f);
    }
    case 2u: {
      v = bitcast<vec4u>(vec4f(box_muller(w.x, w.y), box_muller(w.z, w.w)));
    }
    case 3u: {
      let keep = (w >> vec4u(8u)) < vec4u(p.thr);
      v = bitcast<vec4u>(select(vec4f(0.0), vec4f(p.a), keep));
    }
    default: {}
  }
  for (var l = 0u; l < 4u; l++) {
    if (base + l < p.n) { out[base + l] = v[l]; }
  }
}
