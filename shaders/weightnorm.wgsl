// Weight normalization (Salimans & Kingma 2016; torch.nn.utils.weight_norm with dim = 0): a
// weight (O, K) (K = in·kh·kw for a convolution) is reparametrized per output row o as
//   w[o, :] = g[o] · v[o, :] / ‖v[o, :]‖.
// Used by src/layers/weight_norm.ts.
//
// weight_main:  w ← g v / ‖v‖.
// fold_main:    turns an accumulated weight gradient dW into the gradients of g and v and clears
//               it (so the wrapped layer's dW only ever holds the last pass's contribution):
//                 c = Σ_j dW[o, j] v[o, j] / ‖v‖,   dg[o] += c,
//                 dv[o, :] += (g[o] / ‖v‖) (dW[o, :] - c v[o, :] / ‖v‖),   dW[o, :] ← 0.
//               (dw/dg = v/‖v‖; dw/dv = (g/‖v‖)(I - v vᵀ/‖v‖²).)
//
// Threading plan: one workgroup of 64 per output row o (wid.x < O); strided partial sums and a
// fixed tree in workgroup memory (deterministic); each thread then writes the entries it read.

struct Params { rows: u32, k: u32 }

@group(0) @binding(0) var<storage, read> g: array<f32>;         // (O,)
@group(0) @binding(1) var<storage, read> v: array<f32>;         // (O, K)
@group(0) @binding(2) var<storage, read_write> w: array<f32>;   // (O, K) weight, or dW in fold
@group(0) @binding(3) var<storage, read_write> dg: array<f32>;  // (O,)
@group(0) @binding(4) var<storage, read_write> dv: array<f32>;  // (O, K)
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 128>;

fn tree(lid: u32) {
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      red[lid] += red[lid + h];
      red[WG + lid] += red[WG + lid + h];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(64)
fn weight_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let o = wid.x;
  let lid = lid3.x;
  let base = o * p.k;
  var q = 0.0;
  for (var j = lid; j < p.k; j += WG) { let a = v[base + j]; q += a * a; }
  red[lid] = q;
  red[WG + lid] = 0.0;
  tree(lid);
  let scale = g[o] / sqrt(red[0]);
  for (var j = lid; j < p.k; j += WG) { w[base + j] = scale * v[base + j]; }
}

@compute @workgroup_size(64)
fn fold_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let o = wid.x;
  let lid = lid3.x;
  let base = o * p.k;
  var q = 0.0;
  var d = 0.0;
  for (var j = lid; j < p.k; j += WG) {
    let a = v[base + j];
    q += a * a;
    d += w[base + j] * a;
  }
  red[lid] = q;
  red[WG + lid] = d;
  tree(lid);
  let n = sqrt(red[0]);
  let c = red[WG] / n;
  if (lid == 0u) { dg[o] += c; }
  let s = g[o] / n;
  for (var j = lid; j < p.k; j += WG) {
    let i = base + j;
    dv[i] += s * (w[i] - c * v[i] / n);
    w[i] = 0.0;
  }
}
