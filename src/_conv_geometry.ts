/**
 * The geometry of one 2-D convolution as the `Params` of shaders/conv2d.wgsl names it: what
 * src/layers/conv2d.ts computes from the tensor shapes and passes as params, and what the
 * WebAssembly twin (src/wasm/kernels/conv2d.ts) reads back from them. It sits below both and
 * imports nothing, so that src/wasm needs nothing from src/layers.
 *
 * @module
 */

/** The geometry fields of shaders/conv2d.wgsl's `Params`, in its order. */
export const CONV2D_GEOMETRY_FIELDS = [
  "batch",
  "cin",
  "h",
  "w",
  "cout",
  "oh",
  "ow",
  "kh",
  "kw",
  "sh",
  "sw",
  "ph",
  "pw",
] as const;

/**
 * One convolution (groups 1, dilation 1): input (batch, cin, h, w), weight (cout, cin, kh, kw),
 * output (batch, cout, oh, ow), stride (sh, sw), zero padding (ph, pw); all whole numbers.
 */
export type Conv2dGeometry = Record<(typeof CONV2D_GEOMETRY_FIELDS)[number], number>;
