/**
 * Self-check: runs each core kernel once on small inputs with awkward sizes
 * and compares it with a float64 reference computed here in plain TypeScript.
 * It uses only WebGPU and standard JavaScript, so the same checks run in Deno
 * (`deno run -A cli.ts info`) and in a browser (tests/browser_test.ts), and
 * their results can be compared across the two.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import type { Tensor } from "./backend.ts";
import { axpy, binary, fill, unary, type UnaryOp } from "./ops/elementwise.ts";
import { binaryRef, unaryRef } from "./reference/elementwise.ts";
import { matmul } from "./ops/matmul.ts";
import { argmax, reduce, softmax } from "./ops/reduce.ts";
import { argRef, reduceRef, softmaxRef } from "./reference/reduce.ts";
import { bernoulliMask, randomBits, randomNormal, randomUniform } from "./ops/random.ts";
import {
  bernoulliMaskRef,
  randomBitsRef,
  randomNormalRef,
  randomUniformRef,
} from "./reference/random.ts";

/** The outcome of one check. */
export interface CheckResult {
  /** What was checked, with its sizes ("matmul 255x17x1000"). */
  name: string;
  /** True when every value is within `atol + rtol * |ref|` of the reference. */
  ok: boolean;
  /** Largest absolute difference from the reference (NaN if the check threw). */
  maxError: number;
  /** Tolerances, or the error message when the check threw. */
  detail: string;
  /** Absolute tolerance of the comparison. */
  atol: number;
  /** Relative tolerance of the comparison. */
  rtol: number;
  /** Number of values compared. */
  count: number;
  /**
   * Up to 32 output values at evenly spaced positions, so that two backends
   * can be compared without shipping whole outputs: each is within
   * `atol + rtol * |ref|` of the same reference, so two passing backends agree
   * to twice that.
   */
  sample: number[];
  /** Wall time in milliseconds, compilation included. */
  ms: number;
}

/** Options for {@linkcode selfCheck}. */
export interface SelfCheckOptions {
  /** Run only the checks whose name starts with one of these prefixes. */
  only?: string[];
}

/** What a check computes: the GPU output and the reference it must match. */
interface Outcome {
  got: ArrayLike<number>;
  want: ArrayLike<number>;
  atol: number;
  rtol: number;
}

interface Check {
  name: string;
  /** `keep` registers tensors to dispose when the check ends, pass or fail. */
  run(rt: Backend, keep: <T extends Tensor>(t: T) => T): Promise<Outcome>;
}

/**
 * Runs every kernel check and reports each one; never throws for a failing
 * kernel (the failure is in the result).
 *
 * @param rt the runtime to check
 * @param options which checks to run
 * @returns one result per check, in a fixed order
 * @example
 * ```ts
 * const rt = await Runtime.create();
 * for (const r of await selfCheck(rt)) console.log(r.name, r.ok, r.maxError);
 * ```
 */
export async function selfCheck(
  rt: Backend,
  options: SelfCheckOptions = {},
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of CHECKS) {
    if (options.only && !options.only.some((p) => check.name.startsWith(p))) continue;
    results.push(await runCheck(rt, check));
  }
  return results;
}

/** The names of all checks, in the order {@linkcode selfCheck} runs them. */
export function checkNames(): string[] {
  return CHECKS.map((c) => c.name);
}

async function runCheck(rt: Backend, check: Check): Promise<CheckResult> {
  const owned: Tensor[] = [];
  const keep = <T extends Tensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  const t0 = performance.now();
  try {
    const { got, want, atol, rtol } = await check.run(rt, keep);
    const ms = performance.now() - t0;
    if (got.length !== want.length) {
      return fail(check.name, `got ${got.length} values, want ${want.length}`, ms);
    }
    let maxError = 0, ok = true, firstBad = -1;
    for (let i = 0; i < got.length; i++) {
      const err = Math.abs(got[i] - want[i]);
      // NaN in either fails (err is NaN) unless both are NaN.
      const bothNaN = Number.isNaN(got[i]) && Number.isNaN(want[i]);
      if (!bothNaN && !(err <= atol + rtol * Math.abs(want[i]))) {
        ok = false;
        if (firstBad < 0) firstBad = i;
      }
      if (err > maxError) maxError = err;
    }
    const detail = ok
      ? `atol ${atol}, rtol ${rtol}`
      : `first mismatch at [${firstBad}]: got ${got[firstBad]}, want ${want[firstBad]} ` +
        `(atol ${atol}, rtol ${rtol})`;
    return {
      name: check.name,
      ok,
      maxError,
      detail,
      atol,
      rtol,
      count: got.length,
      sample: sample(got),
      ms,
    };
  } catch (e) {
    return fail(check.name, (e as Error).message ?? String(e), performance.now() - t0);
  } finally {
    for (const t of owned) t.dispose();
  }
}

function fail(name: string, detail: string, ms: number): CheckResult {
  return { name, ok: false, maxError: NaN, detail, atol: 0, rtol: 0, count: 0, sample: [], ms };
}

function sample(v: ArrayLike<number>): number[] {
  const k = Math.min(32, v.length);
  return Array.from({ length: k }, (_, i) => v[Math.floor((i * v.length) / k)]);
}

/** Deterministic floats in [lo, hi) (mulberry32, public domain, Tommy Ettinger). */
function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/**
 * Float64 `alpha · op(A) op(B)` for one (M, K) x (K, N) product; `op` transposes when asked
 * (A stored (K, M), B stored (N, K)).
 */
function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  [m, k, n]: [number, number, number],
  { transA = false, transB = false, alpha = 1 } = {},
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        s += a[transA ? p * m + i : i * k + p] * b[transB ? j * k + p : p * n + j];
      }
      c[i * n + j] = alpha * s;
    }
  }
  return c;
}

const CHECKS: Check[] = [
  {
    name: "upload/copy/read 1001 f32,u32,i32",
    async run(rt, keep) {
      const n = 1001;
      const f = randomArray(n, 1, -1e3, 1e3);
      const u = new Uint32Array(n).map((_, i) => (i * 2654435761) >>> 0);
      const s = new Int32Array(n).map((_, i) => (i * 2654435761) | 0);
      const got: number[] = [], want: number[] = [];
      for (const data of [f, u, s]) {
        const a = keep(rt.upload(data, [n]));
        const b = keep(rt.empty([n], a.dtype));
        rt.copy(a, b);
        got.push(...await b.read());
        want.push(...data);
      }
      return { got, want, atol: 0, rtol: 0 };
    },
  },
  {
    name: "matmul 255x17x1000",
    async run(rt, keep) {
      const [m, k, n] = [255, 17, 1000];
      const av = randomArray(m * k, 11), bv = randomArray(k * n, 12);
      const c = keep(matmul(rt, keep(rt.upload(av, [m, k])), keep(rt.upload(bv, [k, n]))));
      return { got: await c.read(), want: matmulRef(av, bv, [m, k, n]), atol: 1e-5, rtol: 1e-5 };
    },
  },
  {
    name: "matmul transA,transB 33x65x7 alpha -0.5",
    async run(rt, keep) {
      const [m, k, n] = [33, 65, 7];
      const av = randomArray(k * m, 13), bv = randomArray(n * k, 14);
      const a = keep(rt.upload(av, [k, m])), b = keep(rt.upload(bv, [n, k]));
      const c = keep(matmul(rt, a, b, { transA: true, transB: true, alpha: -0.5 }));
      const want = matmulRef(av, bv, [m, k, n], { transA: true, transB: true, alpha: -0.5 });
      return { got: await c.read(), want, atol: 1e-5, rtol: 1e-5 };
    },
  },
  {
    // The Linear-layer pattern: y = tanh(x Wᵀ + bias + 1 · y_old), batch of 3 sharing W.
    name: "matmul batch 3, 17x9x5 transB, bias, beta 1, tanh",
    async run(rt, keep) {
      const [batch, m, k, n] = [3, 17, 9, 5];
      const xv = randomArray(batch * m * k, 15), wv = randomArray(n * k, 16);
      const bias = randomArray(n, 17), old = randomArray(batch * m * n, 18);
      const out = keep(rt.upload(old, [batch, m, n]));
      matmul(rt, keep(rt.upload(xv, [batch, m, k])), keep(rt.upload(wv, [n, k])), {
        transB: true,
        bias: keep(rt.upload(bias, [n])),
        beta: 1,
        activation: "tanh",
        out,
      });
      const want = new Float64Array(batch * m * n);
      for (let t = 0; t < batch; t++) {
        const c = matmulRef(xv.subarray(t * m * k, (t + 1) * m * k), wv, [m, k, n], {
          transB: true,
        });
        for (let i = 0; i < m * n; i++) {
          want[t * m * n + i] = Math.tanh(c[i] + bias[i % n] + old[t * m * n + i]);
        }
      }
      return { got: await out.read(), want, atol: 1e-5, rtol: 1e-5 };
    },
  },
  {
    // 1001 elements: the scalar shader; 1000 would take the vec4 one, checked below.
    name: "unary tanh,sigmoid,softplus,leaky_relu 1001",
    async run(rt, keep) {
      const n = 1001;
      const xs = randomArray(n, 2, -12, 12);
      const x = keep(rt.upload(xs, [n]));
      const got: number[] = [], want: number[] = [];
      for (const op of ["tanh", "sigmoid", "softplus", "leaky_relu"] as UnaryOp[]) {
        got.push(...await keep(unary(rt, op, x)).read());
        want.push(...unaryRef(op, xs));
      }
      return { got, want, atol: 1e-6, rtol: 1e-5 };
    },
  },
  {
    name: "binary mul,add broadcast (3,17,8)x(17,1)",
    async run(rt, keep) {
      const aShape = [3, 17, 8], bShape = [17, 1];
      const av = randomArray(3 * 17 * 8, 3), bv = randomArray(17, 4);
      const a = keep(rt.upload(av, aShape)), b = keep(rt.upload(bv, bShape));
      const prod = keep(binary(rt, "mul", a, b));
      const sum = keep(binary(rt, "add", prod, a));
      const wantProd = binaryRef("mul", av, aShape, bv, bShape);
      const wantSum = binaryRef("add", Float32Array.from(wantProd), aShape, av, aShape);
      return {
        got: [...await prod.read(), ...await sum.read()],
        want: [...wantProd, ...wantSum],
        atol: 1e-6,
        rtol: 1e-6,
      };
    },
  },
  {
    name: "axpy/fill 1000 (vec4)",
    async run(rt, keep) {
      const n = 1000;
      const xs = randomArray(n, 5), ys = randomArray(n, 6);
      const x = keep(rt.upload(xs, [n])), y = keep(rt.upload(ys, [n]));
      axpy(rt, -0.75, x, y);
      const z = fill(rt, keep(rt.empty([n])), 2.5);
      const got = [...await y.read(), ...await z.read()];
      const want = [...ys.map((v, i) => v - 0.75 * xs[i]), ...new Array(n).fill(2.5)];
      return { got, want, atol: 1e-6, rtol: 1e-6 };
    },
  },
  {
    name: "reduce sum,max (7,255,3), mean 100003",
    async run(rt, keep) {
      const shape = [7, 255, 3];
      const xs = randomArray(7 * 255 * 3, 7);
      const big = randomArray(100003, 8);
      const x = keep(rt.upload(xs, shape));
      const sum = keep(reduce(rt, "sum", x, { axis: 1 }));
      const max = keep(reduce(rt, "max", x, { axis: -1 }));
      const mean = keep(reduce(rt, "mean", keep(rt.upload(big, [big.length]))));
      return {
        got: [...await sum.read(), ...await max.read(), ...await mean.read()],
        want: [
          ...reduceRef("sum", xs, shape, 1),
          ...reduceRef("max", xs, shape, -1),
          ...reduceRef("mean", big, [big.length]),
        ],
        atol: 2e-5,
        rtol: 1e-5,
      };
    },
  },
  {
    name: "softmax, argmax (33,10) axis -1",
    async run(rt, keep) {
      const shape = [33, 10];
      const xs = randomArray(330, 9, -20, 20);
      const x = keep(rt.upload(xs, shape));
      const p = keep(softmax(rt, x, { axis: -1 }));
      const i = keep(argmax(rt, x, -1));
      return {
        got: [...await p.read(), ...await i.read()],
        want: [...softmaxRef(xs, shape, -1), ...argRef(xs, shape, -1)],
        atol: 1e-6,
        rtol: 1e-5,
      };
    },
  },
  {
    // Chromium rejects a buffer bound twice in a dispatch with one binding writable (gpuweb
    // #2441): in-place ops bind the aliased tensor once.
    name: "in place: binary out=a, out=b, out=a=b, unary, softmax (5,7)",
    async run(rt, keep) {
      const shape = [5, 7];
      const av = randomArray(35, 10), bv = randomArray(35, 11);
      const a = keep(rt.upload(av, shape)), b = keep(rt.upload(bv, shape));
      binary(rt, "sub", a, b, { out: a });
      const diff = binaryRef("sub", av, shape, bv, shape);
      binary(rt, "mul", a, b, { out: b });
      const prod = binaryRef("mul", Float32Array.from(diff), shape, bv, shape);
      binary(rt, "mul", a, a, { out: a });
      unary(rt, "neg", a, { out: a });
      const negSq = Array.from(diff, (v) => -Math.fround(v * v));
      softmax(rt, b, { out: b });
      return {
        got: [...await a.read(), ...await b.read()],
        want: [...negSq, ...softmaxRef(Float32Array.from(prod), shape, -1)],
        atol: 1e-6,
        rtol: 1e-5,
      };
    },
  },
  {
    // Counter-based Philox: the same (seed, counter) gives the same bits on every backend.
    name: "random bits,uniform,mask 1023 exact + rerun",
    async run(rt, keep) {
      const n = 1023, seed = 42, counter = 7;
      const bits = keep(randomBits(rt, [n], { seed, counter }));
      const again = keep(randomBits(rt, [n], { seed, counter }));
      const next = keep(randomBits(rt, [n], { seed, counter: counter + 1 }));
      const uni = keep(randomUniform(rt, [n], { seed, counter, low: -2, high: 2 }));
      const mask = keep(bernoulliMask(rt, [n], { seed, counter, p: 0.3 }));
      const [b, a, nx] = [await bits.read(), await again.read(), await next.read()];
      if (nx.every((v, i) => v === b[i])) throw new Error("counter + 1 gave the same bits");
      return {
        got: [...b, ...a, ...await uni.read(), ...await mask.read()],
        want: [
          ...randomBitsRef(n, seed, counter),
          ...b,
          ...randomUniformRef(n, seed, counter, -2, 2),
          ...bernoulliMaskRef(n, seed, counter, 0.3),
        ],
        atol: 0,
        rtol: 1e-7, // the mask's scale 1/0.7 in f32
      };
    },
  },
  {
    name: "random normal 1001",
    async run(rt, keep) {
      const n = 1001;
      const x = keep(randomNormal(rt, [n], { seed: 2 ** 40 + 3, counter: 1, mean: 1, std: 2 }));
      return {
        got: await x.read(),
        want: randomNormalRef(n, 2 ** 40 + 3, 1, 1, 2),
        // shaders/random.wgsl computes log, cos and sin itself to a few ulp (the builtins'
        // WGSL bounds are absolute, 2^-11 for cos/sin, and SwiftShader was 8.8e-4 off), so a
        // standard normal n is within ~4.3 ulp of max(1, |n|) on llvmpipe and SwiftShader alike
        // (3e6 draws). With z = 1 + 2n: 8 ulp of 2 plus 8 ulp of |z|, about twice the worst seen.
        atol: 2 * 8 * 2 ** -24,
        rtol: 8 * 2 ** -24,
      };
    },
  },
];
