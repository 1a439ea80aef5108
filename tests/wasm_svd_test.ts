/**
 * The WebAssembly twins of shaders/svd.wgsl (src/wasm/kernels/svd.ts): `svd()` and
 * `clipSingularValues()` recorded on the WebGPU runtime (every dispatch, copy and clear) and
 * replayed end to end on Wasm with 1 and 2 threads (bitwise equal): singular values, their sorted
 * order, the singular vectors and the clipped weight against the GPU's and the float64
 * reference; and single dispatches of every entry point replayed on their recorded inputs.
 */
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import {
  type DispatchRecord,
  ErrorLog,
  recordDispatches,
  recordSequence,
  replayAll,
  replaySequence,
  sameBits,
  wasmPair,
} from "./_wasm_replay.ts";
import { clipSingularValues, svd } from "../src/linalg/svd.ts";
import { clipSingularValuesRef, singularValuesRef } from "../src/reference/linalg.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";

/** Odd shapes (wide, tall, p = 1, odd p with a phantom index) and LeNet's fc1 (split by pairs). */
const SHAPES = [[1, 1], [1, 5], [5, 1], [2, 2], [3, 17], [17, 3], [6, 25], [25, 6], [33, 7], [
  120,
  400,
]];

Deno.test("svd() replayed end to end on the Wasm twins agrees with WebGPU and float64", async () => {
  const gpu = await getRuntime();
  const rts = await wasmPair();
  let worstS = 0, worstVec = 0;
  try {
    for (const [i, [m, n]] of SHAPES.entries()) {
      const what = `${m}x${n}`;
      const w = randomArray(m * n, 40 + i);
      const t = gpu.upload(w, [m, n]);
      let r: ReturnType<typeof svd> | null = null;
      const ops = await recordSequence(gpu, () => {
        r = svd(gpu, t);
      });
      const res = r!;
      const want = await Promise.all([res.s, res.ut, res.vt, res.info].map((x) => x.read()));
      const got = rts.map((rt) => {
        const replay = replaySequence(rt, ops, [[t, w]]);
        const d = [res.s, res.ut, res.vt, res.info].map((x) => replay.data(x));
        replay.dispose();
        return d;
      });
      for (const [k, name] of ["s", "ut", "vt", "info"].entries()) {
        assert.ok(sameBits(got[0][k], got[1][k]), `${what} ${name}: 1 and 2 threads differ`);
      }
      const [s, ut, vt, info] = got[0];
      const ref = singularValuesRef(w, m, n);
      assertClose(s, ref, { rtol: 0, atol: 2e-6 * ref[0], what: `${what} s vs float64` });
      assertClose(s, want[0], { rtol: 0, atol: 2e-6 * ref[0], what: `${what} s vs WebGPU` });
      for (let k = 0; k < s.length; k++) {
        worstS = Math.max(worstS, Math.abs(s[k] - want[0][k]) / ref[0]);
        if (k > 0) assert.ok(s[k] <= s[k - 1], `${what}: s not descending at ${k}`);
      }
      // The same rotation order: the same vectors up to the sign of each pair (ut row k, vt row
      // k), which rounding may flip where a rotation angle crosses ±π/4 (seen on 120 × 400), and
      // up to what the stopping rule leaves (|cos| ≤ tol = 1e-6 between rows), amplified by
      // s_max / (gap to the neighbouring singular values) for vectors.
      const p = s.length;
      for (let k = 0; k < p; k++) {
        const gap = Math.min(
          k > 0 ? s[k - 1] - s[k] : Infinity,
          k + 1 < p ? s[k] - s[k + 1] : Infinity,
        );
        const atol = 1e-4 + 4e-6 * ref[0] / gap;
        let dot = 0;
        for (let e = 0; e < m; e++) dot += ut[k * m + e] * want[1][k * m + e];
        const sign = dot < 0 ? -1 : 1;
        for (const [x, y, len, name] of [[ut, want[1], m, "ut"], [vt, want[2], n, "vt"]] as const) {
          const a = Array.from(x.subarray(k * len, (k + 1) * len), (v) => sign * v);
          const b = y.subarray(k * len, (k + 1) * len);
          assertClose(a, b, { rtol: 0, atol, what: `${what} ${name} row ${k} vs WebGPU` });
          for (let e = 0; e < len; e++) worstVec = Math.max(worstVec, Math.abs(a[e] - b[e]));
        }
      }
      const back = new Float64Array(m * n);
      for (let k = 0; k < p; k++) {
        for (let a = 0; a < m; a++) {
          for (let b = 0; b < n; b++) back[a * n + b] += ut[k * m + a] * s[k] * vt[k * n + b];
        }
      }
      assertClose(back, w, { rtol: 0, atol: 2e-5 * Math.sqrt(p), what: `${what} U S Vt` });
      assert.equal(info[0], 1, `${what}: converged on Wasm`);
      assert.ok(
        Math.abs(info[2] - want[3][2]) <= 1,
        `${what}: sweeps ${info[2]} on Wasm, ${want[3][2]} on WebGPU`,
      );
      res.dispose();
      t.dispose();
    }
  } finally {
    rts.forEach((rt) => rt.destroy());
  }
  console.log(
    `singular values: max |Wasm - WebGPU| / s_max ${worstS.toExponential(2)}; ` +
      `singular vectors: max abs difference ${worstVec.toExponential(2)}`,
  );
});

Deno.test("clipSingularValues() replayed end to end on the Wasm twins", async () => {
  const gpu = await getRuntime();
  const rt = await WasmRuntime.create({ threads: 2, warn: false });
  try {
    for (const [i, [m, n]] of [[6, 25], [25, 6], [2, 3, 3, 3], [33, 7]].entries()) {
      const shape = i === 2 ? [m, n, 3, 3] : [m, n];
      const size = shape.reduce((a, b) => a * b, 1);
      const w = randomArray(size, 70 + i);
      const t = gpu.upload(w, shape);
      const [lo, hi] = [0.8, 1.6];
      const ops = await recordSequence(gpu, () => clipSingularValues(gpu, t, lo, hi));
      const want = (await t.read()) as Float32Array;
      const replay = replaySequence(rt, ops, [[t, w]]);
      const got = replay.data(t);
      replay.dispose();
      const rows = shape[0], cols = size / rows;
      const ref = clipSingularValuesRef(w, rows, cols, lo, hi);
      const what = `clip ${shape.join("x")}`;
      assertClose(got, ref, { rtol: 0, atol: 2e-5, what: `${what} vs float64` });
      assertClose(got, want, { rtol: 0, atol: 2e-5, what: `${what} vs WebGPU` });
      t.dispose();
    }
  } finally {
    rt.destroy();
  }
});

/**
 * Relative to the largest output value: the twins sum a pair's dot products in another order
 * than the GPU's tree, which moves the rotation angle by about u sqrt(len) sqrt(αβ) / |γ|
 * relative (u = 2^-24), so a rotated value by about u sqrt(len) times its row's scale (1e-4 for
 * len = 1100 and RW = 256).
 */
function tolerance(r: DispatchRecord): { atol: number; rtol: number } {
  const scale = Math.max(...r.after.flatMap((d) => d ? Array.from(d, Math.abs) : [0]));
  const len = r.spec.params?.len ?? 1;
  return { atol: 1e-5 * Math.sqrt(len) * scale, rtol: 1e-4 };
}

Deno.test("svd twins replay single dispatches of every entry point on 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const rts = await wasmPair();
  const log = new ErrorLog();
  let replayed = 0;
  try {
    // [m, n, GPU-like]: a GPU (not llvmpipe) gets RW = 64 invocations per pair, 256 for rows
    // of 1024 or more; the twin ignores RW, the GPU sums in another order.
    const cases: [number, number, boolean][] = [[7, 3, false], [5, 12, false], [300, 130, false], [
      300,
      130,
      true,
    ], [20, 1100, true]];
    for (const [i, [m, n, gpuLike]] of cases.entries()) {
      const t = gpu.upload(randomArray(m * n, 90 + i), [m, n]);
      if (gpuLike) Object.defineProperty(gpu, "isCpuAdapter", { value: false, configurable: true });
      let records;
      try {
        // The first rounds of the first sweep and every finish/sort dispatch (40 per entry).
        records = await recordDispatches(gpu, ["svd."], () => {
          svd(gpu, t, { maxSweeps: 2 }).dispose();
          clipSingularValues(gpu, t, 0.5, 0.9, { maxSweeps: 3 });
        }, 40);
      } finally {
        delete (gpu as { isCpuAdapter?: boolean }).isCpuAdapter;
      }
      const rw = new Set(records.map((r) => r.spec.constants?.RW).filter((x) => x !== undefined));
      assert.deepEqual(
        [...rw],
        [gpuLike ? (Math.max(m, n) >= 1024 ? 256 : 64) : 32],
        `${m}x${n}: RW`,
      );
      const entries = new Set(records.map((r) => r.kernel.entry));
      const expect = m > n ? 6 : 5; // transpose_main only for a tall matrix
      assert.equal(entries.size, expect, `${m}x${n}: entry points ${[...entries]}`);
      replayed += replayAll(rts, records, log, tolerance, `${m}x${n} RW ${[...rw]}`);
      t.dispose();
    }
  } finally {
    rts.forEach((rt) => rt.destroy());
  }
  console.log(`${replayed} dispatches replayed\n${log.summary()}`);
});
