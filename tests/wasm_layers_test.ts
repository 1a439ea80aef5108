/**
 * The WebAssembly twins of shaders/layers.wgsl (src/wasm/kernels/layers.ts: sum_parts, channel_sum,
 * channel_affine, act2, bn_gamma) and shaders/weightnorm.wgsl (src/wasm/kernels/weightnorm.ts:
 * weight, fold), through the helpers of src/layers/_util.ts and a weight-normalized Linear,
 * recorded on the WebGPU runtime and replayed on Wasm runtimes of 1 and 2 threads: compared with
 * the GPU and bitwise between thread counts. Normalize, Linear and WeightNorm also run on both
 * backends through `onBothBackends`.
 */
import { assert, getRuntime, randomArray } from "./_util.ts";
import { assertReplayed, replay, type ReplayErrors, wasmPair, worse } from "./_wasm_replay.ts";
import type { Runtime } from "../src/gpu/runtime.ts";
import type { Kernel } from "../src/kernel.ts";
import type { Tensor } from "../src/backend.ts";
import {
  batchnormGammaTerm,
  channelAffine,
  channelSum,
  secondDerivative,
  sumParts,
} from "../src/layers/_util.ts";
import { Linear } from "../src/layers/linear.ts";
import { WeightNorm } from "../src/layers/weight_norm.ts";
import { Normalize } from "../src/layers/normalize.ts";
import { onBothBackends } from "./_backends.ts";
import layersSrc from "../shaders/layers.wgsl" with { type: "text" };

const NONE: ReplayErrors = { abs: 0, used: 0, where: "" };

/** Uploads random data of each shape (values in [lo, hi)). */
function uploads(gpu: Runtime, shapes: number[][], seed: number, lo = -1, hi = 1): Tensor[] {
  return shapes.map((s, i) =>
    gpu.upload(randomArray(s.reduce((a, b) => a * b, 1), seed + i, lo, hi), s)
  );
}

Deno.test("layers twins replay sum_parts, channel_sum, channel_affine, act2, bn_gamma, 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const wasm = await wasmPair();
  let worst = NONE;
  let float64 = { wasm: 0, gpu8: 0, gpu256: 0, what: "" };
  const check = async (what: string, inputs: Tensor[], fn: () => void, tol = 1e-5) => {
    const result = await replay(gpu, wasm, inputs, fn);
    assert.ok(result.dispatches.length > 0, what);
    worst = worse(worst, assertReplayed(result, { atol: tol, rtol: 1e-5 }, what));
    for (const t of inputs) t.dispose();
    return result;
  };
  try {
    // Odd lengths; 40001 splits across 2 threads.
    for (const len of [1, 17, 1001, 40001]) {
      for (const parts of [1, 3]) {
        for (const beta of [0, 0.5]) {
          const [u, out] = uploads(gpu, [[parts, len], [len]], len + parts);
          await check(`sum_parts len ${len} parts ${parts} beta ${beta}`, [u, out], () => {
            sumParts(gpu, u, parts, out, beta);
          });
        }
      }
    }

    const CS_WG_256: Kernel = {
      name: "layers.channel_sum",
      code: layersSrc,
      entry: "channel_sum_main",
    };
    // (n, C, s): s = 1 (Linear: 4 channels per f32x4, a tail, 13 channels split 7 + 6), s > 1
    // (Conv2d), 3 channels of 64000 split 2 + 1.
    for (const [n, c, s] of [[17, 3, 1], [1001, 7, 1], [4096, 13, 1], [5, 6, 17], [64, 3, 1000]]) {
      for (const beta of [0, 1]) {
        const [x, out] = uploads(gpu, [[n, c, s], [c]], n + c + s);
        const xs = randomArray(n * c * s, n + c + s), old = randomArray(c, n + c + s + 1);
        const cs = { n, c, s, beta };
        const r = await check(`channel_sum ${JSON.stringify(cs)}`, [x, out], () => {
          channelSum(gpu, x, n, c, s, out, beta);
          // The GPU's other workgroup size (256 lanes, the tree on GPUs), into a second output.
          gpu.dispatch(CS_WG_256, {
            bindings: [x, x, x, gpu.zeros([c])],
            params: { n, len: 0, parts: 0, s, c, alpha: 0, beta: 0 },
            workgroups: [c],
            constants: { CS_WG: 256 },
          });
        }, 1e-4);
        assert.equal(r.dispatches.length, 2);
        // Against float64 sums, with the GPU's error (CS_WG 8 and 256) for scale.
        const want = Array.from({ length: c }, (_, ch) => {
          let sum = 0;
          for (let b = 0; b < n; b++) for (let q = 0; q < s; q++) sum += xs[(b * c + ch) * s + q];
          return sum + beta * old[ch];
        });
        const [got, gpu8, gpu256] = [r.tensors[1].wasm[0], r.tensors[1].gpu, r.tensors[2].gpu];
        const err = (a: ArrayLike<number>, w: number[]) =>
          Math.max(...w.map((v, i) => Math.abs(a[i] - v)));
        const e = [
          err(got, want),
          err(gpu8, want),
          err(gpu256, want.map((v, i) => v - beta * old[i])),
        ];
        assert.ok(e[0] <= 1e-3, `channel_sum ${JSON.stringify(cs)}: |Wasm - float64| ${e[0]}`);
        if (e[0] > float64.wasm) {
          float64 = { wasm: e[0], gpu8: e[1], gpu256: e[2], what: JSON.stringify(cs) };
        }
      }
    }

    for (
      const [shape, c, s] of [
        [[2, 3, 5], 3, 5],
        [[17, 1, 1], 1, 1],
        [[5, 7, 33, 33], 7, 1089],
        // s = 1: four adjacent channels per f32x4; 40990 elements split mid-row.
        [[9, 6], 6, 1],
        [[4099, 10], 10, 1],
      ]
    ) {
      for (const shift of [false, true]) {
        const [x, scale, sh] = uploads(gpu, [shape as number[], [c as number], [c as number]], 7);
        await check(
          `channel_affine ${JSON.stringify(shape)} shift ${shift}`,
          [x, scale, sh],
          () => {
            const out = gpu.empty(shape as number[]);
            channelAffine(gpu, x, c as number, s as number, scale, shift ? sh : null, out);
          },
        );
      }
    }

    // act2: tanh (1) and sigmoid (2) from cached outputs in (-1, 1) and (0, 1); softplus (3)
    // from inputs in [-4, 4) with β = 1.5 and threshold 3 (some β·a above it), 0-2 factors.
    for (const n of [1, 17, 1001, 40001]) {
      for (const act of [1, 2, 3] as const) {
        for (const nf of [0, 1, 2]) {
          const [lo, hi] = act === 1 ? [-1, 1] : act === 2 ? [0, 1] : [-4, 4];
          const [cached] = uploads(gpu, [[n]], n + act, lo, hi);
          const factors = uploads(gpu, [[n], [n]], 3 * n + act).slice(0, nf);
          await check(`act2 ${act} n ${n} factors ${nf}`, [cached, ...factors], () => {
            secondDerivative(gpu, act, cached, factors, gpu.empty([n]), 1.5, 3);
          });
        }
      }
    }

    for (const [n, c, s] of [[3, 5, 1], [4096, 13, 1], [2, 3, 25], [8, 6, 1089]]) {
      const [u, v, out] = uploads(gpu, [[n, c, s], [n, c, s], [c]], n + s);
      const [variance] = uploads(gpu, [[c]], 5, 0.5, 2);
      await check(`bn_gamma (${n}, ${c}, ${s})`, [u, v, out, variance], () => {
        batchnormGammaTerm(gpu, u.reshape([n, c, s]), v, variance, 1e-5, out);
      }, 1e-4);
    }
  } finally {
    for (const rt of wasm) rt.destroy();
  }
  console.log(
    `layers twins vs WebGPU: largest abs ${worst.abs}, tolerance used ${worst.used} at ${worst.where}`,
  );
  console.log(
    `channel_sum vs float64: largest |Wasm - float64| ${float64.wasm} at ${float64.what} ` +
      `(WebGPU CS_WG 8: ${float64.gpu8}, 256: ${float64.gpu256})`,
  );
});

Deno.test("weightnorm twins replay a weight-normalized Linear's passes, 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const wasm = await wasmPair();
  let worst = NONE;
  try {
    // (in, out): one row of 1001 (k not a multiple of 4), 129 rows of 300 split across threads.
    for (const [inF, outF, batch] of [[7, 5, 3], [1001, 3, 2], [300, 129, 4], [1, 1, 1]]) {
      const [x, dy, x2, dy2] = uploads(gpu, [[batch, inF], [batch, outF], [batch, inF], [
        batch,
        outF,
      ]], inF);
      const what = `WeightNorm(Linear ${inF}->${outF}) batch ${batch}`;
      const result = await replay(gpu, wasm, [x, dy, x2, dy2], () => {
        const fc = new Linear(gpu, "fc", inF, outF);
        gpu.write(fc.weight, randomArray(inF * outF, 11 + inF));
        gpu.write(fc.bias!, randomArray(outF, 12 + inF));
        const wn = new WeightNorm(gpu, fc);
        // A gain that is not ‖v‖, so that w != v.
        gpu.write(wn.weightG, randomArray(outF, 13 + inF, 0.5, 2));
        const keep = (t: Tensor) => gpu.copy(t, gpu.empty(t.shape));
        keep(wn.forward(x));
        keep(wn.backward(dy));
        keep(wn.forward(x2));
        keep(wn.backward(dy2));
        wn.jacobian.tangent!(dy, x2);
      });
      const kernels = new Set(result.dispatches);
      assert.ok(kernels.has("weightnorm.weight/weight_main"), what);
      assert.ok(kernels.has("weightnorm.fold/fold_main"), what);
      worst = worse(worst, assertReplayed(result, { atol: 1e-5, rtol: 1e-4 }, what));
      for (const t of [x, dy, x2, dy2]) t.dispose();
    }
  } finally {
    for (const rt of wasm) rt.destroy();
  }
  console.log(
    `weightnorm twins vs WebGPU: largest abs ${worst.abs}, tolerance used ${worst.used} at ${worst.where}`,
  );
});

Deno.test("Normalize, Linear's bias gradient and WeightNorm(Linear) run on both backends and agree", async () => {
  await onBothBackends(async (rt) => {
    const shape = [3, 4, 17, 5];
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = new Normalize(rt, "norm", [0.1, -0.2, 0.3, 0.5], [0.5, 1.5, 2, 0.25]);
    const x = rt.upload(randomArray(n, 1), shape);
    const y = await norm.forward(x).read();
    const dx = await norm.backward(x).read();
    const ty = await norm.jvp(x).read();
    x.dispose();
    norm.dispose();

    const fc = new Linear(rt, "fc", 300, 129);
    rt.write(fc.weight, randomArray(300 * 129, 2));
    rt.write(fc.bias!, randomArray(129, 3));
    const wn = new WeightNorm(rt, fc);
    rt.write(wn.weightG, randomArray(129, 4, 0.5, 2));
    const [u, dy] = [
      rt.upload(randomArray(4 * 300, 5), [4, 300]),
      rt.upload(randomArray(4 * 129, 6), [4, 129]),
    ];
    const out = await wn.forward(u).read();
    const du = await wn.backward(dy).read();
    const results = {
      y,
      dx,
      ty,
      out,
      du,
      dBias: await fc.dBias!.read(),
      dWeightG: await wn.dWeightG.read(),
      dWeightV: await wn.dWeightV.read(),
    };
    u.dispose();
    dy.dispose();
    wn.dispose();
    return results;
  }, { what: "Normalize, WeightNorm(Linear 300->129)" });
});
