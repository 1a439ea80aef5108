/**
 * The WebAssembly twin of shaders/random.wgsl (src/wasm/kernels/random.ts): the exact dispatches
 * of the WebGPU `randomBits`, `randomUniform`, `randomNormal` and `bernoulliMask`, replayed on
 * `WasmRuntime` with one and two threads. Bits, uniforms and masks must be bitwise equal to
 * WebGPU and to src/reference/random.ts; normals equal to WebGPU's to float32 rounding.
 */
import { assert, getRuntime } from "./_util.ts";
import {
  assertBitwise,
  assertNear,
  releaseSharedWasmPair,
  replayBoth,
  sharedWasmPair,
} from "./_wasm_replay.ts";
import { onBothBackends } from "./_backends.ts";
import {
  bernoulliMask,
  randomBits,
  randomNormal,
  randomUniform,
  type Seed,
} from "../src/ops/random.ts";
import {
  bernoulliMaskRef,
  randomBitsRef,
  randomNormalRef,
  randomUniformRef,
} from "../src/reference/random.ts";

/** Odd sizes, partial blocks and partial groups of four blocks, and sizes that split. */
const SIZES = [1, 2, 3, 4, 5, 15, 17, 1001, 65537, 200003];
const SEEDS: [Seed, number][] = [[0, 0], [42, 7], [2 ** 40 + 3, 2 ** 33 + 5], [[
  0xffffffff,
  0x80000000,
], 1]];

let normalWorst = 0;

Deno.test("random twin: bits, uniform and Bernoulli masks bitwise equal to WebGPU and the reference", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  for (const n of SIZES) {
    for (const [seed, counter] of SEEDS) {
      const what = `n=${n} seed=${JSON.stringify(seed)} counter=${counter}`;
      const shape = [n];
      const r = await replayBoth(
        gpu,
        rts,
        [],
        () => [
          randomBits(gpu, shape, { seed, counter }),
          randomUniform(gpu, shape, { seed, counter }),
          randomUniform(gpu, shape, { seed, counter, low: -3.5, high: 0.25 }),
          bernoulliMask(gpu, shape, { seed, counter, p: 0.3 }),
          bernoulliMask(gpu, shape, { seed, counter, p: 0 }),
          bernoulliMask(gpu, shape, { seed, counter, p: 1 }),
        ],
        what,
      );
      r.wasm.forEach((w, i) => assertBitwise(w, r.gpu[i], `${what} output ${i} vs webgpu`));
      assertBitwise(r.wasm[0], randomBitsRef(n, seed, counter), `${what} bits vs reference`);
      const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
      // The reference's float64 uniform rounds to the same f32 when low = 0, high = 1 (exact).
      assertBitwise(r.wasm[1], f32(randomUniformRef(n, seed, counter)), `${what} uniform vs ref`);
      assertNear(
        r.wasm[2],
        randomUniformRef(n, seed, counter, -3.5, 0.25),
        5e-7,
        3e-7,
        `${what} uniform [-3.5, 0.25) vs ref`,
      );
      assertBitwise(r.wasm[3], f32(bernoulliMaskRef(n, seed, counter, 0.3)), `${what} mask vs ref`);
      assertBitwise(
        r.wasm[4],
        f32(bernoulliMaskRef(n, seed, counter, 0)),
        `${what} mask p=0 vs ref`,
      );
      assertBitwise(
        r.wasm[5],
        f32(bernoulliMaskRef(n, seed, counter, 1)),
        `${what} mask p=1 vs ref`,
      );
    }
  }
});

Deno.test("random twin: normals equal WebGPU's to float32 rounding and the float64 reference", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  for (const n of SIZES) {
    for (const [seed, counter] of SEEDS) {
      const what = `normal n=${n} seed=${JSON.stringify(seed)} counter=${counter}`;
      const r = await replayBoth(
        gpu,
        rts,
        [],
        () => [
          randomNormal(gpu, [n], { seed, counter }),
          randomNormal(gpu, [n], { seed, counter, mean: 2, std: 0.1 }),
        ],
        what,
      );
      normalWorst = Math.max(
        normalWorst,
        assertNear(r.wasm[0], r.gpu[0], 2e-6, 2e-6, `${what} vs webgpu`),
      );
      assertNear(r.wasm[1], r.gpu[1], 2e-6, 2e-6, `${what} mean 2 std 0.1 vs webgpu`);
      assertNear(r.wasm[0], randomNormalRef(n, seed, counter), 3e-6, 3e-6, `${what} vs f64`);
    }
  }
  console.log(`worst |normal wasm - webgpu| / (2e-6 + 2e-6 |x|): ${normalWorst.toFixed(3)}`);
  await releaseSharedWasmPair();
  assert.ok(true);
});

Deno.test("random ops run on both backends (Backend seam): the same streams", async () => {
  for (const n of [5, 65537]) {
    await onBothBackends(async (rt) => {
      const opts = { seed: 1234, counter: 9 };
      const ts = [
        randomBits(rt, [n], opts),
        randomUniform(rt, [n], { ...opts, low: -1, high: 3 }),
        bernoulliMask(rt, [n], { ...opts, p: 0.25 }),
        randomNormal(rt, [n], { ...opts, mean: 1, std: 2 }),
      ];
      const [bits, uniform, mask, normal] = await Promise.all(ts.map((t) => t.read()));
      for (const t of ts) t.dispose();
      return { bits, uniform, mask, normal };
    }, { atol: 4e-6, rtol: 2e-6, exact: ["bits", "uniform", "mask"], what: `n=${n}` });
  }
});
