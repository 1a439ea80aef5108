/**
 * Matrix-multiply throughput on this machine's WebGPU adapter, in one run:
 * regula's tiled kernel (the tiling `matmul` picks for this adapter, and the
 * workgroup-memory variant for comparison), a naive one-thread-per-output
 * kernel, and TensorFlow.js's WebGPU backend on its own device of the same
 * adapter. Square fp32 products C = A·B of 256, 512 and 1024.
 *
 * Timing: every implementation is warmed up first (pipeline compilation is not
 * timed), then timed in several rounds of back-to-back products, each round
 * sized to take about `roundMs` and ending with a wait for all its work
 * (`onSubmittedWorkDone` for regula, a one-element read-back of the last
 * result for TF.js); the best round counts (the machine may be shared). Rounds
 * of the different implementations are interleaved so that background load
 * hits them alike. Results are compared with regula's before timing.
 *
 * Run: `deno run -A --config bench/deno.json bench/matmul.ts`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { Runtime } from "../src/gpu/runtime.ts";
import type { Kernel } from "../src/kernel.ts";
import type { Tensor } from "../src/backend.ts";
import { matmul, type MatmulTiling, matmulTiling } from "../src/ops/matmul.ts";
import naiveSrc from "../shaders/matmul_naive.wgsl" with { type: "text" };

const NAIVE: Kernel = { name: "matmul_naive", code: naiveSrc };

/** Options of {@linkcode benchMatmul}. */
export interface BenchMatmulOptions {
  /** Square sizes. Default [256, 512, 1024]. */
  sizes?: number[];
  /** Timed rounds per implementation and size. Default 5. */
  rounds?: number;
  /** Target duration of one timed round in ms (sets the repetitions per round). Default 250. */
  roundMs?: number;
  /** Print the table. Default true. */
  print?: boolean;
  /** Runtime to use; default a new one (destroyed at the end). */
  rt?: Runtime;
}

interface Impl {
  name: string;
  /** Records one product. */
  run(): void;
  /** Waits for everything recorded so far. */
  sync(): Promise<void>;
  /** The last result, for the cross-check. */
  result(): Promise<Float32Array>;
  dispose(): void;
}

function randomData(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

function regulaImpl(
  rt: Runtime,
  name: string,
  a: Tensor,
  b: Tensor,
  tiling?: Partial<MatmulTiling>,
): Impl {
  const n = a.shape[0];
  const out = rt.empty([n, n]);
  return {
    name,
    run: () => void matmul(rt, a, b, { out, tiling }),
    sync: () => rt.sync(),
    result: async () => (await out.read()) as Float32Array,
    dispose: () => out.dispose(),
  };
}

function naiveImpl(rt: Runtime, a: Tensor, b: Tensor): Impl {
  const n = a.shape[0];
  const out = rt.empty([n, n]);
  return {
    name: "naive",
    run: () =>
      rt.dispatch(NAIVE, {
        bindings: [a, b, out],
        params: { m: n, n, k: n },
        workgroups: [Math.ceil(n / 16), Math.ceil(n / 16)],
      }),
    sync: () => rt.sync(),
    result: async () => (await out.read()) as Float32Array,
    dispose: () => out.dispose(),
  };
}

function tfjsImpl(aData: Float32Array, bData: Float32Array, n: number): Impl {
  const a = tf.tensor2d(aData, [n, n]);
  const b = tf.tensor2d(bData, [n, n]);
  let c: tf.Tensor | null = null;
  return {
    name: "tfjs-webgpu",
    run: () => {
      c?.dispose();
      c = tf.matMul(a, b);
    },
    // A one-element slice runs after the product on the same queue; reading it back waits
    // for the product without timing a full-size download. (Calling the backend's
    // submitQueue() by hand instead leaves TF.js's encoder state broken: later products
    // then silently do nothing.)
    sync: async () => {
      const corner = c!.slice([0, 0], [1, 1]);
      await corner.data();
      corner.dispose();
    },
    result: async () => (await c!.data()) as Float32Array,
    dispose: () => {
      c?.dispose();
      a.dispose();
      b.dispose();
    },
  };
}

function maxAbsDiff(x: Float32Array, y: Float32Array): number {
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
  return d;
}

/**
 * Runs the benchmark and returns one row per size: GFLOP/s of each
 * implementation and the ratio regula / TF.js.
 * @param options sizes, rounds, printing
 * @returns rows `{ n, regula, "regula-shared", naive, "tfjs-webgpu", "regula/tfjs", ... }`
 */
export async function benchMatmul(
  options: BenchMatmulOptions = {},
): Promise<Record<string, unknown>[]> {
  const sizes = options.sizes ?? [256, 512, 1024];
  const rounds = options.rounds ?? 5;
  const roundMs = options.roundMs ?? 250;
  const print = options.print ?? true;
  const rt = options.rt ?? await Runtime.create();
  let tfjsError: string | null = null;
  try {
    if (!(await tf.setBackend("webgpu"))) tfjsError = "tf.setBackend('webgpu') returned false";
    await tf.ready();
  } catch (e) {
    tfjsError = `TF.js WebGPU backend failed: ${(e as Error).message}`;
  }
  if (print) {
    console.log(`adapter: ${rt.description}`);
    if (tfjsError) console.log(tfjsError);
  }
  const rows: Record<string, unknown>[] = [];
  for (const n of sizes) {
    const aData = randomData(n * n, 1), bData = randomData(n * n, 2);
    const a = rt.upload(aData, [n, n]), b = rt.upload(bData, [n, n]);
    const tiling = matmulTiling(rt, n, n);
    const impls: Impl[] = [regulaImpl(rt, "regula", a, b)];
    if (!tiling.shared) {
      // What the GPU tiling (workgroup-memory slabs) would do on this CPU adapter.
      const gpuTiling = { shared: true, tx: 16, ty: 16, rm: 1, rn: 1, bk: 16 };
      impls.push(regulaImpl(rt, "regula-shared", a, b, gpuTiling));
    }
    impls.push(naiveImpl(rt, a, b));
    if (!tfjsError) impls.push(tfjsImpl(aData, bData, n));
    const flops = 2 * n ** 3;
    const best = new Map<string, number>();
    const reps = new Map<string, number>();
    for (const impl of impls) {
      impl.run(); // compiles the pipeline
      await impl.sync();
      const t0 = performance.now();
      impl.run();
      await impl.sync();
      const once = Math.max(performance.now() - t0, 0.01);
      reps.set(impl.name, Math.min(1000, Math.max(1, Math.round(roundMs / once))));
      best.set(impl.name, Infinity);
    }
    const ref = await impls[0].result();
    const diffs: Record<string, number> = {};
    for (const impl of impls.slice(1)) diffs[impl.name] = maxAbsDiff(ref, await impl.result());
    for (let r = 0; r < rounds; r++) {
      for (const impl of impls) {
        const n = reps.get(impl.name)!;
        const t0 = performance.now();
        for (let i = 0; i < n; i++) impl.run();
        await impl.sync();
        const ms = (performance.now() - t0) / n;
        best.set(impl.name, Math.min(best.get(impl.name)!, ms));
      }
    }
    const gflops = (name: string) =>
      best.has(name) ? +(flops / best.get(name)! / 1e6).toFixed(2) : null;
    const row: Record<string, unknown> = { n };
    for (const impl of impls) row[impl.name] = gflops(impl.name);
    const tfj = gflops("tfjs-webgpu");
    row["regula/tfjs"] = tfj ? +(gflops("regula")! / tfj).toFixed(2) : null;
    row["regula ms"] = +best.get("regula")!.toFixed(3);
    row["max |diff| vs regula"] = Math.max(...Object.values(diffs)).toExponential(1);
    rows.push(row);
    for (const impl of impls) impl.dispose();
    a.dispose();
    b.dispose();
  }
  if (print) {
    console.log("GFLOP/s (best of rounds), C = A·B, square fp32:");
    console.table(rows);
  }
  if (!options.rt) rt.destroy();
  return rows;
}

if (import.meta.main) {
  await benchMatmul();
}
