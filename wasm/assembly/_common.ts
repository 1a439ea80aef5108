// Small helpers every kernel file shares (not a module export: index.ts does not re-export this
// file).

import { hsum } from "./_vmath";

/** The byte address of f32/u32/i32 element `i` of the buffer at `base`. */
@inline export function at(base: usize, i: usize): usize {
  return base + (i << 2);
}

/** Word `f` (i32) of a block of i32 fields at `g` (a geometry block the host writes). */
@inline export function word(g: usize, f: i32): i32 {
  return load<i32>(at(g, f));
}

/** Σ x[j]² over j < n: four running sums (f32x4), added as hsum does, then the tail in order. */
@inline export function sumSquares(x: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const e = v128.load(at(x, j));
    acc = f32x4.add(acc, f32x4.mul(e, e));
  }
  let s = hsum(acc);
  for (; j < n; j++) {
    const e = load<f32>(at(x, j));
    s += e * e;
  }
  return s;
}
