/**
 * PGD-40 throughput (images/s) on this machine's WebGPU adapter: regula's `pgd` against the same
 * loop written in TensorFlow.js on its WebGPU backend, on LeNet-5 (bench/_peers/regula.ts's
 * architecture, tanh, max pool) with the same weights and inputs.
 *
 * One attack = 40 iterations of forward, cross-entropy (mean), input gradient and the fused
 * L∞ step `x0 + clip(x + α sign g - x0, -ε, ε)` clipped to [0, 1] (ε = 0.3, α = 0.01, no random
 * start, so both compute the same thing: the adversarial examples are compared before timing).
 * regula records each iteration into one encoder and submits it once; TF.js runs each
 * iteration in `tf.tidy` with `tf.grad`, in its native NHWC layout.
 *
 * Timing as bench/matmul.ts: warm-up (compilation is not timed), then interleaved rounds of
 * whole attacks, each ending with a wait for all its work; the best round counts.
 *
 * Run: `deno run -A --config bench/deno.json bench/attacks.ts`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { Runtime } from "../src/gpu/runtime.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import { pgd } from "../src/attacks/pgd.ts";
import { buildRegulaModel } from "./_peers/regula.ts";
import { syntheticData, syntheticLabels } from "./_peers/common.ts";

/** Options of {@linkcode benchAttacks}. */
export interface BenchAttacksOptions {
  /** Batch sizes. Default [64, 256]. */
  batches?: number[];
  /** PGD iterations. Default 40. */
  steps?: number;
  /** Timed rounds per implementation and batch. Default 2. */
  rounds?: number;
  /** Print the table. Default true. */
  print?: boolean;
  /** Runtime to use; default a new one (destroyed at the end). */
  rt?: Runtime;
}

const EPS = 0.3, ALPHA = 0.01;

interface Impl {
  name: string;
  /** Runs one whole attack and waits for it. */
  attack(): Promise<void>;
  result(): Promise<Float32Array>;
  dispose(): void;
}

function regulaImpl(
  rt: Runtime,
  net: Sequential,
  xData: Float32Array,
  yData: Int32Array,
  steps: number,
): Impl {
  const b = yData.length;
  const x = rt.upload(xData, [b, 1, 28, 28]);
  const y = rt.upload(yData, [b]);
  let adv: ReturnType<typeof pgd> | null = null;
  return {
    name: "regula",
    async attack() {
      adv?.dispose();
      adv = pgd(rt, net, x, y, { eps: EPS, alpha: ALPHA, steps, randomStart: false });
      await rt.sync();
    },
    result: async () => (await adv!.read()) as Float32Array,
    dispose() {
      adv?.dispose();
      x.dispose();
      y.dispose();
    },
  };
}

/** LeNet in TF.js with regula's weights (OIHW -> HWIO, [out, in] -> [in, out]). */
async function tfjsImpl(
  net: Sequential,
  xData: Float32Array,
  yData: Int32Array,
  steps: number,
): Promise<Impl> {
  const b = yData.length;
  const p: Record<string, tf.Tensor> = {};
  for (const q of net.params()) {
    const v = (await q.value.read()) as Float32Array;
    const s = q.value.shape;
    p[q.name] = s.length === 4
      ? tf.transpose(tf.tensor4d(v, s as [number, number, number, number]), [2, 3, 1, 0])
      : s.length === 2
      ? tf.transpose(tf.tensor2d(v, s as [number, number]))
      : tf.tensor1d(v);
  }
  const forward = (x: tf.Tensor4D): tf.Tensor2D => {
    let a = tf.tanh(
      tf.add(tf.conv2d(x, p["conv1.weight"] as tf.Tensor4D, 1, 2), p["conv1.bias"]),
    ) as tf.Tensor4D;
    a = tf.maxPool(a, 2, 2, "valid");
    a = tf.tanh(
      tf.add(tf.conv2d(a, p["conv2.weight"] as tf.Tensor4D, 1, "valid"), p["conv2.bias"]),
    ) as tf.Tensor4D;
    a = tf.maxPool(a, 2, 2, "valid");
    let z = tf.reshape(tf.transpose(a, [0, 3, 1, 2]), [b, 400]) as tf.Tensor2D;
    z = tf.tanh(tf.add(tf.matMul(z, p["fc1.weight"] as tf.Tensor2D), p["fc1.bias"]));
    z = tf.tanh(tf.add(tf.matMul(z, p["fc2.weight"] as tf.Tensor2D), p["fc2.bias"]));
    return tf.add(tf.matMul(z, p["fc3.weight"] as tf.Tensor2D), p["fc3.bias"]);
  };
  const x0 = tf.tidy(() =>
    tf.transpose(tf.tensor4d(xData, [b, 1, 28, 28]), [0, 2, 3, 1])
  ) as tf.Tensor4D;
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(yData, "int32"), 10));
  const lossOf = (x: tf.Tensor4D) => tf.losses.softmaxCrossEntropy(ys, forward(x)) as tf.Scalar;
  const gradOf = tf.grad((x: tf.Tensor) => lossOf(x as tf.Tensor4D));
  let adv: tf.Tensor4D | null = null;
  return {
    name: "tfjs-webgpu",
    async attack() {
      adv?.dispose();
      let cur = x0.clone();
      for (let i = 0; i < steps; i++) {
        const next = tf.tidy(() => {
          const g = gradOf(cur);
          const stepped = tf.add(cur, tf.mul(tf.sign(g), ALPHA));
          const delta = tf.clipByValue(tf.sub(stepped, x0), -EPS, EPS);
          return tf.clipByValue(tf.add(x0, delta), 0, 1) as tf.Tensor4D;
        });
        cur.dispose();
        cur = next;
      }
      adv = cur;
      // one element read back waits for the whole attack (see bench/matmul.ts)
      const corner = tf.slice(adv, [0, 0, 0, 0], [1, 1, 1, 1]);
      await corner.data();
      corner.dispose();
    },
    result: async () => (await tf.transpose(adv!, [0, 3, 1, 2]).data()) as Float32Array,
    dispose() {
      adv?.dispose();
      x0.dispose();
      ys.dispose();
      for (const t of Object.values(p)) t.dispose();
    },
  };
}

/**
 * Runs the benchmark.
 * @param options batches, steps, rounds, printing
 * @returns one row per batch size: images/s of each implementation, the ratio, and the largest
 *   difference between the two sets of adversarial examples
 */
export async function benchAttacks(
  options: BenchAttacksOptions = {},
): Promise<Record<string, unknown>[]> {
  const batches = options.batches ?? [64, 256];
  const steps = options.steps ?? 40;
  const rounds = options.rounds ?? 2;
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
  const net = buildRegulaModel(rt, "lenet", false);
  net.eval();
  const rows: Record<string, unknown>[] = [];
  for (const b of batches) {
    const xData = syntheticData(b * 784, 7 + b), yData = syntheticLabels(b, 10);
    const impls: Impl[] = [regulaImpl(rt, net, xData, yData, steps)];
    if (!tfjsError) impls.push(await tfjsImpl(net, xData, yData, steps));
    for (const impl of impls) await impl.attack(); // warm-up: compiles
    const ref = await impls[0].result();
    let diff = 0, flips = 0;
    if (impls[1]) {
      const other = await impls[1].result();
      for (let i = 0; i < ref.length; i++) {
        const d = Math.abs(ref[i] - other[i]);
        diff = Math.max(diff, d);
        if (d > 1e-4) flips++;
      }
    }
    const best = new Map<string, number>(impls.map((i) => [i.name, Infinity]));
    for (let r = 0; r < rounds; r++) {
      for (const impl of impls) {
        const t0 = performance.now();
        await impl.attack();
        best.set(impl.name, Math.min(best.get(impl.name)!, performance.now() - t0));
      }
    }
    const ips = (name: string) =>
      best.has(name) ? +(b / (best.get(name)! / 1000)).toFixed(1) : null;
    const row: Record<string, unknown> = { batch: b, steps };
    for (const impl of impls) row[`${impl.name} img/s`] = ips(impl.name);
    const tfj = ips("tfjs-webgpu");
    row["regula/tfjs"] = tfj ? +(ips("regula")! / tfj).toFixed(2) : null;
    row["regula ms/attack"] = +best.get("regula")!.toFixed(1);
    row["max |diff|"] = impls[1] ? diff.toExponential(1) : null;
    row["coords differing > 1e-4"] = impls[1] ? flips : null;
    rows.push(row);
    for (const impl of impls) impl.dispose();
  }
  net.dispose();
  if (print) {
    console.log(`PGD-${steps} (eps ${EPS}, alpha ${ALPHA}) on LeNet-5, images/s (best of rounds):`);
    console.table(rows);
  }
  if (!options.rt) rt.destroy();
  return rows;
}

if (import.meta.main) {
  await benchAttacks();
}
