/**
 * The registry of WebAssembly twins of WGSL kernels, by kernel name (the `name` of the
 * `Kernel` an op dispatches) and entry point: one file here per family of files under shaders/,
 * each exporting a {@linkcode TwinFamily}.
 *
 * @module
 */

import { MATMUL_TWINS } from "./matmul.ts";
import { ELEMENTWISE_TWINS } from "./elementwise.ts";
import { REDUCE_TWINS } from "./reduce.ts";
import { RANDOM_TWINS } from "./random.ts";
import { LOSS_TWINS } from "./loss.ts";
import { OPTIM_TWINS } from "./optim.ts";
import { CONV2D_TWINS } from "./conv2d.ts";
import { POOL_TWINS } from "./pool.ts";
import { LAYERS_TWINS } from "./layers.ts";
import { BATCHNORM_TWINS } from "./batchnorm.ts";
import { LAYERNORM_TWINS } from "./layernorm.ts";
import { WEIGHTNORM_TWINS } from "./weightnorm.ts";
import { AUGMENT_TWINS } from "./augment.ts";
import { ATTACKS_TWINS } from "./attacks.ts";
import { JACOBIAN_TWINS } from "./jacobian.ts";
import { REGULARIZERS_TWINS } from "./regularizers.ts";
import { SVD_TWINS } from "./svd.ts";
import { METRICS_TWINS } from "./metrics.ts";
import type { Twin, TwinFamily } from "./twin.ts";

export type { Twin, TwinFamily };

/** Twins by kernel name, then entry point ("main" when the kernel names none). */
export const TWINS: TwinFamily = {
  ...MATMUL_TWINS,
  ...ELEMENTWISE_TWINS,
  ...REDUCE_TWINS,
  ...RANDOM_TWINS,
  ...LOSS_TWINS,
  ...OPTIM_TWINS,
  ...CONV2D_TWINS,
  ...POOL_TWINS,
  ...LAYERS_TWINS,
  ...BATCHNORM_TWINS,
  ...LAYERNORM_TWINS,
  ...WEIGHTNORM_TWINS,
  ...AUGMENT_TWINS,
  ...ATTACKS_TWINS,
  ...JACOBIAN_TWINS,
  ...REGULARIZERS_TWINS,
  ...SVD_TWINS,
  ...METRICS_TWINS,
};
