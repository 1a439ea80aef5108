import { torch } from "./_torch.ts";
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import type { Backend } from "../src/backend.ts";
import type { Param } from "../src/layers/layer.ts";
import {
  adam,
  type AdamOptions,
  adamw,
  createOptimizer,
  OptimizerState,
  sgd,
  type SgdOptions,
  zeroGrads,
} from "../src/train/optim.ts";
import { refAdamStep, type RefOptimState, refSgdStep } from "../src/reference/optim.ts";
import { constantLr, cosineAnnealing, linearWarmup, stepDecay } from "../src/train/schedule.ts";

const SHAPES = [[1], [3, 5], [257], [2, 3, 3, 3]];
const STEPS = 5;
const LRS = [0.1, 0.05, 0.05, 0.02, 0.3];

interface Case {
  algorithm: "sgd" | "adam" | "adamw";
  /** Options in this library's names. */
  opts: Omit<SgdOptions, "lr"> | Omit<AdamOptions, "lr">;
  /** The same in torch's names. */
  torch: Record<string, unknown>;
}

const CASES: Case[] = [
  { algorithm: "sgd", opts: {}, torch: {} },
  { algorithm: "sgd", opts: { momentum: 0.9 }, torch: { momentum: 0.9 } },
  {
    algorithm: "sgd",
    opts: { momentum: 0.8, dampening: 0.3, weightDecay: 0.05 },
    torch: { momentum: 0.8, dampening: 0.3, weight_decay: 0.05 },
  },
  {
    algorithm: "sgd",
    opts: { momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    torch: { momentum: 0.9, nesterov: true, weight_decay: 5e-4 },
  },
  {
    algorithm: "sgd",
    opts: { maximize: true, weightDecay: 0.1 },
    torch: { maximize: true, weight_decay: 0.1 },
  },
  { algorithm: "adam", opts: {}, torch: {} },
  {
    algorithm: "adam",
    opts: { betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.01, amsgrad: true },
    torch: { betas: [0.8, 0.99], eps: 1e-6, weight_decay: 0.01, amsgrad: true },
  },
  // A large eps makes its placement (after the bias correction of sqrt(v)) visible.
  { algorithm: "adam", opts: { eps: 0.05 }, torch: { eps: 0.05 } },
  { algorithm: "adamw", opts: {}, torch: {} },
  {
    algorithm: "adamw",
    opts: { weightDecay: 0.1, amsgrad: true, maximize: true },
    torch: { weight_decay: 0.1, amsgrad: true, maximize: true },
  },
];

function makeParams(rt: Backend, seed: number): { params: Param[]; init: Float32Array[] } {
  const init = SHAPES.map((s, i) => randomArray(s.reduce((a, b) => a * b, 1), seed + i));
  const params = SHAPES.map((s, i): Param => ({
    name: `layer${i}.weight`,
    value: rt.upload(init[i], s),
    grad: rt.zeros(s),
    kind: i % 2 ? "bias" : "weight",
  }));
  return { params, init };
}

/** Gradients per step per param; some elements exactly 0 (Adam's m/denom = 0 path). */
function makeGrads(seed: number): Float32Array[][] {
  return Array.from({ length: STEPS }, (_, t) =>
    SHAPES.map((s, i) => {
      const g = randomArray(s.reduce((a, b) => a * b, 1), seed + 100 * t + i, -2, 2);
      if (g.length > 2) g[1] = 0;
      return g;
    }));
}

function step(rt: Backend, c: Case, params: Param[], state: OptimizerState, lr: number): void {
  if (c.algorithm === "sgd") sgd(rt, params, state, { ...c.opts, lr });
  else if (c.algorithm === "adam") adam(rt, params, state, { ...c.opts, lr });
  else adamw(rt, params, state, { ...c.opts, lr });
}

Deno.test("sgd(), adam(), adamw() match float64 references and PyTorch 1.13 trajectories", async () => {
  const rt = await getBackend();
  const jobs = CASES.map((c, ci) => {
    const init = SHAPES.map((s, i) => randomArray(s.reduce((a, b) => a * b, 1), 10 * ci + i));
    return {
      op: "optim",
      algorithm: c.algorithm,
      params: SHAPES.map((shape, i) => ({ shape, data: [...init[i]] })),
      grads: makeGrads(ci).map((gs) => gs.map((g) => [...g])),
      lrs: LRS,
      options: c.torch,
    };
  });
  const want = await torch(jobs);
  for (let ci = 0; ci < CASES.length; ci++) {
    const c = CASES[ci];
    const { params, init } = makeParams(rt, 10 * ci);
    const grads = makeGrads(ci);
    const state = new OptimizerState(rt);
    const ref = init.map((v) => Float64Array.from(v));
    const refState: RefOptimState[] = SHAPES.map(() => ({ step: 0 }));
    const traj = (want[ci] as { trajectory: number[][][] }).trajectory;
    for (let t = 0; t < STEPS; t++) {
      params.forEach((p, i) => rt.write(p.grad!, grads[t][i]));
      step(rt, c, params, state, LRS[t]);
      for (let i = 0; i < params.length; i++) {
        if (c.algorithm === "sgd") {
          refSgdStep(ref[i], grads[t][i], refState[i], { ...c.opts, lr: LRS[t] });
        } else {
          refAdamStep(ref[i], grads[t][i], refState[i], {
            ...(c.opts as AdamOptions),
            lr: LRS[t],
            decoupled: c.algorithm === "adamw",
          });
        }
        const got = await params[i].value.read();
        const what = `${c.algorithm} ${JSON.stringify(c.opts)} step ${t} param ${i}`;
        assertClose(got, ref[i], { atol: 1e-6, rtol: 1e-5, what: `${what} vs float64` });
        assertClose(got, traj[t][i], { atol: 1e-7, rtol: 1e-5, what: `${what} vs torch` });
      }
    }
    for (const p of params) assert.equal(state.steps(p.name), STEPS);
    state.dispose();
    for (const p of params) {
      p.value.dispose();
      p.grad!.dispose();
    }
  }
});

Deno.test("createOptimizer() steps with fused dispatches, no allocation after the first step", async () => {
  const rt = await getBackend();
  const { params } = makeParams(rt, 7);
  const frozen: Param = { name: "bn.running_mean", value: rt.zeros([4]), kind: "buffer" };
  const all = [...params, frozen];
  const opt = createOptimizer(rt, {
    algorithm: "adamw",
    weightDecay: 0.01,
    amsgrad: true,
    zeroGrad: true,
  });
  params.forEach((p, i) => rt.write(p.grad!, randomArray(p.grad!.size, 70 + i)));
  opt.step(all, 1e-3);
  await rt.sync();
  assert.deepEqual(
    [...opt.state.tensors().keys()].sort(),
    params.flatMap((p) => ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"].map((k) => `${p.name}.${k}`))
      .sort(),
  );
  for (const p of params) assert.ok((await p.grad!.read()).every((g) => g === 0), "zeroGrad");
  const created = rt.memory().created, dispatches = rt.dispatches;
  params.forEach((p, i) => rt.write(p.grad!, randomArray(p.grad!.size, 80 + i)));
  opt.step(all, 5e-4);
  // Fused: up to 6 Adam tensors per dispatch on a GPU with 30 storage bindings; per tensor on a
  // CPU adapter (see canFuse in src/train/optim.ts).
  const fused = !rt.isCpuAdapter && rt.limits.maxStorageBuffersPerShaderStage >= 30;
  assert.equal(rt.dispatches - dispatches, fused ? Math.ceil(params.length / 6) : params.length);
  await rt.sync();
  assert.equal(rt.memory().created, created);
  assert.equal(opt.state.steps(params[0].name), 2);
  assert.equal(opt.state.steps(frozen.name), 0);
  opt.dispose();
  assert.throws(() => opt.step(params, 1e-3), /used after dispose/);
  for (const p of all) {
    p.value.dispose();
    p.grad?.dispose();
  }
});

Deno.test("sgd(), adam(), adamw() fused over many tensors give the bits of one dispatch each", async () => {
  const rt = await getBackend();
  // 23 tensors: several fused dispatches (10 SGD, 6 Adam slots), one of them partly filled.
  const shapes = Array.from({ length: 23 }, (_, i) => (i % 3 === 0 ? [i + 1, 7] : [5 * i + 2]));
  const make = (seed: number): Param[] =>
    shapes.map((s, i) => ({
      name: `p${i}`,
      value: rt.upload(randomArray(s[0] * (s[1] ?? 1), seed + i), s),
      grad: rt.zeros(s),
      kind: "weight",
    }));
  const cases: [Case["algorithm"], Record<string, unknown>][] = [
    ["sgd", {}],
    ["sgd", { momentum: 0.9, nesterov: true, weightDecay: 0.01, zeroGrad: true }],
    ["adam", { weightDecay: 0.1, amsgrad: true }],
    ["adamw", { maximize: true, zeroGrad: true }],
  ];
  for (const [algorithm, opts] of cases) {
    const runs: Float32Array[][] = [];
    for (const fused of [true, false]) {
      const params = make(500);
      const state = new OptimizerState(rt);
      const c = { algorithm, opts: { ...opts, fused }, torch: {} } as Case;
      for (let t = 0; t < 3; t++) {
        params.forEach((p, i) => rt.write(p.grad!, randomArray(p.grad!.size, 900 + 31 * t + i)));
        // The last tensors join at the second step: their step count (and first momentum
        // step) differ from the others', so a fused step splits there.
        const before = rt.dispatches;
        step(rt, c, t === 0 ? params.slice(0, 17) : params, state, 0.05);
        if (t === 2) {
          // Fused where the device has the bindings: 3 SGD (10 slots) or 4 Adam (6 slots).
          const slots = algorithm === "sgd" ? 10 : 6;
          const can = fused && rt.limits.maxStorageBuffersPerShaderStage >= 30;
          assert.equal(rt.dispatches - before, can ? Math.ceil(23 / slots) : 23);
        }
      }
      runs.push(await Promise.all(params.map(async (p) => await p.value.read() as Float32Array)));
      for (const [, t] of state.tensors()) runs.at(-1)!.push(await t.read() as Float32Array);
      state.dispose();
      for (const p of params) {
        p.value.dispose();
        p.grad!.dispose();
      }
    }
    assert.equal(runs[0].length, runs[1].length);
    runs[0].forEach((a, i) =>
      assert.deepEqual([...a], [...runs[1][i]], `${algorithm} tensor ${i}`)
    );
  }
});

Deno.test("sgd() leaves gradients alone by default and zeroGrads() clears them", async () => {
  const rt = await getBackend();
  const g = randomArray(6, 3);
  const p: Param = { name: "w", value: rt.zeros([6]), grad: rt.upload(g, [6]), kind: "weight" };
  const state = new OptimizerState(rt);
  sgd(rt, [p], state, { lr: 0.5 });
  assertClose(await p.grad!.read(), g, { atol: 0, rtol: 0 });
  assertClose(await p.value.read(), Array.from(g, (v) => -0.5 * v), { atol: 0, rtol: 1e-7 });
  zeroGrads(rt, [p]);
  assert.ok((await p.grad!.read()).every((v) => v === 0));
  state.dispose();
  p.value.dispose();
  p.grad!.dispose();
});

Deno.test("sgd() and adam() reject bad hyperparameters, shapes and mixed states", async () => {
  const rt = await getBackend();
  const p: Param = { name: "w", value: rt.zeros([3]), grad: rt.zeros([3]), kind: "weight" };
  const state = new OptimizerState(rt);
  assert.throws(
    () => sgd(rt, [p], state, { lr: 0.1, nesterov: true }),
    /Nesterov momentum requires/,
  );
  assert.throws(() => sgd(rt, [p], state, { lr: -1 }), /invalid learning rate -1/);
  assert.throws(
    () => adam(rt, [p], state, { lr: 0.1, betas: [1, 0.9] }),
    /beta parameter at index 0/,
  );
  assert.throws(() => sgd(rt, [p, p], state, { lr: 0.1 }), /'w' appears twice/);
  sgd(rt, [p], state, { lr: 0.1, momentum: 0.9 });
  assert.throws(() => adamw(rt, [p], state, { lr: 0.1 }), /holds sgd buffers/);
  const q: Param = { name: "w", value: rt.zeros([4]), grad: rt.zeros([4]), kind: "weight" };
  assert.throws(
    () => sgd(rt, [q], state, { lr: 0.1 }),
    /'w' has shape \[4\] but its optimizer state was made for \[3\]/,
  );
  const r: Param = { name: "v", value: rt.zeros([4]), grad: rt.zeros([5]), kind: "weight" };
  assert.throws(() => sgd(rt, [r], state, { lr: 0.1 }), /must be f32 of the same size/);
  state.dispose();
  for (const x of [p, q, r]) {
    x.value.dispose();
    x.grad!.dispose();
  }
  await rt.sync();
});

Deno.test("stepDecay(), cosineAnnealing(), linearWarmup() match PyTorch 1.13 schedulers", async () => {
  const n = 40;
  const jobs = [
    {
      op: "schedule",
      kind: "multistep",
      lr: 0.1,
      steps: n,
      kwargs: { milestones: [13, 27], gamma: 0.1 },
    },
    {
      op: "schedule",
      kind: "multistep",
      lr: 0.5,
      steps: n,
      kwargs: { milestones: [5, 5, 30], gamma: 0.5 },
    },
    { op: "schedule", kind: "cosine", lr: 0.1, steps: n, kwargs: { T_max: 30, eta_min: 1e-3 } },
    { op: "schedule", kind: "cosine", lr: 0.05, steps: n, kwargs: { T_max: 40 } },
    { op: "schedule", kind: "linear", lr: 0.2, steps: n, kwargs: { total_iters: 7 } },
    {
      op: "schedule",
      kind: "linear",
      lr: 0.2,
      steps: n,
      kwargs: { start_factor: 0.01, total_iters: 10 },
    },
  ];
  const want = (await torch(jobs)).map((r) => r.lrs as number[]);
  const ours = [
    stepDecay(0.1, { stepAt: [1 / 3, 2 / 3], total: 40 }), // milestones round(13.3), round(26.7)
    stepDecay(0.5, { stepAt: [5, 5, 30], gamma: 0.5 }),
    cosineAnnealing(0.1, { tMax: 30, etaMin: 1e-3 }),
    cosineAnnealing(0.05, { tMax: 40 }),
    linearWarmup(constantLr(0.2), { steps: 7 }),
    linearWarmup(constantLr(0.2), { steps: 10, startFactor: 0.01 }),
  ];
  ours.forEach((s, i) => {
    const got = Array.from({ length: n }, (_, t) => s(t));
    // torch's recursive (chainable) forms accumulate rounding: 1e-12 relative is ample.
    assertClose(got, want[i], { atol: 1e-15, rtol: 1e-12, what: `schedule ${i}` });
  });
  const hoffman = stepDecay(0.1, { stepAt: [1 / 3, 2 / 3], total: 30 });
  assertClose([0, 9, 10, 19, 20, 29].map(hoffman), [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], {
    atol: 0,
    rtol: 1e-15,
  });
  const warm = linearWarmup(cosineAnnealing(1, { tMax: 10 }), { steps: 4, startFactor: 0.25 });
  assertClose([0, 2, 4, 9, 14].map(warm), [0.25, 0.625, 1, 0.5, 0], { atol: 1e-15 });
  assert.throws(
    () => stepDecay(0.1, { stepAt: [0.5, 2] }),
    /all fractions in \(0, 1\) or all integers/,
  );
  assert.throws(() => stepDecay(0.1, { stepAt: [0.5] }), /needs total/);
  assert.throws(() => stepDecay(0.1, { stepAt: [20, 10] }), /must be increasing/);
  assert.throws(() => cosineAnnealing(0.1, { tMax: 0 }), /tMax 0/);
  assert.throws(() => constantLr(0.1)(-1), /step -1 must be an integer >= 0/);
});
