// Small kernels the layers need beside the GEMMs and pools. All entry points share one binding
// layout: three read-only inputs u, v, w (an entry point binds any buffer in the ones it does not
// use) and the read_write output out.
//
// sum_parts_main (split-K epilogue of shaders/conv2d.wgsl), one invocation per element i < len:
//   out[i] = beta·out[i] + Σ_{z < parts} u[z·len + i], z ascending (deterministic).
// channel_sum_main (bias gradients), per channel c < C:
//   out[c] = beta·out[c] + Σ_{b < n, q < s} u[(b·C + c)·s + q]
//   (Linear: s = 1; Conv2d: s = OH·OW), one workgroup of CS_WG (= L) threads per channel: lane l
//   sums rows b ≡ l (mod L) when s = 1, else the entries q ≡ l (mod L) of every row; then a
//   fixed tree in workgroup memory, so the sum is deterministic and its error grows like
//   log2(L) + n·ceil(s/L) ulps.
// channel_affine_main (Normalize), one invocation per element i < n, c = (i / s) % C:
//   out[i] = u[i]·v[c] + (HAS_SHIFT ? w[c] : 0).
// act2_main (second derivatives of activations, for the Jacobian regularizer, DESIGN.md step 5),
//   one invocation per element i < n: out[i] = σ''(a_i) · (FACTORS >= 1 ? v[i] : 1)
//   · (FACTORS >= 2 ? w[i] : 1), with σ'' from the cached forward value u:
//   ACT 1 tanh (u = tanh a):    σ'' = -2 t (1 - t)(1 + t)
//   ACT 2 sigmoid (u = σ(a)):   σ'' = s (1 - s)(1 - 2 s)
//   ACT 3 softplus (u = a; alpha = beta, beta = threshold): σ'' = β s (1 - s), s = sigmoid(β a),
//         and 0 where β a > threshold (PyTorch returns x there, a straight line).
//   (d/da tanh = 1 - t², d²/da² = -2 t (1 - t²); d/da σ = σ(1 - σ), d²/da² = σ(1 - σ)(1 - 2σ);
//   softplus' = sigmoid(β a), softplus'' = β sigmoid'(β a).)
// bn_gamma_main (the b ⊗ r term of an eval-mode BatchNorm y = γ (x - μ)/σ + β in the Jacobian
//   regularizer, DESIGN.md step 6), one workgroup of 256 per channel ch < c:
//   out[ch] += Σ_{b < n, q < s} u[(b·c + ch)·s + q] · v[...] / sqrt(w[ch] + alpha),
//   u = backward signal at the output, v = tangent at the input, w = running_var, alpha = eps.
//   Strided partial sums, then a fixed tree (deterministic).
// Threading for the elementwise ones: item = (wid.y · nwg.x + wid.x) · 256 + lid.x (rt.grid).

struct Params { n: u32, len: u32, parts: u32, s: u32, c: u32, alpha: f32, beta: f32 }

@group(0) @binding(0) var<storage, read> u: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

override HAS_SHIFT: bool = false;
override ACT: u32 = 1u;
override FACTORS: u32 = 0u;
// Threads of channel_sum_main: a power of two <= 256. 256 on GPUs; 8 (one SIMD row) on CPU
// adapters, where every barrier of the reduction tree is a switch over all the invocations.
override CS_WG: u32 = 256u;

var<workgroup> red: array<f32, 256>;

fn item(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn sum_parts_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  if (i >= p.len) { return; }
  var s = 0.0;
  for (var z = 0u; z < p.parts; z++) { s += u[z * p.len + i]; }
  if (p.beta != 0.0) { s += p.beta * out[i]; }
  out[i] = s;
}

@compute @workgroup_size(CS_WG)
fn channel_sum_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wid.x;
  var s = 0.0;
  // No division per element (a scalar loop over the SIMD lanes on CPU adapters): rows are
  // strided over the lanes when s = 1 (Linear), else each row's s entries are.
  if (p.s == 1u) {
    for (var b = lid.x; b < p.n; b += CS_WG) { s += u[b * p.c + c]; }
  } else {
    for (var b = 0u; b < p.n; b++) {
      let base = (b * p.c + c) * p.s;
      for (var q = lid.x; q < p.s; q += CS_WG) { s += u[base + q]; }
    }
  }
  red[lid.x] = s;
  workgroupBarrier();
  for (var half = CS_WG / 2u; half > 0u; half >>= 1u) {
    if (lid.x < half) { red[lid.x] += red[lid.x + half]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    var r = red[0];
    if (p.beta != 0.0) { r += p.beta * out[c]; }
    out[c] = r;
  }
}

@compute @workgroup_size(256)
fn channel_affine_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  if (i >= p.n) { return; }
  let c = (i / p.s) % p.c;
  var r = u[i] * v[c];
  if (HAS_SHIFT) { r += w[c]; }
  out[i] = r;
}

fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, x >= 0.0);
}

@compute @workgroup_size(256)
fn act2_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  if (i >= p.n) { return; }
  let t = u[i];
  var d2 = 0.0;
  switch ACT {
    case 1u: { d2 = -2.0 * t * (1.0 - t) * (1.0 + t); }
    case 2u: { d2 = t * (1.0 - t) * (1.0 - 2.0 * t); }
    case 3u: {
      let bx = p.alpha * t;
      let s = sigmoid(bx);
      d2 = select(p.alpha * s * (1.0 - s), 0.0, bx > p.beta);
    }
    default: {}
  }
  if (FACTORS >= 1u) { d2 *= v[i]; }
  if (FACTORS >= 2u) { d2 *= w[i]; }
  out[i] = d2;
}

@compute @workgroup_size(256)
fn bn_gamma_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let ch = wid.x;
  let total = p.n * p.s;
  var acc = 0.0;
  for (var e = lid.x; e < total; e += 256u) {
    let i = ((e / p.s) * p.c + ch) * p.s + e % p.s;
    acc += u[i] * v[i];
  }
  red[lid.x] = acc;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (lid.x < k) { red[lid.x] += red[lid.x + k]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { out[ch] += red[0] / sqrt(w[ch] + p.alpha); }
}
