/**
 * Randomized parity with PyTorch 1.13 (oracle tools/torch_fuzz.py, generators tests/_fuzz.ts).
 * Per seed:
 * - one random small model (Conv2d of random geometry, MaxPool2d/AvgPool2d, the five
 *   activations, BatchNorm1d/2d in training and eval mode, ResNet BasicBlock, LayerNorm over
 *   random trailing dimensions, GroupNorm, weight-normalized Conv2d and Linear, Normalize,
 *   Dropout in eval mode, Flatten, Linear), checked for forward, input gradient, every
 *   parameter gradient, BatchNorm running statistics, jvp, `inputGrad`, and, after a
 *   training-mode forward, eval-mode forward and jvp with the updated running statistics;
 * - the penalties on the function on that model (Jacobian with given projections or exact,
 *   input-gradient norm, Jacobian determinant where the Jacobian is well conditioned): value,
 *   per-sample values and every parameter gradient against PyTorch double backprop;
 * - 3 training steps of that model (cross-entropy, backward, SGD/Adam/AdamW);
 * - 3 steps of `train()` on that model with 1-3 regularizers of the registry (L1, L2, elastic
 *   net, soft and hard SVB, max-norm, label smoothing, confidence penalty, exact Jacobian,
 *   input-gradient norm) and an optimizer with or without weight decay: per-step data loss and
 *   penalties, parameters and running statistics after the steps;
 * - FGSM, L∞ PGD or L2 PGD (no random start) on that model in eval mode, untargeted, targeted
 *   or on its predictions: the adversarial examples and the predictions there;
 * - one softmaxCrossEntropy case (hard or soft targets, smoothing, logits up to ±300);
 * - one SGD/Adam/AdamW run of 5 steps with random hyperparameters.
 *
 * Tolerances: `atol + rtol |ref|` with atol relative to the tensor's largest entry, plus 10x
 * the error float32 torch makes on the same case: the oracle runs each case in float64, and in
 * float32 at the case's values and at 8 copies with every input and parameter entry moved by one
 * unit in the 24th bit (`REGULA_FUZZ_PERTURBED`), and takes the largest distance. So
 * ill-conditioned cases (BatchNorm over 2 samples) need no hand-tuned slack, and chaotic ones
 * (Adam's normalized steps on gradients float32 cannot resolve, iterated PGD) are not judged by
 * one float32 run that happened to land next to float64. A
 * derivative mismatch where the forward passes within 1e-5 of a ReLU kink or a max-pool tie is
 * forgiven (float32 may take the other branch); see the constants below.
 *
 * All cases go to one python process. The default seeds are fixed (CI is deterministic);
 * `REGULA_FUZZ_SEEDS="100-199"` runs others, `REGULA_FUZZ_VERBOSE=1` prints each case,
 * `REGULA_FUZZ_DUMP=jobs.json` writes the oracle's input. A failure names the seed, what
 * differed and the architecture.
 *
 * Needs PyTorch for /usr/bin/python3 (Debian: `apt-get install python3-torch`) or the
 * interpreter named by REGULA_TORCH_PYTHON.
 */
import { assert, getBackend } from "./_util.ts";
import {
  type AttackCase,
  type AttackResult,
  buildModel,
  type CeCase,
  type Flat,
  type FuzzResults,
  fuzzSeeds,
  genAttack,
  genCe,
  genModel,
  genOptim,
  genPenalty,
  genRegTrain,
  genTrain,
  mismatch,
  type ModelCase,
  type ModelResult,
  type OptimCase,
  type PenaltyCase,
  type PenaltyRef,
  regSpecString,
  type RegTrainCase,
  type RegTrainResult,
  torchFuzz,
  type TrainCase,
  type TrainResult,
} from "./_fuzz.ts";
import type { Backend } from "../src/backend.ts";
import type { Param } from "../src/layers/layer.ts";
import { softmaxCrossEntropy } from "../src/losses/cross_entropy.ts";
import { createOptimizer, type OptimizerSpec } from "../src/train/optim.ts";
import { jacobianPenalty } from "../src/regularizers/jacobian.ts";
import { gradientNormPenalty } from "../src/regularizers/gradient_norm.ts";
import { jacobianDeterminantPenalty } from "../src/regularizers/determinant.ts";
import type { PenaltyResult as Penalty } from "../src/regularizers/_engine.ts";
import { parseRegularizers } from "../src/regularizers/registry.ts";
import { train } from "../src/train/train.ts";
import { fgsm } from "../src/attacks/fgsm.ts";
import { pgd, pgdL2 } from "../src/attacks/pgd.ts";
import { argmax } from "../src/ops/reduce.ts";

const SEEDS = fuzzSeeds(Deno.env.get("REGULA_FUZZ_SEEDS"));
const VERBOSE = !!Deno.env.get("REGULA_FUZZ_VERBOSE");

/**
 * Smallest relative distance to a ReLU kink or a max-pool runner-up below which float32
 * rounding may legitimately pick another branch: a derivative mismatch of such a case is
 * forgiven.
 */
const MIN_MARGIN = 1e-5;

/** |gradient| below which Adam's normalized step of an element is float32 noise. */
const TINY_GRAD = 1e-4;

/** The same for the (exactly 0) gradient of a bias feeding a training-mode BatchNorm. */
const DEAD_SUM_EPS = 1e-4;

/**
 * Names of the biases of Conv2d/Linear layers followed by a normalization that removes a
 * per-channel constant: a training-mode BatchNorm, a GroupNorm of one channel per group, a
 * LayerNorm over trailing dimensions that leave the channels out.
 */
function deadBiases(c: ModelCase): Set<string> {
  return new Set(c.layers.flatMap((l, i) => {
    const next = c.layers[i + 1];
    const dead = (next?.type === "batchnorm" && next.training) ||
      (next?.type === "groupnorm" && next.groups === next.channels) ||
      (next?.type === "layernorm" && l.type === "conv2d" && next.shape.length < 3);
    return dead && (l.type === "conv2d" || l.type === "linear") && l.bias ? [`${i}.bias`] : [];
  }));
}

/** Relative float32 error allowed on a sum, against the sum of the |terms| (~8 ulp). */
const SUM_EPS = 2 ** -20;

const models: ModelCase[] = SEEDS.map(genModel);
const ces: CeCase[] = SEEDS.map(genCe);
const optims: OptimCase[] = SEEDS.map(genOptim);
const trains: TrainCase[] = models.map(genTrain);
const penalties: PenaltyCase[] = models.map(genPenalty);
const regTrains: RegTrainCase[] = models.map(genRegTrain);
const attacks: AttackCase[] = models.map(genAttack);

/** A model job's architecture, parameters and input, as the oracle reads them. */
function modelJob(c: ModelCase) {
  return {
    input_shape: c.inputShape,
    layers: c.layers,
    params: Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, Array.from(v)])),
    x: Array.from(c.x),
  };
}

let oracle: Promise<FuzzResults> | null = null;

/** The one python run behind every test of this file. */
function results(): Promise<FuzzResults> {
  oracle ??= torchFuzz({
    models: models.map((c, i) => {
      const p = penalties[i];
      return {
        input_shape: c.inputShape,
        layers: c.layers,
        params: Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, Array.from(v)])),
        x: Array.from(c.x),
        dy: Array.from(c.dy),
        tx: Array.from(c.tx),
        x2: c.x2 && Array.from(c.x2),
        penalty: {
          lambda: p.lambda,
          nproj: p.nproj,
          v: p.v && Array.from(p.v),
          labels: Array.from(p.labels),
          label_smoothing: p.labelSmoothing,
        },
      };
    }),
    ce: ces.map((c) => ({
      shape: [c.b, c.k],
      logits: Array.from(c.logits),
      labels: c.labels && Array.from(c.labels),
      soft: c.soft && Array.from(c.soft),
      label_smoothing: c.labelSmoothing,
      reduction: c.reduction,
    })),
    optim: optims.map((c) => ({
      algorithm: c.algorithm,
      options: c.torch,
      shapes: c.shapes,
      init: c.init.map((a) => Array.from(a)),
      grads: c.grads.map((step) => step.map((a) => Array.from(a))),
      lrs: c.lrs,
    })),
    train: trains.map((t, i) => {
      const c = models[i];
      return {
        input_shape: c.inputShape,
        layers: c.layers,
        params: Object.fromEntries(Object.entries(c.params).map(([k, v]) => [k, Array.from(v)])),
        x: Array.from(c.x),
        labels: Array.from(t.labels),
        label_smoothing: t.labelSmoothing,
        algorithm: t.algorithm,
        options: t.torch,
        lr: t.lr,
        steps: t.steps,
      };
    }),
    regtrain: regTrains.map((t, i) => ({
      ...modelJob(models[i]),
      labels: Array.from(t.labels),
      algorithm: t.algorithm,
      options: t.torch,
      lr: t.lr,
      steps: t.steps,
      train_mode: t.trainMode,
      regs: t.regs,
    })),
    attack: attacks.map((a, i) => ({
      ...modelJob(models[i]),
      x: Array.from(a.x),
      attack: a.attack,
      eps: a.eps,
      alpha: a.alpha,
      steps: a.steps,
      mode: a.mode,
      labels: Array.from(a.labels),
    })),
  });
  return oracle;
}

/** Compact architecture for messages: "[2,3,9,7] conv2d(3->4 k3x2 s1x2 p1x0) relu …". */
function describe(c: ModelCase): string {
  const parts = c.layers.map((l) => {
    switch (l.type) {
      case "conv2d":
        return `conv2d(${l.cin}->${l.cout} k${l.kernel.join("x")} s${l.stride.join("x")} ` +
          `p${l.padding.join("x")}${l.bias ? " bias" : ""}${l.weight_norm ? " wn" : ""})`;
      case "maxpool2d":
      case "avgpool2d":
        return `${l.type}(k${l.kernel.join("x")} s${l.stride.join("x")} p${l.padding.join("x")}` +
          `${l.type === "avgpool2d" && !l.count_include_pad ? " exclude-pad" : ""})`;
      case "linear":
        return `linear(${l.cin}->${l.cout}${l.bias ? " bias" : ""}${l.weight_norm ? " wn" : ""})`;
      case "layernorm":
        return `layernorm([${l.shape}] eps ${l.eps}${l.affine ? "" : " no-affine"})`;
      case "groupnorm":
        return `groupnorm(${l.groups} of ${l.channels} eps ${l.eps}${
          l.affine ? "" : " no-affine"
        })`;
      case "batchnorm":
        return `bn${l.dims}d(${l.channels} eps ${l.eps} mom ${l.momentum.toPrecision(3)} ` +
          `${l.training ? "train" : "eval"})`;
      case "basicblock":
        return `basicblock(${l.cin}->${l.cout} s${l.stride} ${l.training ? "train" : "eval"})`;
      case "leaky_relu":
        return `leaky_relu(${l.slope.toPrecision(3)})`;
      case "softplus":
        return `softplus(beta ${l.beta.toPrecision(3)}, threshold ${l.threshold})`;
      case "dropout":
        return `dropout(${l.p.toPrecision(3)}, eval)`;
      default:
        return l.type;
    }
  });
  return `[${c.inputShape.join(",")}] ${parts.join(" ")}`;
}

/** Reports every mismatch of every case at once, each with its seed and how to rerun it. */
/**
 * Runs `check` on every fuzzed model case and fails with all the cases that differ from PyTorch,
 * each named by its seed and `what` (printed per case in verbose mode).
 * @param kind what the cases are, for the report (and the verbose lines, `verbose` if given)
 */
async function checkEachModel(
  kind: string,
  check: (i: number, c: ModelCase) => Promise<string[]>,
  what: (i: number, c: ModelCase) => string,
  verbose?: string,
): Promise<void> {
  const failures: string[] = [];
  for (const [i, c] of models.entries()) {
    let errs: string[];
    try {
      errs = await check(i, c);
    } catch (e) {
      errs = [`threw ${(e as Error).stack ?? e}`];
    }
    const w = what(i, c);
    if (VERBOSE && verbose) console.log(`${verbose} seed ${c.seed}: ${w}`);
    if (errs.length) failures.push(`seed ${c.seed}: ${w}\n  ${errs.join("\n  ")}`);
  }
  report(failures, models.length, kind);
}

function report(failures: string[], total: number, what: string): void {
  if (failures.length === 0) return;
  throw new assert.AssertionError({
    message: `${failures.length} of ${total} fuzzed ${what} cases differ from PyTorch ` +
      `(rerun one with REGULA_FUZZ_SEEDS=<seed>):\n` + failures.join("\n"),
  });
}

/**
 * Checks one model case; returns its mismatches. Derivatives of a case whose forward passes
 * within {@linkcode MIN_MARGIN} of a kink may legitimately differ: their mismatches are
 * forgiven (and logged in verbose mode) rather than reported.
 */
async function checkModel(
  rt: Backend,
  c: ModelCase,
  r: ModelResult,
): Promise<string[]> {
  const errs: (string | null)[] = [];
  const forgiven: string[] = [];
  const t0 = performance.now();
  const n = r.noise;
  const smooth = r.margin === null || r.margin >= MIN_MARGIN;
  const evalSmooth = !r.eval || r.eval.margin === null || r.eval.margin >= MIN_MARGIN;
  /** A derivative's mismatch: reported when the point is smooth, else forgiven. */
  const deriv = (e: string | null, ok = smooth) => {
    if (e && !ok) forgiven.push(e);
    else errs.push(e);
  };
  const model = buildModel(rt, c);
  const x = rt.upload(c.x, c.inputShape);
  const dy = rt.upload(c.dy, [c.inputShape[0], c.dy.length / c.inputShape[0]]);
  const tx = rt.upload(c.tx, c.inputShape);
  const x2 = c.x2 && rt.upload(c.x2, c.inputShape);
  try {
    const y = model.forward(x);
    if (y.shape.join() !== r.y_shape.join()) {
      return [`output shape [${y.shape}], torch [${r.y_shape}]`];
    }
    errs.push(mismatch(await y.read(), r.y, "y", { noise: n.y }));
    const dx = model.backward(dy);
    deriv(mismatch(await dx.read(), r.dx, "dx", { abs: 5e-5, noise: n.dx }));
    const params = model.params();
    for (const p of params) {
      if (p.kind === "buffer") {
        const want = r.buffers[p.name];
        if (!want) {
          errs.push(`${p.name}: torch has no such buffer`);
          continue;
        }
        const got = Array.from(await p.value.read() as ArrayLike<number>);
        const tol = p.value.dtype !== "f32"
          ? { rel: 0, abs: 0, floor: 0 }
          : { noise: n.buffers[p.name] };
        errs.push(mismatch(got, want, p.name, tol));
      } else {
        const want = r.grads[p.name];
        if (!want) {
          errs.push(`${p.name}: torch has no such parameter`);
          continue;
        }
        // float32 sums are good to a few ulp of the sum of their |terms|.
        // A bias feeding a training-mode BatchNorm has gradient 0 in exact arithmetic; in
        // float32 it is what the BatchNorm backward's cancellation leaves, which grows as the
        // channel's values get close (2 values per channel: x̂ = ±1 from a tiny difference).
        const eps = deadBiases(c).has(p.name) ? DEAD_SUM_EPS : SUM_EPS;
        const floor = 1e-6 + eps * (r.sums[p.name] ?? 0);
        const tol = { abs: 5e-5, floor, noise: n.grads[p.name] };
        deriv(mismatch(await p.grad!.read(), want, `${p.name}.grad`, tol));
      }
    }
    const names = new Set(params.map((p) => p.name));
    for (const name of [...Object.keys(r.grads), ...Object.keys(r.buffers)]) {
      if (!names.has(name)) errs.push(`${name}: torch has it, regula's params() does not`);
    }
    // Through a training-mode BatchNorm the batch-coupled jvp (the batch statistics' tangent).
    deriv(mismatch(await model.jvp(tx).read(), r.jvp, "jvp", { noise: n.jvp }));
    // inputGrad leaves parameter gradients alone (BatchNorm's does not: skipped).
    if (!c.layers.some((l) => l.type === "batchnorm" || l.type === "basicblock")) {
      const before = await Promise.all(params.map((p) => p.grad!.read()));
      const tol = { abs: 5e-5, noise: n.dx };
      deriv(mismatch(await model.inputGrad(dy).read(), r.dx, "inputGrad", tol));
      for (const [i, p] of params.entries()) {
        const exact = { rel: 0, abs: 0, floor: 0 };
        const what = `${p.name}.grad after inputGrad`;
        errs.push(mismatch(await p.grad!.read(), before[i], what, exact));
      }
    }
    if (r.eval && x2) {
      // Eval mode after the training-mode forward: BatchNorm now uses the updated statistics.
      model.eval();
      errs.push(mismatch(await model.forward(x2).read(), r.eval.y, "eval y", { noise: n.eval_y }));
      const tol = { noise: n.eval_jvp };
      deriv(mismatch(await model.jvp(tx).read(), r.eval.jvp, "eval jvp", tol), evalSmooth);
    }
  } finally {
    for (const t of [x, dy, tx, x2]) t?.dispose();
    model.dispose();
  }
  if (VERBOSE) {
    const ms = (performance.now() - t0).toFixed(0);
    const note = smooth && evalSmooth ? "" : " (near a kink)";
    console.log(`seed ${c.seed}${note} ${ms} ms: ${describe(c)}`);
    for (const e of forgiven) console.log(`  forgiven near a kink: ${e}`);
  }
  return errs.filter((e): e is string => e !== null);
}

Deno.test("Sequential forward, backward, param grads and jvp match PyTorch on fuzzed models", async () => {
  const rt = await getBackend();
  const res = await results();
  await checkEachModel("model", (i, c) => checkModel(rt, c, res.models[i]), (_, c) => describe(c));
});

/**
 * Largest ratio of a sample's extreme Jacobian singular values for which the determinant penalty
 * is compared: its gradient grows like the inverse Gram matrix, so near-singular Jacobians (a
 * ReLU-dead or narrow layer, more classes than a bottleneck's width) amplify float32 rounding
 * without bound.
 */
const MAX_DET_COND = 1e3;

/** `atol` of the penalties' parameter gradients, against each gradient's largest entry. */
const PENALTY_ABS = 1e-4;

/**
 * Checks the penalties on the function of one model case against the oracle's double backprop;
 * mismatches near a kink are forgiven as in {@linkcode checkModel} (the penalties are made of
 * derivatives: their values jump there too).
 */
async function checkPenalties(
  rt: Backend,
  c: ModelCase,
  p: PenaltyCase,
  r: ModelResult,
): Promise<string[]> {
  const pr = r.penalty!;
  const errs: (string | null)[] = [];
  const forgiven: string[] = [];
  const smooth = r.margin === null || r.margin >= MIN_MARGIN;
  const deriv = (e: string | null) => {
    if (e && !smooth) forgiven.push(e);
    else errs.push(e);
  };
  const model = buildModel(rt, c);
  const b = c.inputShape[0], classes = c.dy.length / b;
  const x = rt.upload(c.x, c.inputShape);
  const v = p.v && rt.upload(p.v, [p.nproj, b, classes]);
  const y = rt.upload(p.labels, [b]);
  const { lambda } = p;
  const dead = deadBiases(c);
  const check = async (
    what: "jacobian" | "gradient_norm" | "determinant",
    run: () => Penalty,
    ref: PenaltyRef,
  ) => {
    const noise = pr.noise[what];
    model.zeroGrad();
    const res = run();
    try {
      deriv(mismatch(await res.value.read(), [ref.value], `${what} value`, { noise: noise.value }));
      const tol = { noise: noise.per_sample };
      deriv(mismatch(await res.perSample.read(), ref.per_sample, `${what} perSample`, tol));
      for (const q of model.params()) {
        if (q.kind === "buffer") continue;
        const want = ref.grads[q.name];
        if (!want) {
          errs.push(`${what}: ${q.name}: torch has no such parameter`);
          continue;
        }
        // As in checkModel: float32 sums are good to a few ulp of the sum of their |terms|,
        // and a bias before a normalization that removes it has gradient 0 only in exact
        // arithmetic.
        const eps = dead.has(q.name) ? DEAD_SUM_EPS : SUM_EPS;
        const floor = 1e-6 + eps * (ref.sums[q.name] ?? 0);
        const tol = { abs: PENALTY_ABS, floor, noise: noise.grads[q.name] };
        deriv(mismatch(await q.grad!.read(), want, `${what} ${q.name}.grad`, tol));
      }
    } finally {
      res.dispose();
    }
  };
  try {
    await check(
      "jacobian",
      () => jacobianPenalty(rt, model, x, v ? { v, lambda } : { nproj: -1, lambda }),
      pr.jacobian,
    );
    await check(
      "gradient_norm",
      () => gradientNormPenalty(rt, model, x, y, { lambda, labelSmoothing: p.labelSmoothing }),
      pr.gradient_norm,
    );
    const cond = pr.determinant.cond;
    if (cond !== null && cond < MAX_DET_COND) {
      await check(
        "determinant",
        () => jacobianDeterminantPenalty(rt, model, x, { lambda }),
        pr.determinant,
      );
    }
  } finally {
    for (const t of [x, v, y]) t?.dispose();
    model.dispose();
  }
  if (VERBOSE) {
    const cond = pr.determinant.cond?.toExponential(1);
    console.log(`penalty seed ${c.seed} (nproj ${p.nproj}, det cond ${cond})`);
    for (const e of forgiven) console.log(`  forgiven near a kink: ${e}`);
  }
  return errs.filter((e): e is string => e !== null);
}

Deno.test("jacobianPenalty(), gradientNormPenalty(), jacobianDeterminantPenalty() match PyTorch double backprop on fuzzed models", async () => {
  const rt = await getBackend();
  const res = await results();
  await checkEachModel(
    "penalty",
    (i, c) => checkPenalties(rt, c, penalties[i], res.models[i]),
    (i, c) => {
      const p = penalties[i];
      return `${describe(c)}; λ ${p.lambda.toPrecision(3)} nproj ${p.nproj} ` +
        `smoothing ${p.labelSmoothing.toPrecision(3)}`;
    },
  );
});

function describeCe(c: CeCase): string {
  return `B ${c.b} K ${c.k} ${c.labels ? `labels ${c.labelDtype}` : "soft"} ` +
    `smoothing ${c.labelSmoothing.toPrecision(3)} ${c.reduction}`;
}

Deno.test("softmaxCrossEntropy() matches PyTorch on fuzzed logits and targets", async () => {
  const rt = await getBackend();
  const res = await results();
  const failures: string[] = [];
  for (const [i, c] of ces.entries()) {
    const r = res.ce[i];
    const logits = rt.upload(c.logits, [c.b, c.k]);
    const target = c.labels
      ? rt.upload(c.labelDtype === "u32" ? new Uint32Array(c.labels) : c.labels, [c.b])
      : rt.upload(c.soft!, [c.b, c.k]);
    const ce = softmaxCrossEntropy(rt, logits, target, {
      labelSmoothing: c.labelSmoothing,
      reduction: c.reduction,
    });
    // float32 log-sum-exp is good to a few ulp of the largest logit, whatever the loss.
    const zmax = c.logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const ulps = 4 * 2 ** -23 * zmax;
    const perRow = c.reduction === "mean" ? 1 : c.b;
    const errs = [
      mismatch(await ce.loss.read(), [r.loss], "loss", { rel: 1e-5, floor: ulps * perRow }),
      mismatch(await ce.perSample.read(), r.per_sample, "perSample", { rel: 1e-5, floor: ulps }),
      mismatch(await ce.dLogits!.read(), r.grad, "dLogits", { rel: 1e-4, abs: 1e-5, floor: ulps }),
    ].filter((e) => e !== null);
    if (VERBOSE) console.log(`ce seed ${c.seed}: ${describeCe(c)}`);
    if (errs.length) failures.push(`seed ${c.seed}: ${describeCe(c)}\n  ${errs.join("\n  ")}`);
    ce.dispose();
    logits.dispose();
    target.dispose();
  }
  report(failures, ces.length, "cross-entropy");
});

Deno.test("sgd(), adam(), adamw() match torch.optim on fuzzed hyperparameters", async () => {
  const rt = await getBackend();
  const res = await results();
  const failures: string[] = [];
  for (const [i, c] of optims.entries()) {
    const traj: Flat[][] = res.optim[i].trajectory;
    const params: Param[] = c.shapes.map((s, j) => ({
      name: `p${j}.weight`,
      value: rt.upload(c.init[j], s),
      grad: rt.zeros(s),
      kind: "weight",
    }));
    const opt = createOptimizer(rt, { algorithm: c.algorithm, ...c.opts } as OptimizerSpec);
    const errs: string[] = [];
    try {
      for (let t = 0; t < c.lrs.length; t++) {
        for (const [j, p] of params.entries()) rt.write(p.grad!, c.grads[t][j]);
        opt.step(params, c.lrs[t]);
        rt.submit();
        for (const [j, p] of params.entries()) {
          const e = mismatch(await p.value.read(), traj[t][j], `step ${t + 1} param ${j}`, {
            rel: 1e-5,
            abs: 2e-6,
          });
          if (e) errs.push(e);
        }
      }
    } catch (e) {
      errs.push(`threw ${(e as Error).message}`);
    } finally {
      opt.dispose();
      for (const p of params) {
        p.value.dispose();
        p.grad!.dispose();
      }
    }
    const what = `${c.algorithm} ${JSON.stringify(c.torch)} shapes ${JSON.stringify(c.shapes)}`;
    if (VERBOSE) console.log(`optim seed ${c.seed}: ${what}`);
    if (errs.length) failures.push(`seed ${c.seed}: ${what}\n  ${errs.join("\n  ")}`);
  }
  report(failures, optims.length, "optimizer");
});

/**
 * The parameters and buffers after a training run against torch's. Adam normalizes the
 * gradient, so an element whose gradient is (nearly) 0 in exact arithmetic (a bias feeding a
 * training-mode BatchNorm, a dead channel, an entry float32 cannot resolve) follows float32
 * rounding noise instead: up to lr a step; the running mean after such a bias tracks it, and so
 * its noise.
 */
async function checkParams(
  params: Param[],
  c: ModelCase,
  t: { algorithm: string; lr: number; steps: number },
  r: Pick<TrainResult, "buffers" | "params" | "gmin" | "noise" | "sums">,
): Promise<(string | null)[]> {
  const dead = deadBiases(c);
  // The running mean of the normalization after each dead bias ("4.running_mean" → "3.bias").
  const shifted = new Map(
    [...dead].map((b) => [`${Number(b.split(".")[0]) + 1}.running_mean`, b]),
  );
  const errs: (string | null)[] = [];
  for (const p of params) {
    const want = p.kind === "buffer" ? r.buffers[p.name] : r.params[p.name];
    if (!want) {
      errs.push(`${p.name}: torch has no such tensor`);
      continue;
    }
    const noise = p.kind === "buffer" ? r.noise.buffers[p.name] : r.noise.params[p.name];
    const drift = t.algorithm !== "sgd" && (dead.has(p.name) || shifted.has(p.name));
    const gmin = r.gmin[p.name] ?? want.map(() => 1);
    // SGD moves a dead bias (and the running mean after it) by lr times its rounding noise,
    // DEAD_SUM_EPS of the sum of |terms| a step, which momentum carries to at most 2 steps²
    // times over the run.
    const bias = dead.has(p.name) ? p.name : shifted.get(p.name);
    const sgdDrift = t.algorithm === "sgd" && bias
      ? 2 * t.lr * t.steps ** 2 * DEAD_SUM_EPS * (r.sums[bias] ?? 0)
      : 0;
    const extra = gmin.map((g) =>
      drift || (t.algorithm !== "sgd" && g !== null && g < TINY_GRAD)
        ? 1.5 * t.lr * t.steps
        : sgdDrift
    );
    const got = Array.from(await p.value.read() as ArrayLike<number>);
    errs.push(mismatch(got, want, `${p.name} after ${t.steps} steps`, { noise, extra }));
  }
  return errs;
}

async function checkTrain(rt: Backend, c: ModelCase, t: TrainCase, r: TrainResult) {
  const errs: (string | null)[] = [];
  const model = buildModel(rt, c);
  const opt = createOptimizer(rt, { algorithm: t.algorithm, ...t.opts } as OptimizerSpec);
  const x = rt.upload(c.x, c.inputShape);
  const labels = rt.upload(t.labels, [t.labels.length]);
  const losses: number[] = [];
  try {
    for (let step = 0; step < t.steps; step++) {
      model.zeroGrad();
      const ce = softmaxCrossEntropy(rt, model.forward(x), labels, {
        labelSmoothing: t.labelSmoothing,
      });
      model.backward(ce.dLogits!);
      opt.step(model.params(), t.lr);
      rt.submit();
      losses.push((await ce.loss.read())[0]);
      ce.dispose();
    }
    errs.push(mismatch(losses, r.losses, "losses", { noise: r.noise.losses }));
    errs.push(...await checkParams(model.params(), c, t, r));
  } finally {
    opt.dispose();
    model.dispose();
    x.dispose();
    labels.dispose();
  }
  return errs.filter((e): e is string => e !== null);
}

Deno.test("Sequential training steps (cross-entropy, backward, optimizer) match PyTorch", async () => {
  const rt = await getBackend();
  const res = await results();
  await checkEachModel(
    "training",
    (i, c) => checkTrain(rt, c, trains[i], res.train[i]),
    (i, c) => {
      const t = trains[i];
      return `${describe(c)}; ${t.algorithm} ${JSON.stringify(t.torch)} lr ${t.lr} ` +
        `smoothing ${t.labelSmoothing}`;
    },
    "train",
  );
});

/**
 * `train()` with the case's regularizers (parsed from their command-line specs) on the case's
 * batch, one step per epoch, against the oracle's run of the same loss, penalties, optimizer
 * and projections.
 */
async function checkRegTrain(rt: Backend, c: ModelCase, t: RegTrainCase, r: RegTrainResult) {
  const errs: (string | null)[] = [];
  const model = buildModel(rt, c);
  const regs = parseRegularizers(t.regs.map(regSpecString));
  const b = c.inputShape[0];
  try {
    const data = {
      name: `fuzz ${c.seed}`,
      x: c.x,
      y: t.labels,
      sampleShape: c.inputShape.slice(1),
      classes: c.dy.length / b,
      length: b,
    };
    const res = await train(model, { train: data }, {
      epochs: t.steps,
      batchSize: b,
      lr: t.lr,
      optimizer: { algorithm: t.algorithm, ...t.opts } as OptimizerSpec,
      regularizers: regs,
      trainMode: t.trainMode,
      trajectoryEvery: 0,
    });
    const losses = res.history.map((h) => h.trainLoss);
    errs.push(mismatch(losses, r.losses, "losses", { noise: r.noise.losses }));
    for (const reg of t.regs) {
      const got = res.history.map((h) => h.penalties[reg.name] ?? 0);
      const want = r.penalties[reg.name];
      // The data loss's own float32 error carries into the penalties of the later steps.
      const noise = r.noise.penalties[reg.name] + r.noise.losses;
      errs.push(mismatch(got, want, `${reg.name} penalty`, { noise }));
    }
    errs.push(...await checkParams(model.params(), c, t, r));
  } finally {
    for (const reg of regs) reg.dispose?.();
    model.dispose();
  }
  return errs.filter((e): e is string => e !== null);
}

Deno.test("train() with fuzzed regularizers (penalties, projections, label smoothing) matches PyTorch", async () => {
  const rt = await getBackend();
  const res = await results();
  await checkEachModel(
    "regularized training",
    (i, c) => checkRegTrain(rt, c, regTrains[i], res.regtrain[i]),
    (i, c) => {
      const t = regTrains[i];
      return `${describe(c)}; ${t.regs.map(regSpecString).join(" ")}; ${t.algorithm} ` +
        `${JSON.stringify(t.torch)} lr ${t.lr}${t.trainMode ? "" : " eval mode"}`;
    },
    "regtrain",
  );
});

/** Absolute slack on the box and the ball of an attack (float32 rounding of x0 + δ). */
const BALL_SLACK = 1e-6;

/**
 * One attack on a model case against the oracle: the adversarial examples element by element
 * (an element whose last gradient entry nearly vanishes may step the other way: forgiven), the
 * predictions there (unless near-tied), and for fragile samples only the ball and the box.
 */
async function checkAttack(rt: Backend, c: ModelCase, a: AttackCase, r: AttackResult) {
  const errs: string[] = [];
  const model = buildModel(rt, c);
  model.eval();
  const b = c.inputShape[0], d = a.x.length / b;
  const x = rt.upload(a.x, c.inputShape);
  const labels = rt.upload(a.labels, [b]);
  const y = a.mode === "predictions" ? null : labels;
  const target = a.mode === "target" ? labels : undefined;
  let adv: ReturnType<typeof fgsm> | null = null;
  try {
    adv = a.attack === "fgsm"
      ? fgsm(rt, model, x, y, { eps: a.eps, target })
      : (a.attack === "pgd" ? pgd : pgdL2)(rt, model, x, y, {
        eps: a.eps,
        alpha: a.alpha,
        steps: a.steps,
        randomStart: false,
        target,
      });
    const got = await adv.read() as Float32Array;
    const predT = argmax(rt, model.forward(adv), 1);
    const pred = await predT.read();
    predT.dispose();
    for (let s = 0; s < b; s++) {
      const lo = s * d, hi = lo + d;
      let ball = 0;
      for (let i = lo; i < hi; i++) {
        if (!(got[i] >= -BALL_SLACK && got[i] <= 1 + BALL_SLACK)) {
          errs.push(`sample ${s}: adv[${i}] = ${got[i]} outside [0, 1]`);
          break;
        }
        const dv = Math.abs(got[i] - a.x[i]);
        ball = a.attack === "pgdl2" ? ball + dv * dv : Math.max(ball, dv);
      }
      if (a.attack === "pgdl2") ball = Math.sqrt(ball);
      if (ball > a.eps * (1 + 1e-5) + BALL_SLACK) {
        errs.push(`sample ${s}: ‖adv - x‖ = ${ball} > ε ${a.eps}`);
      }
      if (r.fragile[s]) continue;
      const extra = r.noise.slice(lo, hi).map((n, i) =>
        (r.tie[lo + i] ? 2 * a.alpha : 0) + 10 * (n ?? 0)
      );
      const e = mismatch(got.subarray(lo, hi), r.adv.slice(lo, hi), `sample ${s} adv`, {
        rel: 0,
        abs: 0,
        floor: 2e-6,
        extra,
      });
      if (e) errs.push(e);
      else if (!r.pred_tie[s] && pred[s] !== r.pred[s]) {
        errs.push(`sample ${s}: predicted ${pred[s]} at adv, torch ${r.pred[s]}`);
      }
    }
  } finally {
    for (const t of [x, labels, adv]) t?.dispose();
    model.dispose();
  }
  return errs;
}

Deno.test("fgsm(), pgd(), pgdL2() without random start match PyTorch on fuzzed models", async () => {
  const rt = await getBackend();
  const res = await results();
  await checkEachModel(
    "attack",
    (i, c) => checkAttack(rt, c, attacks[i], res.attack[i]),
    (i, c) => {
      const a = attacks[i];
      const fragile = res.attack[i].fragile.filter(Boolean).length;
      return `${describe(c)}; ${a.attack} ε ${a.eps.toPrecision(3)} α ${
        a.alpha.toPrecision(3)
      } steps ${a.steps} ${a.mode}${fragile ? ` (${fragile} fragile)` : ""}`;
    },
    "attack",
  );
});
