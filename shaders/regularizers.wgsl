// Kernels of the parameter regularizers (src/regularizers/penalties.ts, projections.ts). All entry
// points share one binding layout: two read-only inputs a, b (an entry point binds placeholders
// where it reads nothing), one read_write output `out`, and one read_write `acc` that collects
// per-workgroup partial sums of a penalty (or the σ of the spectral norm). Matrices are row-major
// (m, k): a conv weight (out, in, kh, kw) is read as (out, in·kh·kw), its PyTorch layout.
//
// penalty_main (L1, L2, elastic net), 256 invocations per workgroup, each workgroup owns a chunk of
//   2048 consecutive elements (8 per invocation, strided by 256 so loads are coalesced):
//     value  = c1 Σ|w| + (c2/2) Σ w²,   grad += c1 sign(w) + c2 w   (sign(0) = 0, as torch.sign:
//   the subgradient PyTorch's autograd uses for |w| at 0). acc[off + group] = the chunk's part of
//   the value (a fixed tree in workgroup memory; the host sums the partials with reduce.ts).
//   mode = 0 skips the gradient.
// gram_residual_main (soft SVB / soft orthogonality), one workgroup per row i < n of the (n, n)
//   Gram matrix G in `out`: G ← G − I in place, acc[off + i] = c1 Σ_j (G − I)[i, j]².
// matvec_t_main, one invocation per column j < k: out[j] = Σ_i a[i, j] b[i]  (v = Wᵀ u).
// matvec_main, one workgroup per row i < m: out[i] = Σ_j a[i, j] b[j]  (t = W v), tree reduced.
// normalize_main, one workgroup: x = out[0..n), σ = ||x||, out ← x / σ, acc[off] = σ.
// outer_main (gradient of the spectral norm, Yoshida & Miyato 2017, "Spectral norm
//   regularization for improving the generalizability of deep learning", arXiv:1705.10941,
//   eq. 8: ∂σ/∂W = u vᵀ), one invocation per element of the (m, k) grad:
//   out[i, j] += c1 · acc[off] · a[i] · b[j]   (a = u, b = v, acc[off] = σ; c1 = λ).
// spectral_value_main, one workgroup: out[0] = c1 Σ_{l < n} acc[l]²  ((λ/2) Σ σ_l², c1 = λ/2).
// max_norm_main (max-norm constraint, Srivastava et al. 2014, "Dropout", sec. 5.1), one workgroup
//   per row i < m of the (m, k) weight in `out`: r = ||w_i||; if r > c1, w_i ← w_i · c1 / (r + 1e-7)
//   (the scale torch.renorm applies).
// Per-element entry points index items as (wid.y · nwg.x + wid.x) · 256 + lid.x (rt.grid).

struct Params { n: u32, m: u32, k: u32, off: u32, mode: u32, c1: f32, c2: f32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> acc: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const WG: u32 = 256u;
const CHUNK: u32 = 2048u;

var<workgroup> red: array<f32, 256>;

// Tree sum of red[0..256) into red[0]; every invocation must call it.
fn tree(l: u32) {
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (l < s) { red[l] += red[l + s]; }
  }
  workgroupBarrier();
}

@compute @workgroup_size(256)
fn penalty_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let g = wid.y * nwg.x + wid.x;
  let l = lid.x;
  var s = 0.0;
  for (var t = 0u; t < CHUNK / WG; t++) {
    let i = g * CHUNK + t * WG + l;
    if (i < p.n) {
      let w = a[i];
      s += p.c1 * abs(w) + 0.5 * p.c2 * w * w;
      if (p.mode != 0u) { out[i] += p.c1 * sign(w) + p.c2 * w; }
    }
  }
  red[l] = s;
  tree(l);
  if (l == 0u && g * CHUNK < p.n) { acc[p.off + g] = red[0]; }
}

@compute @workgroup_size(256)
fn gram_residual_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = wid.x;
  let l = lid.x;
  var s = 0.0;
  for (var j = l; j < p.n; j += WG) {
    var e = out[i * p.n + j];
    if (j == i) {
      e -= 1.0;
      out[i * p.n + j] = e;
    }
    s += e * e;
  }
  red[l] = s;
  tree(l);
  if (l == 0u) { acc[p.off + i] = p.c1 * red[0]; }
}

@compute @workgroup_size(256)
fn matvec_t_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  let j = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (j >= p.k) { return; }
  var s = 0.0;
  for (var i = 0u; i < p.m; i++) { s += a[i * p.k + j] * b[i]; }
  out[j] = s;
}

@compute @workgroup_size(256)
fn matvec_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let i = wid.y * nwg.x + wid.x;
  let l = lid.x;
  var s = 0.0;
  if (i < p.m) {
    for (var j = l; j < p.k; j += WG) { s += a[i * p.k + j] * b[j]; }
  }
  red[l] = s;
  tree(l);
  if (l == 0u && i < p.m) { out[i] = red[0]; }
}

@compute @workgroup_size(256)
fn normalize_main(@builtin(local_invocation_id) lid: vec3u) {
  let l = lid.x;
  var s = 0.0;
  for (var j = l; j < p.n; j += WG) { let e = out[j]; s += e * e; }
  red[l] = s;
  tree(l);
  let nrm = sqrt(red[0]);
  // A zero vector stays zero (σ = 0) rather than becoming NaN.
  let inv = select(0.0, 1.0 / nrm, nrm > 0.0);
  for (var j = l; j < p.n; j += WG) { out[j] *= inv; }
  if (l == 0u) { acc[p.off] = nrm; }
}

@compute @workgroup_size(256)
fn outer_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_id) lid: vec3u) {
  let e = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (e >= p.m * p.k) { return; }
  let i = e / p.k;
  let j = e - i * p.k;
  out[e] += p.c1 * acc[p.off] * a[i] * b[j];
}

@compute @workgroup_size(256)
fn spectral_value_main(@builtin(local_invocation_id) lid: vec3u) {
  let l = lid.x;
  var s = 0.0;
  for (var j = l; j < p.n; j += WG) { let e = acc[j]; s += e * e; }
  red[l] = s;
  tree(l);
  if (l == 0u) { out[0] = p.c1 * red[0]; }
}

@compute @workgroup_size(256)
fn max_norm_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  let i = wid.y * nwg.x + wid.x;
  let l = lid.x;
  var s = 0.0;
  if (i < p.m) {
    for (var j = l; j < p.k; j += WG) { let e = out[i * p.k + j]; s += e * e; }
  }
  red[l] = s;
  tree(l);
  if (i >= p.m) { return; }
  let r = sqrt(red[0]);
  if (r > p.c1) {
    let f = p.c1 / (r + 1e-7);
    for (var j = l; j < p.k; j += WG) { out[i * p.k + j] *= f; }
  }
}
