/**
 * Augmentation (shaders/augment.wgsl via src/data/augment.ts) against its float64 reference:
 * identity, double flip and zero-shift crop are exact; random transforms match the reference;
 * the 12-float encoding built with wgpu-matrix matches the step-by-step definition; draws are
 * seeded and in range.
 */
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import {
  augment,
  augmentation,
  augmentTransforms,
  drawTransforms,
  IDENTITY_TRANSFORM,
  type SampleTransform,
  TRANSFORM_FLOATS,
  transformFor,
} from "../src/data/augment.ts";
import { augmentImageRef, augmentRef } from "../src/reference/augment.ts";
import type { StepContext } from "../src/hooks/step.ts";

function transforms(list: SampleTransform[], h: number, w: number): Float32Array {
  const out = new Float32Array(list.length * TRANSFORM_FLOATS);
  list.forEach((t, k) => transformFor(t, h, w, out, k * TRANSFORM_FLOATS));
  return out;
}

const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [3, 3, 5, 7],
  [2, 1, 17, 9],
  [4, 3, 32, 32],
];

Deno.test("augment() with identity transforms is the identity, bit for bit", async () => {
  const rt = await getBackend();
  for (const [b, c, h, w] of SHAPES) {
    const data = randomArray(b * c * h * w, b + h, 0, 1);
    const x = rt.upload(data, [b, c, h, w]);
    const m = rt.upload(transforms(new Array(b).fill(IDENTITY_TRANSFORM), h, w), [b, 12]);
    const y = augment(rt, x, m);
    assert.deepEqual(await y.read(), data, `[${b},${c},${h},${w}]`);
    for (const t of [x, m, y]) t.dispose();
  }
});

Deno.test("augment() flipping twice and cropping with zero shift are exact", async () => {
  const rt = await getBackend();
  const [b, c, h, w] = [3, 3, 6, 5];
  const data = randomArray(b * c * h * w, 4, 0, 1);
  const x = rt.upload(data, [b, c, h, w]);
  const flip = rt.upload(
    transforms(new Array(b).fill({ ...IDENTITY_TRANSFORM, flip: true }), h, w),
    [b, 12],
  );
  const once = augment(rt, x, flip);
  const onceData = await once.read();
  // Flipped: column j of the output is column w-1-j of the input.
  for (let p = 0; p < b * c * h; p++) {
    for (let j = 0; j < w; j++) assert.equal(onceData[p * w + j], data[p * w + w - 1 - j]);
  }
  const twice = augment(rt, once, flip);
  assert.deepEqual(await twice.read(), data);
  // A crop of the padded image at zero shift is the image itself; a shift moves it, with zeros.
  const crop = rt.upload(
    transforms(
      [IDENTITY_TRANSFORM, { ...IDENTITY_TRANSFORM, dx: 2, dy: -1 }, {
        ...IDENTITY_TRANSFORM,
        dx: -4,
        dy: 4,
      }],
      h,
      w,
    ),
    [b, 12],
  );
  const cropped = await augment(rt, x, crop).read();
  const want = new Float32Array(b * c * h * w);
  const shifts = [[0, 0], [2, -1], [-4, 4]];
  for (let s = 0; s < b; s++) {
    const [dx, dy] = shifts[s];
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const u = j + dx, v = i + dy;
          const inside = u >= 0 && u < w && v >= 0 && v < h;
          want[((s * c + ch) * h + i) * w + j] = inside ? data[((s * c + ch) * h + v) * w + u] : 0;
        }
      }
    }
  }
  assert.deepEqual(cropped, want);
  for (const t of [x, flip, once, twice, crop]) t.dispose();
});

Deno.test("augment() matches the float64 reference on random transforms", async () => {
  const rt = await getBackend();
  const spec = { rotation: 30, translate: 0.2, scale: [0.8, 1.25] as const, hflip: 0.5, crop: 3 };
  for (const [b, c, h, w] of SHAPES) {
    const data = randomArray(b * c * h * w, 11 * h + w, 0, 1);
    const mats = augmentTransforms(b, h, w, spec, { seed: 9, stream: h });
    const x = rt.upload(data, [b, c, h, w]);
    const m = rt.upload(mats, [b, 12]);
    const got = await augment(rt, x, m).read();
    const ref = augmentRef(data, [b, c, h, w], mats);
    assertClose(got, ref, { atol: 2e-5, rtol: 1e-5, what: `[${b},${c},${h},${w}]` });
    x.dispose();
    m.dispose();
  }
});

Deno.test("transformFor() encodes the documented composition (affine, crop, flip)", () => {
  const [c, h, w] = [2, 9, 12];
  const img = randomArray(c * h * w, 3, 0, 1);
  const draws = drawTransforms(
    12,
    h,
    w,
    { rotation: 45, translate: [0.3, 0.1], scale: [0.5, 2], hflip: true, crop: 4 },
    { seed: 1, stream: 2 },
  );
  for (const t of draws) {
    const mats = new Float64Array(12);
    transformFor(t, h, w, mats);
    const viaMats = augmentRef(img, [1, c, h, w], mats);
    const direct = augmentImageRef(img, [c, h, w], t);
    assertClose(viaMats, direct, { atol: 1e-12, rtol: 1e-12, what: JSON.stringify(t) });
  }
  // Rotation about the image centre keeps the centre pixel of an odd-sized image.
  const m = transformFor(
    { ...IDENTITY_TRANSFORM, angle: 1.1, scale: 1.7 },
    5,
    7,
    new Float64Array(12),
  );
  assertClose([m[6] * 3 + m[7] * 2 + m[8], m[9] * 3 + m[10] * 2 + m[11]], [3, 2], { atol: 1e-12 });
});

Deno.test("drawTransforms() is seeded and stays in range", () => {
  const spec = {
    rotation: 10,
    translate: [0.1, 0.2] as [number, number],
    scale: [0.9, 1.1] as const,
    hflip: 0.25,
    crop: 4,
  };
  const a = drawTransforms(2000, 32, 28, spec, { seed: 5, stream: 1 });
  assert.deepEqual(drawTransforms(2000, 32, 28, spec, { seed: 5, stream: 1 }), a);
  assert.notDeepEqual(drawTransforms(2000, 32, 28, spec, { seed: 5, stream: 2 }), a);
  // Sample k does not depend on how many are drawn.
  assert.deepEqual(drawTransforms(3, 32, 28, spec, { seed: 5, stream: 1 }), a.slice(0, 3));
  let flips = 0;
  const shifts = new Set<number>();
  for (const t of a) {
    assert.ok(Math.abs(t.angle) <= (10 * Math.PI) / 180);
    assert.ok(Math.abs(t.tx) <= 0.1 * 28 && Math.abs(t.ty) <= 0.2 * 32);
    assert.ok(t.scale >= 0.9 && t.scale <= 1.1);
    assert.ok(Number.isInteger(t.dx) && Math.abs(t.dx) <= 4 && Math.abs(t.dy) <= 4);
    shifts.add(t.dx);
    if (t.flip) flips++;
  }
  assert.equal(shifts.size, 9, "every shift in [-4, 4] occurs");
  assert.ok(Math.abs(flips / 2000 - 0.25) < 0.04, `flip rate ${flips / 2000}`);
  const none = drawTransforms(5, 8, 8, {}, { seed: 1 });
  for (const t of none) assert.deepEqual(t, IDENTITY_TRANSFORM);
  assert.throws(() => drawTransforms(1, 8, 8, { crop: 1.5 }, { seed: 0 }), /crop padding/);
  assert.throws(() => drawTransforms(1, 8, 8, { scale: [2, 1] }, { seed: 0 }), /scale must be/);
  assert.throws(() => drawTransforms(1, 8, 8, { hflip: 2 }, { seed: 0 }), /hflip probability/);
  assert.throws(() => drawTransforms(1, 8, 8, { rotation: -1 }, { seed: 0 }), /rotation must/);
});

Deno.test("augment() rejects mismatched shapes", async () => {
  const rt = await getBackend();
  const x = rt.zeros([2, 3, 4, 4]);
  const m = rt.zeros([3, 12]);
  const flat = rt.zeros([2, 16]);
  assert.throws(() => augment(rt, x, m), /transforms must be \(2, 12\) f32/);
  assert.throws(() => augment(rt, flat, m), /x must be \(B, C, H, W\) or \(B, H, W\) f32/);
  const m2 = rt.zeros([2, 12]);
  assert.throws(() => augment(rt, x, m2, { out: flat }), /out .* does not match/);
  for (const t of [x, m, m2, flat]) t.dispose();
});

Deno.test("augmentation() transforms each step's batch from the (seed, step) stream", async () => {
  const rt = await getBackend();
  const [b, c, h, w] = [3, 1, 8, 8];
  const data = randomArray(b * c * h * w, 8, 0, 1);
  const x = rt.upload(data, [b, c, h, w]);
  const spec = { rotation: 15, crop: 2, hflip: true };
  const reg = augmentation(rt, spec);
  const ctx = { rt, seed: 4, step: 17 } as unknown as StepContext;
  const out = reg.transformInput!(ctx, x);
  assert.deepEqual(out.shape, [b, c, h, w]);
  const mats = augmentTransforms(b, h, w, spec, { seed: 4, stream: 17 });
  const first = await out.read();
  assertClose(first, augmentRef(data, [b, c, h, w], mats), { atol: 2e-5 });
  const again = await reg.transformInput!({ ...ctx, step: 18 } as StepContext, x).read();
  assert.notDeepEqual(again, first);
  assert.equal(reg.name, "augment");
  assert.equal(reg.options.crop, 2);
  reg.dispose!();
  x.dispose();
});
