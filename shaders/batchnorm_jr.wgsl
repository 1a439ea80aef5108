// Training-mode batch normalization in the exact gradient of the Jacobian penalties
// (src/regularizers/_chain.ts; DESIGN.md "Jacobian regularization"): the parameter term and the
// second-order injection of src/layers/batchnorm.ts's JacobianRole. The data are (B, C, S),
// S = H*W (1 for BatchNorm1d); channel c's M = B*S values are normalized together with the batch
// mean and biased variance (Ioffe & Szegedy 2015; PyTorch 1.13), which couples the samples.
//
// Math, per channel (x̂ = (x - mean)·s, s = 1/sqrt(var + eps), M = B·S): the input Jacobian of
// x ↦ x̂ over the channel's M values is the symmetric P = s (I - 11ᵀ/M - x̂ x̂ᵀ/M) (the same
// matrix as LayerNorm's over a row, shaders/layernorm.wgsl), so with γ constant per channel
//   jvp  γ P r  and  vjp  P (γ b) = γ P b  (both batchnorm.wgsl's bwd_reduce + bwd_dx, mode 0).
// With b the backward signal at the output and r the tangent at the input, the recipe needs the
// derivatives of ⟨b, γ P(x) r⟩ = ⟨g, P(x) r⟩, g = γ b, with respect to γ and x:
//   dγ[c] += Σ b ⊙ P r = s (Σbr - Σb Σr/M - Σb x̂ · Σr x̂/M)
//   injection at x:  ∇_x ⟨g, P r⟩ = -(s/M) (f x̂ + ⟨x̂, r⟩ P g + ⟨x̂, g⟩ P r),  f = ⟨g, P r⟩
// Derivation (as for LayerNorm, over the channel's M values instead of a row): with centred g_c,
// ⟨g, P r⟩ = s (⟨g_c, r⟩ - ⟨g, x̂⟩⟨x̂, r⟩/M) = s K; ⟨g_c, r⟩ does not depend on x; ∂var/∂x =
// 2 (x - mean)/M gives ∇_x s = -s² x̂/M (eps included); ∂x̂_j/∂x_i = P_ji, so ∇_x ⟨a, x̂⟩ = P a;
// hence ∇_x (s K) = K ∇s + s ∇K = -(s/M) f x̂ - (s/M)(⟨x̂, r⟩ P g + ⟨g, x̂⟩ P r). With per-channel
// sums B0 = Σb, B1 = Σb x̂, R0 = Σr, R1 = Σr x̂, BR = Σbr: P g = γ s (b - B0/M - x̂ B1/M),
// P r = s (r - R0/M - x̂ R1/M), f = γ s (BR - B0 R0/M - B1 R1/M), ⟨x̂, g⟩ = γ B1, ⟨x̂, r⟩ = R1.
// Checked against float64 finite differences (tests/batchnorm_jr_test.ts) and PyTorch double
// backprop (tests/jacobian_batchnorm_test.ts).
//
// Threading plan:
// - sums_main: one workgroup of 256 per channel (workgroup id x = c); strided partial sums of
//   the five terms, then a fixed tree in workgroup memory; thread 0 writes sums and adds dγ.
// - inject_main: one invocation per element (rt.grid, 256 wide).
//
// sums (5, C): B0, B1, R0, R1, BR (rows in that order).

struct Params { b: u32, c: u32, s: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;              // (B, C, S) cached input
@group(0) @binding(1) var<storage, read> bs: array<f32>;             // (B, C, S) b at the output
@group(0) @binding(2) var<storage, read> r: array<f32>;              // (B, C, S) r at the input
@group(0) @binding(3) var<storage, read> gamma: array<f32>;          // (C,)
@group(0) @binding(4) var<storage, read> stats: array<f32>;          // (5, C) rows 0, 1: mean, s
@group(0) @binding(5) var<storage, read_write> sums: array<f32>;     // (5, C)
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;   // (C,)
@group(0) @binding(7) var<storage, read_write> out: array<f32>;      // (B, C, S) injection
@group(0) @binding(8) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> red: array<f32, 1280>; // 5 × WG

fn at(i: u32, c: u32) -> u32 {
  // i-th element (over B*S) of channel c
  return ((i / p.s) * p.c + c) * p.s + i % p.s;
}

@compute @workgroup_size(256)
fn sums_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let c = wid.x;
  let lid = lid3.x;
  let m = p.b * p.s;
  let mean = stats[c];
  let s = stats[p.c + c];
  var b0 = 0.0; var b1 = 0.0; var r0 = 0.0; var r1 = 0.0; var br = 0.0;
  for (var i = lid; i < m; i += WG) {
    let k = at(i, c);
    let xh = (x[k] - mean) * s;
    let bv = bs[k];
    let rv = r[k];
    b0 += bv;
    b1 += bv * xh;
    r0 += rv;
    r1 += rv * xh;
    br += bv * rv;
  }
  red[lid] = b0;
  red[WG + lid] = b1;
  red[2u * WG + lid] = r0;
  red[3u * WG + lid] = r1;
  red[4u * WG + lid] = br;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      for (var k = 0u; k < 5u; k++) { red[k * WG + lid] += red[k * WG + lid + h]; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    for (var k = 0u; k < 5u; k++) { sums[k * p.c + c] = red[k * WG]; }
    let mf = f32(m);
    let sb0 = red[0]; let sb1 = red[WG]; let sr0 = red[2u * WG]; let sr1 = red[3u * WG];
    dgamma[c] += s * (red[4u * WG] - sb0 * sr0 / mf - sb1 * sr1 / mf);
  }
}

@compute @workgroup_size(256)
fn inject_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= p.b * p.c * p.s) { return; }
  let c = (i / p.s) % p.c;
  let mf = f32(p.b * p.s);
  let s = stats[p.c + c];
  let gm = gamma[c];
  let xh = (x[i] - stats[c]) * s;
  let b0 = sums[c]; let b1 = sums[p.c + c]; let r0 = sums[2u * p.c + c];
  let r1 = sums[3u * p.c + c]; let br = sums[4u * p.c + c];
  let pb = s * (bs[i] - b0 / mf - xh * b1 / mf);
  let pr = s * (r[i] - r0 / mf - xh * r1 / mf);
  let f = gm * s * (br - b0 * r0 / mf - b1 * r1 / mf);
  out[i] = -(s / mf) * (f * xh + r1 * gm * pb + gm * b1 * pr);
}
