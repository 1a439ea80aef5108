/**
 * The WebAssembly twins of shaders/batchnorm.wgsl and batchnorm_state.wgsl
 * (src/wasm/kernels/batchnorm.ts), and of layers.bn_gamma as BatchNorm's Jacobian term uses it: a
 * BatchNorm's training and eval passes (stats, affine, backward reduce and dx, running-stat update,
 * eval stats, gradient accumulation, jvp), recorded on the WebGPU runtime and replayed on Wasm
 * runtimes of 1 and 2 threads, compared with the GPU and bitwise between thread counts; likewise
 * the twins of shaders/batchnorm_jr.wgsl (training-mode BatchNorm's Jacobian terms). The layer
 * also runs on both backends through `onBothBackends`.
 */
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import { assertReplayed, replay, type ReplayErrors, wasmPair, worse } from "./_wasm_replay.ts";
import { onBothBackends } from "./_backends.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import { BatchNorm } from "../src/layers/batchnorm.ts";
import type { Tensor } from "../src/backend.ts";

const CASES: { dims: 1 | 2; shape: number[]; eps?: number; momentum?: number }[] = [
  { dims: 2, shape: [2, 3, 5, 5] },
  // Above the twins' split thresholds: channels and elements both split on 2 threads.
  { dims: 2, shape: [8, 6, 33, 33], eps: 1e-3, momentum: 0.3 },
  { dims: 2, shape: [1, 2, 1, 3] },
  // S = 1: four channels per f32x4 and a scalar tail; 13 channels split 7 + 6.
  { dims: 1, shape: [17, 3] },
  { dims: 1, shape: [4096, 13], momentum: 0.5 },
  { dims: 1, shape: [3, 1] },
  { dims: 1, shape: [64, 9, 5] },
  { dims: 1, shape: [2, 5, 1] },
];

Deno.test("batchnorm twins replay BatchNorm train and eval passes, 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const wasm = await wasmPair();
  let worst: ReplayErrors = { abs: 0, used: 0, where: "" };
  try {
    for (const [ci, { dims, shape, eps, momentum }] of CASES.entries()) {
      const n = shape.reduce((a, b) => a * b, 1);
      const c = shape[1];
      // Inputs with a mean far from 0 (the two-pass variance) and gradients of either sign.
      const inputs = [
        gpu.upload(randomArray(n, 10 * ci + 1, -1, 3), shape),
        gpu.upload(randomArray(n, 10 * ci + 2), shape),
        gpu.upload(randomArray(n, 10 * ci + 3, 2, 5), shape),
        gpu.upload(randomArray(n, 10 * ci + 4, -2, 2), shape),
        gpu.upload(randomArray(n, 10 * ci + 5), shape),
      ];
      const [x, dy, x2, dy2, t] = inputs;
      const what = `BatchNorm${dims}d ${JSON.stringify(shape)}`;
      const result = await replay(gpu, wasm, inputs, () => {
        const bn = new BatchNorm(gpu, "bn", c, { dims, eps, momentum });
        gpu.write(bn.weight, randomArray(c, 10 * ci + 6, 0.5, 1.5));
        gpu.write(bn.bias, randomArray(c, 10 * ci + 7));
        const keep = (y: Tensor) => gpu.copy(y, gpu.empty(y.shape));
        bn.training = true;
        keep(bn.forward(x));
        keep(bn.backward(dy));
        keep(bn.forward(x2));
        keep(bn.backward(dy2));
        bn.training = false;
        keep(bn.forward(x));
        keep(bn.backward(dy2));
        keep(bn.jvp(t));
        bn.jacobian.tangent!(dy, t);
      });
      assert.deepEqual(
        new Set(result.dispatches),
        new Set([
          "batchnorm.stats/stats_main",
          "batchnorm.update_running/update_running_main",
          "batchnorm.affine/affine_main",
          "batchnorm.bwd_reduce/bwd_reduce_main",
          "batchnorm.accum_grads/accum_grads_main",
          "batchnorm.bwd_dx/bwd_dx_main",
          "batchnorm.eval_stats/eval_stats_main",
          "layers.bn_gamma/bn_gamma_main",
        ]),
        what,
      );
      worst = worse(worst, assertReplayed(result, { atol: 1e-5, rtol: 1e-4 }, what));
      for (const i of inputs) i.dispose();
    }
  } finally {
    for (const rt of wasm) rt.destroy();
  }
  console.log(
    `batchnorm twins vs WebGPU: largest abs ${worst.abs}, tolerance used ${worst.used} at ${worst.where}`,
  );
});

Deno.test("batchnorm twins replay training-mode BatchNorm's Jacobian passes (batchnorm_jr), 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const wasm = await wasmPair();
  let worst: ReplayErrors = { abs: 0, used: 0, where: "" };
  try {
    for (const [ci, { dims, shape, eps }] of CASES.entries()) {
      const n = shape.reduce((a, b) => a * b, 1);
      const c = shape[1];
      const inputs = [
        gpu.upload(randomArray(n, 10 * ci + 1, -1, 3), shape),
        gpu.upload(randomArray(n, 10 * ci + 2), shape),
        gpu.upload(randomArray(n, 10 * ci + 3), shape),
      ];
      const [x, b, r] = inputs;
      const what = `BatchNorm${dims}d ${JSON.stringify(shape)} (Jacobian, training mode)`;
      const result = await replay(gpu, wasm, inputs, () => {
        const bn = new BatchNorm(gpu, "bn", c, { dims, eps });
        gpu.write(bn.weight, randomArray(c, 10 * ci + 6, 0.5, 1.5));
        const keep = (y: Tensor) => gpu.copy(y, gpu.empty(y.shape));
        bn.training = true;
        keep(bn.forward(x));
        keep(bn.jacobian.vjp!(b));
        keep(bn.jacobian.tangent!(b, r)!);
        keep(bn.jvp(r));
      });
      assert.deepEqual(
        new Set(result.dispatches),
        new Set([
          "batchnorm.stats/stats_main",
          "batchnorm.update_running/update_running_main",
          "batchnorm.affine/affine_main",
          "batchnorm.bwd_reduce/bwd_reduce_main",
          "batchnorm.bwd_dx/bwd_dx_main",
          "batchnorm.jr_sums/sums_main",
          "batchnorm.jr_inject/inject_main",
        ]),
        what,
      );
      worst = worse(worst, assertReplayed(result, { atol: 1e-5, rtol: 1e-4 }, what));
      for (const i of inputs) i.dispose();
    }
  } finally {
    for (const rt of wasm) rt.destroy();
  }
  console.log(
    `batchnorm_jr twins vs WebGPU: largest abs ${worst.abs}, tolerance used ${worst.used} at ${worst.where}`,
  );
});

/** Float64 BatchNorm (training mode) forward and backward of (B, C, S) data, PyTorch 1.13. */
function batchnormRef(
  x: Float32Array,
  dy: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  [b, c, s]: [number, number, number],
  eps: number,
  momentum: number,
) {
  const m = b * s;
  const at = (i: number, ch: number) => (Math.floor(i / s) * c + ch) * s + (i % s);
  const y = new Float64Array(x.length), dx = new Float64Array(x.length);
  const dgamma = new Float64Array(c), dbeta = new Float64Array(c);
  const runningMean = new Float64Array(c), runningVar = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let mean = 0, v = 0, sd = 0, sdx = 0;
    for (let i = 0; i < m; i++) mean += x[at(i, ch)] / m;
    for (let i = 0; i < m; i++) v += (x[at(i, ch)] - mean) ** 2 / m;
    const invstd = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < m; i++) {
      const k = at(i, ch), xh = (x[k] - mean) * invstd;
      y[k] = gamma[ch] * xh + beta[ch];
      sd += dy[k];
      sdx += dy[k] * xh;
    }
    for (let i = 0; i < m; i++) {
      const k = at(i, ch), xh = (x[k] - mean) * invstd;
      dx[k] = gamma[ch] * invstd * (dy[k] - sd / m - xh * sdx / m);
    }
    dgamma[ch] = sdx;
    dbeta[ch] = sd;
    runningMean[ch] = momentum * mean;
    runningVar[ch] = (1 - momentum) + momentum * v * m / (m - 1);
  }
  return { y, dx, dgamma, dbeta, runningMean, runningVar };
}

Deno.test("batchnorm twins match a float64 BatchNorm in training mode as closely as WebGPU", async () => {
  const gpu = await getRuntime();
  const wasm = [await WasmRuntime.create({ threads: 2, warn: false })];
  let worst = { wasm: 0, gpu: 0, what: "" };
  try {
    for (const [dims, shape] of [[1, [4096, 13]], [2, [8, 6, 33, 33]], [1, [64, 9, 5]]] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const c = shape[1];
      const s = n / (shape[0] * c);
      const data = [randomArray(n, 1, -1, 3), randomArray(n, 2, -2, 2)];
      const gamma = randomArray(c, 3, 0.5, 1.5), beta = randomArray(c, 4);
      const [x, dy] = data.map((d) => gpu.upload(d, shape));
      const out: Record<string, Tensor> = {};
      const result = await replay(gpu, wasm, [x, dy], () => {
        const bn = new BatchNorm(gpu, "bn", c, { dims });
        gpu.write(bn.weight, gamma);
        gpu.write(bn.bias, beta);
        out.y = bn.forward(x);
        out.dx = bn.backward(dy);
        out.dgamma = bn.dWeight;
        out.dbeta = bn.dBias;
        out.runningMean = bn.runningMean;
        out.runningVar = bn.runningVar;
      });
      const ref = batchnormRef(data[0], data[1], gamma, beta, [shape[0], c, s], 1e-5, 0.1);
      for (const [key, t] of Object.entries(out)) {
        const r = result.tensors.find((e) => e.what === t.describe())!;
        const want = ref[key as keyof typeof ref];
        const err = (got: ArrayLike<number>) => {
          let e = 0;
          for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i] - want[i]));
          return e;
        };
        const what = `BatchNorm${dims}d ${JSON.stringify(shape)} ${key}`;
        assertClose(r.wasm[0], want, { atol: 1e-4, rtol: 1e-4, what: `${what} vs float64` });
        // Plain-order sums (blocked) on Wasm, a tree on the GPU: no more than 4x the GPU's error.
        const [ew, eg] = [err(r.wasm[0]), err(r.gpu)];
        assert.ok(
          ew <= 4 * eg + 1e-6,
          `${what}: |Wasm - float64| ${ew} vs |WebGPU - float64| ${eg}`,
        );
        if (ew > worst.wasm) worst = { wasm: ew, gpu: eg, what };
      }
      x.dispose();
      dy.dispose();
    }
  } finally {
    for (const rt of wasm) rt.destroy();
  }
  console.log(
    `batchnorm twins vs float64: largest |Wasm - float64| ${worst.wasm} ` +
      `(|WebGPU - float64| ${worst.gpu}) at ${worst.what}`,
  );
});

Deno.test("BatchNorm runs on both backends: train, eval, jvp and the Jacobian term agree", async () => {
  for (const [dims, shape] of [[2, [4, 6, 9, 9]], [1, [300, 10]], [1, [5, 3, 7]]] as const) {
    const n = shape.reduce((a, b) => a * b, 1);
    const c = shape[1];
    await onBothBackends(async (rt) => {
      const bn = new BatchNorm(rt, "bn", c, { dims, momentum: 0.2 });
      rt.write(bn.weight, randomArray(c, 1, 0.5, 1.5));
      rt.write(bn.bias, randomArray(c, 2));
      const [x, dy, t] = [3, 4, 5].map((s) => rt.upload(randomArray(n, s, -1, 3), shape));
      const y = await bn.forward(x).read();
      const dx = await bn.backward(dy).read();
      bn.training = false;
      const yEval = await bn.forward(x).read();
      const dxEval = await bn.backward(dy).read();
      const ty = await bn.jvp(t).read();
      bn.jacobian.tangent!(dy, t);
      const out = {
        y,
        dx,
        yEval,
        dxEval,
        ty,
        dWeight: await bn.dWeight.read(),
        dBias: await bn.dBias.read(),
        runningMean: await bn.runningMean.read(),
        runningVar: await bn.runningVar.read(),
        tracked: await bn.numBatchesTracked.read(),
      };
      for (const u of [x, dy, t]) u.dispose();
      bn.dispose();
      return out;
    }, { what: `BatchNorm${dims}d ${JSON.stringify(shape)}`, exact: ["tracked"] });
  }
});
