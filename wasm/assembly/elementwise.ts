// regula WebAssembly kernels: the twins of the elementwise WGSL family (src/wasm/kernels/elementwise.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// shaders/elementwise.wgsl, all its OP codes, with its formulas (see that file's header): the
// op is applied to four elements at a time in f32x4 lanes; the tail of a range (fewer than four
// elements) goes through the same vector code in a partial vector, so every element gets the
// same bits whatever range (thread) it falls in.

import { loadPartial, storePartial, vexp, vlog, vsigmoid, vtanh } from "./_vmath";


@inline function notNan(x: v128): v128 {
  return i32x4.le_u(v128.and(x, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
}

/**
 * sign(x) = (x > 0) - (x < 0): +0 for +-0 and for NaN, as the WGSL builtin on llvmpipe and
 * torch.sign (`(0 < a) - (a < 0)` in ATen) give.
 */
@inline function vsign(x: v128): v128 {
  const zero = f32x4.splat(0.0);
  const pos = v128.and(f32x4.gt(x, zero), f32x4.splat(1.0));
  const neg = v128.and(f32x4.lt(x, zero), f32x4.splat(-1.0));
  return v128.or(pos, neg);
}

/** softplus_s of the WGSL: x if beta x > threshold, else log1p(exp(beta x)) / beta. */
@inline function vsoftplus(x: v128, beta: v128, threshold: v128): v128 {
  const bx = f32x4.mul(x, beta);
  const u = vexp(bx);
  const w = f32x4.add(f32x4.splat(1.0), u);
  const l1p = v128.bitselect(
    u,
    f32x4.div(f32x4.mul(vlog(w), u), f32x4.sub(w, f32x4.splat(1.0))),
    f32x4.eq(w, f32x4.splat(1.0)),
  );
  return v128.bitselect(x, f32x4.div(l1p, beta), f32x4.gt(bx, threshold));
}

/** `apply` of the WGSL: the op `op` on x (and v for binary ops), alpha `al`, beta `be`. */
@inline function apply(op: i32, x: v128, v: v128, al: v128, be: v128): v128 {
  const zero = f32x4.splat(0.0);
  const one = f32x4.splat(1.0);
  switch (op) {
    case 1: return f32x4.neg(x);
    case 2: return f32x4.abs(x);
    case 3: return vsign(x);
    case 4: return v128.bitselect(zero, x, v128.and(f32x4.lt(x, zero), notNan(x)));
    case 5: return v128.bitselect(x, f32x4.mul(x, al), f32x4.gt(x, zero));
    case 6: return vtanh(x);
    case 7: return vsigmoid(x);
    case 8: return vsoftplus(x, al, be);
    case 9: return vexp(x);
    case 10: return vlog(x);
    case 11: return f32x4.sqrt(x);
    case 12: return f32x4.mul(x, x);
    case 13: return f32x4.mul(al, x);
    case 14: return f32x4.add(x, al);
    case 15: return f32x4.add(f32x4.mul(al, x), be);
    case 16: return f32x4.min(f32x4.max(x, al), be);
    case 17: return al;
    case 18: return f32x4.div(one, x);
    case 32: return f32x4.add(x, v);
    case 33: return f32x4.sub(x, v);
    case 34: return f32x4.mul(x, v);
    case 35: return f32x4.div(x, v);
    case 36: return f32x4.max(x, v);
    case 37: return f32x4.min(x, v);
    case 38: return f32x4.add(f32x4.mul(al, x), f32x4.mul(be, v));
    case 39: return v128.bitselect(v, zero, f32x4.gt(x, zero));
    case 40: return v128.bitselect(v, f32x4.mul(al, v), f32x4.gt(x, zero));
    case 41: return f32x4.mul(v, f32x4.mul(f32x4.sub(one, x), f32x4.add(one, x)));
    case 42: return f32x4.mul(v, f32x4.mul(x, f32x4.sub(one, x)));
    case 43: {
      const bx = f32x4.mul(x, al);
      return v128.bitselect(v, f32x4.mul(v, vsigmoid(bx)), f32x4.gt(bx, be));
    }
    default: return x; // 0: copy (and any unknown code, as the WGSL's default)
  }
}

/** b's element for element i under BMODE 3: b[(i / inner) % nb]. */
@inline function bAt(b: usize, i: i32, nb: i32, inner: i32): f32 {
  return load<f32>(b + (<usize>((i / inner) % nb) << 2));
}

/**
 * y[i] = OP(a[i], b') for i in [start, end), b' by BMODE: 0 none, 1 b[i], 2 b[0], 3 b[(i / inner)
 * % nb]. start is a multiple of 4. y may be a or b (in place).
 * @param a (n,) f32 byte offset; b (n,), (1,) or (nb,) f32 (unused for BMODE 0); y (n,) f32
 */
export function elementwise_run(
  op: i32, bmode: i32, a: usize, b: usize, y: usize, start: i32, end: i32,
  nb: i32, inner: i32, alpha: f32, beta: f32,
): void {
  const al = f32x4.splat(alpha);
  const be = f32x4.splat(beta);
  const full = start + ((end - start) & ~3);
  let i = start;
  if (bmode == 1) {
    for (; i < full; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, apply(op, v128.load(a + o), v128.load(b + o), al, be));
    }
  } else if (bmode == 3 && inner == 1 && (nb & 3) == 0) {
    // A bias row: i % nb runs through b in whole vectors (start and nb are multiples of 4).
    let j = start % nb;
    for (; i < full; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, apply(op, v128.load(a + o), v128.load(b + (<usize>j << 2)), al, be));
      j += 4;
      if (j == nb) j = 0;
    }
  } else if (bmode == 3 && (inner & 3) == 0) {
    // Runs of `inner` equal values (a per-channel vector over H*W): one value per vector.
    let r = start % inner;
    let j = (start / inner) % nb;
    for (; i < full; i += 4) {
      const o = <usize>i << 2;
      const v = f32x4.splat(load<f32>(b + (<usize>j << 2)));
      v128.store(y + o, apply(op, v128.load(a + o), v, al, be));
      r += 4;
      if (r == inner) {
        r = 0;
        j++;
        if (j == nb) j = 0;
      }
    }
  } else if (bmode == 3) {
    for (; i < full; i += 4) {
      const o = <usize>i << 2;
      let v = f32x4.splat(bAt(b, i, nb, inner));
      v = f32x4.replace_lane(v, 1, bAt(b, i + 1, nb, inner));
      v = f32x4.replace_lane(v, 2, bAt(b, i + 2, nb, inner));
      v = f32x4.replace_lane(v, 3, bAt(b, i + 3, nb, inner));
      v128.store(y + o, apply(op, v128.load(a + o), v, al, be));
    }
  } else {
    const v = bmode == 2 ? f32x4.splat(load<f32>(b)) : f32x4.splat(0.0);
    for (; i < full; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, apply(op, v128.load(a + o), v, al, be));
    }
  }
  const rem = end - i;
  if (rem > 0) {
    const o = <usize>i << 2;
    const x = loadPartial(a + o, rem, 0.0);
    let v = f32x4.splat(0.0);
    if (bmode == 1) {
      v = loadPartial(b + o, rem, 0.0);
    } else if (bmode == 2) {
      v = f32x4.splat(load<f32>(b));
    } else if (bmode == 3) {
      v = f32x4.replace_lane(v, 0, bAt(b, i, nb, inner));
      if (rem > 1) v = f32x4.replace_lane(v, 1, bAt(b, i + 1, nb, inner));
      if (rem > 2) v = f32x4.replace_lane(v, 2, bAt(b, i + 2, nb, inner));
    }
    storePartial(y + o, apply(op, x, v, al, be), rem);
  }
}

