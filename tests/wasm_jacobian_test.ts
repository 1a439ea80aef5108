/**
 * The WebAssembly twins of shaders/jacobian.wgsl (src/wasm/kernels/jacobian.ts): each entry
 * point launched on the WebGPU runtime with odd sizes and every flag (confidence penalty or
 * hinge, with or without gradient; determinant square, C < D and C > D, LeNet's 10 × 784), plus
 * the dispatches of the real ops (random unit rows, the confidence penalty, the determinant and
 * gradient-norm penalties on small MLPs), recorded and replayed on Wasm with 1 and 2 threads
 * (bitwise equal) against what the WGSL wrote; the Wasm determinants also against float64.
 */
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import {
  type DispatchRecord,
  ErrorLog,
  recordDispatches,
  replayAll,
  replayRecord,
  wasmPair,
} from "./_wasm_replay.ts";
import { KERNELS, launch, randomUnitRows } from "../src/regularizers/_chain.ts";
import { confidencePenalty } from "../src/regularizers/confidence.ts";
import { jacobianDeterminantPenalty } from "../src/regularizers/determinant.ts";
import { gradientNormPenalty } from "../src/regularizers/gradient_norm.ts";
import { det as detRef } from "../src/reference/jacobian.ts";
import type { Tensor } from "../src/backend.ts";
import { buildModel, initParams, MLP_TANH } from "./_jacobian_util.ts";

/** Relative to the largest output: the determinant's elimination amplifies rounding. */
function tolerance(r: DispatchRecord): { atol: number; rtol: number } {
  const e = r.kernel.entry;
  if (e === "det_main") {
    const scale = Math.max(...r.after.flatMap((d) => d ? Array.from(d, Math.abs) : [0]));
    return { atol: 1e-4 * scale, rtol: 1e-3 };
  }
  return { atol: 1e-5, rtol: 1e-4 };
}

Deno.test("jacobian twins replay every entry point and the ops' dispatches on 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const rts = await wasmPair();
  const log = new ErrorLog();
  const owned: { dispose(): void }[] = [];
  const up = (n: number, seed: number, shape: number[], lo = -1, hi = 1): Tensor => {
    const t = gpu.upload(randomArray(n, seed, lo, hi), shape);
    owned.push(t);
    return t;
  };
  const empty = (shape: number[]): Tensor => {
    const t = gpu.zeros(shape);
    owned.push(t);
    return t;
  };
  let replayed = 0;
  const dets: { c: number; s: number; n: number; j: Tensor }[] = [];
  try {
    const records = await recordDispatches(gpu, ["jacobian."], () => {
      // normalize_rows_main, one_hot_main: odd rows and classes, and large enough for 2 threads.
      for (const [n, c] of [[1, 1], [3, 17], [1001, 3], [300, 200]]) {
        randomUnitRows(gpu, empty([n, c]), c, { seed: n, step: 2, stream: `s${c}` });
        const oh = empty([n, c]);
        launch(gpu, KERNELS.oneHot, [], [oh], { n: n * c, c, s: c - 1 }, gpu.grid(n * c, 64));
      }
      // confidence_main: penalty / hinge (active and not), with and without the gradient.
      for (const [n, c] of [[1, 1], [5, 10], [1001, 7], [3000, 10]]) {
        const logits = up(n * c, n + c, [n, c], -4, 4);
        for (const len of [0, 1]) {
          for (const s of [0, 1]) {
            const d = up(n * c, 7, [n, c], -0.1, 0.1);
            launch(gpu, KERNELS.confidence, [logits], [d, empty([n])], {
              n,
              c,
              s,
              len,
              alpha: 0.1 / n,
              beta: len ? 1.2 : 0,
              coef: 0.1,
            }, gpu.grid(n, 64));
          }
        }
        // softmax_hvp_main
        const t = up(n * c, 9, [n, c]);
        launch(gpu, KERNELS.softmaxHvp, [logits, t], [empty([n, c])], { n, c }, gpu.grid(n, 64));
      }
      // det_main: square, C < D, C > D, N = 16, LeNet's 10 × 784, and many samples.
      for (
        const [c, s, n, scale] of [
          [1, 1, 3, 1],
          [3, 3, 5, 1],
          [4, 4, 600, 1],
          [3, 7, 4, 1],
          [
            7,
            3,
            4,
            1,
          ],
          [16, 16, 2, 1],
          [16, 20, 2, 0.3],
          [10, 784, 2, 0.05],
        ]
      ) {
        const j = up(c * n * s, c * 100 + s, [c, n, s], -scale, scale);
        dets.push({ c, s, n, j });
        launch(gpu, KERNELS.det, [j], [empty([c, n, s]), empty([n])], {
          n,
          c,
          s,
          alpha: 0.3 / n,
        }, gpu.grid(n, 1));
      }
    });
    replayed += replayAll(rts, records, log, tolerance, "launch");

    // The Wasm per-sample R of square and C < D determinants against float64.
    const detRecords = records.filter((r) => r.kernel.entry === "det_main");
    for (const [i, r] of detRecords.entries()) {
      const { c, s, n } = dets[i];
      const jd = r.before[r.slot[0]];
      const got = replayRecord(rts[1], r).got[r.slot[4]]!;
      const want = new Float64Array(n);
      const nn = Math.min(c, s);
      for (let b = 0; b < n; b++) {
        const g = new Float64Array(nn * nn);
        const at = (i: number, d: number) => jd[(i * n + b) * s + d];
        for (let i = 0; i < nn; i++) {
          for (let k = 0; k < nn; k++) {
            if (c === s) g[i * nn + k] = at(i, k);
            else if (c < s) { for (let d = 0; d < s; d++) g[i * nn + k] += at(i, d) * at(k, d); }
            else for (let q = 0; q < c; q++) g[i * nn + k] += at(q, i) * at(q, k);
          }
        }
        const dt = detRef(g, nn);
        const v = c === s ? dt : Math.sqrt(Math.max(dt, 0));
        want[b] = (v - 1) ** 2;
      }
      const scale = Math.max(1, ...Array.from(want, Math.abs));
      assertClose(got, want, { atol: 1e-4 * scale, rtol: 1e-3, what: `det ${c}x${s} R` });
    }

    // The real ops on small models: their one_hot, det, softmax_hvp and confidence dispatches.
    const opRecords = await recordDispatches(gpu, ["jacobian."], () => {
      const logits = up(6 * 5, 77, [6, 5], -3, 3);
      const d = up(6 * 5, 78, [6, 5], -0.1, 0.1);
      owned.push(confidencePenalty(gpu, logits, { beta: 0.2, dLogits: d }));
      const model = buildModel(gpu, MLP_TANH);
      owned.push(model);
      initParams(gpu, model, 5, 1.5);
      model.eval();
      const x = up(12, 79, [6, 2], 0, 1);
      owned.push(jacobianDeterminantPenalty(gpu, model, x, { lambda: 0.3 }));
      const y = gpu.upload(new Int32Array([0, 1, 2, 3, 0, 1]), [6], "i32");
      owned.push(y);
      owned.push(gradientNormPenalty(gpu, model, x, y, { lambda: 0.1 }));
    });
    const opEntries = new Set(opRecords.map((r) => r.kernel.entry));
    for (const e of ["one_hot_main", "det_main", "softmax_hvp_main", "confidence_main"]) {
      assert.ok(opEntries.has(e), `the ops dispatched ${e}`);
    }
    replayed += replayAll(rts, opRecords, log, tolerance, "ops");
  } finally {
    owned.forEach((t) => t.dispose());
    rts.forEach((rt) => rt.destroy());
  }
  console.log(`${replayed} dispatches replayed\n${log.summary()}`);
});
