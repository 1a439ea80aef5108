/**
 * The WebAssembly twins of shaders/attacks.wgsl (src/wasm/kernels/attacks.ts) against the WebGPU
 * kernels, two ways:
 *
 * - per entry point: `runAttackKernel` with the same random inputs on the WebGPU runtime
 *   (software adapter here) and on Wasm runtimes of 1 and 2 threads, comparing every written
 *   binding: 1 vs 2 threads bitwise, Wasm vs WebGPU within float32 tolerance, and exactly
 *   wherever the kernel chooses (hit flags, indices, counts, which rows are copied); also
 *   against the float64 references of src/reference/attacks.ts;
 * - end to end: FGSM, PGD (L∞, L2), APGD (CE, DLR), CW and DeepFool on a tiny MLP
 *   (src/models) with the same weights on both backends, comparing the adversarial inputs
 *   within float32 tolerance and the success flags exactly. These need the twins of every
 *   kernel the attacks dispatch (elementwise, loss, reduce, random...): while one is missing,
 *   they are ignored, and their names say which.
 */
import { assert, assertClose, getRuntime, getWasmRuntime, randomArray } from "./_util.ts";
import { onBothBackends } from "./_backends.ts";
import { type AttackParams, runAttackKernel } from "../src/attacks/_kernels.ts";
import type { AttackEntry, Launch } from "../src/attacks/_kernels.ts";
import { apgd, cw, deepfool, fgsm, pgd, pgdL2 } from "../src/attacks/mod.ts";
import type { AttackModel } from "../src/attacks/mod.ts";
import { buildModel } from "../src/models/model.ts";
import { modelSpecFromName } from "../src/models/spec.ts";
import type { WasmRuntime } from "../src/wasm/runtime.ts";
import { releaseSharedWasmPair, sharedWasmPair } from "./_wasm_replay.ts";
import { splitRange } from "../src/wasm/kernels/_split.ts";
import { TWINS } from "../src/wasm/kernels/mod.ts";
import type { Backend, Tensor } from "../src/backend.ts";
import type { DispatchSpec, Runtime } from "../src/gpu/runtime.ts";
import type { Kernel } from "../src/kernel.ts";
import attacksSrc from "../shaders/attacks.wgsl" with { type: "text" };
import {
  refApgdStep,
  refCwStep,
  refL2Init,
  refL2Step,
  refLinfInit,
  refLinfStep,
  refLossRows,
} from "../src/reference/attacks.ts";

const SLOTS = ["src0", "src1", "dst0", "dst1", "dst2", "state", "rows", "labels"] as const;
type Slot = typeof SLOTS[number];
type Data = Float32Array | Uint32Array | Int32Array;

interface Case {
  entry: AttackEntry;
  inputs: Partial<Record<Slot, Data>>;
  params: Partial<AttackParams>;
  launch: Launch;
  constants?: Record<string, number>;
}

type Outputs = Partial<Record<Slot, Data>>;

/** The file's Wasm runtime with 1 or 2 threads (one pair, released by the last test). */
const wasmRuntime = async (threads: 1 | 2): Promise<WasmRuntime> =>
  (await sharedWasmPair())[threads - 1];

/** Largest |wasm - WebGPU| seen per entry point (printed by the last test). */
const worst = new Map<string, number>();

/** Runs `runAttackKernel` with the case's inputs on `rt`; returns the written bindings. */
async function runOn(rt: Backend, c: Case): Promise<Outputs> {
  const t: Partial<Record<Slot, Tensor>> = {};
  for (const s of SLOTS) {
    const d = c.inputs[s];
    if (d) t[s] = rt.upload(d, [d.length]);
  }
  runAttackKernel(rt, c.entry, t, c.params, c.launch, c.constants);
  const out: Outputs = {};
  for (const s of SLOTS) {
    if (t[s] && (s.startsWith("dst") || s === "state")) out[s] = await t[s]!.read() as Data;
  }
  for (const x of Object.values(t)) x!.dispose();
  return out;
}

/** Runs a case on WebGPU and on Wasm runtimes of 1 and 2 threads. */
async function run(gpu: Runtime, c: Case): Promise<{ gpu: Outputs; wasm: Outputs[] }> {
  const wasm = [await runOn(await wasmRuntime(1), c), await runOn(await wasmRuntime(2), c)];
  return { gpu: await runOn(gpu, c), wasm };
}

interface Tolerance {
  atol: number;
  rtol: number;
}

/**
 * Runs a case and compares: 1 vs 2 threads bitwise; Wasm vs WebGPU within `tol` (per slot, or
 * exact for the slots in `exact`); `columns` of state compared exactly (flags and counts).
 */
async function check(
  gpu: Runtime,
  c: Case,
  tol: Tolerance,
  opts: { exact?: Slot[]; stateColumns?: { s: number; exact: number[] }; what?: string } = {},
): Promise<{ gpu: Outputs; wasm: Outputs }> {
  const r = await run(gpu, c);
  const what = opts.what ??
    `${c.entry} ${JSON.stringify(c.params)} ${JSON.stringify(c.constants ?? {})}`;
  for (const s of Object.keys(r.gpu) as Slot[]) {
    assert.deepEqual(r.wasm[1][s], r.wasm[0][s], `${what}: ${s}, 2 threads vs 1`);
    const got = r.wasm[0][s]!, want = r.gpu[s]!;
    const exact = opts.exact?.includes(s);
    assertClose(got, want, { ...(exact ? { atol: 0, rtol: 0 } : tol), what: `${what}: ${s}` });
    let e = worst.get(c.entry) ?? 0;
    for (let i = 0; i < got.length; i++) {
      if (!Number.isNaN(want[i])) e = Math.max(e, Math.abs(got[i] - want[i]));
    }
    worst.set(c.entry, e);
    if (s === "state" && opts.stateColumns) {
      const { s: stride, exact: cols } = opts.stateColumns;
      for (let i = 0; i < got.length; i++) {
        if (cols.includes(i % stride)) {
          assert.ok(
            Object.is(got[i], want[i]),
            `${what}: state[${i}] (column ${i % stride}) ${got[i]} vs ${want[i]}`,
          );
        }
      }
    }
  }
  return { gpu: r.gpu, wasm: r.wasm[0] };
}

/** Random gradient in [-1, 1) with exact zeros at every 7th element. */
function grad(n: number, seed: number): Float32Array {
  const g = randomArray(n, seed, -1, 1);
  for (let i = 0; i < n; i += 7) g[i] = 0;
  return g;
}

/** Values in [0, 1] with some exact 0s and 1s. */
function pixels(n: number, seed: number): Float32Array {
  const x = randomArray(n, seed, -0.1, 1.1);
  return x.map((v) => Math.min(1, Math.max(0, v)));
}

/** Logits with many ties (multiples of 0.5 in [-2, 2]). */
function tiedLogits(n: number, seed: number): Float32Array {
  return randomArray(n, seed, -2, 2.5).map((v) => Math.floor(v * 2) / 2);
}

const ELEMENTS = [1, 3, 17, 1001, 70001]; // 70001: split across 2 threads
const SAMPLES: [number, number][] = [[1, 1], [3, 17], [2, 255], [5, 257], [4, 1001], [8, 9001]];

Deno.test("splitRange() gives whole ranges, aligned starts, one part for small work", () => {
  assert.deepEqual(splitRange(10, 2, 100), [[0, 10]]);
  assert.deepEqual(splitRange(0, 2, 100), [[0, 0]]);
  assert.deepEqual(splitRange(70001, 2, 1 << 15, 4), [[0, 35004], [35004, 70001]]);
  assert.deepEqual(splitRange(7, 4, 1), [[0, 2], [2, 4], [4, 6], [6, 7]]);
  assert.equal(splitRange(8, 2, Math.ceil((1 << 15) / 9001)).length, 2); // SAMPLES' last case
  assert.equal(splitRange(1100, 2, 512).length, 2); // the loss_rows split below
});

Deno.test("linf_step, add_clamp (wasm) match WebGPU, odd sizes", async () => {
  const gpu = await getRuntime();
  const two = await wasmRuntime(2);
  assert.equal(two.threads, 2, two.threadsNote ?? "");
  for (const n of ELEMENTS) {
    const x0 = pixels(n, 1), x = pixels(n, 2), g = grad(n, 3);
    for (const alpha of [0.05, -0.3, 0]) {
      await check(gpu, {
        entry: "linf_step",
        inputs: { src0: x0, src1: g, dst0: x },
        params: { n, eps: 0.1, alpha },
        launch: "elementwise",
      }, { atol: 0, rtol: 0 });
    }
    await check(gpu, {
      entry: "add_clamp",
      inputs: { src0: x0, src1: randomArray(n, 4, -0.3, 0.3), dst0: x },
      params: { n },
      launch: "elementwise",
    }, { atol: 0, rtol: 0 });
  }
});

Deno.test("l2_step, l2_init, linf_init (wasm) match WebGPU, odd sizes", async () => {
  const gpu = await getRuntime();
  for (const [b, d] of SAMPLES) {
    const n = b * d;
    const x0 = pixels(n, 5), x = pixels(n, 6), g = grad(n, 7);
    if (b > 1) g.fill(0, 0, d); // a zero gradient row: the 1e-12 floor
    const u = randomArray(b, 8, 0, 1);
    for (const eps of [0.05, 2]) {
      for (const alpha of [0.3, -0.1]) {
        await check(gpu, {
          entry: "l2_step",
          inputs: { src0: x0, src1: g, dst0: x },
          params: { b, d, eps, alpha },
          launch: "sample",
        }, { atol: 1e-6, rtol: 0 });
      }
      await check(gpu, {
        entry: "l2_init",
        inputs: { src0: x0, src1: g, rows: u, dst0: x },
        params: { b, d, eps },
        launch: "sample",
      }, { atol: 1e-6, rtol: 0 });
      await check(gpu, {
        entry: "linf_init",
        inputs: { src0: x0, src1: g, dst0: x },
        params: { b, d, eps },
        launch: "sample",
      }, { atol: 1e-6, rtol: 0 });
    }
  }
});

Deno.test("loss_rows (wasm) matches WebGPU: every LOSS/TARGETED, ties, bad labels", async () => {
  const gpu = await getRuntime();
  for (const [b, k] of [[1, 1], [1, 3], [5, 3], [17, 10], [33, 17], [1100, 10]]) {
    const z = tiedLogits(b * k, 9);
    const zr = randomArray(b * k, 10, -4, 4);
    const labels = Uint32Array.from({ length: b }, (_, i) => (i % 13 === 5 ? k + 2 : (i * 7) % k));
    const state = randomArray(3 * b, 11, 0.1, 5);
    for (const logits of [z, zr]) {
      for (const loss of [0, 1, 2]) {
        for (const targeted of [0, 1]) {
          for (const sign of [1, -1]) {
            await check(
              gpu,
              {
                entry: "loss_rows",
                inputs: {
                  src1: logits,
                  labels,
                  state,
                  dst0: new Float32Array(b * k).fill(7),
                  dst1: new Float32Array(2 * b).fill(7),
                },
                params: { b, k, s: 3, alpha: sign, eps: 0.25 },
                launch: "row",
                constants: { LOSS: loss, TARGETED: targeted },
              },
              { atol: 2e-6, rtol: 2e-6 },
              {
                exact: loss === 0 ? [] : ["dst0"],
                stateColumns: undefined,
              },
            ).then(({ gpu: g, wasm: w }) => {
              const what = `loss_rows ${b}x${k} LOSS ${loss} TARGETED ${targeted}`;
              const gh = g.dst1!.filter((_, i) => i % 2 === 1);
              const wh = w.dst1!.filter((_, i) => i % 2 === 1);
              assert.deepEqual(wh, gh, `${what}: hit flags`);
              // the support of the gradient: which classes the loss picked
              assert.deepEqual(
                w.dst0!.map((v) => (v === 0 ? 0 : 1)),
                g.dst0!.map((v) => (v === 0 ? 0 : 1)),
                `${what}: classes picked`,
              );
            });
          }
        }
      }
    }
  }
});

Deno.test("select_best (wasm) matches WebGPU exactly, ties included", async () => {
  const gpu = await getRuntime();
  for (const [b, d] of SAMPLES) {
    const s = 4;
    const rows = Float32Array.from({ length: b * s }, (_, i) => Math.floor(i * 0.37) % 3);
    const state = Float32Array.from({ length: 2 * b }, (_, i) => Math.floor(i * 0.71) % 3);
    for (const [c0, c1] of [[0, 1], [2, 3]]) {
      await check(gpu, {
        entry: "select_best",
        inputs: { dst0: pixels(b * d, 12), dst1: pixels(b * d, 13), state, rows },
        params: { b, d, s, c0, c1 },
        launch: "sample",
      }, { atol: 0, rtol: 0 });
    }
  }
});

Deno.test("apgd_step, apgd_track, apgd_check (wasm) match WebGPU; flags exactly", async () => {
  const gpu = await getRuntime();
  const S = 8;
  for (const [b, d] of SAMPLES) {
    const n = b * d;
    const state = new Float32Array(b * S);
    for (let i = 0; i < b; i++) {
      state.set([
        [0.02, 0.05, 0][i % 3], // eta
        [-3.4e38, 0.5, 1][i % 3], // best
        [3.4e38, 0.5, 0.2][(i + 1) % 3], // prev
        i % 5, // incr
        [0.5, 1, 2][(i + 2) % 3], // last
        i % 2, // reduced
        (i >> 1) % 2, // hit
        0,
      ], i * S);
    }
    const x0 = pixels(n, 14), x = pixels(n, 15), xo = pixels(n, 16), g = grad(n, 17);
    for (const alpha of [1, 0.75]) {
      await check(gpu, {
        entry: "apgd_step",
        inputs: { src0: x0, src1: g, dst0: x, dst1: xo, state },
        params: { n, d, s: S, eps: 0.03, alpha },
        launch: "elementwise",
      }, { atol: 1e-6, rtol: 0 });
    }
    const rows = Float32Array.from(
      { length: 2 * b },
      (_, i) => i % 2 ? (i >> 1) % 3 === 0 ? 1 : 0 : [0.5, 0.7, 0.2, 1][(i >> 1) % 4],
    );
    await check(gpu, {
      entry: "apgd_track",
      inputs: {
        src0: x,
        src1: g,
        dst0: pixels(n, 18),
        dst1: pixels(n, 19),
        dst2: pixels(n, 20),
        state,
        rows,
      },
      params: { b, d, s: S },
      launch: "sample",
    }, { atol: 0, rtol: 0 });
    for (const f0 of [1.5, 3]) {
      await check(gpu, {
        entry: "apgd_check",
        inputs: { src0: x0, src1: g, dst0: x, dst1: pixels(n, 21), state },
        params: { b, d, s: S, f0 },
        launch: "sample",
      }, { atol: 0, rtol: 0 });
    }
  }
});

Deno.test("tanh_map, atanh_init, cw_step (wasm) match WebGPU within float32 rounding", async () => {
  const gpu = await getRuntime();
  for (const n of [...ELEMENTS, 9001]) {
    const x0 = pixels(n, 22), w = randomArray(n, 23, -4, 4);
    await check(gpu, {
      entry: "tanh_map",
      inputs: { src1: w, dst0: new Float32Array(n) },
      params: { n },
      launch: "elementwise",
    }, { atol: 1e-6, rtol: 1e-6 });
    await check(gpu, {
      entry: "atanh_init",
      inputs: { src0: x0, dst0: w, dst1: randomArray(n, 24), dst2: randomArray(n, 25) },
      params: { n },
      launch: "elementwise",
    }, { atol: 1e-5, rtol: 1e-6 });
    for (const t of [1, 7]) {
      await check(gpu, {
        entry: "cw_step",
        inputs: {
          src0: x0,
          src1: randomArray(n, 26, -2, 2),
          dst0: randomArray(n, 27, -3, 3),
          dst1: randomArray(n, 28, -0.1, 0.1),
          dst2: randomArray(n, 29, 0, 0.01),
        },
        params: { n, alpha: 0.01, f0: 1 - 0.9 ** t, f1: 1 - 0.999 ** t },
        launch: "elementwise",
      }, { atol: 1e-6, rtol: 1e-5 });
    }
  }
});

Deno.test("cw_track, cw_search (wasm) match WebGPU; the norm is the GPU tree's", async () => {
  const gpu = await getRuntime();
  const S = 5;
  for (const [b, d] of SAMPLES) {
    const n = b * d;
    const x0 = pixels(n, 30);
    const xp = x0.map((v, i) => Math.min(1, Math.max(0, v + 0.01 * Math.sin(i))));
    const rows = Float32Array.from(
      { length: 2 * b },
      (_, i) => (i % 2 ? ((i >> 1) % 3 ? 1 : 0) : 0),
    );
    const state = new Float32Array(b * S);
    for (let i = 0; i < b; i++) state.set([1, 0, 1e10, [3.4e38, 0, 1e-4 * d][i % 3], 0], i * S);
    const first = await check(
      gpu,
      {
        entry: "cw_track",
        inputs: { src0: x0, src1: xp, dst0: pixels(n, 31), state, rows },
        params: { b, d, s: S },
        launch: "sample",
      },
      { atol: 0, rtol: 1e-6 },
      { exact: ["dst0"], stateColumns: { s: S, exact: [0, 1, 2, 4] } },
    );
    // Again with the best distance set to the GPU's own ||x' - x0||² (a tie): "better" must be
    // false on both, so the sum must be the GPU's to the bit.
    await check(
      gpu,
      {
        entry: "cw_track",
        inputs: { src0: x0, src1: xp, dst0: first.gpu.dst0!, state: first.gpu.state!, rows },
        params: { b, d, s: S },
        launch: "sample",
      },
      { atol: 0, rtol: 0 },
      { what: `cw_track tie ${b}x${d}` },
    );
    const search = new Float32Array(b * S);
    for (let i = 0; i < b; i++) {
      search.set([0.01 * (i + 1), i % 4 ? 0 : 0.005, [1e10, 0.5][i % 2], 1, (i >> 1) % 2], i * S);
    }
    await check(gpu, {
      entry: "cw_search",
      inputs: { state: search },
      params: { b, s: S },
      launch: "row",
    }, { atol: 0, rtol: 0 });
  }
});

Deno.test("deepfool_begin/onehot_diff/deepfool_cand/deepfool_step (wasm) match WebGPU", async () => {
  const gpu = await getRuntime();
  const S = 3;
  for (const [b, d] of SAMPLES) {
    for (const k of [3, 10]) {
      const n = b * d;
      const logits = tiedLogits(b * k, 32);
      const labels = Uint32Array.from({ length: b }, (_, i) => (i * 5) % k);
      const state = new Float32Array(b * S);
      for (let i = 0; i < b; i++) state.set([0, 0, i % 4 === 3 ? 0 : 1], i * S);
      const begun = await check(gpu, {
        entry: "deepfool_begin",
        inputs: { src1: logits, labels, state },
        params: { b, k, s: S },
        launch: "row",
      }, { atol: 0, rtol: 0 });
      let st = begun.gpu.state as Float32Array;
      let wBest = pixels(n, 33);
      for (let c0 = 0; c0 < k; c0++) {
        await check(gpu, {
          entry: "onehot_diff",
          inputs: { dst0: new Float32Array(b * k).fill(5), labels, state: st },
          params: { n: b * k, k, s: S, c0 },
          launch: "elementwise",
        }, { atol: 0, rtol: 0 });
        const w = grad(n, 34 + c0);
        // On the GPU's state each time, so both backends decide from the same best ratio.
        const cand = await check(
          gpu,
          {
            entry: "deepfool_cand",
            inputs: { src1: w, rows: logits, labels, dst0: wBest, state: st },
            params: { b, d, k, s: S, c0 },
            launch: "sample",
          },
          { atol: 0, rtol: 1e-6 },
          { exact: ["dst0"], stateColumns: { s: S, exact: [2] } },
        );
        st = cand.gpu.state as Float32Array;
        wBest = cand.gpu.dst0 as Float32Array;
      }
      await check(gpu, {
        entry: "deepfool_step",
        inputs: {
          src0: pixels(n, 35),
          dst0: pixels(n, 36),
          dst1: wBest,
          dst2: grad(n, 37),
          state: st,
        },
        params: { n, d, s: S, alpha: 1.02 },
        launch: "elementwise",
      }, { atol: 1e-6, rtol: 1e-6 });
    }
  }
});

Deno.test("mask_label (wasm) matches WebGPU, labels past K ignored", async () => {
  const gpu = await getRuntime();
  for (const [b, k] of [[1, 2], [7, 3], [1001, 10]]) {
    const labels = Int32Array.from(
      { length: b },
      (_, i) => (i % 5 === 4 ? -1 : i % 11 === 3 ? k : i % k),
    );
    await check(gpu, {
      entry: "mask_label",
      inputs: { dst0: randomArray(b * k, 38, 0, 1), labels },
      params: { b, k },
      launch: "row",
    }, { atol: 0, rtol: 0 });
  }
});

Deno.test("attacks twins (wasm) match the float64 references of src/reference/attacks.ts", async () => {
  const gpu = await getRuntime();
  for (const [b, d] of SAMPLES) {
    const n = b * d;
    const x0 = pixels(n, 40), x = pixels(n, 41), g = grad(n, 42), u = randomArray(b, 43, 0, 1);
    const what = `${b}x${d}`;
    const wasm = async (c: Case, slot: Slot) => (await run(gpu, c)).wasm[0][slot]!;
    const linf = { eps: 0.1, alpha: -0.04 };
    assertClose(
      await wasm({
        entry: "linf_step",
        inputs: { src0: x0, src1: g, dst0: x },
        params: { n, ...linf },
        launch: "elementwise",
      }, "dst0"),
      refLinfStep(x0, x, g, linf),
      { atol: 1e-6, rtol: 0, what: `linf_step ${what}` },
    );
    const l2 = { eps: 0.5, alpha: 0.3 };
    assertClose(
      await wasm({
        entry: "l2_step",
        inputs: { src0: x0, src1: g, dst0: x },
        params: { b, d, ...l2 },
        launch: "sample",
      }, "dst0"),
      refL2Step(x0, x, g, d, l2),
      { atol: 2e-6, rtol: 1e-5, what: `l2_step ${what}` },
    );
    assertClose(
      await wasm({
        entry: "l2_init",
        inputs: { src0: x0, src1: g, rows: u, dst0: x },
        params: { b, d, eps: 0.5 },
        launch: "sample",
      }, "dst0"),
      refL2Init(x0, g, u, d, 0.5),
      { atol: 2e-6, rtol: 1e-5, what: `l2_init ${what}` },
    );
    assertClose(
      await wasm({
        entry: "linf_init",
        inputs: { src0: x0, src1: g, dst0: x },
        params: { b, d, eps: 0.1 },
        launch: "sample",
      }, "dst0"),
      refLinfInit(x0, g, d, 0.1),
      { atol: 2e-6, rtol: 1e-5, what: `linf_init ${what}` },
    );
    const state = new Float32Array(8 * b);
    const eta = randomArray(b, 44, 0, 0.05);
    eta.forEach((v, i) => (state[8 * i] = v));
    const xo = pixels(n, 45);
    assertClose(
      await wasm({
        entry: "apgd_step",
        inputs: { src0: x0, src1: g, dst0: x, dst1: xo, state },
        params: { n, d, s: 8, eps: 0.1, alpha: 0.75 },
        launch: "elementwise",
      }, "dst0"),
      refApgdStep(x0, x, xo, g, eta, d, { eps: 0.1, a: 0.75 }),
      { atol: 1e-6, rtol: 0, what: `apgd_step ${what}` },
    );
    const w = randomArray(n, 46, -2, 2), m = randomArray(n, 47, -0.1, 0.1);
    const v = randomArray(n, 48, 0, 0.01);
    const cwOut = (await run(gpu, {
      entry: "cw_step",
      inputs: { src0: x0, src1: g, dst0: w, dst1: m, dst2: v },
      params: { n, alpha: 0.01, f0: 1 - 0.9 ** 3, f1: 1 - 0.999 ** 3 },
      launch: "elementwise",
    })).wasm[0];
    const ref = refCwStep(x0, g, w, m, v, { lr: 0.01, t: 3 });
    assertClose(cwOut.dst0!, ref.w, { atol: 1e-5, rtol: 1e-5, what: `cw_step w ${what}` });
    assertClose(cwOut.dst1!, ref.m, { atol: 1e-6, rtol: 1e-5, what: `cw_step m ${what}` });
    assertClose(cwOut.dst2!, ref.v, { atol: 1e-7, rtol: 1e-5, what: `cw_step v ${what}` });
  }
  for (const [b, k] of [[1, 3], [5, 3], [17, 10], [33, 17]]) {
    const z = randomArray(b * k, 49, -4, 4);
    const labels = Uint32Array.from({ length: b }, (_, i) => (i * 7) % k);
    const c = randomArray(b, 50, 0.1, 5);
    for (const loss of [0, 1, 2] as const) {
      for (const targeted of loss === 1 ? [false] : [false, true]) {
        const sign = targeted && loss === 0 ? -1 : 1;
        const out = (await run(gpu, {
          entry: "loss_rows",
          inputs: {
            src1: z,
            labels,
            state: c,
            dst0: new Float32Array(b * k),
            dst1: new Float32Array(2 * b),
          },
          params: { b, k, s: 1, alpha: sign, eps: 0.5 },
          launch: "row",
          constants: { LOSS: loss, TARGETED: targeted ? 1 : 0 },
        })).wasm[0];
        const ref = refLossRows(z, labels, k, { loss, sign, targeted, kappa: 0.5, c });
        const what = `loss_rows ${loss} targeted ${targeted} ${b}x${k}`;
        assertClose(out.dst0!, ref.dz, { atol: 1e-5, rtol: 1e-4, what: `${what} dz` });
        const rows = out.dst1!;
        assertClose(rows.filter((_, i) => i % 2 === 0), ref.loss, {
          atol: 1e-5,
          rtol: 1e-4,
          what: `${what} loss`,
        });
        assert.deepEqual(
          Array.from(rows.filter((_, i) => i % 2 === 1)),
          Array.from(ref.hit),
          `${what} hit`,
        );
      }
    }
  }
});

Deno.test("attacks twins reject bindings too small for their params", async () => {
  const rt = await wasmRuntime(1);
  const x = rt.zeros([10]), small = rt.zeros([4]);
  const kernel: Kernel = { name: "attacks.linf_step", code: attacksSrc, entry: "linf_step" };
  assert.throws(
    () =>
      rt.dispatch(kernel, {
        bindings: [x, small, x, x, x, x, x, x],
        params: { n: 10, eps: 0.1, alpha: 0.1 },
        workgroups: [1],
      }),
    /Kernel 'attacks.linf_step': src1 tensor #\d+ f32\[4\] holds 4 elements, the params address 10/,
  );
  assert.throws(
    () =>
      rt.dispatch({ ...kernel, name: "attacks.loss_rows", entry: "loss_rows" }, {
        bindings: [x, x, x, x, x, x, x, x],
        params: { b: 2, k: 3, s: 1, alpha: 1, eps: 0 },
        constants: { LOSS: 3 },
        workgroups: [1],
      }),
    /LOSS must be 0, 1 or 2, got 3/,
  );
  for (const t of [x, small]) t.dispose();
});

// ---- end to end ----

const B = 6, IN = 12, CLASSES = 4;
const XS = randomArray(B * IN, 60, 0, 1);

/** The MLP 12 -> 16 -> 4 (tanh) of src/models, with the same seeded weights on any backend. */
function tinyMlp(rt: Backend): ReturnType<typeof buildModel> {
  const model = buildModel(rt, modelSpecFromName("mlp", { inputs: IN, hidden: [16], classes: 4 }));
  let seed = 61;
  for (const p of model.params()) {
    const fan = p.value.shape.length > 1 ? p.value.size / p.value.shape[0] : 4;
    const a = 2 / Math.sqrt(fan);
    rt.write(p.value, randomArray(p.value.size, seed++, -a, a));
  }
  return model;
}

interface AttackCase {
  name: string;
  run: (rt: Backend, model: AttackModel, x: Tensor, y: Tensor) => Tensor;
  atol: number;
}

const ATTACKS: AttackCase[] = [
  { name: "fgsm", run: (rt, m, x, y) => fgsm(rt, m, x, y, { eps: 0.05 }), atol: 1e-6 },
  {
    name: "fgsm least-likely target",
    run: (rt, m, x, y) => fgsm(rt, m, x, y, { eps: 0.05, target: "least-likely" }),
    atol: 1e-6,
  },
  {
    name: "pgd",
    run: (rt, m, x, y) => pgd(rt, m, x, y, { eps: 0.1, steps: 6, randomStart: false }),
    atol: 1e-6,
  },
  {
    name: "pgd random start, 2 restarts, random targets",
    run: (rt, m, x, y) =>
      pgd(rt, m, x, y, { eps: 0.1, steps: 4, restarts: 2, target: "random", seed: 5 }),
    atol: 1e-6,
  },
  {
    name: "pgdL2 random start",
    run: (rt, m, x, y) => pgdL2(rt, m, x, y, { eps: 0.5, steps: 6, seed: 2 }),
    atol: 1e-5,
  },
  {
    name: "apgd-ce",
    run: (rt, m, x, y) => apgd(rt, m, x, y, { eps: 0.1, steps: 10, randomStart: false }),
    atol: 1e-5,
  },
  {
    name: "apgd-dlr random start, 2 restarts",
    run: (rt, m, x, y) => apgd(rt, m, x, y, { eps: 0.1, steps: 10, loss: "dlr", restarts: 2 }),
    atol: 1e-5,
  },
  {
    name: "cw",
    run: (rt, m, x, y) => cw(rt, m, x, y, { c: 0.5, steps: 15, searchSteps: 3, lr: 0.05 }),
    atol: 1e-4,
  },
  { name: "deepfool", run: (rt, m, x, y) => deepfool(rt, m, x, y, { steps: 5 }), atol: 1e-4 },
];

function argmaxRows(logits: Float32Array): Int32Array {
  return Int32Array.from({ length: B }, (_, b) => {
    const row = Array.from(logits.subarray(b * CLASSES, (b + 1) * CLASSES));
    return row.indexOf(Math.max(...row));
  });
}

/**
 * The adversarial inputs, the logits there and the success flags (prediction changed) of one
 * attack on `rt`. The labels are the clean predictions. (Where a label ranks third among the
 * logits, DLR is constant, loss 1, and its gradient exactly 0 on both backends, as in PyTorch:
 * loss_rows takes num / den² as (num / den) / den.)
 */
async function attackOn(rt: Backend, c: AttackCase) {
  const model = tinyMlp(rt);
  const x = rt.upload(XS, [B, IN]);
  const labels = argmaxRows(await model.forward(x).read() as Float32Array);
  const y = rt.upload(labels, [B]);
  const adv = c.run(rt, model, x, y);
  const logits = await model.forward(adv).read() as Float32Array;
  const pred = argmaxRows(logits);
  const success = Float32Array.from(pred, (p, b) => (p !== labels[b] ? 1 : 0));
  const out = { adv: await adv.read(), logits, success };
  for (const t of [x, y, adv]) t.dispose();
  model.dispose();
  return out;
}

/** The kernels (name/entry) each attack dispatches on WebGPU that have no Wasm twin yet. */
async function missingTwins(c: AttackCase): Promise<string[]> {
  const gpu = await getRuntime();
  const seen = new Set<string>();
  const dispatch = gpu.dispatch;
  gpu.dispatch = (kernel: Kernel, spec: DispatchSpec) => {
    const entry = kernel.entry ?? "main";
    if (!TWINS[kernel.name]?.[entry]) seen.add(`${kernel.name}/${entry}`);
    dispatch.call(gpu, kernel, spec);
  };
  try {
    await attackOn(gpu, c);
  } finally {
    gpu.dispatch = dispatch;
  }
  return [...seen].sort();
}

for (const c of ATTACKS) {
  const missing = await missingTwins(c);
  Deno.test({
    name: `${c.name} (wasm) matches WebGPU end to end on a tiny MLP` +
      (missing.length ? ` [ignored: no twin yet for ${missing.join(", ")}]` : ""),
    ignore: missing.length > 0,
    fn: async () => {
      const { webgpu, wasm } = await onBothBackends((rt) => attackOn(rt, c), {
        atol: c.atol,
        rtol: 1e-4,
        exact: ["success"],
        what: c.name,
      });
      let e = 0;
      wasm.adv.forEach((v, i) => (e = Math.max(e, Math.abs(v - webgpu.adv[i]))));
      const fooled = wasm.success.reduce((a, v) => a + v, 0);
      worst.set(`${c.name} (end to end, ${fooled}/${B} fooled)`, e);
      // the twins do not depend on the thread count
      const one = await attackOn(await wasmRuntime(1), c);
      assert.deepEqual(
        one.adv,
        wasm.adv,
        `${c.name}: 1 vs ${(await getWasmRuntime()).threads} threads`,
      );
    },
  });
}

Deno.test("largest |wasm - WebGPU| per attacks entry point", async () => {
  console.log(Object.fromEntries([...worst].map(([k, v]) => [k, v.toExponential(2)])));
  await releaseSharedWasmPair();
});
