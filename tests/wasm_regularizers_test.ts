/**
 * The WebAssembly twins of shaders/regularizers.wgsl (src/wasm/kernels/regularizers.ts): every
 * dispatch the elastic net, soft SVB, spectral norm penalties and the max-norm projection make
 * on odd and large weights, recorded on the WebGPU runtime and replayed on Wasm with 1 and 2
 * threads (bitwise equal), against what the WGSL wrote; the Wasm elastic net partials also
 * against the float64 reference.
 */
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import { ErrorLog, recordDispatches, replayAll, replayRecord, wasmPair } from "./_wasm_replay.ts";
import type { Param } from "../src/layers/layer.ts";
import {
  elasticNetPenalty,
  softSvbPenalty,
  spectralNormPenalty,
  SpectralState,
} from "../src/regularizers/penalties.ts";
import { maxNorm } from "../src/regularizers/projections.ts";
import { elasticNetRef } from "../src/reference/penalties.ts";

/** Weights: tiny, wide, tall, a conv kernel, and two large enough to split across threads. */
const SHAPES = [[1, 1], [3, 5], [7, 2], [6, 3, 3, 3], [40, 1001], [200, 210]];

Deno.test("regularizers twins replay every penalty and projection dispatch on 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const rts = await wasmPair();
  const log = new ErrorLog();
  const data = SHAPES.map((s, i) => {
    const w = randomArray(s.reduce((a, b) => a * b, 1), 10 + i);
    // Exact zeros: sign(0) = 0 in the L1 gradient.
    for (let j = 0; j < w.length; j += 7) w[j] = 0;
    return w;
  });
  const params: Param[] = SHAPES.map((s, i) => ({
    name: `w${i}`,
    kind: "weight",
    value: gpu.upload(data[i], s),
    grad: gpu.upload(randomArray(data[i].length, 20 + i, -0.1, 0.1), s),
  }));
  const state = new SpectralState(gpu, 3);
  const outs: { dispose(): void }[] = [];
  let replayed = 0;
  try {
    const records = await recordDispatches(gpu, ["regularizers."], () => {
      outs.push(elasticNetPenalty(gpu, params, { l1: 0.3, l2: 0.7 }).value);
      outs.push(elasticNetPenalty(gpu, params, { l1: 0.1, grad: false }).value);
      outs.push(softSvbPenalty(gpu, params, { lambda: 0.05 }).value);
      outs.push(spectralNormPenalty(gpu, params, { lambda: 0.2, state, iters: 2 }).value);
      // Row norms of values in [-1, 1]: about sqrt(k/3); c = 1 clips some rows, not others.
      maxNorm(gpu, params, { c: 1 });
    });
    const entries = new Set(records.map((r) => r.kernel.entry));
    assert.equal(entries.size, 8, `every entry point dispatched: ${[...entries]}`);
    replayed += replayAll(rts, records, log, () => ({ atol: 1e-4, rtol: 1e-4 }), "penalties");

    // The first elastic-net dispatch of each weight: its chunk partials against float64.
    const pen = records.filter((r) => r.kernel.entry === "penalty_main").slice(0, SHAPES.length);
    for (const [i, r] of pen.entries()) {
      const got = replayRecord(rts[1], r).got[r.slot[3]]! as Float32Array;
      const off = r.spec.params!.off, groups = Math.ceil(data[i].length / 2048);
      let sum = 0;
      for (let g = 0; g < groups; g++) sum += got[off + g];
      const ref = elasticNetRef(data[i], 0.3, 0.7);
      assertClose([sum], [ref.value], { atol: 1e-4, rtol: 1e-5, what: `elastic net of w${i}` });
      const grad = replayRecord(rts[1], r).got[r.slot[2]]! as Float32Array;
      const g0 = r.before[r.slot[2]] as Float32Array;
      assertClose(grad.map((g, j) => g - g0[j]), ref.grad, {
        atol: 1e-6,
        rtol: 1e-6,
        what: `elastic net gradient of w${i}`,
      });
    }
  } finally {
    outs.forEach((t) => t.dispose());
    params.forEach((p) => {
      p.value.dispose();
      p.grad!.dispose();
    });
    state.dispose();
    rts.forEach((rt) => rt.destroy());
  }
  console.log(`${replayed} dispatches replayed\n${log.summary()}`);
});
