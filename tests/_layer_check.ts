/**
 * Helpers for the layer tests: the dot-product test of a backward pass and the finite-difference
 * check of a jvp, both against central differences of a float64 reference forward.
 */
import { assert } from "./_util.ts";

/** Σ a_i b_i in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** `J v` by central differences of `f` at `x` (float64, step h). */
export function jvpFD(
  f: (x: Float64Array) => ArrayLike<number>,
  x: ArrayLike<number>,
  v: ArrayLike<number>,
  h = 1e-6,
): Float64Array {
  const xp = Float64Array.from(x, (xi, i) => xi + h * v[i]);
  const xm = Float64Array.from(x, (xi, i) => xi - h * v[i]);
  const yp = f(xp), ym = f(xm);
  return Float64Array.from(yp, (y, i) => (y - ym[i]) / (2 * h));
}

/**
 * The dot-product test: `<u, J v>` (central differences of the float64 forward) against
 * `<Jᵀ u, v>` (the GPU backward `jtu`), relative to `Σ |u_i (J v)_i|` so cancellation in the
 * sums does not make the test flaky.
 */
export function assertDotProduct(
  what: string,
  f: (x: Float64Array) => ArrayLike<number>,
  x: ArrayLike<number>,
  v: ArrayLike<number>,
  u: ArrayLike<number>,
  jtu: ArrayLike<number>,
  rtol = 1e-4,
): void {
  const jv = jvpFD(f, x, v);
  const lhs = dot(u, jv);
  let scale = 0;
  for (let i = 0; i < jv.length; i++) scale += Math.abs(u[i] * jv[i]);
  const rhs = dot(jtu, v);
  assert.ok(
    Math.abs(lhs - rhs) <= rtol * scale + 1e-9,
    `${what}: <u, Jv> = ${lhs} (finite differences) but <Jᵀu, v> = ${rhs} (scale ${scale})`,
  );
}

/** `Π shape`. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
