import { torch } from "./_torch.ts";
import { assert, assertClose, getBackend } from "./_util.ts";
import {
  calculateGain,
  constant,
  defaultBias,
  defaultWeight,
  fans,
  kaimingNormal,
  kaimingUniform,
  type Nonlinearity,
  normal,
  ones,
  orthogonal,
  orthogonalFromGaussian,
  uniform,
  xavierNormal,
  xavierUniform,
  zeros,
} from "../src/init/init.ts";
import { philox4x32, randomNormal, randomUniform } from "../src/init/philox.ts";

/**
 * Asserts that samples have the given mean and variance within `z` standard errors:
 * SE(mean) = sigma / sqrt(n), SE(var) = sqrt((mu4 - sigma^4) / n), mu4 = kurt * sigma^4.
 */
function assertMoments(
  x: ArrayLike<number>,
  mean: number,
  variance: number,
  kurt: number,
  what: string,
  z = 5,
) {
  const n = x.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i];
  const m = s / n;
  let q = 0;
  for (let i = 0; i < n; i++) q += (x[i] - m) ** 2;
  const v = q / (n - 1);
  const seMean = Math.sqrt(variance / n), seVar = Math.sqrt(((kurt - 1) * variance ** 2) / n);
  assert.ok(Math.abs(m - mean) <= z * seMean, `${what}: mean ${m} vs ${mean} (SE ${seMean})`);
  assert.ok(
    Math.abs(v - variance) <= z * seVar,
    `${what}: variance ${v} vs ${variance} (SE ${seVar})`,
  );
}

/** Uniform kurtosis mu4 / sigma^4 = 9/5; normal 3. */
const KURT_UNIFORM = 9 / 5, KURT_NORMAL = 3;

function assertBound(x: ArrayLike<number>, b: number, what: string) {
  let mx = 0;
  for (let i = 0; i < x.length; i++) mx = Math.max(mx, Math.abs(x[i]));
  assert.ok(mx <= Math.fround(b), `${what}: |x| reaches ${mx} > bound ${b}`);
  assert.ok(mx > 0.99 * b, `${what}: |x| only reaches ${mx}, bound ${b}`);
}

Deno.test("philox4x32() matches the Random123 known-answer vectors", () => {
  const hex = (a: Uint32Array) => Array.from(a, (v) => v.toString(16).padStart(8, "0")).join(" ");
  assert.equal(hex(philox4x32([0, 0, 0, 0], [0, 0])), "6627e8d5 e169c58d bc57ac4c 9b00dbd8");
  const f = 0xffffffff;
  assert.equal(hex(philox4x32([f, f, f, f], [f, f])), "408f276d 41c83b0e a20bc7c6 6d5451fd");
  assert.equal(
    hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    "d16cfe09 94fdcceb 5001e420 24126ea1",
  );
});

Deno.test("randomUniform() and randomNormal() are deterministic, counter-based and well distributed", () => {
  const a = randomUniform(1001, { seed: 42 });
  assert.deepEqual(a, randomUniform(1001, { seed: 42 }));
  assert.deepEqual(a.slice(0, 7), randomUniform(7, { seed: 42 }), "a prefix is the shorter draw");
  assert.notDeepEqual(a, randomUniform(1001, { seed: 43 }));
  assert.notDeepEqual(a, randomUniform(1001, { seed: 42, stream: 1 }));
  assert.notDeepEqual(randomUniform(8, { seed: 1 }), randomUniform(8, { seed: 1 + 2 ** 32 }));
  const n = 200_000;
  const u = randomUniform(n, { seed: 7 });
  assert.ok(u.every((v) => v >= 0 && v < 1));
  assertMoments(u, 0.5, 1 / 12, KURT_UNIFORM, "uniform");
  const bins = new Array(20).fill(0);
  for (const v of u) bins[Math.floor(v * 20)]++;
  const chi2 = bins.reduce((s, c) => s + (c - n / 20) ** 2 / (n / 20), 0);
  assert.ok(chi2 < 50, `chi-square ${chi2} over 20 bins (df 19; 50 is p ~ 1e-4)`);
  const g = randomNormal(n, { seed: 8 });
  assertMoments(g, 0, 1, KURT_NORMAL, "normal");
  const within = g.filter((v) => Math.abs(v) < 1).length / n;
  const p1 = 0.6826894921370859;
  assert.ok(Math.abs(within - p1) < 5 * Math.sqrt(p1 * (1 - p1) / n), `P(|z|<1) = ${within}`);
  assert.throws(() => randomUniform(3, { seed: -1 }), /seed -1 must be an integer/);
});

Deno.test("calculateGain() and fans() match PyTorch 1.13", async () => {
  const gains: [Nonlinearity, number?][] = [
    ["linear"],
    ["conv2d"],
    ["sigmoid"],
    ["tanh"],
    ["relu"],
    ["leaky_relu"],
    ["leaky_relu", 0.2],
    ["leaky_relu", Math.sqrt(5)],
    ["selu"],
  ];
  const shapes = [[3, 4], [16, 3, 5, 5], [8, 2, 3], [1, 1, 1, 1, 7]];
  const want = await torch([
    ...gains.map(([nonlinearity, param]) => ({ op: "gain", nonlinearity, param })),
    ...shapes.map((shape) => ({ op: "fans", shape })),
  ]);
  gains.forEach(([nl, param], i) => {
    assertClose([calculateGain(nl, param)], [want[i].gain as number], {
      atol: 0,
      rtol: 1e-15,
      what: nl,
    });
  });
  shapes.forEach((s, i) => {
    const w = want[gains.length + i];
    assert.deepEqual(fans(s), { fanIn: w.fan_in, fanOut: w.fan_out });
  });
  assert.throws(() => fans([5]), /fewer than 2 dimensions/);
  assert.throws(() => calculateGain("gelu" as Nonlinearity), /unsupported nonlinearity 'gelu'/);
});

Deno.test("xavierUniform(), kaimingNormal() and the other random inits have their formula variance", () => {
  const lin = [384, 500], conv = [64, 32, 3, 3]; // fan_in 500 / 288, fan_out 384 / 576
  const cases: [string, Float32Array, number, "u" | "n"][] = [
    ["xavierUniform", xavierUniform(lin, { seed: 1 }), 2 / (500 + 384), "u"],
    [
      "xavierUniform gain",
      xavierUniform(conv, { seed: 2, gain: 5 / 3 }),
      (25 / 9) * 2 / (288 + 576),
      "u",
    ],
    ["xavierNormal", xavierNormal(conv, { seed: 3, gain: 2 }), 4 * 2 / (288 + 576), "n"],
    ["kaimingUniform", kaimingUniform(lin, { seed: 4 }), 2 / 500, "u"],
    [
      "kaimingUniform fan_out",
      kaimingUniform(conv, { seed: 5, mode: "fan_out", nonlinearity: "relu" }),
      2 / 576,
      "u",
    ],
    ["kaimingNormal", kaimingNormal(conv, { seed: 6 }), 2 / 288, "n"],
    [
      "kaimingNormal leaky",
      kaimingNormal(lin, { seed: 7, a: 0.2, nonlinearity: "leaky_relu" }),
      2 / (1 + 0.04) / 500,
      "n",
    ],
    [
      "kaimingNormal tanh",
      kaimingNormal(lin, { seed: 8, nonlinearity: "tanh" }),
      (25 / 9) / 500,
      "n",
    ],
    ["defaultWeight", defaultWeight(conv, { seed: 9 }), 1 / 3 / 288, "u"],
    ["uniform", uniform([300, 300], { seed: 10, low: -2, high: 1 }), 9 / 12, "u"],
    ["normal", normal([300, 300], { seed: 11, std: 0.3 }), 0.09, "n"],
  ];
  for (const [what, x, variance, kind] of cases) {
    const mean = what === "uniform" ? -0.5 : 0;
    assertMoments(x, mean, variance, kind === "u" ? KURT_UNIFORM : KURT_NORMAL, what);
    if (kind === "u" && what !== "uniform") assertBound(x, Math.sqrt(3 * variance), what);
  }
  // torch: Linear's default bound is 1/sqrt(fan_in) for weight and bias alike.
  assertBound(defaultWeight([2000, 50], { seed: 12 }), 1 / Math.sqrt(50), "defaultWeight bound");
  const bias = defaultBias([4000, 16, 1, 1], { seed: 13, stream: 1 });
  assert.equal(bias.length, 4000);
  assertBound(bias, 1 / 4, "defaultBias bound");
  assertMoments(bias, 0, 1 / 16 / 3, KURT_UNIFORM, "defaultBias");
  assert.deepEqual(defaultBias([3, 0], { seed: 1 }), new Float32Array(3));
});

Deno.test("orthogonal(), xavierUniform() and the other random inits are reproducible by seed", () => {
  for (
    const f of [
      xavierUniform,
      xavierNormal,
      kaimingUniform,
      kaimingNormal,
      orthogonal,
      defaultWeight,
    ]
  ) {
    const a = f([20, 7, 3], { seed: 5 });
    assert.deepEqual(a, f([20, 7, 3], { seed: 5 }), f.name);
    assert.notDeepEqual(a, f([20, 7, 3], { seed: 6 }), f.name);
    assert.notDeepEqual(a, f([20, 7, 3], { seed: 5, stream: 3 }), f.name);
  }
});

/** max |(M Mᵀ or Mᵀ M) - gain² I| over the smaller Gram matrix of a (rows, cols) matrix. */
function gramError(m: ArrayLike<number>, rows: number, cols: number, gain: number): number {
  const wide = rows < cols;
  const k = wide ? rows : cols, len = wide ? cols : rows;
  const at = (i: number, l: number) => (wide ? m[i * cols + l] : m[l * cols + i]);
  let worst = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let l = 0; l < len; l++) s += at(i, l) * at(j, l);
      worst = Math.max(worst, Math.abs(s - (i === j ? gain * gain : 0)));
    }
  }
  return worst;
}

Deno.test("orthogonal() gives orthonormal rows or columns and matches torch's QR sign convention", async () => {
  const cases: [number[], number][] = [
    [[50, 20], 1],
    [[20, 50], 1],
    [[16, 3, 3, 3], 1.5],
    [[8, 8], 1],
    [[1, 5], 2],
  ];
  for (const [shape, gain] of cases) {
    const rows = shape[0], cols = shape.reduce((a, b) => a * b, 1) / rows;
    const w = orthogonal(shape, { seed: 3, gain });
    assert.ok(
      gramError(w, rows, cols, gain) < 1e-5,
      `${shape} gain ${gain}: ${gramError(w, rows, cols, gain)}`,
    );
  }
  const dims = [[6, 4], [4, 6], [5, 5]];
  const gs = dims.map(([r, c], i) => randomNormal(r * c, { seed: 100 + i }));
  const want = await torch(
    dims.map(([rows, cols], i) => ({
      op: "orthogonal",
      rows,
      cols,
      gaussian: [...gs[i]],
      gain: 1.25,
    })),
  );
  dims.forEach(([r, c], i) => {
    const got = orthogonalFromGaussian(gs[i], r, c, 1.25);
    assertClose(got, want[i].q as number[], { atol: 1e-12, rtol: 0, what: `orthogonal ${r}x${c}` });
  });
  assert.throws(() => orthogonal([4], { seed: 1 }), /2 or more dimensions/);
});

Deno.test("zeros(), ones(), constant() fill and upload to tensors", async () => {
  const rt = await getBackend();
  assert.deepEqual(zeros([2, 3]), new Float32Array(6));
  assert.deepEqual(ones([4]), new Float32Array([1, 1, 1, 1]));
  assert.deepEqual(constant([2, 2], 0.5), new Float32Array([0.5, 0.5, 0.5, 0.5]));
  const shape = [6, 2, 3, 3];
  const data = kaimingNormal(shape, { seed: 9, nonlinearity: "relu" });
  const t = rt.upload(data, shape);
  assert.deepEqual(await t.read(), data);
  t.dispose();
});
