/**
 * The WebAssembly twins of shaders/layernorm.wgsl (src/wasm/kernels/layernorm.ts): every
 * dispatch LayerNorm and GroupNorm make in forward, backward, jvp and the Jacobian recipe (vjp,
 * tangent), recorded on the WebGPU runtime and replayed on Wasm with 1 and 2 threads (bitwise
 * equal), against what the WGSL wrote; the Wasm forward also against a float64 reference.
 */
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import { ErrorLog, recordDispatches, replayAll, replayRecord, wasmPair } from "./_wasm_replay.ts";
import { GroupNorm, LayerNorm } from "../src/layers/layernorm.ts";
import type { Runtime } from "../src/gpu/runtime.ts";

interface Case {
  what: string;
  x: number[];
  make: (rt: Runtime) => LayerNorm | GroupNorm;
  /** Row length and the affine index of element i, for the float64 reference. */
  m: number;
  aff: ((i: number) => number) | null;
}

const CASES: Case[] = [
  {
    what: "LayerNorm [1] on (3, 1)",
    x: [3, 1],
    make: (rt) => new LayerNorm(rt, "ln", 1),
    m: 1,
    aff: (i) => 0 * i,
  },
  {
    what: "LayerNorm [17] on (1, 17)",
    x: [1, 17],
    make: (rt) => new LayerNorm(rt, "ln", 17),
    m: 17,
    aff: (i) => i % 17,
  },
  {
    what: "LayerNorm [3, 5] on (2, 7, 3, 5)",
    x: [2, 7, 3, 5],
    make: (rt) => new LayerNorm(rt, "ln", [3, 5]),
    m: 15,
    aff: (i) => i % 15,
  },
  {
    what: "LayerNorm [6] without affine",
    x: [5, 6],
    make: (rt) => new LayerNorm(rt, "ln", 6, { elementwiseAffine: false }),
    m: 6,
    aff: null,
  },
  {
    what: "LayerNorm [1001] on (40, 1001)",
    x: [40, 1001],
    make: (rt) => new LayerNorm(rt, "ln", 1001),
    m: 1001,
    aff: (i) => i % 1001,
  },
  {
    what: "GroupNorm 2 of 6 on (3, 6, 5, 5)",
    x: [3, 6, 5, 5],
    make: (rt) => new GroupNorm(rt, "gn", 2, 6),
    m: 75,
    aff: (i) => Math.floor(i / 25) % 6,
  },
  {
    what: "GroupNorm 3 of 6 on (4, 6) (no spatial)",
    x: [4, 6],
    make: (rt) => new GroupNorm(rt, "gn", 3, 6),
    m: 2,
    aff: (i) => i % 6,
  },
  {
    what: "GroupNorm 1 of 3 on (2, 3, 7), eps 1e-3, no affine",
    x: [2, 3, 7],
    make: (rt) => new GroupNorm(rt, "gn", 1, 3, { eps: 1e-3, affine: false }),
    m: 21,
    aff: null,
  },
  {
    what: "GroupNorm 4 of 32 on (8, 32, 13, 13)",
    x: [8, 32, 13, 13],
    make: (rt) => new GroupNorm(rt, "gn", 4, 32),
    m: 1352,
    aff: (i) => Math.floor(i / 169) % 32,
  },
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** y = x̂ γ + β in float64 (γ, β per affine index), biased variance, eps 1e-5 unless given. */
function forwardRef(
  x: Float32Array,
  m: number,
  aff: ((i: number) => number) | null,
  gamma: Float32Array | null,
  beta: Float32Array | null,
  eps: number,
): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / m; r++) {
    let mean = 0;
    for (let j = 0; j < m; j++) mean += x[r * m + j];
    mean /= m;
    let v = 0;
    for (let j = 0; j < m; j++) v += (x[r * m + j] - mean) ** 2;
    const s = 1 / Math.sqrt(v / m + eps);
    for (let j = 0; j < m; j++) {
      const i = r * m + j;
      const xh = (x[i] - mean) * s;
      y[i] = aff && gamma && beta ? xh * gamma[aff(i)] + beta[aff(i)] : xh;
    }
  }
  return y;
}

Deno.test("layernorm twins replay every LayerNorm/GroupNorm dispatch on 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const rts = await wasmPair();
  const log = new ErrorLog();
  let replayed = 0;
  try {
    for (const [n, c] of CASES.entries()) {
      const layer = c.make(gpu);
      const total = size(c.x);
      // Non-trivial γ, β so that every affine path is exercised.
      if (layer.weight) {
        gpu.write(layer.weight, randomArray(layer.weight.size, 100 + n, 0.5, 1.5));
        gpu.write(layer.bias!, randomArray(layer.bias!.size, 200 + n));
      }
      const x = gpu.upload(randomArray(total, 300 + n, -2, 3), c.x);
      const dy = gpu.upload(randomArray(total, 400 + n), c.x);
      const tx = gpu.upload(randomArray(total, 500 + n), c.x);
      const r = gpu.upload(randomArray(total, 600 + n), c.x);
      const records = await recordDispatches(gpu, ["layernorm."], () => {
        layer.forward(x);
        layer.backward(dy);
        layer.jvp(tx);
        layer.jacobian!.vjp!(dy);
        layer.jacobian!.tangent!(dy, r);
      });
      const entries = new Set(records.map((r) => r.kernel.entry));
      // Without affine parameters there is no affine_grad_main.
      assert.equal(entries.size, layer.weight ? 6 : 5, `${c.what}: every entry point dispatched`);
      // Sums over M (or over the batch for γ, β) of values of order 1: error grows like sqrt(n).
      replayed += replayAll(rts, records, log, (rec) => {
        const p = rec.spec.params!;
        const len = rec.kernel.entry === "affine_grad_main" ? (p.rows * p.m) / p.affc : p.m;
        return { atol: 2e-6 * Math.sqrt(len) * 4, rtol: 1e-4 };
      }, c.what);
      // The Wasm forward against float64.
      const fwd = records.find((r) => r.kernel.entry === "forward_main")!;
      const got = replayRecord(rts[1], fwd);
      const outSlot = fwd.slot[7];
      const gamma = layer.weight ? (await layer.weight.read()) as Float32Array : null;
      const beta = layer.bias ? (await layer.bias.read()) as Float32Array : null;
      const xData = (await x.read()) as Float32Array;
      const eps = layer.eps;
      assertClose(got.got[outSlot]!, forwardRef(xData, c.m, c.aff, gamma, beta, eps), {
        atol: 2e-5,
        rtol: 1e-4,
        what: `${c.what} forward vs float64`,
      });
      for (const t of [x, dy, tx, r]) t.dispose();
      layer.dispose();
    }
  } finally {
    rts.forEach((rt) => rt.destroy());
  }
  console.log(`${replayed} dispatches replayed\n${log.summary()}`);
});
