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

// The window geometry is compiled in (override constants; the Params fields of the same names
// carry the same values): every index decode below divides by a constant, which compilers turn
// into a multiply and shift (a division by a runtime value costs a scalar loop over the SIMD
// lanes on CPU adapters).
override H: u32;
override W: u32;
override OH: u32;
override OW: u32;
override KH: u32;
override KW: u32;
override SH: u32;
override SW: u32;
override PH: u32;
override PW: u32;
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
  if (INCLUDE_PAD) { return f32(KH * KW); }
  let y0 = i32(oy * SH) - i32(PH);
  let x0 = i32(ox * SW) - i32(PW);
  let ny = min(y0 + i32(KH), i32(H)) - max(y0, 0);
  let nx = min(x0 + i32(KW), i32(W)) - max(x0, 0);
  return f32(ny * nx);
}

@compute @workgroup_size(256)
fn max_fwd_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  let ohw = OH * OW;
  if (i >= p.planes * ohw) { return; }
  let plane = i / ohw;
  let oy = (i % ohw) / OW;
  let ox = i % OW;
  let y0 = i32(oy * SH) - i32(PH);
  let x0 = i32(ox * SW) - i32(PW);
  let ys = u32(max(y0, 0));
  let xs = u32(max(x0, 0));
  let ye = u32(min(y0 + i32(KH), i32(H)));
  let xe = u32(min(x0 + i32(KW), i32(W)));
  let base = plane * H * W;
  // -inf, from a run-time value: Tint (Chromium) refuses a constant infinity.
  var neg_inf_bits = 0xff800000u;
  var best = bitcast<f32>(neg_inf_bits);
  var at = ys * W + xs;
  for (var iy = ys; iy < ye; iy++) {
    for (var ix = xs; ix < xe; ix++) {
      let v = x[base + iy * W + ix];
      if (v > best || is_nan(v)) {
        best = v;
        at = iy * W + ix;
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
  let hw = H * W;
  if (i >= p.planes * hw) { return; }
  let plane = i / hw;
  let q = i % hw;
  let base = plane * OH * OW;
  if (SH == KH && SW == KW && PH == 0u && PW == 0u) {
    // Windows tile the image without overlap (the usual 2×2 / 2): at most one covers (iy, ix).
    let oy = (q / W) / SH;
    let ox = (q % W) / SW;
    var s = 0.0;
    if (oy < OH && ox < OW) {
      let o = base + oy * OW + ox;
      s = select(0.0, x[o], idx[o] == q);
    }
    y[i] = s;
    return;
  }
  let ry = covering(q / W, PH, KH, SH, OH);
  let rx = covering(q % W, PW, KW, SW, OW);
  var s = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    for (var ox = rx.x; ox < rx.y; ox++) {
      let o = base + oy * OW + ox;
      if (idx[o] == q) { s += x[o]; }
    }
  }
  y[i] = s;
}

@compute @workgroup_size(256)
fn max_jvp_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  let ohw = OH * OW;
  if (i >= p.planes * ohw) { return; }
  y[i] = x[(i / ohw) * H * W + idx[i]];
}

@compute @workgroup_size(256)
fn avg_fwd_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  let ohw = OH * OW;
  if (i >= p.planes * ohw) { return; }
  let plane = i / ohw;
  let oy = (i % ohw) / OW;
  let ox = i % OW;
  let y0 = i32(oy * SH) - i32(PH);
  let x0 = i32(ox * SW) - i32(PW);
  let ys = u32(max(y0, 0));
  let xs = u32(max(x0, 0));
  let ye = u32(min(y0 + i32(KH), i32(H)));
  let xe = u32(min(x0 + i32(KW), i32(W)));
  let base = plane * H * W;
  var s = 0.0;
  for (var iy = ys; iy < ye; iy++) {
    for (var ix = xs; ix < xe; ix++) { s += x[base + iy * W + ix]; }
  }
  y[i] = s / divisor(oy, ox);
}

@compute @workgroup_size(256)
fn avg_bwd_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  let hw = H * W;
  if (i >= p.planes * hw) { return; }
  let plane = i / hw;
  let q = i % hw;
  let ry = covering(q / W, PH, KH, SH, OH);
  let rx = covering(q % W, PW, KW, SW, OW);
  let base = plane * OH * OW;
  var s = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    for (var ox = rx.x; ox < rx.y; ox++) { s += x[base + oy * OW + ox] / divisor(oy, ox); }
  }
  y[i] = s;
}
