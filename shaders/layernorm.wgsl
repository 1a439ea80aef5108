// Per-sample normalization over contiguous rows: LayerNorm (Ba, Kiros & Hinton 2016; a row is
// one sample's trailing `normalized_shape`) and GroupNorm (Wu & He 2018; a row is one sample's
// group of C/G channels times the spatial size), PyTorch 1.13 semantics (biased variance,
// eps inside the square root). Used by src/layers/layernorm.ts.
//
// Math, per row of M values (x̂ = (x - mean)·s, s = 1/sqrt(var + eps), var biased):
//   forward   y = γ[a] x̂ + β[a]      (a: the affine index of the element; LayerNorm: its position
//                                     in normalized_shape, GroupNorm: its channel)
//   The input Jacobian of x ↦ x̂ is the symmetric P = s (I - 11ᵀ/M - x̂ x̂ᵀ/M), so
//   jvp       ty = γ ⊙ P tx,         backward  dx = P (γ ⊙ dy),  dγ += Σ dy x̂,  dβ += Σ dy.
//   Jacobian regularizer (DESIGN.md steps 4-5; src/regularizers/_chain.ts), with b the backward
//   signal at the output, r the tangent at the input and g = γ ⊙ b: the recipe needs the
//   derivative of ⟨b, γ ⊙ P(x) r⟩ = ⟨g, P(x) r⟩ with respect to γ and to x.
//     dγ[a] += Σ b ⊙ P r
//     injection at x:  ∇_x ⟨g, P r⟩ = -(s/M) (f x̂ + ⟨x̂, r⟩ P g + ⟨x̂, g⟩ P r),  f = ⟨g, P r⟩.
//   Derivation: with centred g_c, r_c, ⟨g, P r⟩ = s (⟨g_c, r_c⟩ - ⟨g, x̂⟩⟨x̂, r⟩/M); ∇_x s =
//   -s² x̂/M; ∇_x ⟨a, x̂⟩ = P a (P symmetric); collecting terms, the s-derivative gives
//   -(s/M) f x̂ and the x̂-derivatives -(s/M)(⟨x̂, r⟩ P g + ⟨x̂, g⟩ P r). Checked against PyTorch
//   double backprop in tests/jacobian_norm_test.ts.
//
// Threading plan:
// - stats_main, row_sums_main: one workgroup of 64 per row (row = wid.y·nwg.x + wid.x, a 2-D grid
//   for more than 65535 rows); strided partial sums, then a fixed tree in workgroup memory
//   (deterministic). The variance is a second pass around the mean (no cancellation).
// - forward_main, project_main, inject_main: one invocation per element (rt.grid, 256 wide).
// - affine_grad_main: one workgroup of 64 per affine index a < affC (2-D grid as above), over the elements
//   i = (k·affC + a)·affS + q (k < total/(affC·affS), q < affS), then a fixed tree; adds into
//   out[a].
//
// stats (rows, 2): mean, s. sums (rows, 5): S0 = Σ ũ, S1 = Σ x̂ ũ, S2 = Σ v, S3 = Σ x̂ v,
// S4 = Σ ũ v, with ũ = γ ⊙ u when GAMMA_U, else u.

struct Params { rows: u32, m: u32, affc: u32, affs: u32, eps: f32, mode: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;            // (rows, M) primal input
@group(0) @binding(1) var<storage, read> u: array<f32>;            // (rows, M) dy, tx or b
@group(0) @binding(2) var<storage, read> v: array<f32>;            // (rows, M) r (JR tangent)
@group(0) @binding(3) var<storage, read> gamma: array<f32>;        // (affC,)
@group(0) @binding(4) var<storage, read> beta: array<f32>;         // (affC,)
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;  // (rows, 2)
@group(0) @binding(6) var<storage, read_write> sums: array<f32>;   // (rows, 5)
@group(0) @binding(7) var<storage, read_write> out: array<f32>;    // (rows, M) or (affC,)
@group(0) @binding(8) var<uniform> p: Params;

// forward_main: add γ, β (false: y = x̂).
override AFFINE: bool = true;
// row_sums_main, project_main, inject_main: multiply u by γ[a] first.
override GAMMA_U: bool = false;
// project_main: multiply the result by γ[a] (jvp).
override GAMMA_OUT: bool = false;
// row_sums_main: also S2, S3, S4 (needs v).
override TWO: bool = false;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 320>; // 5 × WG

fn aff(i: u32) -> u32 {
  return (i / p.affs) % p.affc;
}

fn xhat(i: u32, row: u32) -> f32 {
  return (x[i] - stats[2u * row]) * stats[2u * row + 1u];
}

fn ut(i: u32) -> f32 {
  if (GAMMA_U) { return u[i] * gamma[aff(i)]; }
  return u[i];
}

// Sums red[k·WG + 0..WG) for k < n into red[k·WG].
fn tree(lid: u32, n: u32) {
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      for (var k = 0u; k < n; k++) { red[k * WG + lid] += red[k * WG + lid + h]; }
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(64)
fn stats_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid3: vec3u) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let base = row * p.m;
  var s = 0.0;
  for (var j = lid; j < p.m; j += WG) { s += x[base + j]; }
  red[lid] = s;
  tree(lid, 1u);
  let mean = red[0] / f32(p.m);
  workgroupBarrier();
  var q = 0.0;
  for (var j = lid; j < p.m; j += WG) { let d = x[base + j] - mean; q += d * d; }
  red[lid] = q;
  tree(lid, 1u);
  if (lid == 0u) {
    stats[2u * row] = mean;
    stats[2u * row + 1u] = 1.0 / sqrt(red[0] / f32(p.m) + p.eps);
  }
}

fn item(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn forward_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  if (i >= p.rows * p.m) { return; }
  var y = xhat(i, i / p.m);
  if (AFFINE) { let a = aff(i); y = y * gamma[a] + beta[a]; }
  out[i] = y;
}

@compute @workgroup_size(64)
fn row_sums_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid3: vec3u) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) { return; }
  let lid = lid3.x;
  let base = row * p.m;
  var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0; var s4 = 0.0;
  for (var j = lid; j < p.m; j += WG) {
    let i = base + j;
    let xh = xhat(i, row);
    let a = ut(i);
    s0 += a;
    s1 += xh * a;
    if (TWO) {
      let b = v[i];
      s2 += b;
      s3 += xh * b;
      s4 += a * b;
    }
  }
  red[lid] = s0;
  red[WG + lid] = s1;
  red[2u * WG + lid] = s2;
  red[3u * WG + lid] = s3;
  red[4u * WG + lid] = s4;
  tree(lid, 5u);
  if (lid == 0u) {
    for (var k = 0u; k < 5u; k++) { sums[5u * row + k] = red[k * WG]; }
  }
}

// out = [γ ⊙] P ũ, with S0, S1 of ũ from row_sums_main.
@compute @workgroup_size(256)
fn project_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  if (i >= p.rows * p.m) { return; }
  let row = i / p.m;
  let mf = f32(p.m);
  var r = stats[2u * row + 1u] * (ut(i) - sums[5u * row] / mf - xhat(i, row) * sums[5u * row + 1u] / mf);
  if (GAMMA_OUT) { r *= gamma[aff(i)]; }
  out[i] = r;
}

// out = -(s/M)(f x̂ + S3 P g + S1 P r), g = γ ⊙ b (u, GAMMA_U), r = v; sums from row_sums_main
// with TWO.
@compute @workgroup_size(256)
fn inject_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  if (i >= p.rows * p.m) { return; }
  let row = i / p.m;
  let mf = f32(p.m);
  let s = stats[2u * row + 1u];
  let xh = xhat(i, row);
  let k = 5u * row;
  let s0 = sums[k]; let s1 = sums[k + 1u]; let s2 = sums[k + 2u]; let s3 = sums[k + 3u];
  let s4 = sums[k + 4u];
  let pg = s * (ut(i) - s0 / mf - xh * s1 / mf);
  let pr = s * (v[i] - s2 / mf - xh * s3 / mf);
  let f = s * (s4 - s0 * s2 / mf - s1 * s3 / mf);
  out[i] = -(s / mf) * (f * xh + s3 * pg + s1 * pr);
}

// out[a] += Σ_{aff(i) = a} u[i]·w(i): mode 0 w = x̂ (dγ), 1 w = 1 (dβ), 2 w = (P v)(i) with S2,
// S3 of v from row_sums_main (the JR term dγ += Σ b ⊙ P r).
@compute @workgroup_size(64)
fn affine_grad_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_id) lid3: vec3u) {
  let a = wid.y * nwg.x + wid.x;
  if (a >= p.affc) { return; }
  let lid = lid3.x;
  let reps = (p.rows * p.m) / (p.affc * p.affs);
  let n = reps * p.affs;
  let mf = f32(p.m);
  var acc = 0.0;
  for (var e = lid; e < n; e += WG) {
    let i = ((e / p.affs) * p.affc + a) * p.affs + e % p.affs;
    let row = i / p.m;
    var w = 1.0;
    if (p.mode == 0u) {
      w = xhat(i, row);
    } else if (p.mode == 2u) {
      let k = 5u * row;
      w = stats[2u * row + 1u] * (v[i] - sums[k + 2u] / mf - xhat(i, row) * sums[k + 3u] / mf);
    }
    acc += u[i] * w;
  }
  red[lid] = acc;
  tree(lid, 1u);
  if (lid == 0u) { out[a] += red[0]; }
}
