// Batch normalization over (B, C, S) tensors, S = H*W (1 for BatchNorm1d): the
// data-sized passes. Running statistics and parameter-gradient accumulation are
// per-channel and live in batchnorm_state.wgsl (kept apart so that each file's
// bind group stays within the default limit of 8 storage buffers).
// Ioffe & Szegedy 2015; PyTorch 1.13 semantics: biased batch variance for
// normalizing, unbiased (M/(M-1)) for running_var, M = B*S elements per channel.
//
// Threading plan:
// - stats, bwd_reduce: one workgroup of 256 threads per channel (workgroup id x = c);
//   each thread strides over the channel's M elements, then a tree reduction in
//   workgroup memory. The variance is a second pass around the mean (two-pass:
//   no catastrophic cancellation for large means).
// - affine, bwd_dx: one thread per element, index split over x and y by rt.grid().
//
// Math (x̂ = (x - mean) * invstd, invstd = 1/sqrt(var + eps)):
//   forward   y  = gamma * x̂ + beta
//   jvp       ty = gamma * invstd * tx                (eval mode only: train mode couples the batch)
//   backward  dgamma += Σ dy x̂,  dbeta += Σ dy
//             train: dx = gamma*invstd*(dy - Σdy/M - x̂ Σ(dy x̂)/M)
//             eval:  dx = gamma*invstd*dy
//
// stats is (5, C): mean, invstd, unbiased batch variance, Σdy, Σdy·x̂.

struct Params { b: u32, c: u32, s: u32, eps: f32, mode: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;           // (B, C, S) input, dy or tx
@group(0) @binding(1) var<storage, read> aux: array<f32>;         // (B, C, S) cached input (backward)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;     // (B, C, S) output
@group(0) @binding(3) var<storage, read> gamma: array<f32>;       // (C,)
@group(0) @binding(4) var<storage, read> beta: array<f32>;        // (C,)
@group(0) @binding(5) var<storage, read_write> stats: array<f32>; // (5, C)
@group(0) @binding(6) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> red0: array<f32, 256>;
var<workgroup> red1: array<f32, 256>;

fn at(i: u32, c: u32) -> u32 {
  // i-th element (over B*S) of channel c
  let bi = i / p.s;
  let si = i % p.s;
  return (bi * p.c + c) * p.s + si;
}

fn tree(lid: u32) {
  var off = WG / 2u;
  loop {
    if (off == 0u) { break; }
    workgroupBarrier();
    if (lid < off) {
      red0[lid] += red0[lid + off];
      red1[lid] += red1[lid + off];
    }
    off = off / 2u;
  }
  workgroupBarrier();
}

@compute @workgroup_size(256)
fn stats_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let c = wid.x;
  let lid = lid3.x;
  let m = p.b * p.s;
  // The mean of the values shifted by the channel's first one, k + Σ(x - k)/m (the shifted-data
  // algorithm, Chan, Golub & LeVeque 1983): exact for a constant channel, where Σx/m is off by
  // a few ulps and x̂ = (x - mean)·invstd would be that error over sqrt(eps).
  let k = x[at(0u, c)];
  var s = 0.0;
  for (var i = lid; i < m; i += WG) { s += x[at(i, c)] - k; }
  red0[lid] = s;
  red1[lid] = 0.0;
  tree(lid);
  let mean = k + red0[0] / f32(m);
  workgroupBarrier();
  var q = 0.0;
  for (var i = lid; i < m; i += WG) { let d = x[at(i, c)] - mean; q += d * d; }
  red0[lid] = q;
  red1[lid] = 0.0;
  tree(lid);
  if (lid == 0u) {
    let varb = red0[0] / f32(m);
    stats[c] = mean;
    stats[p.c + c] = 1.0 / sqrt(varb + p.eps);
    stats[2u * p.c + c] = select(varb, varb * f32(m) / f32(m - 1u), m > 1u);
  }
}

fn flat(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// mode 0: y = gamma*x̂ + beta; mode 1 (jvp): y = gamma*invstd*x
@compute @workgroup_size(256)
fn affine_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let i = flat(wid, nwg, lid);
  if (i >= p.b * p.c * p.s) { return; }
  let c = (i / p.s) % p.c;
  let g = gamma[c] * stats[p.c + c];
  if (p.mode == 0u) {
    y[i] = (x[i] - stats[c]) * g + beta[c];
  } else {
    y[i] = x[i] * g;
  }
}

// x = dy, aux = cached input; stores Σdy and Σdy·x̂ per channel.
@compute @workgroup_size(256)
fn bwd_reduce_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
  let c = wid.x;
  let lid = lid3.x;
  let m = p.b * p.s;
  let mean = stats[c];
  let invstd = stats[p.c + c];
  var sd = 0.0;
  var sdx = 0.0;
  for (var i = lid; i < m; i += WG) {
    let k = at(i, c);
    let dy = x[k];
    sd += dy;
    sdx += dy * (aux[k] - mean) * invstd;
  }
  red0[lid] = sd;
  red1[lid] = sdx;
  tree(lid);
  if (lid == 0u) {
    stats[3u * p.c + c] = red0[0];
    stats[4u * p.c + c] = red1[0];
  }
}

// mode 0 (train): full batch-coupled gradient; mode 1 (eval): dx = gamma*invstd*dy.
@compute @workgroup_size(256)
fn bwd_dx_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let i = flat(wid, nwg, lid);
  if (i >= p.b * p.c * p.s) { return; }
  let c = (i / p.s) % p.c;
  let invstd = stats[p.c + c];
  let g = gamma[c] * invstd;
  if (p.mode == 1u) {
    y[i] = g * x[i];
    return;
  }
  let m = f32(p.b * p.s);
  let xh = (aux[i] - stats[c]) * invstd;
  y[i] = g * (x[i] - stats[3u * p.c + c] / m - xh * stats[4u * p.c + c] / m);
}
