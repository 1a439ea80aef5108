/**
 * Attack properties on a small conv net trained in the test (tests/_attack_model.ts): the
 * perturbation stays in the ball and the box, ε = 0 is the identity, attacks lower accuracy,
 * PGD beats FGSM, accuracy falls with ε, targeted attacks reach their targets, seeds reproduce,
 * and neither the input nor the model's mode is touched.
 */
import { assert, getBackend } from "./_util.ts";
import { accuracy, buildNet, D, K, makeData, SHAPE, trainNet } from "./_attack_model.ts";
import type { Backend } from "../src/backend.ts";
import type { Tensor } from "../src/backend.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import {
  apgd,
  apgdCheckpoints,
  cw,
  deepfool,
  fgsm,
  pgd,
  pgdL2,
  robustness,
  runAttack,
} from "../src/attacks/mod.ts";

const N = 60;

interface Fixture {
  rt: Backend;
  net: Sequential;
  x: Tensor;
  y: Tensor;
  xs: Float32Array;
  ys: Int32Array;
}

let fixture: Promise<Fixture> | null = null;

/** One trained model shared by the tests of this file. */
function setup(): Promise<Fixture> {
  fixture ??= (async () => {
    const rt = await getBackend();
    const net = buildNet(rt, 1);
    const train = makeData(120, 1);
    const xt = rt.upload(train.x, [120, ...SHAPE]), yt = rt.upload(train.y, [120]);
    await trainNet(rt, net, xt, yt, 150);
    xt.dispose();
    yt.dispose();
    const test = makeData(N, 2);
    return {
      rt,
      net,
      x: rt.upload(test.x, [N, ...SHAPE]),
      y: rt.upload(test.y, [N]),
      xs: test.x,
      ys: test.y,
    };
  })();
  return fixture;
}

function norms(
  a: Float32Array,
  x: Float32Array,
): { linf: number[]; l2: number[]; lo: number; hi: number } {
  const linf: number[] = [], l2: number[] = [];
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < a.length / D; i++) {
    let m = 0, s = 0;
    for (let j = 0; j < D; j++) {
      const v = a[i * D + j], dd = v - x[i * D + j];
      m = Math.max(m, Math.abs(dd));
      s += dd * dd;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    linf.push(m);
    l2.push(Math.sqrt(s));
  }
  return { linf, l2, lo, hi };
}

async function hitRate(
  net: Sequential,
  adv: Tensor,
  target: Int32Array | Uint32Array,
): Promise<number> {
  const z = await net.forward(adv).read() as Float32Array;
  let hit = 0;
  for (let i = 0; i < target.length; i++) {
    let am = 0;
    for (let j = 1; j < K; j++) if (z[i * K + j] > z[i * K + am]) am = j;
    if (am === target[i]) hit++;
  }
  return hit / target.length;
}

Deno.test("attacks stay in the eps-ball and in [0, 1]; eps = 0 is the identity", async () => {
  const { rt, net, x, y, xs } = await setup();
  const linfAttacks = {
    fgsm: (eps: number) => fgsm(rt, net, x, y, { eps }),
    pgd: (eps: number) => pgd(rt, net, x, y, { eps, steps: 10, restarts: 2, seed: 3 }),
    "apgd-ce": (eps: number) => apgd(rt, net, x, y, { eps, steps: 12 }),
    "apgd-dlr": (eps: number) => apgd(rt, net, x, y, { eps, steps: 12, loss: "dlr", restarts: 2 }),
  };
  for (const [name, run] of Object.entries(linfAttacks)) {
    for (const eps of [0, 0.07, 0.3]) {
      const adv = run(eps);
      const a = await adv.read() as Float32Array;
      adv.dispose();
      const n = norms(a, xs);
      assert.ok(
        Math.max(...n.linf) <= eps + 1e-6,
        `${name} eps ${eps}: linf ${Math.max(...n.linf)}`,
      );
      assert.ok(n.lo >= 0 && n.hi <= 1, `${name} eps ${eps}: range [${n.lo}, ${n.hi}]`);
      if (eps === 0) assert.deepEqual(a, xs, `${name}: eps 0 changed the input`);
    }
  }
  for (const eps of [0, 0.3, 1.5]) {
    const adv = pgdL2(rt, net, x, y, { eps, steps: 10, restarts: 2 });
    const a = await adv.read() as Float32Array;
    adv.dispose();
    const n = norms(a, xs);
    assert.ok(Math.max(...n.l2) <= eps + 1e-6, `pgdL2 eps ${eps}: l2 ${Math.max(...n.l2)}`);
    assert.ok(n.lo >= 0 && n.hi <= 1);
    if (eps === 0) assert.deepEqual(a, xs);
  }
  for (const adv of [cw(rt, net, x, y, { steps: 30, searchSteps: 3 }), deepfool(rt, net, x, y)]) {
    const n = norms(await adv.read() as Float32Array, xs);
    adv.dispose();
    assert.ok(n.lo >= 0 && n.hi <= 1, `cw/deepfool range [${n.lo}, ${n.hi}]`);
  }
});

Deno.test("attacks lower accuracy; PGD <= FGSM; accuracy non-increasing in eps", async () => {
  const { rt, net, x, y, ys } = await setup();
  const clean = await accuracy(net, x, ys);
  assert.ok(clean >= 0.95, `clean accuracy ${clean}`);
  const rows: Record<string, number[]> = {
    fgsm: [],
    pgd: [],
    "pgd-l2": [],
    "apgd-ce": [],
    "apgd-dlr": [],
  };
  const epsList = [0.03, 0.06, 0.1, 0.2];
  for (const eps of epsList) {
    const advs: Record<string, Tensor> = {
      fgsm: fgsm(rt, net, x, y, { eps }),
      pgd: pgd(rt, net, x, y, { eps, steps: 20 }),
      "pgd-l2": pgdL2(rt, net, x, y, { eps: 4 * eps, steps: 20 }),
      "apgd-ce": apgd(rt, net, x, y, { eps, steps: 20 }),
      "apgd-dlr": apgd(rt, net, x, y, { eps, steps: 20, loss: "dlr" }),
    };
    for (const [name, adv] of Object.entries(advs)) {
      rows[name].push(await accuracy(net, adv, ys));
      adv.dispose();
    }
  }
  console.log("clean", clean, "eps", epsList, rows);
  for (const [name, accs] of Object.entries(rows)) {
    accs.forEach((a, i) => {
      assert.ok(a <= clean, `${name} eps ${epsList[i]}: ${a} > clean ${clean}`);
      if (i > 0) assert.ok(a <= accs[i - 1], `${name}: accuracy rose with eps: ${accs}`);
    });
  }
  rows.pgd.forEach((a, i) => assert.ok(a <= rows.fgsm[i], `pgd ${a} > fgsm ${rows.fgsm[i]}`));
  assert.ok(rows.pgd[3] === 0 && rows["apgd-ce"][3] === 0, "eps 0.2 should break every sample");
  const c = cw(rt, net, x, y, { steps: 60, searchSteps: 4 });
  const df = deepfool(rt, net, x, y, { steps: 30 });
  const accCw = await accuracy(net, c, ys), accDf = await accuracy(net, df, ys);
  c.dispose();
  df.dispose();
  console.log("cw", accCw, "deepfool", accDf);
  assert.ok(accCw <= 0.1, `cw accuracy ${accCw}`);
  assert.ok(accDf <= 0.1, `deepfool accuracy ${accDf}`);
});

Deno.test("targeted attacks hit their targets at large eps (given, random, least-likely)", async () => {
  const { rt, net, x, y, ys } = await setup();
  const given = Int32Array.from(ys, (c) => (c + 1) % K);
  const tg = rt.upload(given, [N]);
  const advs = {
    "fgsm given": [fgsm(rt, net, x, y, { eps: 0.5, target: tg }), given],
    "pgd given": [pgd(rt, net, x, y, { eps: 0.4, steps: 20, target: tg }), given],
    "apgd given": [apgd(rt, net, x, y, { eps: 0.4, steps: 20, target: tg }), given],
    "pgdL2 given": [pgdL2(rt, net, x, y, { eps: 3, steps: 20, target: tg }), given],
    "cw given": [cw(rt, net, x, y, { steps: 60, searchSteps: 4, target: tg }), given],
  } as Record<string, [Tensor, Int32Array]>;
  const rates: Record<string, number> = {};
  for (const [name, [adv, t]] of Object.entries(advs)) {
    rates[name] = await hitRate(net, adv, t);
    adv.dispose();
  }
  // random and least-likely targets: recompute them the same way to score the hit rate
  for (const mode of ["random", "least-likely"] as const) {
    const adv = pgd(rt, net, x, y, { eps: 0.4, steps: 20, target: mode, seed: 5 });
    const z = await net.forward(adv).read() as Float32Array;
    adv.dispose();
    // success = not the true label and, for least-likely, the argmin of the clean logits
    const clean = await net.forward(x).read() as Float32Array;
    let hit = 0;
    for (let i = 0; i < N; i++) {
      let am = 0, lm = 0;
      for (let j = 1; j < K; j++) {
        if (z[i * K + j] > z[i * K + am]) am = j;
        if (clean[i * K + j] < clean[i * K + lm]) lm = j;
      }
      if (mode === "random" ? am !== ys[i] : am === lm) hit++;
    }
    rates[`pgd ${mode}`] = hit / N;
  }
  console.log("targeted hit rates", rates);
  for (const [name, r] of Object.entries(rates)) {
    if (name !== "fgsm given") assert.ok(r > 0.9, `${name}: hit rate ${r}`);
  }
  tg.dispose();
});

Deno.test("attacks are reproducible by seed and leave the input and the model mode alone", async () => {
  const { rt, net, x, y, xs } = await setup();
  for (const training of [true, false]) {
    net.training = training;
    const runs = [1, 1, 2].map((seed) =>
      pgd(rt, net, x, y, { eps: 0.1, steps: 5, seed, restarts: 2 })
    );
    const [a, b, c] = await Promise.all(runs.map((t) => t.read()));
    runs.forEach((t) => t.dispose());
    assert.deepEqual(a, b, "same seed, different result");
    assert.notDeepEqual(a, c, "different seeds, same random start");
    const ap = [
      apgd(rt, net, x, y, { eps: 0.1, steps: 8, seed: 4 }),
      apgd(rt, net, x, y, { eps: 0.1, steps: 8, seed: 4 }),
    ];
    assert.deepEqual(await ap[0].read(), await ap[1].read());
    ap.forEach((t) => t.dispose());
    for (
      const adv of [
        fgsm(rt, net, x, y, { eps: 0.1 }),
        cw(rt, net, x, y, { steps: 5, searchSteps: 1 }),
        deepfool(rt, net, x, y, { steps: 3 }),
      ]
    ) {
      adv.dispose();
    }
    assert.equal(net.training, training, "model mode changed");
    assert.deepEqual(await x.read(), xs, "input changed");
  }
  net.eval();
});

Deno.test("attacks refuse bad arguments with clear errors", async () => {
  const { rt, net, x, y } = await setup();
  const bad = rt.upload(new Int32Array(3), [3]);
  assert.throws(
    () => fgsm(rt, net, x, bad, { eps: 0.1 }),
    /fgsm: labels must be u32 or i32 \[60\]/,
  );
  assert.throws(() => pgd(rt, net, x, y, { eps: -1 }), /pgd: eps must be a finite number >= 0/);
  assert.throws(
    () => pgd(rt, net, x, y, { eps: 0.1, steps: 1.5 }),
    /pgd: steps must be an integer/,
  );
  assert.throws(
    () => apgd(rt, net, x, y, { eps: 0.1, loss: "dlr", target: "random" }),
    /DLR loss is untargeted/,
  );
  assert.throws(
    () => pgd(rt, net, x, y, { eps: 0.1, target: bad }),
    /pgd: target must be u32 or i32/,
  );
  bad.dispose();
  assert.equal(net.training, false);
});

Deno.test("apgdCheckpoints() follows autopgd_base.py's schedule", () => {
  // N = 100: k = 22, then 19, 16, 13, 10, 7, 6, 6 ...
  assert.deepEqual(apgdCheckpoints(100).slice(0, 6), [[21, 22], [40, 19], [56, 16], [69, 13], [
    79,
    10,
  ], [86, 7]]);
  assert.deepEqual(apgdCheckpoints(4), [[0, 1], [1, 1], [2, 1], [3, 1]]);
});

Deno.test("robustness() reports curves, the worst case and passing sanity checks", async () => {
  const { rt, net, xs, ys } = await setup();
  const r = await robustness(rt, net, { x: xs, y: ys, sampleShape: SHAPE }, {
    attacks: ["fgsm", "pgd", "apgd-ce"],
    eps: [0.03, 0.1, 0.2],
    steps: 40,
    restarts: 4,
    batchSize: 32,
    iterations: [1, 5, 40],
  });
  console.log(JSON.stringify(r));
  assert.equal(r.count, N);
  assert.equal(r.norm, "linf");
  r.worstCase.forEach((w, i) => {
    for (const a of ["fgsm", "pgd", "apgd-ce"]) assert.ok(w <= r.accuracy[a][i]);
  });
  for (const c of r.checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
  assert.equal(r.checks.length, 4);
  assert.deepEqual(r.iterations?.steps, [1, 5, 40]);
  await assert.rejects(
    () =>
      robustness(rt, net, { x: xs, y: ys, sampleShape: SHAPE }, {
        attacks: ["pgd", "cw"],
        eps: [0.1],
      }),
    /mix L∞ and L2/,
  );
});

Deno.test("runAttack() passes alpha and randomStart to pgd, pgd-l2 and apgd", async () => {
  const { rt, net, x, y } = await setup();
  const same = async (a: Tensor, b: Tensor, what: string) => {
    assert.deepEqual(await a.read(), await b.read(), what);
    a.dispose();
    b.dispose();
  };
  const s = { steps: 6, alpha: 0.013, randomStart: false, seed: 3 };
  await same(
    runAttack(rt, "pgd", net, x, y, 0.1, s),
    pgd(rt, net, x, y, { eps: 0.1, ...s }),
    "pgd, fixed alpha, no random start",
  );
  await same(
    runAttack(rt, "pgd-l2", net, x, y, 0.5, s),
    pgdL2(rt, net, x, y, { eps: 0.5, ...s }),
    "pgd-l2",
  );
  await same(
    runAttack(rt, "apgd-ce", net, x, y, 0.1, { steps: 6, randomStart: false }),
    apgd(rt, net, x, y, { eps: 0.1, steps: 6, randomStart: false }),
    "apgd-ce without random start",
  );
  // the defaults stay 2.5 eps / steps and a random start
  await same(
    runAttack(rt, "pgd", net, x, y, 0.1, { steps: 6, seed: 3 }),
    pgd(rt, net, x, y, { eps: 0.1, steps: 6, alpha: 2.5 * 0.1 / 6, randomStart: true, seed: 3 }),
    "pgd defaults",
  );
  const fixed = runAttack(rt, "pgd", net, x, y, 0.1, s);
  const started = runAttack(rt, "pgd", net, x, y, 0.1, { ...s, randomStart: true });
  assert.notDeepEqual(await fixed.read(), await started.read(), "randomStart has no effect");
  fixed.dispose();
  started.dispose();
});

Deno.test("deepfool() on a linear model lands (1 + overshoot) past the nearest boundary in one step", async () => {
  const rt = await getBackend();
  const { Linear } = await import("../src/layers/linear.ts");
  const { Sequential } = await import("../src/layers/sequential.ts");
  const fc = new Linear(rt, "fc", 4, 3);
  const W = [0.8, -0.3, 0.2, 0.1, -0.5, 0.6, 0.1, -0.2, 0.3, 0.2, -0.7, 0.4];
  const bias = [0.05, 0, -0.02];
  rt.write(fc.weight, new Float32Array(W));
  rt.write(fc.bias!, new Float32Array(bias));
  const lin = new Sequential(rt, "", [fc]);
  const xs = new Float32Array([0.5, 0.45, 0.55, 0.5, 0.48, 0.52, 0.5, 0.47]);
  const x = rt.upload(xs, [2, 4]);
  const z = (v: ArrayLike<number>, i: number, c: number) =>
    bias[c] + [0, 1, 2, 3].reduce((s, j) => s + W[c * 4 + j] * v[i * 4 + j], 0);
  const adv = deepfool(rt, lin, x, null, { steps: 1 });
  const a = await adv.read() as Float32Array;
  for (let i = 0; i < 2; i++) {
    const yi = [0, 1, 2].reduce((m, c) => (z(xs, i, c) > z(xs, i, m) ? c : m), 0);
    let best = Infinity;
    for (let c = 0; c < 3; c++) {
      if (c === yi) continue;
      const f = z(xs, i, c) - z(xs, i, yi);
      const wn = Math.hypot(...[0, 1, 2, 3].map((j) => W[c * 4 + j] - W[yi * 4 + j]));
      best = Math.min(best, (Math.abs(f) + 1e-4) / wn);
    }
    const dist = Math.hypot(...[0, 1, 2, 3].map((j) => a[i * 4 + j] - xs[i * 4 + j]));
    assert.ok(
      Math.abs(dist - 1.02 * best) < 1e-5,
      `sample ${i}: moved ${dist}, want ${1.02 * best}`,
    );
    const yAdv = [0, 1, 2].reduce((m, c) => (z(a, i, c) > z(a, i, m) ? c : m), 0);
    assert.notEqual(yAdv, yi, `sample ${i} still classified as ${yi}`);
  }
  adv.dispose();
  x.dispose();
  lin.dispose();
});

Deno.test("robustness() flags an iterative attack weaker than FGSM", async () => {
  const { rt, net, xs, ys } = await setup();
  // one PGD step of a tenth of the usual size cannot match FGSM's full step of ε
  const r = await robustness(rt, net, { x: xs, y: ys, sampleShape: SHAPE }, {
    attacks: ["fgsm", "pgd"],
    eps: [0.1, 0.2],
    steps: 1,
    alphaFactor: 0.1,
    randomStart: false,
    sanityChecks: false,
  });
  const check = r.checks.find((c) => c.name === "iterative <= single-step");
  assert.ok(check && !check.ok, JSON.stringify(r.checks));
  assert.match(check.detail, /weaker than FGSM at eps 0\.1, 0\.2/);
});

Deno.test("attacks leave parameter gradients and BatchNorm statistics as they found them", async () => {
  const rt = await getBackend();
  const { BatchNorm } = await import("../src/layers/batchnorm.ts");
  const { Conv2d } = await import("../src/layers/conv2d.ts");
  const { ReLU } = await import("../src/layers/activation.ts");
  const { Flatten } = await import("../src/layers/flatten.ts");
  const { Linear } = await import("../src/layers/linear.ts");
  const { Sequential } = await import("../src/layers/sequential.ts");
  const { randomArray } = await import("./_util.ts");
  const bnNet = new Sequential(rt, "", [
    new Conv2d(rt, "conv", 1, 2, 3, { padding: 1 }),
    new BatchNorm(rt, "bn", 2, { dims: 2 }),
    new ReLU(rt, "relu"),
    new Flatten("flatten"),
    new Linear(rt, "fc", 32, 3),
  ]);
  let seed = 40;
  for (const p of bnNet.params()) {
    if (p.value.dtype === "f32") rt.write(p.value, randomArray(p.value.size, seed++, 0.1, 0.6));
    if (p.grad) rt.write(p.grad, randomArray(p.grad.size, seed++));
  }
  const before = await Promise.all(
    bnNet.params().map(async (p) => [await p.value.read(), p.grad ? await p.grad.read() : null]),
  );
  const test = makeData(6, 9);
  const x = rt.upload(test.x, [6, ...SHAPE]), y = rt.upload(test.y, [6]);
  bnNet.train();
  for (
    const adv of [
      pgd(rt, bnNet, x, y, { eps: 0.1, steps: 3 }),
      apgd(rt, bnNet, x, y, { eps: 0.1, steps: 3 }),
      deepfool(rt, bnNet, x, y, { steps: 2 }),
    ]
  ) adv.dispose();
  assert.equal(bnNet.training, true);
  const after = await Promise.all(
    bnNet.params().map(async (p) => [await p.value.read(), p.grad ? await p.grad.read() : null]),
  );
  assert.deepEqual(after, before, "an attack changed a parameter, a buffer or a gradient");
  x.dispose();
  y.dispose();
  bnNet.dispose();
});
