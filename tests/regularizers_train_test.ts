/**
 * Every regularizer of the registry, parsed from command-line specs, plugged into `train` on the
 * 2-D toy problem (toy2d, the default MLP 2 -> 64 -> 64 -> 4 tanh) moves the quantity it targets
 * the right way against a baseline trained with the same seed, by a clear margin; several at
 * once all act; and `cli.ts train --reg ... --out` records them in the checkpoint (issue 5).
 *
 * Set REGULA_FIGURES=1 to print the measured figures (baseline vs regularized).
 */
import { assert, getBackend } from "./_util.ts";
import type { Backend } from "../src/backend.ts";
import { toy2d } from "../src/data/toy.ts";
import type { Dataset } from "../src/data/dataset.ts";
import { buildModel, type Model, modelSpecFromName } from "../src/models/mod.ts";
import { parseRegularizers } from "../src/regularizers/registry.ts";
import { jacobianNorm } from "../src/regularizers/jacobian.ts";
import { jacobianDeterminantPenalty } from "../src/regularizers/determinant.ts";
import { gradientNormPenalty } from "../src/regularizers/gradient_norm.ts";
import { singularValuesRef, smallGramRef } from "../src/reference/linalg.ts";
import { type EpochRecord, train, type TrainOptions } from "../src/train/train.ts";
import { decodeCheckpoint } from "../src/io/checkpoint.ts";

const SEED = 3;
/** The toy problem and held-out points; `std` 0.1 is the seed study's (separable) spread. */
function problem(std = 0.1): { train: Dataset; heldOut: Dataset } {
  return {
    train: toy2d({ seed: SEED, std }),
    heldOut: toy2d({ seed: SEED, std, split: "test", perClass: 64 }),
  };
}
const TOY = problem();
const BASE: TrainOptions = { epochs: 8, batchSize: 64, lr: 0.05, seed: SEED };
const PRINT = Deno.env.get("REGULA_FIGURES") === "1";

/** One weight matrix after training: (rows, cols) row-major. */
interface Matrix {
  name: string;
  rows: number;
  cols: number;
  w: Float32Array;
}

/** What a run is measured by. */
interface Figures {
  weights: Matrix[];
  history: EpochRecord[];
  /** Σ|w| over weight matrices. */
  l1: number;
  /** ||w||² over weight matrices. */
  l2sq: number;
  /** Fraction of weights with |w| < 1e-2. */
  nearZero: number;
  /** Σ ||G − I||_F², G the smaller Gram matrix of each weight. */
  softSvb: number;
  /** Largest singular value of each weight (CPU, float64). */
  sigmaMax: number[];
  /** Smallest singular value of each weight. */
  sigmaMin: number[];
  /** Largest row (unit) norm over all weights. */
  maxRowNorm: number;
  /** Held-out mean exact ||∂z/∂x||_F². */
  jacobian: number;
  /** Held-out mean |sqrt(det JᵀJ) − 1|. */
  detDeviation: number;
  /** Held-out mean predictive entropy (nats). */
  entropy: number;
  /** Held-out mean largest softmax probability. */
  maxProb: number;
  /** Held-out mean ||∂CE/∂x||². */
  inputGrad: number;
  /** Held-out accuracy. */
  accuracy: number;
}

function matrices(model: Model): Promise<Matrix[]> {
  return Promise.all(
    model.params().filter((p) => p.kind === "weight" && p.value.shape.length === 2).map(
      async (p) => ({
        name: p.name,
        rows: p.value.shape[0],
        cols: p.value.shape[1],
        w: await p.value.read() as Float32Array,
      }),
    ),
  );
}

function rowNorms(m: Matrix): number[] {
  return Array.from({ length: m.rows }, (_, i) => {
    let s = 0;
    for (let j = 0; j < m.cols; j++) s += m.w[i * m.cols + j] ** 2;
    return Math.sqrt(s);
  });
}

function softSvbOf(m: Matrix): number {
  const p = Math.min(m.rows, m.cols);
  const g = smallGramRef(m.w, m.rows, m.cols);
  let s = 0;
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) s += (g[i * p + j] - +(i === j)) ** 2;
  return s;
}

function mean(a: ArrayLike<number>, f: (v: number) => number = (v) => v): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += f(a[i]);
  return s / a.length;
}

function sum(a: number[]): number {
  return a.reduce((s, v) => s + v, 0);
}

/** Measures a trained model on the held-out points and its weights on the CPU. */
async function measure(
  rt: Backend,
  model: Model,
  history: EpochRecord[],
  heldOut: Dataset,
): Promise<Figures> {
  const weights = await matrices(model);
  const all = weights.flatMap((m) => Array.from(m.w));
  const x = rt.upload(heldOut.x, [heldOut.length, 2]);
  const y = rt.upload(heldOut.y, [heldOut.length], "i32");
  try {
    model.eval();
    const logits = await model.forward(x).read() as Float32Array;
    const k = heldOut.classes;
    let entropy = 0, maxProb = 0, correct = 0;
    for (let b = 0; b < heldOut.length; b++) {
      const z = Array.from(logits.subarray(b * k, b * k + k));
      const top = Math.max(...z);
      const e = z.map((v) => Math.exp(v - top));
      const sum = e.reduce((a, v) => a + v, 0);
      const p = e.map((v) => v / sum);
      entropy -= p.reduce((a, v) => a + (v > 0 ? v * Math.log(v) : 0), 0);
      maxProb += Math.max(...p);
      if (z.indexOf(top) === heldOut.y[b]) correct++;
    }
    const jn = jacobianNorm(rt, model, x, { nproj: -1 });
    const det = jacobianDeterminantPenalty(rt, model, x, { grad: false });
    const gn = gradientNormPenalty(rt, model, x, y, { grad: false });
    const [jv, dv, gv] = await Promise.all([jn.read(), det.perSample.read(), gn.perSample.read()]);
    jn.dispose();
    det.dispose();
    gn.dispose();
    const sv = weights.map((m) => singularValuesRef(m.w, m.rows, m.cols));
    return {
      weights,
      history,
      l1: mean(all, Math.abs) * all.length,
      l2sq: mean(all, (v) => v * v) * all.length,
      nearZero: mean(all, (v) => +(Math.abs(v) < 1e-2)),
      softSvb: weights.reduce((a, m) => a + softSvbOf(m), 0),
      sigmaMax: sv.map((s) => s[0]),
      sigmaMin: sv.map((s) => s[s.length - 1]),
      maxRowNorm: Math.max(...weights.flatMap(rowNorms)),
      jacobian: mean(jv),
      detDeviation: mean(dv, Math.sqrt),
      entropy: entropy / heldOut.length,
      maxProb: maxProb / heldOut.length,
      inputGrad: mean(gv),
      accuracy: correct / heldOut.length,
    };
  } finally {
    x.dispose();
    y.dispose();
  }
}

/** Trains the seeded default MLP with the regularizers of `specs` and measures it. */
async function run(
  specs: string[],
  opts: Partial<TrainOptions> = {},
  data = TOY,
): Promise<Figures> {
  const rt = await getBackend();
  const model = buildModel(rt, modelSpecFromName("mlp"), { seed: SEED });
  const regs = parseRegularizers(specs);
  try {
    const r = await train(model, { train: data.train }, { ...BASE, ...opts, regularizers: regs });
    assert.equal(r.stopReason, undefined, `${specs}: ${r.stopReason}`);
    for (const h of r.history) {
      assert.ok(Number.isFinite(h.trainLoss), `${specs}: loss ${h.trainLoss}`);
      for (const name of regs.map((g) => g.name)) assert.ok(name in h.penalties);
    }
    const f = await measure(rt, model, r.history, data.heldOut);
    // Regularized, the separable problem is still solved: the effects below are not a collapse.
    if (data === TOY && (opts.lr ?? BASE.lr ?? 0.05) > 0) {
      show(`${specs.join(" ") || "baseline"}: held-out accuracy`, "", f.accuracy);
      assert.ok(f.accuracy > 0.9, `${specs}: held-out accuracy ${f.accuracy}`);
    }
    return f;
  } finally {
    for (const g of regs) g.dispose?.();
    model.dispose();
  }
}

let baseline: Promise<Figures> | null = null;
/** The unregularized run (same seed, data and options), trained once. */
function base(): Promise<Figures> {
  baseline ??= run([]);
  return baseline;
}

function show(what: string, b: number | string, r: number | string): void {
  const f = (v: number | string) => typeof v === "number" ? v.toPrecision(4) : v;
  if (PRINT) console.log(`  ${what.padEnd(42)} baseline ${f(b).padStart(10)}  reg ${f(r)}`);
}

/** Asserts `reg < base * factor` (or `>` for factor > 1), naming the quantity. */
function moved(what: string, b: number, r: number, factor: number): void {
  show(what, b, r);
  if (factor < 1) assert.ok(r < b * factor, `${what}: regularized ${r} not < ${factor} × ${b}`);
  else assert.ok(r > b * factor, `${what}: regularized ${r} not > ${factor} × ${b}`);
}

Deno.test("train() baseline fits the toy problem", async () => {
  const b = await base();
  assert.ok(b.accuracy > 0.95, `baseline accuracy ${b.accuracy}`);
  assert.ok(b.history.at(-1)!.trainLoss < b.history[0].trainLoss);
});

Deno.test("train() with l1 gives smaller L1 norm and more near-zero weights", async () => {
  const b = await base(), r = await run(["l1:lambda=3e-3"]);
  moved("l1: Σ|w|", b.l1, r.l1, 0.7);
  moved("l1: fraction |w| < 1e-2", b.nearZero, r.nearZero, 2);
});

Deno.test("train() with l2 gives a smaller L2 norm", async () => {
  const b = await base(), r = await run(["l2:lambda=5e-2"]);
  moved("l2: ||w||²", b.l2sq, r.l2sq, 0.7);
});

Deno.test("train() with elastic-net shrinks both norms", async () => {
  const b = await base(), r = await run(["elastic:l1=2e-3,l2=2e-2"]);
  moved("elastic: Σ|w|", b.l1, r.l1, 0.8);
  moved("elastic: ||w||²", b.l2sq, r.l2sq, 0.8);
});

Deno.test("train() with soft-svb brings the weights closer to orthogonal", async () => {
  const b = await base(), r = await run(["soft-svb:lambda=1e-2"]);
  moved("soft-svb: Σ||WᵀW − I||_F²", b.softSvb, r.softSvb, 0.7);
});

Deno.test("train() with spectral lowers the largest singular values", async () => {
  const b = await base(), r = await run(["spectral:lambda=0.5,iters=2"]);
  moved("spectral: Σ σ_max", sum(b.sigmaMax), sum(r.sigmaMax), 0.9);
  moved("spectral: max σ_max", Math.max(...b.sigmaMax), Math.max(...r.sigmaMax), 0.9);
});

Deno.test("train() with hard-svb leaves every singular value in the band", async () => {
  const eps = 0.2, lo = 1 / (1 + eps), hi = 1 + eps;
  const b = await base(), r = await run([`hard-svb:eps=${eps},every=epoch`]);
  const outside = (f: Figures) =>
    Math.max(...f.sigmaMax.map((s) => s - hi), ...f.sigmaMin.map((s) => lo - s), 0);
  show("hard-svb: σ range", band(b), band(r));
  // The last step of the last epoch projects, so the stored weights are inside the band.
  assert.ok(outside(b) > 0.1, `baseline already in the band: ${band(b)}`);
  assert.ok(outside(r) < 2e-3, `hard-svb: σ outside [${lo}, ${hi}]: ${band(r)}`);
});

function band(f: Figures): string {
  return `[${Math.min(...f.sigmaMin).toFixed(3)}, ${Math.max(...f.sigmaMax).toFixed(3)}]`;
}

Deno.test("train() with max-norm keeps every row norm at most c", async () => {
  const c = 0.6;
  const b = await base(), r = await run([`max-norm:c=${c}`]);
  show("max-norm: largest row norm", b.maxRowNorm, r.maxRowNorm);
  assert.ok(b.maxRowNorm > 1.5 * c, `baseline row norms already ≤ ${c}: ${b.maxRowNorm}`);
  assert.ok(r.maxRowNorm <= c * (1 + 1e-5), `max-norm: row norm ${r.maxRowNorm} > ${c}`);
});

Deno.test("train() with jacobian lowers the held-out Jacobian norm", async () => {
  const b = await base(), r = await run(["jacobian:lambda=0.1,nproj=1"]);
  moved("jacobian: mean ||J||_F²", b.jacobian, r.jacobian, 0.7);
});

Deno.test("train() with jacobian-det brings the area factor towards 1", async () => {
  const b = await base(), r = await run(["jacobian-det:lambda=0.1"]);
  moved("jacobian-det: mean |sqrt det JᵀJ − 1|", b.detDeviation, r.detDeviation, 0.7);
});

Deno.test("train() with confidence raises the predictive entropy", async () => {
  const b = await base(), r = await run(["confidence:beta=0.5"]);
  moved("confidence: mean entropy", b.entropy, r.entropy, 1.5);
});

Deno.test("train() with label-smoothing raises entropy and lowers max-softmax", async () => {
  const b = await base(), r = await run(["label-smoothing:eps=0.2"]);
  moved("label-smoothing: mean entropy", b.entropy, r.entropy, 1.5);
  show("label-smoothing: mean max softmax", b.maxProb, r.maxProb);
  assert.ok(r.maxProb < b.maxProb - 0.02, `max softmax ${r.maxProb} vs ${b.maxProb}`);
});

Deno.test("train() with gradient-norm lowers the input-gradient norm", async () => {
  // On separable clusters the trained CE saturates and ∂CE/∂x vanishes with or without the
  // penalty; overlapping clusters keep the loss, and so the input gradient, away from 0.
  const wide = problem(0.8);
  const b = await run([], {}, wide), r = await run(["gradient-norm:lambda=1"], {}, wide);
  moved("gradient-norm (std 0.8): mean ||∂CE/∂x||²", b.inputGrad, r.inputGrad, 0.7);
});

Deno.test("train() with input-noise trains on noisy inputs", async () => {
  const b = await base(), r = await run(["input-noise:sigma=0.5"]);
  const lb = b.history.at(-1)!.trainLoss, lr = r.history.at(-1)!.trainLoss;
  show("input-noise: last train loss", lb, lr);
  show("input-noise: held-out accuracy", b.accuracy, r.accuracy);
  assert.ok(lr > lb * 1.2, `input-noise: train loss ${lr} vs baseline ${lb}`);
  moved("input-noise: mean ||J||_F²", b.jacobian, r.jacobian, 0.9);
});

Deno.test("train() with weight-noise perturbs the forward but stores clean weights", async () => {
  // lr 0: the optimizer never moves the weights, so whatever is stored after training must be
  // the initial weights bit for bit, although every forward ran on noisy ones.
  const frozen = { lr: 0, epochs: 1 };
  const b = await run([], frozen), r = await run(["weight-noise:sigma=0.3"], frozen);
  const lb = b.history[0].trainLoss, lr = r.history[0].trainLoss;
  show("weight-noise (lr 0): train loss", lb, lr);
  assert.ok(Math.abs(lr - lb) > 1e-3, `weight-noise: loss ${lr} equals the clean ${lb}`);
  for (const [i, m] of r.weights.entries()) {
    assert.deepEqual(m.w, b.weights[i].w, `weight-noise left noise in ${m.name}`);
  }
  const t0 = await base(), t = await run(["weight-noise:sigma=0.1"]);
  const l0 = t0.history.at(-1)!.trainLoss, l = t.history.at(-1)!.trainLoss;
  show("weight-noise: last train loss", l0, l);
  assert.ok(Math.abs(l - l0) > 0.1 * l0, `weight-noise: loss ${l} vs baseline ${l0}`);
});

Deno.test("train() with jacobian + l2 + hard-svb applies all three", async () => {
  const eps = 0.5;
  const b = await base();
  const r = await run(["jacobian:lambda=0.1,nproj=1", "l2:lambda=5e-2", `hard-svb:eps=${eps}`]);
  moved("combo: mean ||J||_F²", b.jacobian, r.jacobian, 0.7);
  moved("combo: ||w||²", b.l2sq, r.l2sq, 0.8);
  show("combo: σ range", band(b), band(r));
  const lo = 1 / (1 + eps), hi = 1 + eps;
  assert.ok(Math.max(...r.sigmaMax) < hi + 2e-3 && Math.min(...r.sigmaMin) > lo - 2e-3, band(r));
  const pen = r.history.at(-1)!.penalties;
  assert.ok(pen.jacobian > 0 && pen.l2 > 0, JSON.stringify(pen));
});

Deno.test("cli.ts train --reg records every regularizer in the checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const ck = `${dir}/reg.safetensors`;
  try {
    const cli = new URL("../cli.ts", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        cli,
        "train",
        ...["--model", "mlp", "--data", "toy2d", "--epochs", "2", "--batch-size", "64"],
        ...["--reg", "jacobian:lambda=0.01,nproj=1", "--reg", "l2:lambda=5e-4"],
        ...["--out", ck, "--json"],
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err);
    const j = JSON.parse(new TextDecoder().decode(stdout));
    assert.equal(j.history.length, 2);
    for (const h of j.history) assert.ok(h.penalties.jacobian > 0 && h.penalties.l2 > 0);
    const meta = decodeCheckpoint(await Deno.readFile(ck)).metadata;
    const regs = meta.regularizers as { name: string; options: Record<string, unknown> }[];
    assert.deepEqual(regs.map((r) => r.name), ["jacobian", "l2"]);
    assert.equal(regs[0].options.lambda, 0.01);
    assert.equal(regs[0].options.nproj, 1);
    assert.equal(regs[1].options.lambda, 5e-4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
