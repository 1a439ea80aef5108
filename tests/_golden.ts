/**
 * Reads the recorded PyTorch goldens of tests/golden/*.json (written by tools/record_goldens.py,
 * `deno task goldens`) for tests/golden_recorded_test.ts: seeded input descriptors turned into
 * values, recorded outputs decoded, and the relative-error check the live tests use.
 */
import type { Backend, Tensor } from "../src/backend.ts";
import type { Param } from "../src/layers/layer.ts";
import { assert, randomArray } from "./_util.ts";

/** A seeded input: the float32 values of `randomArray(size, seed, lo, hi)`, shaped. */
export interface Seeded {
  shape: number[];
  seed: number;
  lo: number;
  hi: number;
}

/**
 * A recorded tensor: base64 of little-endian float32. A tensor of more than the generator's cap
 * keeps every `stride`-th value and the largest magnitude of the whole (`absmax`).
 */
export interface Recorded {
  shape: number[];
  f32: string;
  stride?: number;
  absmax?: number;
}

/** A golden file: where it came from, and its cases. */
export interface GoldenFile<C> {
  about: string;
  generator: string;
  torch: string;
  date: string;
  cases: C[];
}

/** Reads tests/golden/<name>.json. */
export async function readGolden<C>(name: string): Promise<GoldenFile<C>> {
  const url = new URL(`./golden/${name}.json`, import.meta.url);
  return JSON.parse(await Deno.readTextFile(url));
}

/** Product of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The values a seeded descriptor stands for. */
export function seeded(d: Seeded): Float32Array {
  return randomArray(numel(d.shape), d.seed, d.lo, d.hi);
}

/** Uploads the values of a seeded descriptor. */
export function uploadSeeded(rt: Backend, d: Seeded): Tensor {
  return rt.upload(seeded(d), d.shape);
}

/** The values of a recorded tensor (the kept ones, for a strided one). */
export function decode(r: Recorded): Float32Array {
  const bin = atob(r.f32);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

/**
 * Writes the seeded values of every f32 parameter and buffer, by name; the recorded names and
 * the model's must be the same set. Integer buffers (BatchNorm's batch counter) stay as built.
 */
export function writeParams(
  rt: Backend,
  params: readonly Param[],
  descs: Record<string, Seeded>,
  what: string,
): void {
  const names = new Set<string>();
  for (const p of params) {
    if (p.value.dtype !== "f32") continue;
    const d = descs[p.name];
    assert.ok(d, `${what}: the golden has no values for ${p.name}`);
    assert.deepEqual(p.value.shape, d.shape, `${what}: ${p.name} shape`);
    rt.write(p.value, seeded(d));
    names.add(p.name);
  }
  const extra = Object.keys(descs).filter((k) => !names.has(k));
  assert.deepEqual(extra, [], `${what}: the golden has tensors the model lacks`);
}

/**
 * `max|got - want| / max|want|` over a recorded tensor (its kept values; the denominator the
 * whole tensor's largest magnitude), as `relErr` of tests/_model_bridge.ts.
 */
export function relErrRecorded(got: ArrayLike<number>, want: Recorded): number {
  assert.equal(got.length, numel(want.shape), `length ${got.length} vs [${want.shape}]`);
  const w = decode(want);
  const stride = want.stride ?? 1;
  let e = 0, m = 0;
  for (let i = 0; i < w.length; i++) {
    e = Math.max(e, Math.abs(got[i * stride] - w[i]));
    m = Math.max(m, Math.abs(w[i]));
  }
  m = want.absmax ?? m;
  return m === 0 ? e : e / m;
}

/** Asserts {@linkcode relErrRecorded} `< tol`, naming what differed. */
export function assertRecorded(
  what: string,
  got: ArrayLike<number>,
  want: Recorded,
  tol: number,
): number {
  const e = relErrRecorded(got, want);
  assert.ok(e < tol, `${what}: relative error ${e.toExponential(2)} vs PyTorch (tol ${tol})`);
  return e;
}

/** Asserts `|got - want| / |want| < tol` for a recorded scalar. */
export function assertScalar(what: string, got: number, want: number, tol: number): void {
  const e = Math.abs(got - want) / Math.max(Math.abs(want), Number.MIN_VALUE);
  assert.ok(e < tol, `${what}: ${got} vs PyTorch ${want} (relative error ${e.toExponential(2)})`);
}
