/**
 * Adversarial training (src/train/adversarial.ts) through `train()`:
 *
 * - its spec parser and its one-line errors;
 * - parity with PyTorch 1.13 in float32 (tools/torch_bridge.py `train_sgd` with `adv`, whose
 *   attacks are tools/torch_attacks.py's): from the same weights and batches, PGD (no random
 *   start), PGD on half of each batch combined with L2, and FGSM adversarial training give the
 *   same per-step losses and final weights;
 * - that it works: on a small problem, PGD adversarial training raises PGD accuracy well above
 *   that of the same-seed standard training, and with ε = 0 it is standard training;
 * - `cli.ts train --adv-train` and what the checkpoint and the report say of it.
 */
import { assert, backendUnderTest, getBackend } from "./_util.ts";
import { main } from "../cli.ts";
import { decodeCheckpoint } from "../src/io/checkpoint.ts";
import { trainingOf } from "../src/metrics/report.ts";
import { buildNet, D, makeData, SHAPE, TORCH_MODEL } from "./_attack_model.ts";
import { f64, i32, paramInputs, relErr, torchBridge } from "./_model_bridge.ts";
import { evaluate, train, type TrainOptions } from "../src/train/train.ts";
import {
  type AdversarialTraining,
  parseAdversarialTraining,
  resolveAdversarialTraining,
} from "../src/train/adversarial.ts";
import { permutation, subset } from "../src/data/dataset.ts";
import { loadDataset } from "../cli/data.ts";
import { buildModel, modelSpecFromName } from "../src/models/mod.ts";
import type { Dataset } from "../src/data/dataset.ts";
import { l2Regularizer } from "../src/regularizers/penalties.ts";
import type { Regularizer } from "../src/hooks/step.ts";
import { pgd } from "../src/attacks/pgd.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import { argmax } from "../src/ops/reduce.ts";

Deno.test("parseAdversarialTraining() fills in the defaults and reads every option", () => {
  assert.deepEqual(parseAdversarialTraining("pgd:eps=0.3,steps=40,alpha=0.01"), {
    attack: "pgd",
    eps: 0.3,
    steps: 40,
    alpha: 0.01,
    randomStart: true,
    ratio: 1,
  });
  assert.deepEqual(parseAdversarialTraining("PGD:eps=0.1,random-start=false,ratio=0.5"), {
    attack: "pgd",
    eps: 0.1,
    steps: 10,
    alpha: 0.025,
    randomStart: false,
    ratio: 0.5,
  });
  assert.deepEqual(parseAdversarialTraining("fgsm:0.1"), { attack: "fgsm", eps: 0.1, ratio: 1 });
  assert.deepEqual(resolveAdversarialTraining({ attack: "fgsm", eps: 0.2, ratio: 0.25 }), {
    attack: "fgsm",
    eps: 0.2,
    ratio: 0.25,
  });
});

Deno.test("parseAdversarialTraining() rejects bad specs with one line naming the problem", () => {
  const cases: [string, RegExp][] = [
    ["cw:eps=1", /Unknown adversarial training attack 'cw'.*use pgd:eps=/],
    ["pgd", /needs eps, e\.g\. pgd:eps=0\.1/],
    ["pgd:steps=3", /needs eps/],
    ["pgd:eps=abc", /eps needs a number, got 'abc'/],
    ["pgd:eps=-0.1", /eps must be a finite number >= 0/],
    ["pgd:eps=0.1,steps=2.5", /steps must be an integer >= 1, got 2.5/],
    ["pgd:eps=0.1,steps=0", /steps must be an integer >= 1, got 0/],
    ["pgd:eps=0.1,alpha=-1", /alpha must be a finite number >= 0/],
    ["pgd:eps=0.1,ratio=1.5", /ratio must be in \[0, 1\], got 1.5/],
    ["pgd:eps=0.1,random-start=maybe", /random-start needs true or false, got 'maybe'/],
    ["pgd:eps=0.1,stesp=3", /pgd has no option 'stesp'; valid: eps, steps, alpha/],
    ["pgd:eps=0.1,eps=0.2", /eps is given twice/],
    ["fgsm:eps=0.1,steps=3", /fgsm has no option 'steps'; valid: eps, ratio/],
  ];
  for (const [spec, re] of cases) {
    let msg = "";
    try {
      parseAdversarialTraining(spec);
    } catch (e) {
      msg = (e as Error).message;
    }
    assert.match(msg, re, `'${spec}'`);
    assert.ok(!msg.includes("\n"), `'${spec}': one line, got ${msg}`);
  }
  assert.throws(
    () => resolveAdversarialTraining({ attack: "fgsm", eps: 0.1, steps: 3 }),
    /fgsm takes eps and ratio only, got steps/,
  );
});

const B = 24, N = 2 * B;

function dataset(n: number, seed: number): Dataset {
  const { x, y } = makeData(n, seed);
  return { name: "synthetic", x, y, sampleShape: [...SHAPE], classes: 3, length: n };
}

/**
 * Trains `net` with `train()` (SGD momentum 0.9, batch B, no validation), logging every step.
 * @returns the mean loss of each step's batch, recovered from the running means
 */
async function trainLogged(
  net: Sequential,
  data: Dataset,
  opts: Partial<TrainOptions>,
): Promise<number[]> {
  const losses: number[] = [];
  let prevSum = 0, prevSeen = 0;
  await train(net, { train: data }, {
    epochs: 3,
    batchSize: B,
    lr: 0.1,
    optimizer: { algorithm: "sgd", momentum: 0.9 },
    seed: 7,
    logEvery: 1,
    ...opts,
    onProgress: (p) => {
      // Running means of the epoch: step 1 holds the first batch, the end of the epoch both.
      const seen = p.step * B;
      if (p.step === 1) [prevSum, prevSeen] = [0, 0];
      losses.push((p.loss * seen - prevSum) / (seen - prevSeen));
      [prevSum, prevSeen] = [p.loss * seen, seen];
    },
  });
  return losses;
}

Deno.test("train({ adversarial }) reproduces PyTorch's PGD and FGSM adversarial training", async () => {
  const rt = await getBackend();
  const data = dataset(N, 5);
  // The batches train() draws: epoch e visits permutation(N, seed, 2e) in slices of B.
  const steps = 6, seed = 7;
  const xs = new Float32Array(steps * B * D), ys = new Int32Array(steps * B);
  for (let e = 0; e < 3; e++) {
    const order = permutation(N, seed, 2 * e);
    for (let j = 0; j < N; j++) {
      const at = e * N + j;
      ys[at] = data.y[order[j]];
      xs.set(data.x.subarray(order[j] * D, (order[j] + 1) * D), at * D);
    }
  }
  const cases: {
    name: string;
    adv: AdversarialTraining;
    torch: Record<string, unknown>;
    regs?: () => Regularizer[];
    extra?: Record<string, unknown>;
  }[] = [
    {
      name: "pgd",
      adv: { attack: "pgd", eps: 0.1, steps: 5, alpha: 0.03, randomStart: false },
      torch: { attack: "pgd", eps: 0.1, steps: 5, alpha: 0.03 },
    },
    {
      name: "pgd, ratio 0.25, + l2",
      adv: { attack: "pgd", eps: 0.15, steps: 4, alpha: 0.05, randomStart: false, ratio: 0.25 },
      torch: { attack: "pgd", eps: 0.15, steps: 4, alpha: 0.05, ratio: 0.25 },
      regs: () => [l2Regularizer({ lambda: 0.01 })],
      extra: { weight_decay: 0.01, no_decay: ["bias"] },
    },
    {
      name: "fgsm",
      adv: { attack: "fgsm", eps: 0.1 },
      torch: { attack: "fgsm", eps: 0.1 },
    },
  ];
  const jobs = [], ours: { losses: number[]; state: Map<string, Float32Array> }[] = [];
  for (const c of cases) {
    const net = buildNet(rt, 3);
    const init = await paramInputs(net.params());
    const regs = c.regs?.() ?? [];
    const losses = await trainLogged(net, data, { adversarial: c.adv, regularizers: regs });
    for (const r of regs) r.dispose?.();
    const state = new Map<string, Float32Array>();
    for (const p of net.params()) state.set(p.name, await p.value.read() as Float32Array);
    ours.push({ losses, state });
    net.dispose();
    jobs.push({
      spec: {
        op: "train_sgd",
        model: TORCH_MODEL,
        dtype: "float32",
        lr: 0.1,
        momentum: 0.9,
        adv: c.torch,
        ...c.extra,
      },
      inputs: { ...init, x: f64([steps, B, ...SHAPE], xs), y: i32([steps, B], ys) },
    });
  }
  const outs = await torchBridge(jobs);
  for (const [i, c] of cases.entries()) {
    const want = outs[i].ce_losses.data, got = ours[i].losses;
    assert.equal(got.length, steps, `${c.name}: ${got.length} steps logged`);
    let lossErr = 0;
    for (let s = 0; s < steps; s++) {
      lossErr = Math.max(lossErr, Math.abs(got[s] - want[s]) / Math.abs(want[s]));
    }
    let wErr = 0, wName = "";
    for (const [name, v] of ours[i].state) {
      const e = relErr(v, outs[i][`state.${name}`].data);
      if (e > wErr) [wErr, wName] = [e, name];
    }
    console.log(
      `${c.name}: losses ${Array.from(want, (v) => v.toFixed(4)).join(" ")}; max relative ` +
        `loss error ${lossErr.toExponential(2)}, final weights ${wErr.toExponential(2)} (${wName})`,
    );
    assert.ok(
      lossErr < 1e-4,
      `${c.name}: losses\nours:  ${got.join(", ")}\ntorch: ${Array.from(want).join(", ")}`,
    );
    assert.ok(wErr < 1e-4, `${c.name}: final ${wName} relative error ${wErr}`);
  }
});

/** Fraction of `data` that `net` still classifies correctly under L∞ PGD (20 steps, from x). */
async function pgdAccuracy(net: Sequential, data: Dataset, eps: number): Promise<number> {
  const rt = net.rt;
  const x = rt.upload(data.x, [data.length, ...data.sampleShape]);
  const y = rt.upload(data.y, [data.length], "i32");
  const adv = pgd(rt, net, x, y, { eps, steps: 20, alpha: 2.5 * eps / 20, randomStart: false });
  const pred = argmax(rt, net.forward(adv), 1);
  const p = await pred.read() as Uint32Array;
  for (const t of [x, y, adv, pred]) t.dispose();
  return p.filter((v, i) => v === data.y[i]).length / data.length;
}

Deno.test("train({ adversarial: pgd }) raises PGD accuracy on an MNIST subset over the same-seed baseline", async () => {
  const rt = await getBackend();
  const first = (ds: Dataset, n: number) => subset(ds, Array.from({ length: n }, (_, i) => i));
  const trainSet = first(await loadDataset("mnist", { split: "train" }), 1000);
  const testSet = first(await loadDataset("mnist", { split: "test" }), 400);
  const EPS = 0.1;
  const spec = modelSpecFromName("mlp", {
    inputShape: [1, 28, 28],
    hidden: [128],
    classes: 10,
    activation: "relu",
  });
  const run = async (adversarial?: AdversarialTraining) => {
    const net = buildModel(rt, spec, { seed: 0 });
    const r = await train(net, { train: trainSet }, {
      epochs: 4,
      batchSize: 50,
      lr: 0.05,
      seed: 0,
      adversarial,
    });
    const clean = (await evaluate(net, testSet)).accuracy;
    const robust = await pgdAccuracy(net, testSet, EPS);
    const params = await Promise.all(net.params().map((p) => p.value.read()));
    net.dispose();
    return { clean, robust, loss: r.history.at(-1)!.trainLoss, params };
  };
  const base = await run();
  // Madry et al.'s recipe in small: PGD from a random start, 5 steps of 2.5 ε / 5.
  const adv = await run({ attack: "pgd", eps: EPS, steps: 5 });
  // ε = 0: the attack leaves the batch as it is, so the run is the baseline, weight for weight.
  const zero = await run({ attack: "pgd", eps: 0, steps: 5 });
  console.log(
    `MNIST 1000/400, MLP 784-128-10, 4 epochs: baseline clean ${base.clean} PGD(ε ${EPS}) ` +
      `${base.robust}; PGD-trained clean ${adv.clean} PGD ${adv.robust}; ε = 0 PGD ${zero.robust}`,
  );
  assert.ok(base.clean > 0.75 && adv.clean > 0.65, `clean accuracy ${base.clean}, ${adv.clean}`);
  assert.ok(
    adv.robust >= base.robust + 0.1,
    `PGD accuracy ${adv.robust} after adversarial training, ${base.robust} without`,
  );
  // The training loss is measured on the adversarial batches: higher than the clean one.
  assert.ok(adv.loss > base.loss, `adversarial training loss ${adv.loss} vs ${base.loss}`);
  assert.equal(zero.robust, base.robust);
  zero.params.forEach((p, i) => assert.deepEqual(p, base.params[i]));
});

Deno.test("cli.ts train --adv-train records the settings in the checkpoint; bad specs exit 2", async () => {
  const io = () => {
    const out: string[] = [], err: string[] = [];
    return { out, err, io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) } };
  };
  const dir = await Deno.makeTempDir({ prefix: "regula_adv_" });
  try {
    const ck = `${dir}/adv.safetensors`;
    const base = ["train", "--model", "mlp", "--data", "mnist", "--limit", "300", "--epochs", "1"];
    const a = io();
    const code = await main([
      ...base,
      "--backend",
      backendUnderTest(),
      "--adv-train",
      "pgd:eps=0.1,steps=3,random-start=false,ratio=0.5",
      "--reg",
      "l2:5e-4",
      "--out",
      ck,
      "--json",
    ], a.io);
    assert.equal(code, 0, a.err.join("\n"));
    const want = { attack: "pgd", eps: 0.1, steps: 3, alpha: 2.5 * 0.1 / 3, randomStart: false };
    const j = JSON.parse(a.out.at(-1)!);
    assert.deepEqual(j.adversarial, { ...want, ratio: 0.5 });
    const meta = decodeCheckpoint(await Deno.readFile(ck)).metadata;
    assert.deepEqual(meta.adversarial, { ...want, ratio: 0.5 });
    assert.deepEqual((meta.regularizers as { name: string }[]).map((r) => r.name), ["l2"]);
    // Without the flag the checkpoint says null.
    const b = io();
    assert.equal(await main([...base, "--backend", backendUnderTest(), "--json"], b.io), 0);
    assert.equal(JSON.parse(b.out.at(-1)!).adversarial, null);
    for (
      const [spec, re] of [
        ["pgd:eps=0.1,stesp=3", /^error: .*pgd has no option 'stesp'; valid: eps, steps, alpha/],
        ["fgsm", /^error: Adversarial training 'fgsm' needs eps/],
        ["apgd:eps=0.1", /^error: Unknown adversarial training attack 'apgd'/],
      ] as const
    ) {
      const c = io();
      assert.equal(await main([...base, "--adv-train", spec], c.io), 2, spec);
      assert.equal(c.err.length, 1, c.err.join("\n"));
      assert.match(c.err[0], re);
      assert.equal(c.out.length, 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trainingOf() describes a checkpoint's regularizers and adversarial training for the report", () => {
  assert.deepEqual(
    trainingOf({
      regularizers: [{ name: "l2", options: { lambda: 5e-4, biases: false } }],
      adversarial: parseAdversarialTraining("pgd:eps=0.1,steps=3,ratio=0.5"),
    }),
    {
      regularizers: "l2 lambda=0.0005, biases=false",
      adversarial: "pgd ε 0.1, 3 steps of 0.08333, random start, 50% of each batch",
    },
  );
  assert.deepEqual(trainingOf({ regularizers: [], adversarial: { attack: "fgsm", eps: 0.2 } }), {
    regularizers: "none",
    adversarial: "fgsm ε 0.2",
  });
  assert.equal(trainingOf({ model: { kind: "mlp" } }), null);
  assert.equal(trainingOf(undefined), null);
});
