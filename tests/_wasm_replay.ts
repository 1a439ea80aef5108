/**
 * Replays what a WebGPU op sequence dispatches on WebAssembly runtimes, for twin tests
 * (src/wasm/kernels/): run the real ops on the GPU runtime while recording every `dispatch`,
 * `copy`, `fill0`, `write` and `upload` they make, then run the same calls in order on each Wasm
 * runtime, on Wasm copies of the tensors, and return every tensor's final contents on both.
 *
 * Tensors (or reshaped views of them) the recorded calls touch must be either given as `inputs` (their GPU contents are read
 * before the ops run and uploaded to each Wasm runtime), created by the ops (`empty` is made
 * `zeros` while they run, so both sides start from the same zeros), or placeholders. A tensor
 * that existed before and is not an input is an error: its contents would be unknown.
 *
 * (A stop-gap until ops take a `Backend` and run on `WasmRuntime` directly.)
 */
import type { DispatchSpec, Runtime } from "../src/gpu/runtime.ts";
import type { Kernel } from "../src/kernel.ts";
import type { Tensor } from "../src/backend.ts";
import type { WasmRuntime } from "../src/wasm/runtime.ts";
import type { WasmTensor } from "../src/wasm/tensor.ts";
import { assert, assertClose } from "./_util.ts";

type Data = Float32Array | Uint32Array | Int32Array;

/** The tensor that owns `t`'s storage (a reshape is a view of it). */
function root(t: Tensor): Tensor {
  let r = t as Tensor & { base?: Tensor };
  while (r.base) r = r.base as Tensor & { base?: Tensor };
  return r;
}

type Call =
  | { op: "dispatch"; kernel: Kernel; spec: DispatchSpec }
  | { op: "copy"; src: Tensor; dst: Tensor; count: number; srcOffset: number; dstOffset: number }
  | { op: "fill0"; t: Tensor }
  | { op: "write"; t: Tensor; data: Data }
  | { op: "upload"; t: Tensor; data: Data };

/** One tensor's final contents: on the GPU and on each Wasm runtime (same order as given). */
export interface Replayed {
  /** The GPU tensor's `describe()`. */
  what: string;
  gpu: Data;
  wasm: Data[];
}

/** What {@linkcode replay} returns. */
export interface ReplayResult {
  /** `name/entry` of each recorded dispatch, in order. */
  dispatches: string[];
  /** Every tensor the calls touched (inputs included) that is still alive, in first-use order. */
  tensors: Replayed[];
}

/**
 * Runs `fn` on `gpu`, recording its calls, and replays them on each of `wasm`.
 * @param gpu the WebGPU runtime `fn` uses
 * @param wasm Wasm runtimes to replay on (e.g. one with 1 thread, one with 2)
 * @param inputs GPU tensors whose current contents the calls read
 * @param fn the ops (may be async; must only use `gpu`)
 * @returns the dispatches and each tensor's final contents on every runtime
 */
export async function replay(
  gpu: Runtime,
  wasm: readonly WasmRuntime[],
  inputs: readonly Tensor[],
  fn: () => void | Promise<void>,
): Promise<ReplayResult> {
  const start = new Map<Tensor, Data>();
  for (const t of inputs) start.set(root(t), (await gpu.read(t)) as Data);
  const created = new Set<Tensor>();
  const placeholders = new Set<Tensor>();
  const calls: Call[] = [];
  const g = gpu as unknown as Record<string, unknown>;
  const orig = {
    empty: gpu.empty,
    zeros: gpu.zeros,
    upload: gpu.upload,
    placeholder: gpu.placeholder,
    dispatch: gpu.dispatch,
    copy: gpu.copy,
    fill0: gpu.fill0,
    write: gpu.write,
  };
  g.empty = (shape: readonly number[], dtype?: Tensor["dtype"], name?: string) => {
    const t = orig.empty.call(gpu, shape, dtype, name);
    created.add(t);
    orig.fill0.call(gpu, t);
    return t;
  };
  g.upload = (
    data: Data | number[],
    shape: readonly number[],
    dtype?: Tensor["dtype"],
    name?: string,
  ) => {
    const t = orig.upload.call(gpu, data, shape, dtype, name);
    created.add(t);
    const copy = t.dtype === "f32"
      ? Float32Array.from(data)
      : t.dtype === "u32"
      ? Uint32Array.from(data)
      : Int32Array.from(data);
    calls.push({ op: "upload", t, data: copy });
    return t;
  };
  g.placeholder = (index: number) => {
    const t = orig.placeholder.call(gpu, index);
    placeholders.add(t);
    return t;
  };
  g.dispatch = (kernel: Kernel, spec: DispatchSpec) => {
    calls.push({ op: "dispatch", kernel, spec: { ...spec, bindings: [...spec.bindings] } });
    orig.dispatch.call(gpu, kernel, spec);
  };
  g.copy = (src: Tensor, dst: Tensor, count = src.size, srcOffset = 0, dstOffset = 0) => {
    calls.push({ op: "copy", src, dst, count, srcOffset, dstOffset });
    orig.copy.call(gpu, src, dst, count, srcOffset, dstOffset);
  };
  g.fill0 = (t: Tensor) => {
    calls.push({ op: "fill0", t });
    orig.fill0.call(gpu, t);
  };
  g.write = (t: Tensor, data: Data) => {
    calls.push({ op: "write", t, data: data.slice() });
    orig.write.call(gpu, t, data);
  };
  try {
    await fn();
  } finally {
    for (const k of Object.keys(orig)) delete g[k];
  }
  gpu.submit();

  const order: Tensor[] = [];
  const mirrors = wasm.map(() => new Map<Tensor, WasmTensor>());
  const mirror = (view: Tensor, r: number): WasmTensor => {
    const t = root(view);
    const m = mirrors[r];
    let w = m.get(t);
    if (w) return w;
    const rt = wasm[r];
    const data = start.get(t);
    if (data) {
      w = rt.upload(data, t.shape, t.dtype, t.name);
    } else if (created.has(t) || placeholders.has(t)) {
      w = rt.zeros(t.shape, t.dtype, t.name);
    } else {
      throw new Error(`replay: ${t.describe()} existed before the ops ran; pass it in inputs`);
    }
    m.set(t, w);
    if (r === 0) order.push(t);
    return w;
  };
  const dispatches: string[] = [];
  for (const c of calls) {
    if (c.op === "dispatch") dispatches.push(`${c.kernel.name}/${c.kernel.entry ?? "main"}`);
    for (let r = 0; r < wasm.length; r++) {
      const rt = wasm[r];
      if (c.op === "dispatch") {
        const bindings = c.spec.bindings.map((t) => mirror(t, r));
        rt.dispatch(c.kernel, { ...c.spec, bindings });
      } else if (c.op === "copy") {
        rt.copy(mirror(c.src, r), mirror(c.dst, r), c.count, c.srcOffset, c.dstOffset);
      } else if (c.op === "fill0") {
        rt.fill0(mirror(c.t, r));
      } else if (c.op === "write") {
        rt.write(mirror(c.t, r), c.data);
      } else {
        const w = rt.upload(c.data, c.t.shape, c.t.dtype, c.t.name);
        mirrors[r].set(c.t, w);
        if (r === 0) order.push(c.t);
      }
    }
  }
  for (const t of inputs) for (let r = 0; r < wasm.length; r++) mirror(t, r);
  const tensors: Replayed[] = [];
  for (const t of order) {
    if (t.disposed || placeholders.has(t)) continue;
    tensors.push({
      what: t.describe(),
      gpu: (await gpu.read(t)) as Data,
      wasm: mirrors.map((m) => m.get(t)!.toArray() as Data),
    });
  }
  for (const m of mirrors) for (const w of m.values()) w.dispose();
  return { dispatches, tensors };
}

/** The largest differences {@linkcode assertReplayed} saw. */
export interface ReplayErrors {
  /** Largest |Wasm - GPU|. */
  abs: number;
  /** Largest |Wasm - GPU| / (atol + rtol·|GPU|): how much of the tolerance was used (<= 1). */
  used: number;
  /** The tensor and index of the largest `used`. */
  where: string;
}

/**
 * Asserts that every replayed tensor agrees with the GPU within `atol + rtol·|gpu|` and is
 * bitwise the same on every Wasm runtime.
 * @returns the largest differences from the GPU seen
 */
export function assertReplayed(
  result: ReplayResult,
  tol: { atol: number; rtol: number },
  what: string,
): ReplayErrors {
  const errors: ReplayErrors = { abs: 0, used: 0, where: "" };
  for (const t of result.tensors) {
    for (let r = 0; r < t.wasm.length; r++) {
      const w = t.wasm[r];
      assertClose(w, t.gpu, { ...tol, what: `${what}: ${t.what} (Wasm runtime ${r})` });
      for (let i = 0; i < w.length; i++) {
        const d = Math.abs(w[i] - t.gpu[i]);
        errors.abs = Math.max(errors.abs, d);
        const used = d / (tol.atol + tol.rtol * Math.abs(t.gpu[i]));
        if (used > errors.used) {
          errors.used = used;
          errors.where = `${what}: ${t.what}[${i}] ${w[i]} vs ${t.gpu[i]}`;
        }
      }
      if (r > 0) {
        const a = new Uint8Array(t.wasm[0].buffer, t.wasm[0].byteOffset, t.wasm[0].byteLength);
        const b = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
        assert.ok(
          a.length === b.length && a.every((x, i) => x === b[i]),
          `${what}: ${t.what} differs bitwise between Wasm runtimes 0 and ${r}`,
        );
      }
    }
  }
  return errors;
}

/** Keeps the larger of two {@linkcode ReplayErrors} (by tolerance used), and the larger abs. */
export function worse(a: ReplayErrors, b: ReplayErrors): ReplayErrors {
  const w = b.used > a.used ? b : a;
  return { ...w, abs: Math.max(a.abs, b.abs) };
}
