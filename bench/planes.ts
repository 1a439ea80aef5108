/**
 * Decision-plane throughput (grid points classified per second) at R = 256 on LeNet-5, regula
 * against TensorFlow.js's WebGPU backend on its own device of the same adapter, in one run.
 *
 * Both do the same work per plane: make the R² points `x + a u + b v` on the GPU (regula: the
 * `plane_points` shader; TF.js: two outer products and adds), run LeNet's forward pass on them
 * in chunks, and keep the arg max per point on the GPU; one read-back of the whole class map
 * ends a plane. TF.js gets regula's weights (conv OIHW → HWIO, linear [out, in] → [in, out]) so
 * both classify the same points; the agreement of their class maps is reported (a few points
 * next to the boundary may differ by rounding).
 *
 * Timing: warm-up first (compilation not timed), then `rounds` planes each, interleaved; the
 * best plane counts (the machine may be shared). Run:
 * `deno run -A --config bench/deno.json bench/planes.ts [--resolution 256] [--rounds 3]
 * [--chunk 4096]`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { Runtime } from "../src/gpu/runtime.ts";
import { buildModel } from "../src/models/mod.ts";
import { planeClassesGpu, randomPlaneDirections } from "../src/metrics/mod.ts";

/** Options of {@linkcode benchPlanes}. */
export interface BenchPlanesOptions {
  /** Grid points per side. Default 256. */
  resolution?: number;
  /** Points per forward pass. Default 4096. */
  chunk?: number;
  /** Timed planes per implementation. Default 3. */
  rounds?: number;
  /** Print the table. Default true. */
  print?: boolean;
  /** Runtime to use; default a new one (destroyed at the end). */
  rt?: Runtime;
}

/** One result row. */
export interface BenchPlanesRow {
  resolution: number;
  chunk: number;
  /** Grid points per second. */
  regula: number;
  "tfjs-webgpu": number | null;
  "regula/tfjs": number | null;
  /** Fraction of grid points where the two class maps agree. */
  agreement: number | null;
  note?: string;
}

function lcg(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32;
  }
  return out;
}

/**
 * Runs the benchmark.
 * @param options resolution, chunk, rounds, printing, runtime
 * @returns one row: points/s of each implementation, their ratio, and map agreement
 */
export async function benchPlanes(options: BenchPlanesOptions = {}): Promise<BenchPlanesRow[]> {
  const res = options.resolution ?? 256, chunk = options.chunk ?? 4096;
  const rounds = options.rounds ?? 3, print = options.print ?? true;
  const rt = options.rt ?? await Runtime.create();
  const total = res * res, d = 784;
  const model = buildModel(rt, { kind: "lenet" }, { seed: 1 }).eval();
  const x = lcg(d, 7);
  const xt = rt.upload(x, [1, 1, 28, 28]);
  const dirs = randomPlaneDirections(d, { seed: 0 });
  const range = 3;

  const regulaPlane = async () => {
    const map = planeClassesGpu(rt, model, xt, dirs, { range, resolution: res, chunk });
    const v = (await map.read()) as Uint32Array;
    map.dispose();
    return v;
  };

  let tfError: string | null = null;
  try {
    if (!(await tf.setBackend("webgpu"))) tfError = "tf.setBackend('webgpu') returned false";
    await tf.ready();
  } catch (e) {
    tfError = `TF.js WebGPU backend failed: ${(e as Error).message}`;
  }
  let tfPlane: (() => Promise<Int32Array>) | null = null;
  const tfVars: tf.Tensor[] = [];
  if (!tfError) {
    const p = new Map<string, Float32Array>();
    for (const q of model.params()) p.set(q.name, (await q.value.read()) as Float32Array);
    const keep = <T extends tf.Tensor>(t: T): T => (tfVars.push(t), t);
    // OIHW -> HWIO and [out, in] -> [in, out].
    const conv = (name: string, o: number, i: number, k: number) =>
      keep(
        tf.transpose(tf.tensor4d(p.get(`${name}.weight`)!, [o, i, k, k]), [2, 3, 1, 0]),
      ) as tf.Tensor4D;
    const fc = (name: string, o: number, i: number) =>
      keep(tf.transpose(tf.tensor2d(p.get(`${name}.weight`)!, [o, i]))) as tf.Tensor2D;
    const bias = (name: string) => keep(tf.tensor1d(p.get(`${name}.bias`)!));
    const w1 = conv("conv1", 6, 1, 5), w2 = conv("conv2", 16, 6, 5);
    const f1 = fc("fc1", 120, 400), f2 = fc("fc2", 84, 120), f3 = fc("fc3", 10, 84);
    const [b1, b2, g1, g2, g3] = ["conv1", "conv2", "fc1", "fc2", "fc3"].map(bias);
    const x0 = keep(tf.tensor2d(x, [1, d]));
    const u = keep(tf.tensor2d(Float32Array.from(dirs.u), [1, d]));
    const v = keep(tf.tensor2d(Float32Array.from(dirs.v), [1, d]));
    const step = (2 * range) / (res - 1);
    tfPlane = async () => {
      const parts: tf.Tensor[] = [];
      for (let start = 0; start < total; start += chunk) {
        const n = Math.min(chunk, total - start);
        parts.push(tf.tidy(() => {
          const idx = tf.range(start, start + n, 1, "int32");
          const col = tf.mod(idx, res), row = tf.floorDiv(idx, res);
          const a = tf.sub(tf.mul(tf.cast(col, "float32"), step), range).reshape([n, 1]);
          const b = tf.sub(range, tf.mul(tf.cast(row, "float32"), step)).reshape([n, 1]);
          const pts = tf.add(x0, tf.add(tf.matMul(a, u), tf.matMul(b, v)));
          let h = tf.reshape(pts, [n, 28, 28, 1]) as tf.Tensor4D;
          h = tf.maxPool(tf.tanh(tf.add(tf.conv2d(h, w1, 1, 2), b1)) as tf.Tensor4D, 2, 2, "valid");
          h = tf.maxPool(
            tf.tanh(tf.add(tf.conv2d(h, w2, 1, "valid"), b2)) as tf.Tensor4D,
            2,
            2,
            "valid",
          );
          let z = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [n, 400]) as tf.Tensor2D;
          z = tf.tanh(tf.add(tf.matMul(z, f1), g1));
          z = tf.tanh(tf.add(tf.matMul(z, f2), g2));
          return tf.argMax(tf.add(tf.matMul(z, f3), g3), 1);
        }));
      }
      const all = tf.concat(parts);
      const out = (await all.data()) as Int32Array;
      all.dispose();
      for (const t of parts) t.dispose();
      return out;
    };
  }

  try {
    const ref = await regulaPlane(); // warm-up + reference
    let agreement: number | null = null;
    if (tfPlane) {
      const got = await tfPlane();
      let same = 0;
      for (let i = 0; i < total; i++) if (got[i] === ref[i]) same++;
      agreement = same / total;
    }
    let bestR = Infinity, bestT = Infinity;
    for (let r = 0; r < rounds; r++) {
      let t0 = performance.now();
      await regulaPlane();
      bestR = Math.min(bestR, performance.now() - t0);
      if (tfPlane) {
        t0 = performance.now();
        await tfPlane();
        bestT = Math.min(bestT, performance.now() - t0);
      }
    }
    const pps = (ms: number) => Math.round(total / (ms / 1000));
    const row: BenchPlanesRow = {
      resolution: res,
      chunk,
      regula: pps(bestR),
      "tfjs-webgpu": tfPlane ? pps(bestT) : null,
      "regula/tfjs": tfPlane ? +(bestT / bestR).toFixed(2) : null,
      agreement,
      ...(tfError ? { note: tfError } : {}),
    };
    if (print) {
      console.log(`adapter: ${rt.description}`);
      console.log(
        `decision planes, LeNet-5, ${res}x${res} grid, chunk ${chunk} (grid points / s):`,
      );
      console.table([row]);
    }
    return [row];
  } finally {
    for (const t of tfVars) t.dispose();
    xt.dispose();
    model.dispose();
    if (!options.rt) rt.destroy();
  }
}

if (import.meta.main) {
  // `--resolution N --rounds N --chunk N`: a software adapter (llvmpipe) needs ~40 s per 256²
  // plane for regula and ~10 min for TF.js; `--resolution 64` keeps a run short there.
  const arg = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Number(Deno.args[i + 1]) : undefined;
  };
  await benchPlanes({ resolution: arg("resolution"), rounds: arg("rounds"), chunk: arg("chunk") });
}
