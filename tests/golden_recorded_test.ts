/**
 * Recorded goldens: regula replays the cases of tests/golden/*.json, whose PyTorch 1.13 results
 * tools/record_goldens.py recorded (`deno task goldens` rewrites them), and must match them at
 * the tolerances of the live comparisons. Runs without torch (it never spawns python), and
 * notices regula drifting from its own past as well as from PyTorch; the live tests
 * (models_test.ts, jacobian_test.ts, attacks_torch_test.ts, golden_train_test.ts, ...) stay.
 *
 * Runs on the backend of `REGULA_BACKEND` (webgpu, the default, or wasm; tests/_util.ts
 * `getBackend()`), so the same goldens check the WebAssembly backend.
 *
 * Inputs and parameters are seeded descriptors (`randomArray` of tests/_util.ts, which the
 * generator reproduces bit for bit); outputs are float32, the largest ones subsampled.
 */
import { assert, assertClose, backendUnderTest, getBackend } from "./_util.ts";
import {
  assertRecorded,
  assertScalar,
  decode,
  numel,
  readGolden,
  type Recorded,
  type Seeded,
  seeded,
  uploadSeeded,
  writeParams,
} from "./_golden.ts";
import { buildModel as buildLayers, type LayerDesc } from "./_jacobian_util.ts";
import { TORCH_MODEL } from "./_attack_model.ts";
import type { Backend, Tensor } from "../src/backend.ts";
import type { Param } from "../src/layers/layer.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import { buildModel } from "../src/models/mod.ts";
import { softmaxCrossEntropy } from "../src/losses/cross_entropy.ts";
import { mse } from "../src/losses/mse.ts";
import { createOptimizer, type OptimizerSpec } from "../src/train/optim.ts";
import { jacobianPenalty } from "../src/regularizers/jacobian.ts";
import { jacobianDeterminantPenalty } from "../src/regularizers/determinant.ts";
import { gradientNormPenalty } from "../src/regularizers/gradient_norm.ts";
import { l1Penalty, l2Penalty, softSvbPenalty } from "../src/regularizers/penalties.ts";
import { fgsm } from "../src/attacks/fgsm.ts";
import { pgd, pgdL2 } from "../src/attacks/pgd.ts";
import { cw } from "../src/attacks/cw.ts";

type Outputs = Record<string, Recorded | number>;

/** A model: torch_bridge.py's layer list, or a regula ModelSpec (with "kind"). */
type ModelDesc = { layers: LayerDesc[] } | { kind: string };

function makeModel(rt: Backend, desc: ModelDesc): Sequential {
  return "kind" in desc ? buildModel(rt, desc, { seed: 1 }) : buildLayers(rt, desc.layers);
}

function labels(rt: Backend, y: number[]): Tensor {
  return rt.upload(Int32Array.from(y), [y.length], "i32");
}

function recorded(out: Outputs, key: string): Recorded {
  const r = out[key];
  assert.ok(r !== undefined && typeof r !== "number", `the golden has no tensor ${key}`);
  return r;
}

/** Checks every recorded `grad.<name>` and `state.<name>` against the model's, by name. */
async function assertParams(
  what: string,
  params: readonly Param[],
  out: Outputs,
  tol: { grad: number; state: number },
): Promise<void> {
  const seen = new Set<string>();
  for (const p of params) {
    const g = out[`grad.${p.name}`];
    if (g !== undefined && p.grad) {
      assertRecorded(`${what}: grad.${p.name}`, await p.grad.read(), g as Recorded, tol.grad);
      seen.add(`grad.${p.name}`);
    }
    const s = out[`state.${p.name}`];
    if (s !== undefined) {
      assertRecorded(`${what}: state.${p.name}`, await p.value.read(), s as Recorded, tol.state);
      seen.add(`state.${p.name}`);
    }
  }
  const missed = Object.keys(out).filter((k) =>
    (k.startsWith("grad.") && k !== "grad.x" || k.startsWith("state.")) && !seen.has(k)
  );
  assert.deepEqual(missed, [], `${what}: recorded tensors regula's params() lacks`);
}

// ---------------------------------------------------------------------------------------------
// Layers and models: forward, gradients, jvp

interface ForwardCase {
  name: string;
  model: ModelDesc;
  mode: "eval" | "train";
  params: Record<string, Seeded>;
  x: Seeded;
  dy?: Seeded;
  y?: number[];
  label_smoothing?: number;
  tx?: Seeded;
  param_grads: boolean;
  tol: number;
  grad_tol: number;
  out: Outputs;
}

/**
 * Forward, then the backward of `Σ logits ⊙ dy` (or of the mean cross-entropy), the jvp, and
 * the parameter gradients and running statistics, as tools/torch_bridge.py's "forward".
 * @returns the worst relative error
 */
async function checkForward(rt: Backend, c: ForwardCase): Promise<number> {
  const model = makeModel(rt, c.model);
  const owned: Tensor[] = [];
  const up = (t: Tensor) => (owned.push(t), t);
  let worst = 0;
  const check = (what: string, got: ArrayLike<number>, key: string, tol: number) => {
    worst = Math.max(worst, assertRecorded(`${c.name}: ${what}`, got, recorded(c.out, key), tol));
  };
  try {
    writeParams(rt, model.params(), c.params, c.name);
    if (c.mode === "train") model.train();
    else model.eval();
    model.zeroGrad();
    const logits = model.forward(up(uploadSeeded(rt, c.x)));
    check("logits", await logits.read(), "logits", c.tol);
    let dLogits: Tensor;
    if (c.y) {
      const ce = softmaxCrossEntropy(rt, logits, up(labels(rt, c.y)), {
        labelSmoothing: c.label_smoothing ?? 0,
      });
      owned.push(ce.loss, ce.perSample, ce.dLogits!);
      assertScalar(`${c.name}: loss`, (await ce.loss.read())[0], c.out.loss as number, c.tol);
      dLogits = ce.dLogits!;
    } else dLogits = up(uploadSeeded(rt, c.dy!));
    const dx = c.param_grads ? model.backward(dLogits) : model.inputGrad(dLogits);
    check("grad.x", await dx.read(), "grad.x", c.grad_tol);
    if (c.tx) check("jvp", await model.jvp(up(uploadSeeded(rt, c.tx))).read(), "jvp", c.grad_tol);
    await assertParams(c.name, model.params(), c.out, { grad: c.grad_tol, state: c.tol });
  } finally {
    for (const t of owned) t.dispose();
    model.dispose();
  }
  return worst;
}

for (const file of ["layers", "models"]) {
  Deno.test(`recorded goldens: ${file} forward, gradients and jvp match PyTorch`, async () => {
    const rt = await getBackend();
    const golden = await readGolden<ForwardCase>(file);
    const worst: string[] = [];
    for (const c of golden.cases) {
      worst.push(`${c.name} ${(await checkForward(rt, c)).toExponential(1)}`);
    }
    console.log(
      `${file} on ${backendUnderTest()}: max relative error vs PyTorch ${golden.torch}: ` +
        worst.join("; "),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Losses and optimizers

type LossCase =
  & { name: string; reduction: "mean" | "sum"; out: { loss: number; grad: Recorded } }
  & (
    | { kind: "cross_entropy"; logits: Seeded; labels: number[]; label_smoothing: number }
    | { kind: "mse"; pred: Seeded; target: Seeded }
  );

Deno.test("recorded goldens: softmaxCrossEntropy() and mse() match PyTorch", async () => {
  const rt = await getBackend();
  for (const c of (await readGolden<LossCase>("losses")).cases) {
    const owned: Tensor[] = [];
    try {
      let loss: Tensor, grad: Tensor;
      if (c.kind === "cross_entropy") {
        const z = uploadSeeded(rt, c.logits), y = labels(rt, c.labels);
        const r = softmaxCrossEntropy(rt, z, y, {
          labelSmoothing: c.label_smoothing,
          reduction: c.reduction,
        });
        owned.push(z, y, r.loss, r.perSample, r.dLogits!);
        [loss, grad] = [r.loss, r.dLogits!];
      } else {
        const p = uploadSeeded(rt, c.pred), t = uploadSeeded(rt, c.target);
        const r = mse(rt, p, t, { reduction: c.reduction });
        owned.push(p, t, r.loss, r.dPred!);
        [loss, grad] = [r.loss, r.dPred!];
      }
      // The tolerances of loss_test.ts against PyTorch.
      const atol = c.kind === "mse" ? 0 : 1e-7;
      assertClose(await loss.read(), [c.out.loss], { atol: 0, rtol: 1e-5, what: `${c.name} loss` });
      assertClose(await grad.read(), decode(c.out.grad), {
        atol,
        rtol: 1e-5,
        what: `${c.name} grad`,
      });
    } finally {
      for (const t of owned) t.dispose();
    }
  }
});

interface OptimCase {
  name: string;
  algorithm: "sgd" | "adam";
  options: Record<string, unknown>;
  lrs: number[];
  init: Seeded[];
  grads: Seeded[][];
  out: { trajectory: Recorded[][] };
}

Deno.test("recorded goldens: sgd() and adam() steps match torch.optim", async () => {
  const rt = await getBackend();
  for (const c of (await readGolden<OptimCase>("optim")).cases) {
    const params: Param[] = c.init.map((d, j) => ({
      name: `p${j}.weight`,
      value: uploadSeeded(rt, d),
      grad: rt.zeros(d.shape),
      kind: "weight",
    }));
    const opt = createOptimizer(rt, { algorithm: c.algorithm, ...c.options } as OptimizerSpec);
    try {
      for (const [t, lr] of c.lrs.entries()) {
        for (const [j, p] of params.entries()) rt.write(p.grad!, seeded(c.grads[t][j]));
        opt.step(params, lr);
        rt.submit();
        for (const [j, p] of params.entries()) {
          // optim_test.ts's tolerance against torch.
          assertClose(await p.value.read(), decode(c.out.trajectory[t][j]), {
            atol: 1e-7,
            rtol: 1e-5,
            what: `${c.name}: step ${t + 1} param ${j}`,
          });
        }
      }
    } finally {
      opt.dispose();
      for (const p of params) {
        p.value.dispose();
        p.grad!.dispose();
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Penalties

interface FunctionPenaltyCase {
  name: string;
  kind: "jacobian" | "determinant" | "gradient_norm";
  layers: LayerDesc[];
  params: Record<string, Seeded>;
  x: Seeded;
  lambda: number;
  nproj?: number;
  v?: Seeded;
  y?: number[];
  label_smoothing?: number;
  tol: number;
  grad_tol: number;
  out: Outputs;
}

interface WeightPenaltyCase {
  name: string;
  kind: "weight_penalty";
  penalty: "l1" | "l2" | "soft_svb";
  lambda: number;
  weights: Record<string, Seeded>;
  tol: number;
  out: Outputs;
}

async function checkFunctionPenalty(rt: Backend, c: FunctionPenaltyCase): Promise<void> {
  const model = buildLayers(rt, c.layers);
  const x = uploadSeeded(rt, c.x);
  const extra: Tensor[] = [];
  try {
    writeParams(rt, model.params(), c.params, c.name);
    model.eval();
    model.zeroGrad();
    let r;
    if (c.kind === "jacobian") {
      const v = c.v && uploadSeeded(rt, c.v);
      if (v) extra.push(v);
      r = jacobianPenalty(rt, model, x, { v, nproj: c.nproj, lambda: c.lambda });
    } else if (c.kind === "determinant") {
      r = jacobianDeterminantPenalty(rt, model, x, { lambda: c.lambda });
    } else {
      const y = labels(rt, c.y!);
      extra.push(y);
      r = gradientNormPenalty(rt, model, x, y, {
        lambda: c.lambda,
        labelSmoothing: c.label_smoothing ?? 0,
      });
    }
    try {
      assertScalar(`${c.name}: value`, (await r.value.read())[0], c.out.value as number, c.tol);
      assertRecorded(
        `${c.name}: per sample`,
        await r.perSample.read(),
        recorded(c.out, "per_sample"),
        c.tol,
      );
      await assertParams(c.name, model.params(), c.out, { grad: c.grad_tol, state: c.tol });
    } finally {
      r.dispose();
    }
  } finally {
    for (const t of [x, ...extra]) t.dispose();
    model.dispose();
  }
}

async function checkWeightPenalty(rt: Backend, c: WeightPenaltyCase): Promise<void> {
  const ps: Param[] = Object.entries(c.weights).map(([name, d]) => ({
    name,
    kind: "weight",
    value: uploadSeeded(rt, d),
    grad: rt.zeros(d.shape),
  }));
  const fn = { l1: l1Penalty, l2: l2Penalty, soft_svb: softSvbPenalty }[c.penalty];
  const { value } = fn(rt, ps, { lambda: c.lambda });
  try {
    // penalties_test.ts's tolerances against PyTorch.
    assertClose(await value.read(), [c.out.value as number], {
      rtol: c.tol,
      atol: 0,
      what: `${c.name} value`,
    });
    for (const p of ps) {
      const g = decode(recorded(c.out, `grad.${p.name}`));
      const scale = g.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      assertClose(await p.grad!.read(), g, {
        rtol: c.tol,
        atol: c.tol * scale,
        what: `${c.name} grad ${p.name}`,
      });
    }
  } finally {
    value.dispose();
    for (const p of ps) {
      p.value.dispose();
      p.grad!.dispose();
    }
  }
}

Deno.test("recorded goldens: Jacobian, determinant, gradient-norm, L1, L2, soft SVB penalties match PyTorch", async () => {
  const rt = await getBackend();
  const golden = await readGolden<FunctionPenaltyCase | WeightPenaltyCase>("penalties");
  for (const c of golden.cases) {
    if (c.kind === "weight_penalty") await checkWeightPenalty(rt, c);
    else await checkFunctionPenalty(rt, c);
  }
});

// ---------------------------------------------------------------------------------------------
// Attacks

interface AttackCase {
  name: string;
  model: { layers: LayerDesc[] };
  params: Record<string, Seeded>;
  x: Seeded;
  tol: number;
  attacks: {
    name: string;
    spec: Record<string, number | string | boolean>;
    /** The labels PyTorch saw: true classes, or targets when targeted. */
    labels: number[];
    out: { adv: Recorded };
  }[];
}

Deno.test("recorded goldens: fgsm(), pgd(), pgdL2(), cw() match PyTorch for fixed weights", async () => {
  const rt = await getBackend();
  const [c] = (await readGolden<AttackCase>("attacks")).cases;
  assert.deepEqual(c.model, TORCH_MODEL, "the recorded model is tests/_attack_model.ts's");
  const net = buildLayers(rt, c.model.layers);
  const x = uploadSeeded(rt, c.x);
  const xd = seeded(c.x);
  const n = c.x.shape[0];
  const y = labels(rt, Array.from({ length: n }, (_, i) => i % 3));
  try {
    writeParams(rt, net.params(), c.params, c.name);
    net.eval();
    for (const a of c.attacks) {
      const s = a.spec as Record<string, number> & { attack: string; targeted?: boolean };
      const target = s.targeted ? labels(rt, a.labels) : undefined;
      const common = { target, randomStart: false };
      let adv: Tensor;
      if (s.attack === "fgsm") adv = fgsm(rt, net, x, y, { eps: s.eps, target });
      else if (s.attack === "pgd") {
        adv = pgd(rt, net, x, y, { eps: s.eps, alpha: s.alpha, steps: s.steps, ...common });
      } else if (s.attack === "pgdl2") {
        adv = pgdL2(rt, net, x, y, { eps: s.eps, alpha: s.alpha, steps: s.steps, ...common });
      } else {
        adv = cw(rt, net, x, y, {
          c: s.c,
          kappa: s.kappa,
          steps: s.steps,
          lr: s.lr,
          searchSteps: 1,
        });
      }
      const got = await adv.read();
      adv.dispose();
      target?.dispose();
      const want = decode(a.out.adv);
      let moved = 0, diff = 0;
      for (let i = 0; i < got.length; i++) {
        moved = Math.max(moved, Math.abs(got[i] - xd[i]));
        diff = Math.max(diff, Math.abs(got[i] - want[i]));
      }
      assert.equal(got.length, numel(a.out.adv.shape));
      assert.ok(moved > 0.01, `${a.name}: the attack moved nothing`);
      // attacks_torch_test.ts's tolerance.
      assert.ok(diff <= c.tol, `${a.name}: max |regula - torch| = ${diff}`);
    }
  } finally {
    for (const t of [x, y]) t.dispose();
    net.dispose();
  }
});

// ---------------------------------------------------------------------------------------------
// Training

interface TrainCase {
  name: string;
  model: ModelDesc;
  params: Record<string, Seeded>;
  /** All batches' images; "band" adds golden_train_test.ts's label band. */
  x: Seeded;
  inputs: "band";
  batches: number;
  y: number[];
  steps: number;
  lr: number;
  momentum: number;
  loss_rtol: number;
  weight_tol: number;
  out: Outputs & { losses: number[] };
}

/** A bright band of rows whose position gives the label, on (N, 1, 28, 28) images. */
function bandImages(xd: Float32Array, y: number[]): Float32Array {
  y.forEach((k, i) => {
    for (let r = 2 * k + 4; r < 2 * k + 7; r++) {
      for (let col = 4; col < 24; col++) xd[i * 784 + r * 28 + col] += 0.5;
    }
  });
  return xd;
}

Deno.test("recorded goldens: LeNet trained 20 SGD steps reproduces PyTorch's losses", async () => {
  const rt = await getBackend();
  const [c] = (await readGolden<TrainCase>("train")).cases;
  const model = makeModel(rt, c.model);
  const [total, ...item] = c.x.shape;
  const b = total / c.batches, n = b * numel(item);
  const xd = bandImages(seeded(c.x), c.y);
  const xs = Array.from(
    { length: c.batches },
    (_, s) => rt.upload(xd.subarray(s * n, (s + 1) * n), [b, ...item]),
  );
  const ys = Array.from({ length: c.batches }, (_, s) => labels(rt, c.y.slice(s * b, (s + 1) * b)));
  const opt = createOptimizer(rt, { algorithm: "sgd", momentum: c.momentum });
  const losses: number[] = [];
  try {
    writeParams(rt, model.params(), c.params, c.name);
    model.train();
    const params = model.params();
    for (let step = 0; step < c.steps; step++) {
      model.zeroGrad();
      const ce = softmaxCrossEntropy(rt, model.forward(xs[step % c.batches]), ys[step % c.batches]);
      model.backward(ce.dLogits!);
      opt.step(params, c.lr);
      rt.submit();
      losses.push((await ce.loss.read())[0]);
      ce.dispose();
    }
    c.out.losses.forEach((want, s) => assertScalar(`step ${s} loss`, losses[s], want, c.loss_rtol));
    // golden_train_test.ts: float32 rounding accumulated over 20 momentum steps.
    await assertParams(c.name, params, c.out, { grad: 0, state: c.weight_tol });
  } finally {
    for (const t of [...xs, ...ys]) t.dispose();
    opt.dispose();
    model.dispose();
  }
});
