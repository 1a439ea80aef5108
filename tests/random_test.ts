import { assert, assertClose, getBackend } from "./_util.ts";
import {
  bernoulliMask,
  randomBits,
  randomNormal,
  randomUniform,
  type Seed,
} from "../src/ops/random.ts";
import {
  bernoulliMaskRef,
  philox4x32_10,
  randomBitsRef,
  randomNormalRef,
  randomUniformRef,
} from "../src/reference/random.ts";

const hex = (s: string) => s.trim().split(/\s+/).map((w) => parseInt(w, 16));

/** A KAT line as [counter, key, expected] words. */
function kat(line: string): [number[], number[], number[]] {
  const w = hex(line);
  return [w.slice(0, 4), w.slice(4, 6), w.slice(6, 10)];
}

/**
 * Philox4x32-10 known-answer vectors (counter, key, expected), from Random123
 * (D. E. Shaw Research). The first three are the `philox4x32 10` lines of
 * `tests/kat_vectors` of https://github.com/DEShawResearch/random123 (commit 9545ff64; quoted
 * identically by several independent ports); the rest are `philox4x32 10` lines of the
 * distribution's larger `examples/kat_vectors` (as mirrored in github.com/girving/random123-manual,
 * commit 61e84792).
 */
const KAT: string[] = [
  // counter (4 words)                 key (2 words)      expected (4 words)
  "00000000 00000000 00000000 00000000  00000000 00000000  6627e8d5 e169c58d bc57ac4c 9b00dbd8",
  "ffffffff ffffffff ffffffff ffffffff  ffffffff ffffffff  408f276d 41c83b0e a20bc7c6 6d5451fd",
  "243f6a88 85a308d3 13198a2e 03707344  a4093822 299f31d0  d16cfe09 94fdcceb 5001e420 24126ea1",
  "00000001 00000000 00000000 00000000  00000001 00000000  ac08141b dfc5ccbe 79c07a47 a7f66093",
  "00000000 00000000 00000001 00000000  00000001 00000000  07071c12 428264b6 3909104b 6da2bda2",
  "00000000 00000000 00000000 00000001  00000001 00000000  127bee41 1e047488 48842b20 0a393496",
  "00000000 00000000 ffffffff 00000000  00000000 ffffffff  07678411 9e524307 ba634e67 94ee8cb7",
  "00000001 00000000 00000000 00000000  00000000 80000000  e29b9f84 2903d316 42a1f56f 1ad02eab",
  "00000000 ffffffff 00000000 00000000  00000000 00000001  00e94a67 3524f44e 22995230 bb54df1e",
  "a4093822 299f31d0 082efa98 ec4e6c89  00000000 80000000  aa74e81c c9ddb97b 2c2cd881 9390c78d",
];

Deno.test("philox4x32_10() reproduces the Random123 known-answer vectors", () => {
  for (const line of KAT) {
    const [ctr, key, want] = kat(line);
    const got = philox4x32_10(ctr as [number, number, number, number], key as [number, number]);
    assert.deepEqual(got, want, line);
  }
});

Deno.test("randomBits() reproduces the known-answer vectors on the GPU", async () => {
  const rt = await getBackend();
  // The GPU block j of (seed, counter) is philox([j, 0, counter lo, counter hi], seed words):
  // every KAT line whose second counter word is 0 and whose counter fits in 2^53 can be checked.
  let checked = 0;
  for (const line of KAT) {
    const [[j, c1, lo, hi], key, want] = kat(line);
    if (c1 !== 0 || j > 4 || hi >= 2 ** 21) continue;
    checked++;
    const seed = key as [number, number];
    const bits = await randomBits(rt, [4 * (j + 1)], { seed, counter: hi * 2 ** 32 + lo }).read();
    assert.deepEqual(Array.from(bits.slice(4 * j)), want, line);
  }
  assert.equal(checked, 6);
});

Deno.test("randomBits() is bit-identical to the CPU reference for any size, seed and counter", async () => {
  const rt = await getBackend();
  const cases: [number, Seed, number][] = [
    [1, 0, 0],
    [3, 1, 0],
    [17, 42, 3],
    [255, [0xdeadbeef, 0x12345678], 2 ** 32 + 5],
    [1000, 2 ** 53 - 1, 2 ** 53 - 1],
    [70001, 7, 123456789],
  ];
  for (const [n, seed, counter] of cases) {
    const got = await randomBits(rt, [n], { seed, counter }).read();
    const want = randomBitsRef(n, seed, counter);
    let bad = 0;
    for (let i = 0; i < n; i++) if (got[i] !== want[i]) bad++;
    assert.equal(bad, 0, `n=${n} seed=${seed} counter=${counter}: ${bad} words differ`);
  }
});

Deno.test("randomBits() element i depends only on (seed, counter, i)", async () => {
  const rt = await getBackend();
  const a = await randomBits(rt, [1003], { seed: 5, counter: 9 }).read();
  const b = await randomBits(rt, [10], { seed: 5, counter: 9 }).read();
  const c = await randomBits(rt, [1003], { seed: 5, counter: 9 }).read();
  const d = await randomBits(rt, [1003], { seed: 5, counter: 10 }).read();
  const e = await randomBits(rt, [1003], { seed: 6, counter: 9 }).read();
  assert.deepEqual(Array.from(b), Array.from(a.slice(0, 10)));
  assert.deepEqual(Array.from(c), Array.from(a));
  const same = (x: ArrayLike<number>, y: ArrayLike<number>) =>
    Array.from(x).filter((v, i) => v === y[i]).length;
  assert.ok(same(a, d) < 3 && same(a, e) < 3, "another counter or seed must give another stream");
});

Deno.test("randomUniform() randomNormal() bernoulliMask() match the float64 transforms", async () => {
  const rt = await getBackend();
  for (const n of [1, 3, 17, 255, 1000, 70001]) {
    const seed = n * 7 + 1, counter = n;
    const u = await randomUniform(rt, [n], { seed, counter }).read();
    // [0, 1): (u >> 8) * 2^-24 is exact in f32, so the GPU value equals the reference exactly.
    assert.deepEqual(Array.from(u), Array.from(randomUniformRef(n, seed, counter), Math.fround));
    const v = await randomUniform(rt, [n], { seed, counter, low: -3, high: 5 }).read();
    assertClose(v, randomUniformRef(n, seed, counter, -3, 5), { atol: 1e-6, rtol: 0 });
    const z = await randomNormal(rt, [n], { seed, counter, mean: 1, std: 2 }).read();
    // log, cos and sin are computed in the shader to a few ulp (see shaders/random.wgsl)
    assertClose(z, randomNormalRef(n, seed, counter, 1, 2), { atol: 2e-6, rtol: 1e-6 });
    for (const p of [0, 0.3, 1]) {
      const m = await bernoulliMask(rt, [n], { seed, counter, p }).read();
      assert.deepEqual(
        Array.from(m),
        Array.from(bernoulliMaskRef(n, seed, counter, p), Math.fround),
        `mask p=${p}`,
      );
    }
  }
});

function moments(
  x: ArrayLike<number>,
): { mean: number; variance: number; m3: number; m4: number } {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  const mean = s / x.length;
  let s2 = 0, s3 = 0, s4 = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - mean;
    s2 += d * d;
    s3 += d * d * d;
    s4 += d * d * d * d;
  }
  const variance = s2 / x.length;
  return { mean, variance, m3: s3 / x.length, m4: s4 / x.length };
}

Deno.test("randomUniform() has the moments of U[low, high) over 1e6 samples", async () => {
  const rt = await getBackend();
  const n = 1_000_000;
  const u = await randomUniform(rt, [1000, 1000], { seed: 2024, counter: 1 }).read();
  const { mean, variance } = moments(u);
  // U[0,1): mean 1/2, variance 1/12; SE of the variance sqrt((1/80 - 1/144) / n).
  assert.ok(Math.abs(mean - 0.5) < 4 * Math.sqrt(1 / 12 / n), `mean ${mean}`);
  assert.ok(Math.abs(variance - 1 / 12) < 4 * Math.sqrt((1 / 80 - 1 / 144) / n), `var ${variance}`);
  assert.ok(u.every((v) => v >= 0 && v < 1));
  // Lag-1 correlation, within and across Philox lanes.
  let c = 0;
  for (let i = 0; i + 1 < n; i++) c += (u[i] - mean) * (u[i + 1] - mean);
  const r = c / (n - 1) / variance;
  assert.ok(Math.abs(r) < 4 / Math.sqrt(n), `lag-1 correlation ${r}`);
  const w = await randomUniform(rt, [n], { seed: 3, low: -2, high: 6 }).read();
  const mw = moments(w);
  assert.ok(Math.abs(mw.mean - 2) < 4 * Math.sqrt(64 / 12 / n), `mean ${mw.mean}`);
  assert.ok(w.every((v) => v >= -2 && v < 6));
});

Deno.test("randomNormal() has the moments of N(mean, std^2) over 1e6 samples", async () => {
  const rt = await getBackend();
  const n = 1_000_000;
  const z = await randomNormal(rt, [n], { seed: 99, counter: 4 }).read();
  const { mean, variance, m3, m4 } = moments(z);
  assert.ok(Math.abs(mean) < 4 / Math.sqrt(n), `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 4 * Math.sqrt(2 / n), `variance ${variance}`);
  assert.ok(Math.abs(m3) < 4 * Math.sqrt(15 / n), `third moment ${m3}`);
  assert.ok(Math.abs(m4 - 3) < 4 * Math.sqrt(96 / n), `fourth moment ${m4}`);
  let inside = 0;
  for (const v of z) if (Math.abs(v) < 1) inside++;
  const p1 = 0.6826894921370859;
  assert.ok(Math.abs(inside / n - p1) < 4 * Math.sqrt(p1 * (1 - p1) / n), `P(|z|<1) ${inside / n}`);
  // cos/sin lanes of one Box-Muller pair are uncorrelated
  let c = 0;
  for (let i = 0; i < n; i += 2) c += z[i] * z[i + 1];
  assert.ok(Math.abs(c / (n / 2)) < 4 / Math.sqrt(n / 2), `pair correlation ${c / (n / 2)}`);
  assert.ok(z.every(Number.isFinite));
  const s = moments(await randomNormal(rt, [n], { seed: 1, mean: -3, std: 0.5 }).read());
  assert.ok(Math.abs(s.mean + 3) < 4 * 0.5 / Math.sqrt(n), `mean ${s.mean}`);
  assert.ok(Math.abs(s.variance - 0.25) < 4 * 0.25 * Math.sqrt(2 / n), `variance ${s.variance}`);
});

Deno.test("bernoulliMask() keeps 1 - p of the elements, scaled by 1 / (1 - p)", async () => {
  const rt = await getBackend();
  const n = 1_000_000;
  for (const p of [0.1, 0.5, 0.9]) {
    const m = await bernoulliMask(rt, [n], { seed: 11, counter: Math.round(p * 10), p }).read();
    const s = Math.fround(1 / (1 - p));
    let kept = 0;
    for (const v of m) {
      if (v === s) kept++;
      else assert.equal(v, 0);
    }
    const q = 1 - p;
    assert.ok(Math.abs(kept / n - q) < 4 * Math.sqrt(q * p / n), `p=${p}: kept ${kept / n}`);
  }
  const all = await bernoulliMask(rt, [1000], { seed: 1, p: 0 }).read();
  assert.ok(all.every((v) => v === 1));
  const none = await bernoulliMask(rt, [1000], { seed: 1, p: 1 }).read();
  assert.ok(none.every((v) => v === 0));
  const custom = await bernoulliMask(rt, [1000], { seed: 1, p: 0.5, scale: 1 }).read();
  assert.ok(custom.every((v) => v === 0 || v === 1));
});

Deno.test("random generators fill out tensors and reject bad seeds, counters and options", async () => {
  const rt = await getBackend();
  const out = rt.zeros([2, 5]);
  assert.equal(randomNormal(rt, [10], { seed: 1, out }), out);
  assert.ok((await out.read()).some((v) => v !== 0));
  const u = rt.zeros([10], "u32");
  assert.equal(randomBits(rt, [2, 5], { seed: 1, out: u }), u);
  assert.equal(randomBits(rt, [0], { seed: 1 }).size, 0);
  assert.throws(() => randomBits(rt, [10], { seed: 1, out }), /out must be u32\[10\]/);
  assert.throws(() => randomUniform(rt, [3], { seed: 1, out }), /out must be f32\[3\]/);
  assert.throws(() => randomBits(rt, [3], { seed: -1 }), /seed must be an integer in \[0, 2\^53\)/);
  assert.throws(() => randomBits(rt, [3], { seed: 1.5 }), /seed must be an integer/);
  assert.throws(() => randomBits(rt, [3], { seed: [1, 2 ** 32] }), /seed pair must be two u32/);
  assert.throws(() => randomBits(rt, [3], { seed: 1, counter: 2 ** 53 }), /counter must be/);
  assert.throws(() => bernoulliMask(rt, [3], { seed: 1, p: 1.5 }), /p must be in \[0, 1\]/);
  assert.throws(() => randomUniform(rt, [3], { seed: 1, low: 2, high: 1 }), /low <= high/);
  assert.throws(() => randomNormal(rt, [3], { seed: 1, std: -1 }), /std >= 0/);
  assert.throws(() => randomBits(rt, [-1], { seed: 1 }), /Invalid shape/);
  out.dispose();
  u.dispose();
  assert.throws(() => randomNormal(rt, [10], { seed: 1, out }), /used after dispose\(\)/);
  await rt.sync();
});
