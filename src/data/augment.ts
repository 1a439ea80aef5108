/**
 * Data augmentation on the GPU: a random affine map per sample (rotation,
 * scale, translation), a random crop of the zero-padded image (CIFAR style,
 * He et al. 2016, section 4.2: pad 4, crop 32x32) and a random horizontal
 * flip, all applied in one resampling pass (shaders/augment.wgsl: bilinear,
 * zero fill), so an image is interpolated once however many are enabled.
 *
 * The transform of each sample is drawn on the host from Philox4x32-10
 * uniforms of `(seed, stream)` (src/init/philox.ts) and composed with
 * wgpu-matrix's float64 `mat3d`; the GPU receives 12 floats per sample
 * ({@linkcode augmentTransforms}). Same seed and stream, same images, on
 * every platform.
 *
 * Order of the operations on the image: affine, then crop, then flip. A pixel
 * (i, j) of the output takes the value of the padded-and-cropped image at
 * `(u, v) = (flip ? W-1-j : j) + dx, i + dy` (0 outside the image: padding),
 * which is the affine-warped image at `(u, v)`, i.e. the source image at
 * `A⁻¹ (u, v)` by bilinear interpolation (0 outside: zero fill). `A` rotates
 * by θ and scales by s about the image centre ((W-1)/2, (H-1)/2) and then
 * translates by (tx, ty) pixels.
 *
 * Differences from torchvision (RandomAffine, RandomCrop, RandomHorizontalFlip):
 * interpolation is bilinear, not nearest; translations are not rounded to
 * whole pixels; the rotation centre is the centre of the pixel grid.
 *
 * @module
 */

// Full npm: specifiers, not import-map names: a URL import of this module has no import map.
// deno-lint-ignore no-import-prefix
import { mat3d } from "npm:wgpu-matrix@3.4.2";
import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import { randomUniform } from "../init/philox.ts";
import type { Regularizer, StepContext } from "../hooks/step.ts";
import augmentSrc from "../../shaders/augment.wgsl" with { type: "text" };

/** The gather/augment kernel (one entry point, specialised by override constants). */
export const AUGMENT_KERNEL: Kernel = { name: "augment", code: augmentSrc };

/** Floats per sample in a transform buffer: the 2x3 integer map P and the 2x3 inverse affine M. */
export const TRANSFORM_FLOATS = 12;

/** Uniform draws per sample (angle, tx, ty, scale, flip, crop x, crop y). */
const DRAWS = 7;

/** What to randomise. Every field is optional; an empty spec is the identity. */
export interface AugmentSpec {
  /** Largest rotation in degrees: θ uniform in [-rotation, rotation]. */
  rotation?: number;
  /**
   * Largest translation as a fraction of the width and height (torchvision's `translate`):
   * tx uniform in [-a W, a W], ty in [-b H, b H]. A number means the same for both.
   */
  translate?: number | readonly [number, number];
  /** Scale factor range [lo, hi] (uniform), e.g. [0.9, 1.1]. */
  scale?: readonly [number, number];
  /** Probability of a horizontal flip (true means 0.5). */
  hflip?: boolean | number;
  /** Zero padding of the random crop in pixels (4 for CIFAR): shifts uniform in [-pad, pad]. */
  crop?: number;
}

/** The parameters drawn for one sample (see {@linkcode transformFor}). */
export interface SampleTransform {
  /** Rotation in radians. */
  angle: number;
  /** Horizontal translation in pixels. */
  tx: number;
  /** Vertical translation in pixels. */
  ty: number;
  /** Scale factor. */
  scale: number;
  /** Horizontal flip. */
  flip: boolean;
  /** Horizontal crop shift in whole pixels (output (i, j) reads padded pixel (i + dy, j + dx)). */
  dx: number;
  /** Vertical crop shift in whole pixels. */
  dy: number;
}

/** The identity transform. */
export const IDENTITY_TRANSFORM: Readonly<SampleTransform> = {
  angle: 0,
  tx: 0,
  ty: 0,
  scale: 1,
  flip: false,
  dx: 0,
  dy: 0,
};

/**
 * Checks a spec and fills in defaults.
 * @throws Error naming the field that is out of range
 */
export function normalizeAugmentSpec(spec: AugmentSpec): Required<AugmentSpec> & {
  translate: [number, number];
  hflip: number;
} {
  const rotation = spec.rotation ?? 0;
  const t = spec.translate ?? 0;
  const translate: [number, number] = typeof t === "number" ? [t, t] : [t[0], t[1]];
  const scale: [number, number] = spec.scale ? [spec.scale[0], spec.scale[1]] : [1, 1];
  const hflip = spec.hflip === true ? 0.5 : spec.hflip === false ? 0 : spec.hflip ?? 0;
  const crop = spec.crop ?? 0;
  if (!(rotation >= 0 && rotation <= 180)) {
    throw new Error(`augment: rotation must be in [0, 180] degrees, got ${rotation}`);
  }
  if (!translate.every((v) => v >= 0 && v <= 1)) {
    throw new Error(`augment: translate fractions must be in [0, 1], got [${translate}]`);
  }
  if (!(scale[0] > 0 && scale[1] >= scale[0] && Number.isFinite(scale[1]))) {
    throw new Error(`augment: scale must be [lo, hi] with 0 < lo <= hi, got [${scale}]`);
  }
  if (!(hflip >= 0 && hflip <= 1)) {
    throw new Error(`augment: hflip probability must be in [0, 1], got ${spec.hflip}`);
  }
  if (!(Number.isInteger(crop) && crop >= 0)) {
    throw new Error(`augment: crop padding must be a non-negative integer, got ${crop}`);
  }
  return { rotation, translate, scale, hflip, crop };
}

/**
 * Draws the transforms of `count` samples.
 *
 * Sample `k` uses uniforms `7k .. 7k+6` of the Philox stream `(seed, stream)`:
 * θ, tx, ty, scale, flip, crop dx, crop dy — so sample `k` of a stream is the same whatever
 * `count` is.
 *
 * @param count number of samples
 * @param height image height H
 * @param width image width W
 * @param spec what to randomise
 * @param rng `seed` (integer in [0, 2^53)) and `stream` (integer in [0, 2^32))
 * @returns the drawn parameters, one per sample
 */
export function drawTransforms(
  count: number,
  height: number,
  width: number,
  spec: AugmentSpec,
  rng: { seed: number; stream?: number },
): SampleTransform[] {
  const s = normalizeAugmentSpec(spec);
  const u = randomUniform(DRAWS * count, { seed: rng.seed, stream: rng.stream ?? 0 });
  const out: SampleTransform[] = [];
  const span = 2 * s.crop + 1;
  for (let k = 0; k < count; k++) {
    const o = DRAWS * k;
    out.push({
      // `+ 0` turns -0 (from a zero range) into 0.
      angle: (2 * u[o] - 1) * s.rotation * Math.PI / 180 + 0,
      tx: (2 * u[o + 1] - 1) * s.translate[0] * width + 0,
      ty: (2 * u[o + 2] - 1) * s.translate[1] * height + 0,
      scale: s.scale[0] + u[o + 3] * (s.scale[1] - s.scale[0]),
      flip: u[o + 4] < s.hflip,
      dx: Math.min(Math.floor(u[o + 5] * span), span - 1) - s.crop,
      dy: Math.min(Math.floor(u[o + 6] * span), span - 1) - s.crop,
    });
  }
  return out;
}

const scratch = {
  a: mat3d.identity(),
  b: mat3d.identity(),
  m: mat3d.identity(),
};

/**
 * Writes the 12 floats of one sample's transform: the integer map P (flip and crop shift) and
 * the inverse affine `M = A⁻¹ = T(c) S(1/s) R(-θ) T(-c - t)` (c the image centre), composed with
 * wgpu-matrix `mat3d` (column-major, columns padded to 4: element (r, c) at `4c + r`).
 *
 * @param t the sample's parameters
 * @param height image height H
 * @param width image width W
 * @param out destination (length >= offset + 12)
 * @param offset where to write
 * @returns `out`
 */
export function transformFor(
  t: Readonly<SampleTransform>,
  height: number,
  width: number,
  out: Float32Array | Float64Array = new Float32Array(TRANSFORM_FLOATS),
  offset = 0,
): Float32Array | Float64Array {
  const cx = (width - 1) / 2, cy = (height - 1) / 2;
  // P: u = (flip ? W-1-j : j) + dx, v = i + dy.
  out[offset] = t.flip ? -1 : 1;
  out[offset + 1] = 0;
  out[offset + 2] = (t.flip ? width - 1 : 0) + t.dx;
  out[offset + 3] = 0;
  out[offset + 4] = 1;
  out[offset + 5] = t.dy;
  const { a, b, m } = scratch;
  mat3d.translation([cx, cy], m);
  mat3d.multiply(m, mat3d.scaling([1 / t.scale, 1 / t.scale], a), b);
  mat3d.multiply(b, mat3d.rotation(-t.angle, a), m);
  mat3d.multiply(m, mat3d.translation([-cx - t.tx, -cy - t.ty], a), b);
  // Exact identity stays exact: cos 0 = 1, sin 0 = 0, and c - c = 0.
  out[offset + 6] = b[0];
  out[offset + 7] = b[4];
  out[offset + 8] = b[8];
  out[offset + 9] = b[1];
  out[offset + 10] = b[5];
  out[offset + 11] = b[9];
  return out;
}

/**
 * Random transforms of `count` samples as the kernel reads them.
 *
 * @param count number of samples
 * @param height image height H
 * @param width image width W
 * @param spec what to randomise
 * @param rng seed and stream (see {@linkcode drawTransforms})
 * @returns `count * 12` floats (upload as a (count, 12) f32 tensor)
 */
export function augmentTransforms(
  count: number,
  height: number,
  width: number,
  spec: AugmentSpec,
  rng: { seed: number; stream?: number },
): Float32Array {
  const out = new Float32Array(count * TRANSFORM_FLOATS);
  drawTransforms(count, height, width, spec, rng).forEach((t, k) =>
    transformFor(t, height, width, out, k * TRANSFORM_FLOATS)
  );
  return out;
}

/** `[C, H, W]` of an image sample shape `[C, H, W]` or `[H, W]`. */
export function imageDims(sampleShape: readonly number[], where: string): [number, number, number] {
  if (sampleShape.length === 3) return [sampleShape[0], sampleShape[1], sampleShape[2]];
  if (sampleShape.length === 2) return [1, sampleShape[0], sampleShape[1]];
  throw new Error(
    `${where}: augmentation needs image samples [C, H, W] or [H, W], got ${fmtShape(sampleShape)}`,
  );
}

/**
 * Resamples a batch of images through per-sample transforms (the standalone op; the batch
 * pipeline fuses the same kernel with its gather, see src/data/batches.ts).
 *
 * @param rt runtime
 * @param x (B, C, H, W) or (B, H, W) f32 images
 * @param transforms (B, 12) f32, from {@linkcode augmentTransforms}
 * @param options `out`: a tensor of x's size to write into
 * @returns the augmented batch, shape of x (caller disposes unless it passed `out`)
 * @throws Error for mismatched shapes or dtypes
 * @example
 * ```ts
 * const mats = rt.upload(augmentTransforms(B, 32, 32, { crop: 4, hflip: true }, { seed: 1 }), [B, 12]);
 * const xa = augment(rt, x, mats);
 * ```
 */
export function augment(
  rt: Backend,
  x: Tensor,
  transforms: Tensor,
  options: { out?: Tensor } = {},
): Tensor {
  if (x.dtype !== "f32" || x.shape.length < 3) {
    throw new Error(`augment: x must be (B, C, H, W) or (B, H, W) f32, got ${x.describe()}`);
  }
  const b = x.shape[0];
  const [c, h, w] = imageDims(x.shape.slice(1), "augment");
  if (
    transforms.dtype !== "f32" || transforms.size !== b * TRANSFORM_FLOATS
  ) {
    throw new Error(
      `augment: transforms must be (${b}, ${TRANSFORM_FLOATS}) f32 for ${x.describe()}, got ` +
        transforms.describe(),
    );
  }
  const out = options.out ?? rt.empty(x.shape, "f32", "augment.out");
  if (out.size !== x.size || out.dtype !== "f32") {
    throw new Error(`augment: out ${out.describe()} does not match ${x.describe()}`);
  }
  const sample = c * h * w;
  rt.dispatch(AUGMENT_KERNEL, {
    bindings: [
      x,
      rt.placeholder(0),
      rt.placeholder(0),
      transforms,
      rt.placeholder(0),
      out,
      rt.placeholder(1),
    ],
    params: { count: b, offset: 0, channels: c, height: h, width: w, sample },
    constants: { SOURCE: 0, INDEXED: 0, AFFINE: 1, LABELS: 0, VEC4: 0 },
    workgroups: rt.grid(b * sample, 256),
  });
  return out;
}

/**
 * Augmentation as an input transform of the training loop (the `transformInput` hook of
 * src/hooks/step.ts): each step, the batch is resampled through transforms drawn
 * from the Philox stream `(seed, step)`. The loader can instead fuse augmentation into its
 * gather (`Batches` option `augment`), which saves a pass and a per-step upload.
 *
 * @param rt runtime
 * @param spec what to randomise
 * @param options `seed`: default the run's seed (`ctx.seed`)
 * @returns a regularizer whose transformed batch it owns (dispose it after training)
 */
export function augmentation(
  rt: Backend,
  spec: AugmentSpec,
  options: { seed?: number } = {},
): Regularizer {
  const s = normalizeAugmentSpec(spec);
  const buffers = new Map<number, { mats: Tensor; out: Tensor }>();
  return {
    name: "augment",
    options: {
      rotation: s.rotation,
      translateX: s.translate[0],
      translateY: s.translate[1],
      scaleLo: s.scale[0],
      scaleHi: s.scale[1],
      hflip: s.hflip,
      crop: s.crop,
      ...(options.seed === undefined ? {} : { seed: options.seed }),
    },
    transformInput(ctx: StepContext, x: Tensor): Tensor {
      const b = x.shape[0];
      const [, h, w] = imageDims(x.shape.slice(1), "augmentation");
      let buf = buffers.get(b);
      if (!buf || buf.out.size !== x.size) {
        buf?.mats.dispose();
        buf?.out.dispose();
        buf = {
          mats: rt.empty([b, TRANSFORM_FLOATS], "f32", "augmentation.transforms"),
          out: rt.empty(x.shape, "f32", "augmentation.out"),
        };
        buffers.set(b, buf);
      }
      const mats = augmentTransforms(b, h, w, s, {
        seed: options.seed ?? ctx.seed,
        stream: ctx.step,
      });
      rt.write(buf.mats, mats);
      return augment(rt, x, buf.mats, { out: buf.out });
    },
    dispose(): void {
      for (const { mats, out } of buffers.values()) {
        mats.dispose();
        out.dispose();
      }
      buffers.clear();
    },
  };
}
