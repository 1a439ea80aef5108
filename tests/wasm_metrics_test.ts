/**
 * The WebAssembly twins of shaders/metrics.wgsl (src/wasm/kernels/metrics.ts): each entry point
 * is dispatched on the WebGPU runtime through the ops' own launcher (`runMetricsKernel`, as
 * src/metrics calls it), the recorded dispatch is replayed on WasmRuntime with one and with two
 * threads on the same data, and the outputs are compared: bitwise between thread counts, within
 * float32 tolerance with WebGPU (the software adapter here) and with a float64 reference.
 */
import { assert, assertClose, randomArray } from "./_util.ts";
import type { WasmRuntime } from "../src/wasm/runtime.ts";
import type { Runtime } from "../src/gpu/runtime.ts";
import { recordDispatches, replayRecord, withWasmPair } from "./_wasm_replay.ts";
import type { Kernel } from "../src/kernel.ts";
import {
  type MetricsEntry,
  type MetricsParams,
  runMetricsKernel,
} from "../src/metrics/_kernels.ts";
import { predictionStatsGpu } from "../src/metrics/calibration.ts";
import { planePointRef, predStatsRef } from "../src/reference/metrics.ts";
import metricsSrc from "../shaders/metrics.wgsl" with { type: "text" };

type Host = Float32Array | Uint32Array | Int32Array;

/** Bits of float32 values, for bitwise comparison (NaN payloads included). */
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Largest |Wasm - WebGPU| and largest relative error (over |WebGPU| >= 1) per entry point. */
const worst = new Map<string, { abs: number; rel: number }>();

function noteError(entry: string, got: Float32Array, want: ArrayLike<number>): void {
  const e = worst.get(entry) ?? { abs: 0, rel: 0 };
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (d > e.abs) e.abs = d;
    if (Math.abs(want[i]) >= 1 && d / Math.abs(want[i]) > e.rel) e.rel = d / Math.abs(want[i]);
  }
  worst.set(entry, e);
}

interface Io {
  xa?: Float32Array;
  xu?: Uint32Array | Int32Array;
  /** Initial contents of y (every entry point but sumsq_rows overwrites them). */
  y: Float32Array;
}

/**
 * Runs `entry` on WebGPU and replays it on both Wasm runtimes; checks 1 vs 2 threads bitwise
 * and Wasm vs WebGPU within `tol`; returns the Wasm result.
 */
async function check(
  gpu: Runtime,
  wasm: readonly WasmRuntime[],
  entry: MetricsEntry,
  io: Io,
  params: MetricsParams,
  threads: number,
  tol: { atol: number; rtol: number },
): Promise<Float32Array> {
  const up = (h: Host | undefined, name: string) =>
    h ? gpu.upload(h, [h.length], undefined, name) : undefined;
  const g = { xa: up(io.xa, "xa"), xu: up(io.xu, "xu"), y: up(io.y, "y")! };
  const seen = await recordDispatches(
    gpu,
    [""],
    () => runMetricsKernel(gpu, entry, g, params, threads),
  );
  assert.equal(seen.length, 1);
  assert.equal(seen[0].kernel.name, `metrics.${entry}`);
  const want = (await g.y.read()) as Float32Array;
  // The twin runs on the bindings' contents at dispatch time (placeholders as zeros).
  const got = wasm.map((rt) => replayRecord(rt, seen[0]).got[seen[0].slot[2]] as Float32Array);
  const what = `metrics.${entry} ${JSON.stringify(params)}`;
  assert.deepEqual(bits(got[1]), bits(got[0]), `${what}: 2 threads vs 1`);
  assertClose(got[0], want, { ...tol, what: `${what}: Wasm vs WebGPU` });
  noteError(entry, got[0], want);
  for (const t of [g.xa, g.xu, g.y]) t?.dispose();
  return got[0];
}

/** Integers in [0, k) (a few ties and repeated classes), as u32. */
function randomInts(n: number, k: number, seed: number): Uint32Array {
  return Uint32Array.from(randomArray(n, seed, 0, 1), (u) => Math.min(k - 1, Math.floor(u * k)));
}

Deno.test("metrics.plane_points twin matches WebGPU and the float64 plane points", async () => {
  await withWasmPair(async (wasm, gpu) => {
    for (
      const [d, res, start, n, half, clip] of [
        [1, 1, 0, 1, 0.5, 0],
        [3, 5, 0, 25, 1, 1],
        [17, 9, 7, 50, 2.5, 0],
        [1001, 33, 100, 40, 0.75, 1],
        [64, 41, 0, 1681, 3, 1],
      ]
    ) {
      const xa = randomArray(3 * d, 10 + d, 0, 1);
      const y = randomArray(n * d, 3);
      const got = await check(
        gpu,
        wasm,
        "plane_points",
        { xa, y },
        {
          n,
          d,
          res,
          start,
          half,
          flag: clip,
        },
        n * d,
        { atol: 2e-6, rtol: 1e-5 },
      );
      const [x, u, v] = [0, 1, 2].map((i) => xa.subarray(i * d, (i + 1) * d));
      const want = new Float64Array(n * d);
      for (let i = 0; i < n; i++) {
        const p = start + i;
        const pt = planePointRef(x, u, v, Math.floor(p / res), p % res, Math.max(res, 2), half);
        const row = clip ? pt.map((e) => Math.min(1, Math.max(0, e))) : pt;
        want.set(row, i * d);
      }
      assertClose(got, want, { atol: 2e-6, rtol: 1e-5, what: `plane_points d=${d}: vs float64` });
    }
  });
});

Deno.test("metrics.pred_stats twin matches WebGPU and the float64 statistics, NaN for a bad label", async () => {
  await withWasmPair(async (wasm, gpu) => {
    for (const [n, k, flag] of [[1, 1, 1], [3, 2, 0], [17, 10, 1], [1001, 17, 1], [300, 3, 1]]) {
      // Rounded logits give ties, so "first on ties" is exercised.
      const xa = Float32Array.from(randomArray(n * k, 40 + n, -6, 6), (v) => Math.round(v * 2) / 2);
      const labels = Int32Array.from(randomInts(n, k, 50 + n));
      if (n > 3) {
        labels[1] = -1;
        labels[2] = k;
      }
      const y = randomArray(4 * n, 5);
      const got = await check(
        gpu,
        wasm,
        "pred_stats",
        { xa, xu: flag ? labels : undefined, y },
        {
          n,
          k,
          flag,
        },
        n,
        { atol: 1e-6, rtol: 2e-6 },
      );
      const good = flag ? Array.from(labels, (l) => (l >= 0 && l < k ? l : 0)) : undefined;
      const want = predStatsRef(xa, n, k, good);
      if (flag && n > 3) { for (const i of [1, 2]) (want[4 * i + 2] = 0), (want[4 * i + 3] = NaN); }
      assertClose(got, want, { atol: 1e-6, rtol: 2e-6, what: `pred_stats n=${n}: vs float64` });
    }
  });
});

Deno.test("predictionStatsGpu()'s own dispatch replays on the Wasm twin", async () => {
  await withWasmPair(async (wasm, gpu) => {
    const [n, k] = [37, 7];
    const logits = randomArray(n * k, 61, -4, 4);
    const labels = Int32Array.from(randomInts(n, k, 62));
    const gl = gpu.upload(logits, [n, k]), gy = gpu.upload(labels, [n], "i32");
    const out = gpu.upload(new Float32Array(4 * n), [n, 4]);
    const seen = await recordDispatches(gpu, [""], () => predictionStatsGpu(gpu, gl, gy, out));
    assert.equal(seen.length, 1);
    const want = await out.read();
    for (const rt of wasm) {
      const got = replayRecord(rt, seen[0]).got[seen[0].slot[2]]!;
      assertClose(got, want, { atol: 1e-6, rtol: 2e-6, what: `${rt.threads} threads` });
    }
    for (const t of [gl, gy, out]) t.dispose();
  });
});

Deno.test("metrics.sumsq_rows twin accumulates scaled row sums of squares like WebGPU", async () => {
  await withWasmPair(async (wasm, gpu) => {
    const cases = [
      [1, 1, 1],
      [3, 63, 0.5],
      [17, 64, 2],
      [5, 65, 1],
      [1001, 17, 3],
      [7, 3072, 1 / 3],
      [33, 3072, 0.25],
    ];
    for (const [n, d, scale] of cases) {
      const xa = randomArray(n * d, 70 + d, -2, 2);
      const y = randomArray(n, 71, 0, 5);
      const got = await check(gpu, wasm, "sumsq_rows", { xa, y }, { n, d, scale }, n, {
        atol: 1e-6,
        rtol: 1e-5,
      });
      const want = Array.from(y, (y0, i) => {
        let s = 0;
        for (let j = 0; j < d; j++) s += xa[i * d + j] ** 2;
        return y0 + Math.fround(scale) * s;
      });
      assertClose(got, want, { atol: 1e-6, rtol: 1e-5, what: `sumsq_rows d=${d}: vs float64` });
    }
  });
});

Deno.test("metrics.onehot twin matches WebGPU for a fixed class and per-row classes", async () => {
  await withWasmPair(async (wasm, gpu) => {
    const cases = [
      [1, 1, 0, 0],
      [3, 10, 9, 0],
      [17, 5, 7, 0],
      [1001, 10, 0, 1],
      [17, 3, 0, 1],
      [5000, 10, 3, 0],
      [4999, 10, 0, 1],
    ];
    for (const [n, k, cls, flag] of cases) {
      const xu = randomInts(n, k + 1, 80 + n); // k itself: an out-of-range class, an all-zero row
      const y = randomArray(n * k, 81);
      const got = await check(
        gpu,
        wasm,
        "onehot",
        { xu: flag ? xu : undefined, y },
        {
          n,
          k,
          cls,
          flag,
        },
        n * k,
        { atol: 0, rtol: 0 },
      );
      const want = new Float32Array(n * k);
      for (let i = 0; i < n; i++) {
        const c = flag ? xu[i] : cls;
        if (c < k) want[i * k + c] = 1;
      }
      assert.deepEqual(got, want);
    }
  });
});

Deno.test("metrics.saliency_max twin takes max |g| over channels like WebGPU", async () => {
  await withWasmPair(async (wasm, gpu) => {
    for (const [n, k, d] of [[1, 1, 1], [3, 3, 17], [2, 1, 1001], [17, 3, 784], [1, 3, 3073]]) {
      const xa = randomArray(n * k * d, 90 + d, -3, 3);
      const y = randomArray(n * d, 91);
      const got = await check(gpu, wasm, "saliency_max", { xa, y }, { n, k, d }, n * d, {
        atol: 0,
        rtol: 0,
      });
      const want = new Float32Array(n * d);
      for (let i = 0; i < n; i++) {
        for (let q = 0; q < d; q++) {
          for (let c = 0; c < k; c++) {
            want[i * d + q] = Math.max(want[i * d + q], Math.abs(xa[(i * k + c) * d + q]));
          }
        }
      }
      assert.deepEqual(got, want);
    }
  });
});

Deno.test("metrics.occlude twin writes occluded copies like WebGPU, windows cut at the border", async () => {
  await withWasmPair(async (wasm, gpu) => {
    for (
      const [k, h, w, win, stride, start, n, baseline] of [
        [1, 1, 1, 1, 1, 0, 1, 0],
        [3, 7, 9, 3, 2, 0, 20, 0.5],
        [1, 28, 28, 8, 4, 5, 30, -1],
        [3, 17, 13, 5, 5, 2, 7, 0],
        [3, 28, 28, 6, 3, 0, 61, 0.25],
      ]
    ) {
      const nwx = Math.ceil((w - win) / stride) + 1;
      const xa = randomArray(k * h * w, 100 + h);
      const y = randomArray(n * k * h * w, 101);
      const got = await check(
        gpu,
        wasm,
        "occlude",
        { xa, y },
        {
          n,
          k,
          h,
          w,
          win,
          stride,
          nwx,
          start,
          baseline,
        },
        n * k * h * w,
        { atol: 0, rtol: 0 },
      );
      const want = new Float32Array(n * k * h * w);
      for (let i = 0; i < n; i++) {
        const top = Math.floor((start + i) / nwx) * stride, left = ((start + i) % nwx) * stride;
        for (let c = 0; c < k; c++) {
          for (let r = 0; r < h; r++) {
            for (let q = 0; q < w; q++) {
              const inside = r >= top && r < top + win && q >= left && q < left + win;
              want[((i * k + c) * h + r) * w + q] = inside ? baseline : xa[(c * h + r) * w + q];
            }
          }
        }
      }
      assert.deepEqual(got, want);
    }
  });
});

Deno.test("metrics.tv_rows twin sums isotropic and anisotropic TV per row like WebGPU", async () => {
  await withWasmPair(async (wasm, gpu) => {
    for (
      const [planes, res, classes] of [[1, 1, 3], [2, 2, 2], [3, 17, 3], [2, 64, 10], [4, 128, 4]]
    ) {
      const xu = randomInts(planes * res * res, classes, 110 + res);
      const y = randomArray(2 * planes * res, 111);
      const got = await check(
        gpu,
        wasm,
        "tv_rows",
        { xu, y },
        { n: planes * res, res },
        planes * res,
        {
          atol: 1e-6,
          rtol: 1e-6,
        },
      );
      const want = new Float64Array(2 * planes * res);
      for (let i = 0; i < planes * res; i++) {
        const r = i % res;
        for (let q = 0; q < res; q++) {
          const c = xu[i * res + q];
          const dx = q + 1 < res && xu[i * res + q + 1] !== c ? 1 : 0;
          const dy = r + 1 < res && xu[(i + 1) * res + q] !== c ? 1 : 0;
          want[2 * i] += Math.sqrt(dx + dy);
          want[2 * i + 1] += dx + dy;
        }
      }
      assertClose(got, want, { atol: 1e-6, rtol: 1e-6, what: `tv_rows res=${res}: vs float64` });
    }
    console.log(
      "largest |Wasm - WebGPU| per entry:",
      Object.fromEntries(
        [...worst].map((
          [k, v],
        ) => [k, `${v.abs.toExponential(2)} (rel ${v.rel.toExponential(2)})`]),
      ),
    );
  });
});

Deno.test("metrics twins reject a missing param and a too small output", async () => {
  await withWasmPair((wasm) => {
    const rt = wasm[0];
    const xa = rt.zeros([8]), xu = rt.zeros([8], "u32"), y = rt.zeros([4]);
    const kernel = (entry: string): Kernel => ({
      name: `metrics.${entry}`,
      code: metricsSrc,
      entry,
    });
    assert.throws(
      () => rt.dispatch(kernel("sumsq_rows"), { bindings: [xa, xu, y], workgroups: [1] }),
      /Kernel 'metrics.sumsq_rows': param 'n' is missing/,
    );
    assert.throws(
      () =>
        rt.dispatch(kernel("onehot"), {
          bindings: [xa, xu, y],
          params: { n: 2, k: 3, cls: 0, flag: 0 },
          workgroups: [1],
        }),
      /Kernel 'metrics.onehot': y \(n, k\) needs 6 elements, got tensor #\d+ f32\[4\]/,
    );
    for (const t of [xa, xu, y]) t.dispose();
  });
});
