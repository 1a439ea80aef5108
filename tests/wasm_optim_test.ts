/**
 * The WebAssembly twins of the optimizer kernels (src/wasm/kernels/optim.ts): the dispatches of
 * `sgd`, `adam` and `adamw` (per tensor: optim.sgd / optim.adam; fused: optim.sgd_fused /
 * optim.adam_fused), recorded on the WebGPU runtime and replayed on Wasm runtimes of 1 and 2
 * threads, compared with the GPU, bitwise between thread counts, and with the float64 reference.
 * The same steps also run on both backends through `onBothBackends`.
 */
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import { assertReplayed, replay, type ReplayErrors, wasmPair, worse } from "./_wasm_replay.ts";
import { onBothBackends } from "./_backends.ts";
import type { Param } from "../src/layers/layer.ts";
import {
  adam,
  type AdamOptions,
  adamw,
  OptimizerState,
  sgd,
  type SgdOptions,
} from "../src/train/optim.ts";
import { refAdamStep, type RefOptimState, refSgdStep } from "../src/reference/optim.ts";

// Odd sizes, one above the twins' split threshold (2 threads), and more tensors than the fused
// kernels' 10 (SGD) and 6 (Adam) slots.
const SHAPES = [[1], [3], [17], [1001], [40003], [2, 3, 3, 3], [6], [7, 9], [257], [33], [5], [12]];
/** The last tensors join at the second step: their first step (momentum, bias corrections) differs. */
const FIRST_STEP_TENSORS = 9;
const STEPS = 3;
const LRS = [0.1, 0.05, 0.3];

type Algorithm = "sgd" | "adam" | "adamw";
const CASES: [Algorithm, Omit<SgdOptions, "lr"> | Omit<AdamOptions, "lr">][] = [
  ["sgd", {}],
  ["sgd", { momentum: 0.9 }],
  ["sgd", { momentum: 0.8, dampening: 0.3, weightDecay: 0.05, maximize: true, zeroGrad: true }],
  ["sgd", { momentum: 0.9, nesterov: true, weightDecay: 5e-4 }],
  ["adam", {}],
  ["adam", { betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.01, amsgrad: true }],
  ["adam", { eps: 0.05, maximize: true, zeroGrad: true }],
  ["adamw", {}],
  ["adamw", { weightDecay: 0.1, amsgrad: true, maximize: true }],
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Gradients of step t (some exactly 0: Adam's m/denom = 0 path). */
function grads(t: number, seed: number): Float32Array[] {
  return SHAPES.map((s, i) => {
    const g = randomArray(size(s), seed + 100 * t + i, -2, 2);
    if (g.length > 2) g[1] = 0;
    return g;
  });
}

Deno.test("optim twins replay sgd(), adam(), adamw() per tensor and fused, 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const wasm = await wasmPair();
  let worstGpu: ReplayErrors = { abs: 0, used: 0, where: "" }, worstRef = 0;
  try {
    for (const [ci, [algorithm, opts]] of CASES.entries()) {
      for (const fused of [false, true]) {
        const init = SHAPES.map((s, i) => randomArray(size(s), 10 * ci + i));
        const params: Param[] = SHAPES.map((s, i) => ({
          name: `layer${i}.weight`,
          value: gpu.upload(init[i], s),
          grad: gpu.zeros(s),
          kind: "weight",
        }));
        const state = new OptimizerState(gpu);
        const what = `${algorithm} ${JSON.stringify({ ...opts, fused })}`;
        const result = await replay(
          gpu,
          wasm,
          params.flatMap((p) => [p.value, p.grad!]),
          () => {
            for (let t = 0; t < STEPS; t++) {
              const gs = grads(t, ci);
              params.forEach((p, i) => gpu.write(p.grad!, gs[i]));
              const ps = t === 0 ? params.slice(0, FIRST_STEP_TENSORS) : params;
              const o = { ...opts, fused, lr: LRS[t] };
              if (algorithm === "sgd") sgd(gpu, ps, state, o);
              else if (algorithm === "adam") adam(gpu, ps, state, o as AdamOptions);
              else adamw(gpu, ps, state, o as AdamOptions);
            }
          },
        );
        const kernels = new Set(result.dispatches);
        const base = algorithm === "sgd" ? "optim.sgd" : "optim.adam";
        assert.deepEqual(
          [...kernels],
          [fused ? `${base}_fused/main` : `${base}/${algorithm === "sgd" ? "sgd" : "adam"}_main`],
          what,
        );
        worstGpu = worse(worstGpu, assertReplayed(result, { atol: 1e-6, rtol: 1e-5 }, what));

        // The Wasm parameters against the float64 reference of the same steps.
        const ref = init.map((v) => Float64Array.from(v));
        const refState: RefOptimState[] = SHAPES.map(() => ({ step: 0 }));
        for (let t = 0; t < STEPS; t++) {
          const gs = grads(t, ci);
          const n = t === 0 ? FIRST_STEP_TENSORS : SHAPES.length;
          for (let i = 0; i < n; i++) {
            if (algorithm === "sgd") {
              refSgdStep(ref[i], gs[i], refState[i], { ...opts, lr: LRS[t] });
            } else {
              refAdamStep(ref[i], gs[i], refState[i], {
                ...(opts as AdamOptions),
                lr: LRS[t],
                decoupled: algorithm === "adamw",
              });
            }
          }
        }
        for (let i = 0; i < SHAPES.length; i++) {
          const got = result.tensors.find((t) => t.what === params[i].value.describe())!.wasm[1];
          assertClose(got, ref[i], {
            atol: 1e-6,
            rtol: 1e-5,
            what: `${what} param ${i} vs float64`,
          });
          for (let j = 0; j < got.length; j++) {
            worstRef = Math.max(worstRef, Math.abs(got[j] - ref[i][j]));
          }
        }
        state.dispose();
        for (const p of params) {
          p.value.dispose();
          p.grad!.dispose();
        }
      }
    }
  } finally {
    for (const rt of wasm) rt.destroy();
  }
  console.log(
    `optim twins: largest |Wasm - WebGPU| ${worstGpu.abs}${
      worstGpu.where ? ` (${worstGpu.where})` : ""
    }, |Wasm - float64| ${worstRef}`,
  );
});

Deno.test("sgd(), adam(), adamw() run on both backends, per tensor and fused, and agree", async () => {
  const shapes = [[1], [3, 5], [1001], [2, 3, 3, 3], [40003], [7], [9], [11]];
  for (const [ci, [algorithm, opts]] of CASES.entries()) {
    for (const fused of [false, true]) {
      await onBothBackends(async (rt) => {
        const params: Param[] = shapes.map((s, i) => ({
          name: `p${i}`,
          value: rt.upload(randomArray(size(s), 20 * ci + i), s),
          grad: rt.zeros(s),
          kind: "weight",
        }));
        const state = new OptimizerState(rt);
        for (let t = 0; t < STEPS; t++) {
          params.forEach((p, i) => rt.write(p.grad!, randomArray(p.grad!.size, 7 * t + i, -2, 2)));
          const o = { ...opts, fused, lr: LRS[t] };
          if (algorithm === "sgd") sgd(rt, params, state, o);
          else if (algorithm === "adam") adam(rt, params, state, o as AdamOptions);
          else adamw(rt, params, state, o as AdamOptions);
        }
        const out: Record<string, Float32Array> = {};
        for (const p of params) out[p.name] = await p.value.read() as Float32Array;
        for (const p of params) out[`${p.name}.grad`] = await p.grad!.read() as Float32Array;
        for (const [name, t] of state.tensors()) out[name] = await t.read() as Float32Array;
        state.dispose();
        for (const p of params) {
          p.value.dispose();
          p.grad!.dispose();
        }
        return out;
      }, { what: `${algorithm} ${JSON.stringify({ ...opts, fused })}`, atol: 1e-6, rtol: 1e-5 });
    }
  }
});
