// Elementwise kernels: y = f(a) (unary ops) and y = g(a, b) (binary ops, b broadcast against a).
//
// Threading plan: one invocation per item, item = (wid.y * nwg.x + wid.x) * 256 + lid.x, where
// rt.grid() spreads more than 65535 workgroups over y. An item is one f32 in the scalar
// instantiation of this file and one vec4<f32> (4 consecutive elements) in the vec4 one.
//
// Specialisation, all at pipeline creation (no branching on the op at run time):
// - OP (override): the operation. Codes are the tables UNARY / BINARY in src/ops/elementwise.ts;
//   unary ops are < 32 and ignore b, binary ops are >= 32.
// - BMODE (override): how b is read. 0: not at all (unary), 1: same shape, b[i];
//   2: scalar, the first element of b splatted; 3: broadcast, b[(i / inner) % nb] (a bias row
//   when inner = 1, a per-channel [C,1,1] vector when inner = H*W).
// - T: the element type. As written this file is the scalar instantiation (T = f32).
//   src/ops/elementwise.ts derives the vec4 instantiation by replacing the two lines marked
//   `@lanes` below; every op is written with component-wise builtins, `T(...)` splats and
//   `select` so that both compile from this one source. vec4 is used when the element count is a
//   multiple of 4 (and, for BMODE 3, inner = 1 and nb a multiple of 4): on llvmpipe it measured
//   1.8x faster than one f32 per invocation for both tanh and a*x+y over 4M elements.
// - IO (override): in-place operation. WebGPU forbids binding one buffer to two bindings of a
//   dispatch when either is writable (gpuweb PR #2441; Chromium rejects it, wgpu does not check),
//   so an output that aliases an input is bound once, to y, the only read_write binding, and the
//   aliased operand is read from y: bit 0 set, a is y; bit 1 set, b is y (then b has a's size,
//   BMODE 1, or 2 with n = 1). The binding it replaces gets an unused placeholder buffer. Each
//   invocation reads its elements before it writes them, so in-place is safe.
//
// Math, PyTorch 1.13 semantics:
//   sign(0) = 0; relu(x) = x > 0 ? x : 0 (NaN passes through); leaky_relu(x) = x > 0 ? x : alpha*x
//   tanh: odd Taylor series to x^7 for |x| < 0.125 (remainder < 2e-10 relative), otherwise
//     sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) <= 1, so no overflow to inf/inf = NaN at large
//     |x| on any backend (llvmpipe's builtin tanh loses ~20% relative accuracy at 1e-7).
//   sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) otherwise, e = exp(-|x|) (no overflow).
//   softplus(x; beta = alpha, threshold = beta) = x if beta*x > threshold, else
//     log1p(exp(beta*x)) / beta (torch.nn.functional.softplus, defaults beta 1, threshold 20).
//     WGSL has no log1p: log1p(u) = u * log(1 + u) / ((1 + u) - 1), or u when 1 + u == 1
//     (Goldberg 1991, "What every computer scientist should know about floating-point
//     arithmetic", Theorem 4), accurate for the tiny u = exp(x) of very negative x.
//   log: WGSL only bounds the absolute error of log on [0.5, 2] (2^-21), and llvmpipe is that
//     loose (percent-level relative error just above 1), so on [0.5, 2] log x = 2 atanh(s),
//     s = (x - 1) / (x + 1) in [-1/3, 1/3], odd series to s^15 (relative remainder < 2e-9).
//   clamp(x, lo = alpha, hi = beta) = min(max(x, lo), hi) (torch.clamp: hi wins when lo > hi).
//   Backward ops take the forward input x or output y first and the output gradient dy second:
//     relu_backward(x, dy)         = x > 0 ? dy : 0
//     leaky_relu_backward(x, dy)   = x > 0 ? dy : alpha*dy
//     tanh_backward(y, dy)         = dy (1 - y)(1 + y)   (= 1 - y^2 without its cancellation)
//     sigmoid_backward(y, dy)      = dy y (1 - y)
//     softplus_backward(x, dy)     = beta*x > threshold ? dy : dy sigmoid(beta*x)

alias T = f32; // @lanes
fn lane0(v: T) -> f32 { return v; } // @lanes
alias U = u32; // @lanes (the unsigned twin of T, for NaN tests on the bits)
alias bool_t = bool; // @lanes

override OP: u32 = 0u;
override BMODE: u32 = 0u;
override IO: u32 = 0u;

struct Params { n: u32, nb: u32, inner: u32, alpha: f32, beta: f32 }

@group(0) @binding(0) var<storage, read> a: array<T>;       // (n,) first input (IO bit 0: unused)
@group(0) @binding(1) var<storage, read> b: array<T>;       // (n,), (1,) or (nb,) second input
@group(0) @binding(2) var<storage, read_write> y: array<T>; // (n,) output; in place also input
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 256u;

// NOTE: NaN is tested on the bits. WGSL lets compilers assume finite floats, and NVIDIA's
// turns select(x, 0, x < 0) into max(x, 0), which drops NaN (PyTorch's relu keeps it).
fn not_nan(x: T) -> bool_t {
  return (bitcast<U>(x) & U(0x7fffffffu)) <= U(0x7f800000u);
}

fn tanh_s(x: T) -> T {
  let ax = abs(x);
  let x2 = x * x;
  let series = x * (T(1.0) + x2 * (T(-1.0 / 3.0) + x2 * (T(2.0 / 15.0) + x2 * T(-17.0 / 315.0))));
  let e = exp(T(-2.0) * ax);
  let big = sign(x) * (T(1.0) - e) / (T(1.0) + e);
  return select(big, series, ax < T(0.125));
}

fn sigmoid_s(x: T) -> T {
  let e = exp(-abs(x));
  let r = T(1.0) / (T(1.0) + e);
  return select(e * r, r, x >= T(0.0));
}

fn log_s(x: T) -> T {
  let s = (x - T(1.0)) / (x + T(1.0));
  let q = s * s;
  let t = T(1.0 / 13.0) + q * T(1.0 / 15.0);
  let series = T(2.0) * s * (T(1.0) + q * (T(1.0 / 3.0) + q * (T(0.2) + q * (T(1.0 / 7.0) +
    q * (T(1.0 / 9.0) + q * (T(1.0 / 11.0) + q * t))))));
  return select(log(x), series, (x >= T(0.5)) & (x <= T(2.0)));
}

fn log1p_s(u: T) -> T {
  let w = T(1.0) + u;
  return select(log_s(w) * u / (w - T(1.0)), u, w == T(1.0));
}

fn softplus_s(x: T, beta: f32, threshold: f32) -> T {
  let bx = x * T(beta);
  return select(log1p_s(exp(bx)) / T(beta), x, bx > T(threshold));
}

fn apply(x: T, v: T) -> T {
  let al = T(p.alpha);
  let be = T(p.beta);
  let zero = T(0.0);
  let one = T(1.0);
  switch OP {
    case 0u: { return x; }                                  // copy
    case 1u: { return -x; }                                 // neg
    case 2u: { return abs(x); }                             // abs
    case 3u: { return sign(x); }                            // sign
    case 4u: { return select(x, zero, (x < zero) & not_nan(x)); } // relu
    case 5u: { return select(x * al, x, x > zero); }        // leaky_relu
    case 6u: { return tanh_s(x); }                          // tanh
    case 7u: { return sigmoid_s(x); }                       // sigmoid
    case 8u: { return softplus_s(x, p.alpha, p.beta); }     // softplus
    case 9u: { return exp(x); }                             // exp
    case 10u: { return log_s(x); }                          // log
    case 11u: { return sqrt(x); }                           // sqrt
    case 12u: { return x * x; }                             // square
    case 13u: { return al * x; }                            // scale
    case 14u: { return x + al; }                            // add_scalar
    case 15u: { return al * x + be; }                       // affine
    case 16u: { return min(max(x, al), be); }               // clamp
    case 17u: { return al; }                                // fill
    case 18u: { return one / x; }                           // reciprocal
    case 32u: { return x + v; }                             // add
    case 33u: { return x - v; }                             // sub
    case 34u: { return x * v; }                             // mul
    case 35u: { return x / v; }                             // div
    case 36u: { return max(x, v); }                         // max
    case 37u: { return min(x, v); }                         // min
    case 38u: { return al * x + be * v; }                   // axpby
    case 39u: { return select(zero, v, x > zero); }         // relu_backward
    case 40u: { return select(al * v, v, x > zero); }       // leaky_relu_backward
    case 41u: { return v * ((one - x) * (one + x)); }       // tanh_backward
    case 42u: { return v * (x * (one - x)); }               // sigmoid_backward
    case 43u: {                                             // softplus_backward
      let bx = x * al;
      return select(v * sigmoid_s(bx), v, bx > be);
    }
    default: { return x; }
  }
}

fn load_a(i: u32) -> T {
  if ((IO & 1u) != 0u) { return y[i]; }
  return a[i];
}

fn load_b(j: u32) -> T {
  if ((IO & 2u) != 0u) { return y[j]; }
  return b[j];
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= p.n) { return; }
  var v = T(0.0);
  switch BMODE {
    case 1u: { v = load_b(i); }
    case 2u: { v = T(lane0(load_b(0u))); }
    case 3u: { v = load_b((i / p.inner) % p.nb); }
    default: {}
  }
  y[i] = apply(load_a(i), v);
}
