// Losses with their gradients, fused: softmax cross-entropy on logits, mean squared error, and
// the count of correct argmax predictions.
//
// Softmax cross-entropy (PyTorch 1.13 torch.nn.functional.cross_entropy, reduction "mean"):
// for row b of logits z (B, K) and target distribution t_b,
//   lse_b = m_b + log(sum_k exp(z_bk - m_b)),  m_b = max_k z_bk      (stable log-sum-exp)
//   loss_b = -sum_k t_bk log p_bk = sum_k t_bk (lse_b - z_bk),  p = softmax(z)
//   d loss_b / d z_bk = p_bk * sum_j t_bj - t_bk
// with t_b = (1 - eps) onehot(y_b) + eps / K for class labels (label smoothing: eps/K on every
// class, torch 1.13 semantics), or t_b = (1 - eps) q_b + eps / K for soft targets q (B, K).
// log p is formed as (z - m) - log(s), never as exp then log, so logits of +-1e4 give finite
// loss and gradient. The gradient written is `gscale` times that of loss_b (1/B for the mean).
// A label outside [0, K) must not index memory: its row's loss is NaN, its gradient row is 0,
// and the finishing pass counts such labels (see src/losses/cross_entropy.ts for how that is reported).
//
// Threading plan:
// - ce_rows_main / argmax_count_main: a workgroup of 256 invocations is R = 256 / T rows of T
//   invocations (T an override constant, a power of two chosen by the host so that each
//   invocation walks about 8 classes). Invocation c of a row visits classes c, c + T, ...;
//   the T partial results meet in a tree in workgroup memory (log2 T levels). Pass 1 is an
//   online log-sum-exp (running max m and sum s rescaled when m grows, Milakov & Gimelshein 2018,
//   "Online normalizer calculation for softmax"); pass 2 re-reads the row to write the gradient
//   and accumulate the loss. Rows are spread over x and y workgroup ids (rt.grid).
// - sum_main: ONE workgroup folds n values (per-row losses, or per-group MSE partials): each
//   invocation sums a strided share, then a tree; fixed order, so the result is deterministic.
//   With k > 0 it also counts labels >= k among n labels (the invalid-label count), and it
//   always stores that count (0 when k = 0) in cnt[0].
// - mse_main: 256 invocations per workgroup, 8 elements each (2048 per group, coalesced
//   stride 256), writing d/dpred of the loss and one partial sum of squares per group.
// - argmax_count_main: per row the first maximal class (NaN counts as maximal, as torch.argmax);
//   correct rows are counted in workgroup memory and added with one atomicAdd per workgroup
//   (integer atomics: exact and order independent).
//
// Every entry point binds the file's six storage buffers (unused ones get dummies).

override T: u32 = 8u;
override SOFT: u32 = 0u;
override GRAD: u32 = 1u;

struct Params { b: u32, k: u32, n: u32, smoothing: f32, gscale: f32, lscale: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;            // logits (B,K) | pred | values
@group(0) @binding(1) var<storage, read> labels: array<u32>;       // (B,) class labels
@group(0) @binding(2) var<storage, read> tgt: array<f32>;          // (B,K) soft targets | target
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;     // gradient, x's shape
@group(0) @binding(4) var<storage, read_write> y: array<f32>;      // per-row loss | partials | loss
@group(0) @binding(5) var<storage, read_write> cnt: array<atomic<u32>>; // (1,) count
@group(0) @binding(6) var<uniform> p: Params;

const WG: u32 = 256u;
// Lowest finite f32: the identity of max without relying on infinities, which WGSL leaves
// implementation-defined. Written out exactly: Tint (Chromium) rejects -3.40282347e38, which lies
// below -FLT_MAX before rounding.
const LOWEST: f32 = -3.40282346638528859812e38;
// A quiet NaN's bits, in a private variable rather than a constant: constant evaluation (Tint)
// rejects a NaN, so it is made at run time.
var<private> NAN_BITS: u32 = 0x7fc00000u;

var<workgroup> wm: array<f32, 256>;
var<workgroup> ws: array<f32, 256>;
var<workgroup> wt: array<f32, 256>;
var<workgroup> wi: array<u32, 256>;
var<workgroup> wcount: atomic<u32>;

fn nan() -> f32 {
  return bitcast<f32>(NAN_BITS);
}

// Merges two (max, scaled sum) pairs of an online log-sum-exp.
fn lse_merge(m1: f32, s1: f32, m2: f32, s2: f32) -> vec2f {
  let m = max(m1, m2);
  return vec2f(m, s1 * exp(m1 - m) + s2 * exp(m2 - m));
}

@compute @workgroup_size(256)
fn ce_rows_main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let R = WG / T;
  let c = lid % T;
  let row = (wid.y * nwg.x + wid.x) * R + lid / T;
  let valid = row < p.b;
  let K = p.k;
  let base = row * K;
  let eps = p.smoothing;
  let off = eps / f32(K);

  // Pass 1: online log-sum-exp and, for soft targets, the row's target mass.
  var m = LOWEST;
  var s = 0.0;
  var tsum = 0.0;
  if (valid) {
    for (var k = c; k < K; k += T) {
      let z = x[base + k];
      if (z > m) {
        s = s * exp(m - z) + 1.0;
        m = z;
      } else {
        s += exp(z - m);
      }
      if (SOFT == 1u) { tsum += tgt[base + k]; }
    }
  }
  wm[lid] = m;
  ws[lid] = s;
  wt[lid] = tsum;
  for (var h = T / 2u; h > 0u; h = h / 2u) {
    workgroupBarrier();
    if (c < h) {
      let r = lse_merge(wm[lid], ws[lid], wm[lid + h], ws[lid + h]);
      wm[lid] = r.x;
      ws[lid] = r.y;
      wt[lid] += wt[lid + h];
    }
  }
  workgroupBarrier();
  let head = lid - c;
  let mx = wm[head];
  let logs = log(ws[head]);
  var label = 0u;
  var bad = false;
  var tmass = 1.0;
  if (SOFT == 1u) {
    tmass = (1.0 - eps) * wt[head] + eps;
  } else if (valid) {
    label = labels[row];
    bad = label >= K;
  }
  workgroupBarrier();

  // Pass 2: loss_b = -sum_k t_k log p_k and the gradient p_k * sum(t) - t_k.
  var acc = 0.0;
  if (valid) {
    for (var k = c; k < K; k += T) {
      let z = x[base + k];
      let logp = (z - mx) - logs;
      var t: f32;
      if (SOFT == 1u) {
        t = (1.0 - eps) * tgt[base + k] + off;
      } else {
        t = select(off, 1.0 - eps + off, k == label);
      }
      if (t != 0.0) { acc -= t * logp; }
      if (GRAD == 1u) {
        let g = (exp(logp) * tmass - t) * p.gscale;
        dx[base + k] = select(g, 0.0, bad);
      }
    }
  }
  ws[lid] = acc;
  for (var h = T / 2u; h > 0u; h = h / 2u) {
    workgroupBarrier();
    if (c < h) { ws[lid] += ws[lid + h]; }
  }
  workgroupBarrier();
  if (valid && c == 0u) { y[row] = select(ws[lid], nan(), bad); }
}

@compute @workgroup_size(256)
fn sum_main(@builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) { atomicStore(&wcount, 0u); }
  var acc = 0.0;
  var bad = 0u;
  for (var i = lid; i < p.n; i += WG) {
    acc += x[i];
    if (p.k > 0u && labels[i] >= p.k) { bad += 1u; }
  }
  ws[lid] = acc;
  workgroupBarrier();
  if (bad > 0u) { atomicAdd(&wcount, bad); }
  for (var h = WG / 2u; h > 0u; h = h / 2u) {
    workgroupBarrier();
    if (lid < h) { ws[lid] += ws[lid + h]; }
  }
  workgroupBarrier();
  if (lid == 0u) {
    y[0] = ws[0] * p.lscale;
    atomicStore(&cnt[0], atomicLoad(&wcount));
  }
}

@compute @workgroup_size(256)
fn mse_main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let group = wid.y * nwg.x + wid.x;
  var acc = 0.0;
  for (var j = 0u; j < 8u; j++) {
    let i = group * 2048u + j * WG + lid;
    if (i < p.n) {
      let d = x[i] - tgt[i];
      acc += d * d;
      if (GRAD == 1u) { dx[i] = 2.0 * d * p.gscale; }
    }
  }
  ws[lid] = acc;
  for (var h = WG / 2u; h > 0u; h = h / 2u) {
    workgroupBarrier();
    if (lid < h) { ws[lid] += ws[lid + h]; }
  }
  if (lid == 0u && group * 2048u < p.n) { y[group] = ws[0]; }
}

// NaN test on the bits: WGSL lets compilers assume NaN never occurs, and llvmpipe folds
// `v != v` to false (so NaN logits were not counted as maximal).
fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Is (v2, i2) a better argmax than (v1, i1)? First index on ties, NaN beats numbers.
fn arg_better(v2: f32, i2: u32, v1: f32, i1: u32) -> bool {
  if (i2 >= p.k) { return false; }
  if (i1 >= p.k) { return true; }
  let n1 = is_nan(v1);
  let n2 = is_nan(v2);
  if (n1 || n2) { return n2 && (!n1 || i2 < i1); }
  return v2 > v1 || (v2 == v1 && i2 < i1);
}

@compute @workgroup_size(256)
fn argmax_count_main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let R = WG / T;
  let c = lid % T;
  let row = (wid.y * nwg.x + wid.x) * R + lid / T;
  let valid = row < p.b;
  if (lid == 0u) { atomicStore(&wcount, 0u); }
  var bv = 0.0;
  var bi = 0xffffffffu;
  if (valid) {
    for (var k = c; k < p.k; k += T) {
      let v = x[row * p.k + k];
      if (arg_better(v, k, bv, bi)) {
        bv = v;
        bi = k;
      }
    }
  }
  wm[lid] = bv;
  wi[lid] = bi;
  for (var h = T / 2u; h > 0u; h = h / 2u) {
    workgroupBarrier();
    if (c < h && arg_better(wm[lid + h], wi[lid + h], wm[lid], wi[lid])) {
      wm[lid] = wm[lid + h];
      wi[lid] = wi[lid + h];
    }
  }
  workgroupBarrier();
  if (valid && c == 0u && wi[lid] == labels[row]) { atomicAdd(&wcount, 1u); }
  workgroupBarrier();
  if (lid == 0u) {
    let n = atomicLoad(&wcount);
    if (n > 0u) { atomicAdd(&cnt[0], n); }
  }
}
