// Optimizer steps fused over many parameter tensors: one dispatch updates up to 6 tensors,
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
// Needs 6·5 = 30 storage bindings (maxStorageBuffersPerShaderStage >= 30);
// src/train/optim.ts falls back to shaders/optim.wgsl on devices with fewer.
//
// Threading plan: one invocation per element, 256 per workgroup, each workgroup within one slot,
// workgroups over x and y (rt.grid). Elementwise: no workgroup memory, no barriers.
//
// This file: Adam and AdamW (torch.optim.Adam, AdamW), slot s = (param, grad, exp_avg,
// exp_avg_sq, max_exp_avg_sq). The slots of one dispatch share the step count (the bias
// corrections); src/train/optim.ts groups the tensors so.
struct Params {
  lr: f32,
  wd: f32,
  maximize: u32,
  zero_grad: u32,
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  eps: f32,
  step_size: f32,
  bc2_sqrt: f32,
  decay: f32,
  decoupled: u32,
  amsgrad: u32,
  off1: u32,
  off2: u32,
  off3: u32,
  off4: u32,
  off5: u32,
  len0: u32,
  len1: u32,
  len2: u32,
  len3: u32,
  len4: u32,
  len5: u32,
}
@group(0) @binding(0) var<storage, read_write> p0: array<f32>;
@group(0) @binding(1) var<storage, read_write> g0: array<f32>;
@group(0) @binding(2) var<storage, read_write> m0: array<f32>;
@group(0) @binding(3) var<storage, read_write> v0: array<f32>;
@group(0) @binding(4) var<storage, read_write> x0: array<f32>;
@group(0) @binding(5) var<storage, read_write> p1: array<f32>;
@group(0) @binding(6) var<storage, read_write> g1: array<f32>;
@group(0) @binding(7) var<storage, read_write> m1: array<f32>;
@group(0) @binding(8) var<storage, read_write> v1: array<f32>;
@group(0) @binding(9) var<storage, read_write> x1: array<f32>;
@group(0) @binding(10) var<storage, read_write> p2: array<f32>;
@group(0) @binding(11) var<storage, read_write> g2: array<f32>;
@group(0) @binding(12) var<storage, read_write> m2: array<f32>;
@group(0) @binding(13) var<storage, read_write> v2: array<f32>;
@group(0) @binding(14) var<storage, read_write> x2: array<f32>;
@group(0) @binding(15) var<storage, read_write> p3: array<f32>;
@group(0) @binding(16) var<storage, read_write> g3: array<f32>;
@group(0) @binding(17) var<storage, read_write> m3: array<f32>;
@group(0) @binding(18) var<storage, read_write> v3: array<f32>;
@group(0) @binding(19) var<storage, read_write> x3: array<f32>;
@group(0) @binding(20) var<storage, read_write> p4: array<f32>;
@group(0) @binding(21) var<storage, read_write> g4: array<f32>;
@group(0) @binding(22) var<storage, read_write> m4: array<f32>;
@group(0) @binding(23) var<storage, read_write> v4: array<f32>;
@group(0) @binding(24) var<storage, read_write> x4: array<f32>;
@group(0) @binding(25) var<storage, read_write> p5: array<f32>;
@group(0) @binding(26) var<storage, read_write> g5: array<f32>;
@group(0) @binding(27) var<storage, read_write> m5: array<f32>;
@group(0) @binding(28) var<storage, read_write> v5: array<f32>;
@group(0) @binding(29) var<storage, read_write> x5: array<f32>;
@group(0) @binding(30) var<uniform> p: Params;

// shaders/optim.wgsl's adam_main on one element: (new param, exp_avg, exp_avg_sq, the second
// moment the denominator uses: exp_avg_sq, or with amsgrad the new max_exp_avg_sq).
fn adam(w_old: f32, g_in: f32, m_old: f32, v_old: f32, vmax_old: f32) -> vec4f {
  var w = w_old;
  var g = g_in;
  if (p.maximize == 1u) { g = -g; }
  if (p.decoupled == 1u) {
    w = w * p.decay;
  } else if (p.wd != 0.0) {
    g = g + p.wd * w;
  }
  let m = m_old * p.beta1 + p.one_minus_beta1 * g;
  let v = v_old * p.beta2 + p.one_minus_beta2 * g * g;
  var vd = v;
  if (p.amsgrad == 1u) { vd = max(vmax_old, v); }
  let denom = sqrt(vd) / p.bc2_sqrt + p.eps;
  return vec4f(w - p.step_size * (m / denom), m, v, vd);
}

// (slot, element within the slot) of lane lid of workgroup w; the element is past the slot's
// length (skipped) in its last workgroup.
fn slot(w: u32, lid: u32) -> vec3u {
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
  let ams = p.amsgrad == 1u;
  switch sj.x {
    case 0u: {
      let g = g0[j];
      if (p.zero_grad == 1u) { g0[j] = 0.0; }
      var vmax = 0.0;
      if (ams) { vmax = x0[j]; }
      let r = adam(p0[j], g, m0[j], v0[j], vmax);
      m0[j] = r.y;
      v0[j] = r.z;
      if (ams) { x0[j] = r.w; }
      p0[j] = r.x;
    }
    case 1u: {
      let g = g1[j];
      if (p.zero_grad == 1u) { g1[j] = 0.0; }
      var vmax = 0.0;
      if (ams) { vmax = x1[j]; }
      let r = adam(p1[j], g, m1[j], v1[j], vmax);
      m1[j] = r.y;
      v1[j] = r.z;
      if (ams) { x1[j] = r.w; }
      p1[j] = r.x;
    }
    case 2u: {
      let g = g2[j];
      if (p.zero_grad == 1u) { g2[j] = 0.0; }
      var vmax = 0.0;
      if (ams) { vmax = x2[j]; }
      let r = adam(p2[j], g, m2[j], v2[j], vmax);
      m2[j] = r.y;
      v2[j] = r.z;
      if (ams) { x2[j] = r.w; }
      p2[j] = r.x;
    }
    case 3u: {
      let g = g3[j];
      if (p.zero_grad == 1u) { g3[j] = 0.0; }
      var vmax = 0.0;
      if (ams) { vmax = x3[j]; }
      let r = adam(p3[j], g, m3[j], v3[j], vmax);
      m3[j] = r.y;
      v3[j] = r.z;
      if (ams) { x3[j] = r.w; }
      p3[j] = r.x;
    }
    case 4u: {
      let g = g4[j];
      if (p.zero_grad == 1u) { g4[j] = 0.0; }
      var vmax = 0.0;
      if (ams) { vmax = x4[j]; }
      let r = adam(p4[j], g, m4[j], v4[j], vmax);
      m4[j] = r.y;
      v4[j] = r.z;
      if (ams) { x4[j] = r.w; }
      p4[j] = r.x;
    }
    case 5u: {
      let g = g5[j];
      if (p.zero_grad == 1u) { g5[j] = 0.0; }
      var vmax = 0.0;
      if (ams) { vmax = x5[j]; }
      let r = adam(p5[j], g, m5[j], v5[j], vmax);
      m5[j] = r.y;
      v5[j] = r.z;
      if (ams) { x5[j] = r.w; }
      p5[j] = r.x;
    }
    default: {}
  }
}
