// 2-D max and average pooling over NCHW planes, PyTorch 1.13 semantics (torch.nn.MaxPool2d and
// AvgPool2d with dilation 1, ceil_mode False): output size OH = floor((H + 2·ph - kh) / sh) + 1,
// window of output (oy, ox) = rows oy·sh - ph .. oy·sh - ph + kh - 1 (likewise columns).
//
// Threading plan: one invocation per output element (forward, jvp) or per input element
// (backward), item = (wid.y · nwg.x + wid.x) · 256 + lid.x over planes·OH·OW or planes·H·W
// (planes = B·C), a window of at most kh·kw loads each. Pooling is memory-bound; there is no reuse
// worth staging. Every backward is a gather (each input sums over the windows that cover it), so
// there are no atomics and the result is deterministic.
//
// max_fwd_main:  y = max over the in-image part of the window (padding never wins), idx = flat
//                index iy·W + ix of the maximum within the plane (PyTorch's return_indices).
//                As ATen's CPU kernel: start at the window's first in-image element, replace when
//                `v > best || isnan(v)` (NaN propagates; ties keep the first).
// max_bwd_main:  dx[iy, ix] = Σ_{windows (oy, ox) covering (iy, ix)} [idx[oy, ox] = iy·W + ix] dy.
//                Overlapping windows (kernel > stride) can pick the same input, so this is a sum,
//                the scatter-ADD of shared/jr_gradient_recipe.py written as a gather.
// max_jvp_main:  ty[oy, ox] = tx[idx[oy, ox]] (the Jacobian is a selection).
// avg_fwd_main:  y = Σ_window x / d, with d = kh·kw (count_include_pad, PyTorch's default: with
//                ceil_mode False every window lies inside the padded image) or, with
//                INCLUDE_PAD = false, the number of in-image elements.
// avg_bwd_main:  dx[iy, ix] = Σ_{covering windows} dy[oy, ox] / d(oy, ox). jvp = forward (linear).
// Output windows covering input row iy: oy in [ceil((iy + ph - kh + 1) / sh), floor((iy + ph) / sh)]
// ∩ [0, OH).

struct Params { planes: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: u32, pw: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>; // x, dy or tx
@group(0) @binding(1) var<storage, read_write> idx: array<u32>; // (planes, OH, OW) argmax
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // y, dx or ty
@group(0) @binding(3) var<uniform> p: Params;

override INCLUDE_PAD: bool = true;

fn item(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

// Bits test: WGSL lets compilers assume NaN never occurs (`v != v` may fold to false).
fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// First and one-past-last output index whose window covers input position i along one axis.
fn covering(i: u32, pad: u32, k: u32, s: u32, o: u32) -> vec2u {
  let t = i + pad; // window oy covers i iff oy·s <= t <= oy·s + k - 1
  var lo = 0u;
  if (t + 1u > k) { lo = (t + 1u - k + s - 1u) / s; }
  let hi = min(t / s + 1u, o);
  return vec2u(lo, max(hi, lo));
}

// Divisor of window (oy, ox).
fn divisor(oy: u32, ox: u32) -> f32 {
  if (INCLUDE_PAD) { return f32(p.kh * p.kw); }
  let y0 = i32(oy * p.sh) - i32(p.ph);
  let x0 = i32(ox * p.sw) - i32(p.pw);
  let ny = min(y0 + i32(p.kh), i32(p.h)) - max(y0, 0);
  let nx = min(x0 + i32(p.kw), i32(p.w)) - max(x0, 0);
  return f32(ny * nx);
}

@compute @workgroup_size(256)
fn max_fwd_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  let ohw = p.oh * p.ow;
  if (i >= p.planes * ohw) { return; }
  let plane = i / ohw;
  let oy = (i % ohw) / p.ow;
  let ox = i % p.ow;
  let y0 = i32(oy * p.sh) - i32(p.ph);
  let x0 = i32(ox * p.sw) - i32(p.pw);
  let ys = u32(max(y0, 0));
  let xs = u32(max(x0, 0));
  let ye = u32(min(y0 + i32(p.kh), i32(p.h)));
  let xe = u32(min(x0 + i32(p.kw), i32(p.w)));
  let base = plane * p.h * p.w;
  var best = bitcast<f32>(0xff800000u); // -inf
  var at = ys * p.w + xs;
  for (var iy = ys; iy < ye; iy++) {
    for (var ix = xs; ix < xe; ix++) {
      let v = x[base + iy * p.w + ix];
      if (v > best || is_nan(v)) {
        best = v;
        at = iy * p.w + ix;
      }
    }
  }
  y[i] = best;
  idx[i] = at;
}

@compute @workgroup_size(256)
fn max_bwd_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  let hw = p.h * p.w;
  if (i >= p.planes * hw) { return; }
  let plane = i / hw;
  let q = i % hw;
  let ry = covering(q / p.w, p.ph, p.kh, p.sh, p.oh);
  let rx = covering(q % p.w, p.pw, p.kw, p.sw, p.ow);
  let base = plane * p.oh * p.ow;
  var s = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    for (var ox = rx.x; ox < rx.y; ox++) {
      let o = base + oy * p.ow + ox;
      if (idx[o] == q) { s += x[o]; }
    }
  }
  y[i] = s;
}

@compute @workgroup_size(256)
fn max_jvp_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  let ohw = p.oh * p.ow;
  if (i >= p.planes * ohw) { return; }
  y[i] = x[(i / ohw) * p.h * p.w + idx[i]];
}

@compute @workgroup_size(256)
fn avg_fwd_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  let ohw = p.oh * p.ow;
  if (i >= p.planes * ohw) { return; }
  let plane = i / ohw;
  let oy = (i % ohw) / p.ow;
  let ox = i % p.ow;
  let y0 = i32(oy * p.sh) - i32(p.ph);
  let x0 = i32(ox * p.sw) - i32(p.pw);
  let ys = u32(max(y0, 0));
  let xs = u32(max(x0, 0));
  let ye = u32(min(y0 + i32(p.kh), i32(p.h)));
  let xe = u32(min(x0 + i32(p.kw), i32(p.w)));
  let base = plane * p.h * p.w;
  var s = 0.0;
  for (var iy = ys; iy < ye; iy++) {
    for (var ix = xs; ix < xe; ix++) { s += x[base + iy * p.w + ix]; }
  }
  y[i] = s / divisor(oy, ox);
}

@compute @workgroup_size(256)
fn avg_bwd_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  let hw = p.h * p.w;
  if (i >= p.planes * hw) { return; }
  let plane = i / hw;
  let q = i % hw;
  let ry = covering(q / p.w, p.ph, p.kh, p.sh, p.oh);
  let rx = covering(q % p.w, p.pw, p.kw, p.sw, p.ow);
  let base = plane * p.oh * p.ow;
  var s = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    for (var ox = rx.x; ox < rx.y; ox++) { s += x[base + oy * p.ow + ox] / divisor(oy, ox); }
  }
  y[i] = s;
}
