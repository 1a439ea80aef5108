/**
 * WebAssembly twins of shaders/optim.wgsl (`sgd_main`, `adam_main`), optim_sgd_fused.wgsl and
 * optim_adam_fused.wgsl (see src/wasm/README.md, "one backend interface"), as src/train/optim.ts
 * dispatches them: kernels `optim.sgd` / `optim.adam` (one tensor) and `optim.sgd_fused` /
 * `optim.adam_fused` (up to 10 / 6 tensors in binding slots).
 *
 * Threading plan: purely elementwise; each tensor's elements are split into contiguous ranges
 * across the threads (one thread below {@linkcode MIN_WORK} elements a part)
 * and run by `optim_sgd` / `optim_adam` (wasm/assembly/optim.ts, f32x4). A fused dispatch runs its
 * slots one after the other, each split so; every element gets the same bits on any thread count,
 * and the same bits as the per-tensor kernel (as the WGSL promises).
 *
 * @module
 */

import type { WasmRuntime } from "../runtime.ts";
import type { WasmTensor } from "../tensor.ts";
import { gridItems, MIN_WORK, param as paramOf, splitWork } from "./_split.ts";
import type { Twin, TwinFamily } from "./twin.ts";

/** One tensor's SGD update over n elements (pointers of element 0), split across threads. */
function runSgd(
  rt: WasmRuntime,
  n: number,
  param: WasmTensor,
  grad: WasmTensor,
  buf: WasmTensor,
  p: Readonly<Record<string, number>>,
  kernel: string,
): void {
  const hasMom = paramOf(kernel, p, "momentum") !== 0;
  checkSize(kernel, n, hasMom ? [param, grad, buf] : [param, grad]);
  const scalars = [
    paramOf(kernel, p, "lr"),
    paramOf(kernel, p, "wd"),
    paramOf(kernel, p, "momentum"),
    paramOf(kernel, p, "one_minus_dampening"),
    flag(p, "nesterov", kernel),
    flag(p, "first", kernel),
    flag(p, "maximize", kernel),
    flag(p, "zero_grad", kernel),
  ];
  const bufPtr = hasMom ? buf.ptr : 0;
  rt.parallel(
    "optim_sgd",
    splitWork(rt, n, 1, MIN_WORK, 4).map(([i0, i1]) => [
      i1 - i0,
      param.ptr + 4 * i0,
      grad.ptr + 4 * i0,
      bufPtr + 4 * i0,
      ...scalars,
    ]),
  );
}

/** One tensor's Adam/AdamW update over n elements, split across threads. */
function runAdam(
  rt: WasmRuntime,
  n: number,
  [param, grad, m, v, vmax]: readonly WasmTensor[],
  p: Readonly<Record<string, number>>,
  kernel: string,
): void {
  const amsgrad = flag(p, "amsgrad", kernel);
  checkSize(kernel, n, amsgrad ? [param, grad, m, v, vmax] : [param, grad, m, v]);
  const scalars = [
    paramOf(kernel, p, "wd"),
    flag(p, "maximize", kernel),
    flag(p, "zero_grad", kernel),
    paramOf(kernel, p, "beta1"),
    paramOf(kernel, p, "one_minus_beta1"),
    paramOf(kernel, p, "beta2"),
    paramOf(kernel, p, "one_minus_beta2"),
    paramOf(kernel, p, "eps"),
    paramOf(kernel, p, "step_size"),
    paramOf(kernel, p, "bc2_sqrt"),
    paramOf(kernel, p, "decay"),
    flag(p, "decoupled", kernel),
    amsgrad,
  ];
  const vmaxPtr = amsgrad ? vmax.ptr : 0;
  rt.parallel(
    "optim_adam",
    splitWork(rt, n, 1, MIN_WORK, 4).map(([i0, i1]) => [
      i1 - i0,
      param.ptr + 4 * i0,
      grad.ptr + 4 * i0,
      m.ptr + 4 * i0,
      v.ptr + 4 * i0,
      vmaxPtr + 4 * i0,
      ...scalars,
    ]),
  );
}

/** A u32 flag of the WGSL params: 1 when it is 1 (the WGSL compares `== 1u`), else 0. */
function flag(p: Readonly<Record<string, number>>, name: string, kernel: string): number {
  return paramOf(kernel, p, name) === 1 ? 1 : 0;
}

function checkSize(kernel: string, n: number, tensors: readonly WasmTensor[]): void {
  for (const t of tensors) {
    if (t.size < n) {
      throw new Error(
        `Kernel '${kernel}': ${t.describe()} holds fewer than the ${n} elements updated`,
      );
    }
  }
}

/** The elements each slot of a fused dispatch updates (see the slot layout in the WGSL). */
function slotCounts(
  p: Readonly<Record<string, number>>,
  slots: number,
  workgroups: readonly number[],
  kernel: string,
): number[] {
  // Slot s owns the workgroups [off_s, off_{s+1}) (the last one up to the grid's end) and, of the
  // elements they cover, those below len_s. src/train/optim.ts lays them out in ascending order.
  const total = workgroups[0] * workgroups[1];
  const off = [0];
  for (let s = 1; s < slots; s++) off.push(paramOf(kernel, p, `off${s}`));
  off.push(total);
  const counts: number[] = [];
  for (let s = 0; s < slots; s++) {
    if (off[s + 1] < off[s] && s + 1 < slots) {
      throw new Error(`Kernel '${kernel}': slot offsets must ascend (off${s + 1} < off${s})`);
    }
    const end = Math.min(off[s + 1], total);
    const len = paramOf(kernel, p, `len${s}`);
    counts.push(Math.max(0, Math.min(len, (end - Math.min(off[s], end)) * 256)));
  }
  return counts;
}

const sgdMain: Twin = (rt, [param, grad, s1], p, _c, workgroups) => {
  const n = gridItems(paramOf("optim.sgd", p, "n"), workgroups);
  runSgd(rt, n, param, grad, s1, p, "optim.sgd");
};

const adamMain: Twin = (rt, [param, grad, s1, s2, s3], p, _c, workgroups) => {
  const n = gridItems(paramOf("optim.adam", p, "n"), workgroups);
  runAdam(rt, n, [param, grad, s1, s2, s3], p, "optim.adam");
};

const sgdFused: Twin = (rt, bindings, p, _c, workgroups) => {
  const counts = slotCounts(p, 10, workgroups, "optim.sgd_fused");
  counts.forEach((n, s) => {
    if (n > 0) {
      const [param, grad, buf] = bindings.slice(3 * s, 3 * s + 3);
      runSgd(rt, n, param, grad, buf, p, "optim.sgd_fused");
    }
  });
};

const adamFused: Twin = (rt, bindings, p, _c, workgroups) => {
  const counts = slotCounts(p, 6, workgroups, "optim.adam_fused");
  counts.forEach((n, s) => {
    if (n > 0) runAdam(rt, n, bindings.slice(5 * s, 5 * s + 5), p, "optim.adam_fused");
  });
};

/** Twins by kernel name, then entry point. */
export const OPTIM_TWINS: TwinFamily = {
  "optim.sgd": { sgd_main: sgdMain },
  "optim.adam": { adam_main: adamMain },
  "optim.sgd_fused": { main: sgdFused },
  "optim.adam_fused": { main: adamFused },
};
