// Optimizer steps fused over many parameter tensors: one dispatch updates up to 10 tensors,
// each bound in a slot of its own (WebGPU has no pointers or buffer arrays, so a slot is a set of
// bindings and a `switch` picks it). Each slot starts on a workgroup of its own: slot s owns the
// workgroups [off_s, off_{s+1}) (off_0 = 0; the last slot ends at the grid's end) and its
// len_s elements; an unused slot has len_s = 0 and owns no workgroup, its bindings placeholders.
//
// NOTE: the slot is a function of the workgroup, not of the element: on Mesa llvmpipe a switch
// whose value differs between the lanes of one SIMD batch runs every case under a mask, and
// per-element slots (as first written) made the fused step 3x slower than ten dispatches.
//
// The update of each element is exactly shaders/optim.wgsl's, operation by operation (PyTorch
// 1.13's _single_tensor_sgd / _single_tensor_adam(w)); only the launch differs, so the results
// are the same bits as the per-tensor kernels'.
//
// Why: a training step's optimizer was one dispatch per parameter tensor (LeNet-5: 10, DDNet:
// 14), each a pass launch with its own fixed cost; fused, LeNet's SGD step is one dispatch.
// Needs 10·3 = 30 storage bindings (maxStorageBuffersPerShaderStage >= 30);
// src/train/optim.ts falls back to shaders/optim.wgsl on devices with fewer.
//
// Threading plan: one invocation per element, 256 per workgroup, each workgroup within one slot,
// workgroups over x and y (rt.grid). Elementwise: no workgroup memory, no barriers.
//
// This file: SGD (torch.optim.SGD), slot s = (param, grad, momentum_buffer).
struct Params {
  lr: f32,
  wd: f32,
  momentum: f32,
  one_minus_dampening: f32,
  nesterov: u32,
  first: u32,
  maximize: u32,
  zero_grad: u32,
  off1: u32,
  off2: u32,
  off3: u32,
  off4: u32,
  off5: u32,
  off6: u32,
  off7: u32,
  off8: u32,
  off9: u32,
  len0: u32,
  len1: u32,
  len2: u32,
  len3: u32,
  len4: u32,
  len5: u32,
  len6: u32,
  len7: u32,
  len8: u32,
  len9: u32,
}
@group(0) @binding(0) var<storage, read_write> p0: array<f32>;
@group(0) @binding(1) var<storage, read_write> g0: array<f32>;
@group(0) @binding(2) var<storage, read_write> m0: array<f32>;
@group(0) @binding(3) var<storage, read_write> p1: array<f32>;
@group(0) @binding(4) var<storage, read_write> g1: array<f32>;
@group(0) @binding(5) var<storage, read_write> m1: array<f32>;
@group(0) @binding(6) var<storage, read_write> p2: array<f32>;
@group(0) @binding(7) var<storage, read_write> g2: array<f32>;
@group(0) @binding(8) var<storage, read_write> m2: array<f32>;
@group(0) @binding(9) var<storage, read_write> p3: array<f32>;
@group(0) @binding(10) var<storage, read_write> g3: array<f32>;
@group(0) @binding(11) var<storage, read_write> m3: array<f32>;
@group(0) @binding(12) var<storage, read_write> p4: array<f32>;
@group(0) @binding(13) var<storage, read_write> g4: array<f32>;
@group(0) @binding(14) var<storage, read_write> m4: array<f32>;
@group(0) @binding(15) var<storage, read_write> p5: array<f32>;
@group(0) @binding(16) var<storage, read_write> g5: array<f32>;
@group(0) @binding(17) var<storage, read_write> m5: array<f32>;
@group(0) @binding(18) var<storage, read_write> p6: array<f32>;
@group(0) @binding(19) var<storage, read_write> g6: array<f32>;
@group(0) @binding(20) var<storage, read_write> m6: array<f32>;
@group(0) @binding(21) var<storage, read_write> p7: array<f32>;
@group(0) @binding(22) var<storage, read_write> g7: array<f32>;
@group(0) @binding(23) var<storage, read_write> m7: array<f32>;
@group(0) @binding(24) var<storage, read_write> p8: array<f32>;
@group(0) @binding(25) var<storage, read_write> g8: array<f32>;
@group(0) @binding(26) var<storage, read_write> m8: array<f32>;
@group(0) @binding(27) var<storage, read_write> p9: array<f32>;
@group(0) @binding(28) var<storage, read_write> g9: array<f32>;
@group(0) @binding(29) var<storage, read_write> m9: array<f32>;
@group(0) @binding(30) var<uniform> p: Params;

// shaders/optim.wgsl's sgd_main on one element: returns (new param, new momentum buffer).
fn sgd(w: f32, g: f32, buf_old: f32) -> vec2f {
  var d = g;
  if (p.maximize == 1u) { d = -d; }
  if (p.wd != 0.0) { d = d + p.wd * w; }
  var buf = 0.0;
  if (p.momentum != 0.0) {
    if (p.first == 1u) {
      buf = d;
    } else {
      buf = buf_old * p.momentum + p.one_minus_dampening * d;
    }
    if (p.nesterov == 1u) {
      d = d + p.momentum * buf;
    } else {
      d = buf;
    }
  }
  return vec2f(w - p.lr * d, buf);
}

// (slot, element within the slot) of lane lid of workgroup w; the element is past the slot's
// length (skipped) in its last workgroup.
fn slot(w: u32, lid: u32) -> vec3u {
  if (w >= p.off9) { return vec3u(9u, (w - p.off9) * 256u + lid, p.len9); }
  if (w >= p.off8) { return vec3u(8u, (w - p.off8) * 256u + lid, p.len8); }
  if (w >= p.off7) { return vec3u(7u, (w - p.off7) * 256u + lid, p.len7); }
  if (w >= p.off6) { return vec3u(6u, (w - p.off6) * 256u + lid, p.len6); }
  if (w >= p.off5) { return vec3u(5u, (w - p.off5) * 256u + lid, p.len5); }
  if (w >= p.off4) { return vec3u(4u, (w - p.off4) * 256u + lid, p.len4); }
  if (w >= p.off3) { return vec3u(3u, (w - p.off3) * 256u + lid, p.len3); }
  if (w >= p.off2) { return vec3u(2u, (w - p.off2) * 256u + lid, p.len2); }
  if (w >= p.off1) { return vec3u(1u, (w - p.off1) * 256u + lid, p.len1); }
  return vec3u(0u, w * 256u + lid, p.len0);
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let sj = slot(wid.y * nwg.x + wid.x, lid);
  let j = sj.y;
  if (j >= sj.z) { return; }
  let mom = p.momentum != 0.0;
  let old = mom && p.first == 0u;
  switch sj.x {
    case 0u: {
      let g = g0[j];
      if (p.zero_grad == 1u) { g0[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m0[j]; }
      let r = sgd(p0[j], g, b);
      if (mom) { m0[j] = r.y; }
      p0[j] = r.x;
    }
    case 1u: {
      let g = g1[j];
      if (p.zero_grad == 1u) { g1[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m1[j]; }
      let r = sgd(p1[j], g, b);
      if (mom) { m1[j] = r.y; }
      p1[j] = r.x;
    }
    case 2u: {
      let g = g2[j];
      if (p.zero_grad == 1u) { g2[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m2[j]; }
      let r = sgd(p2[j], g, b);
      if (mom) { m2[j] = r.y; }
      p2[j] = r.x;
    }
    case 3u: {
      let g = g3[j];
      if (p.zero_grad == 1u) { g3[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m3[j]; }
      let r = sgd(p3[j], g, b);
      if (mom) { m3[j] = r.y; }
      p3[j] = r.x;
    }
    case 4u: {
      let g = g4[j];
      if (p.zero_grad == 1u) { g4[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m4[j]; }
      let r = sgd(p4[j], g, b);
      if (mom) { m4[j] = r.y; }
      p4[j] = r.x;
    }
    case 5u: {
      let g = g5[j];
      if (p.zero_grad == 1u) { g5[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m5[j]; }
      let r = sgd(p5[j], g, b);
      if (mom) { m5[j] = r.y; }
      p5[j] = r.x;
    }
    case 6u: {
      let g = g6[j];
      if (p.zero_grad == 1u) { g6[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m6[j]; }
      let r = sgd(p6[j], g, b);
      if (mom) { m6[j] = r.y; }
      p6[j] = r.x;
    }
    case 7u: {
      let g = g7[j];
      if (p.zero_grad == 1u) { g7[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m7[j]; }
      let r = sgd(p7[j], g, b);
      if (mom) { m7[j] = r.y; }
      p7[j] = r.x;
    }
    case 8u: {
      let g = g8[j];
      if (p.zero_grad == 1u) { g8[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m8[j]; }
      let r = sgd(p8[j], g, b);
      if (mom) { m8[j] = r.y; }
      p8[j] = r.x;
    }
    case 9u: {
      let g = g9[j];
      if (p.zero_grad == 1u) { g9[j] = 0.0; }
      var b = 0.0;
      if (old) { b = m9[j]; }
      let r = sgd(p9[j], g, b);
      if (mom) { m9[j] = r.y; }
      p9[j] = r.x;
    }
    default: {}
  }
}
