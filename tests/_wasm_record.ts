/**
 * Replaying WebGPU dispatches on the WebAssembly twins (src/wasm/kernels/), for the tests of
 * the twin families until ops run on both backends through one `Backend`.
 *
 * - {@linkcode recordDispatches}: while an op runs on the GPU, every dispatch of the chosen
 *   kernels is recorded with copies of its bindings before and of its writable bindings after
 *   (GPU-side copies in the same step), so that {@linkcode replayRecord} can run the twin on
 *   exactly the inputs the WGSL saw, whatever else the op did in between (kernels of other
 *   families included), and compare with what the WGSL wrote.
 * - {@linkcode recordSequence} / {@linkcode replaySequence}: every dispatch, copy and clear of
 *   an op, replayed in order on Wasm tensors that stand for the GPU buffers, for ops whose
 *   every kernel has a twin (an SVD end to end).
 */
import { assert } from "./_util.ts";
import type { DispatchSpec, Runtime } from "../src/gpu/runtime.ts";
import { bindingLayout, type Kernel } from "../src/kernel.ts";
import type { Tensor } from "../src/backend.ts";
import type { WasmRuntime } from "../src/wasm/runtime.ts";
import type { WasmTensor } from "../src/wasm/tensor.ts";

type Data = Float32Array | Uint32Array | Int32Array;

/** One recorded dispatch: the kernel, its spec, and its bindings' data before and after. */
export interface DispatchRecord {
  kernel: Kernel;
  spec: DispatchSpec;
  /** Index into `before` of each binding (aliased bindings share one). */
  slot: number[];
  before: Data[];
  /** The data after the dispatch, for slots bound read_write (null for read-only ones). */
  after: (Data | null)[];
}

/**
 * Records the dispatches of kernels whose name starts with one of `prefixes` while `run` runs
 * on `gpu` (at most `limit` per kernel entry; the rest run unrecorded).
 * @returns the records, with their snapshots read back
 */
export async function recordDispatches(
  gpu: Runtime,
  prefixes: readonly string[],
  run: () => void | Promise<void>,
  limit = Infinity,
): Promise<DispatchRecord[]> {
  const pending: {
    kernel: Kernel;
    spec: DispatchSpec;
    slot: number[];
    before: (Tensor | null)[];
    after: (Tensor | null)[];
    sizes: number[];
  }[] = [];
  const counts = new Map<string, number>();
  const dispatch = gpu.dispatch;
  gpu.dispatch = (kernel: Kernel, spec: DispatchSpec) => {
    const key = `${kernel.name}/${kernel.entry ?? "main"}`;
    const n = counts.get(key) ?? 0;
    if (!prefixes.some((p) => kernel.name.startsWith(p)) || n >= limit) {
      return dispatch.call(gpu, kernel, spec);
    }
    counts.set(key, n + 1);
    const buffers: unknown[] = [];
    const slot: number[] = [];
    const sizes: number[] = [];
    const dtypes: Tensor["dtype"][] = [];
    for (const t of spec.bindings) {
      let s = buffers.indexOf(t.storage);
      if (s < 0) {
        s = buffers.push(t.storage) - 1;
        sizes.push(0);
        dtypes.push(t.dtype);
      }
      sizes[s] = Math.max(sizes[s], t.size);
      slot.push(s);
    }
    // Placeholders (no kernel reads or writes them) cannot be copied: they replay as zeros.
    const holders = new Set<unknown>(
      Array.from({ length: 8 }, (_, i) => gpu.placeholder(i).storage),
    );
    const snap = () =>
      buffers.map((_, s) => {
        if (holders.has(buffers[s])) return null;
        const src = spec.bindings[slot.indexOf(s)];
        const full = src.size === sizes[s]
          ? src
          : spec.bindings.find((t) => t.storage === buffers[s] && t.size === sizes[s])!;
        const c = gpu.empty([sizes[s]], dtypes[s], "replay snapshot");
        gpu.copy(full, c);
        return c;
      });
    const before = snap();
    dispatch.call(gpu, kernel, spec);
    const access = bindingLayout(kernel).access;
    const written = buffers.map((_, s) =>
      slot.some((x, i) => x === s && access[i] === "read_write")
    );
    const after = snap().map((t, s) => {
      if (written[s] && t) return t;
      t?.dispose();
      return null;
    });
    pending.push({ kernel, spec, slot, before, after, sizes });
  };
  try {
    await run();
  } finally {
    gpu.dispatch = dispatch;
  }
  const out: DispatchRecord[] = [];
  for (const r of pending) {
    const before = await Promise.all(
      r.before.map((t, s) => t ? t.read() : Promise.resolve(new Float32Array(r.sizes[s]))),
    );
    const after = await Promise.all(r.after.map((t) => t ? t.read() : Promise.resolve(null)));
    [...r.before, ...r.after].forEach((t) => t?.dispose());
    out.push({ kernel: r.kernel, spec: r.spec, slot: r.slot, before, after });
  }
  return out;
}

/** The result of replaying one record on Wasm: what the twin wrote into each written slot. */
export interface Replayed {
  /** `kernel.name/entry`. */
  key: string;
  /** Per slot: the twin's data after the dispatch (null for read-only slots). */
  got: (Data | null)[];
}

/** Runs the twin of a recorded dispatch on `rt`, on copies of the GPU's inputs. */
export function replayRecord(rt: WasmRuntime, r: DispatchRecord): Replayed {
  const tensors: WasmTensor[] = r.before.map((d) => rt.upload(d.slice(), [d.length]));
  try {
    rt.dispatch(r.kernel, {
      bindings: r.slot.map((s) => tensors[s]),
      params: r.spec.params,
      workgroups: r.spec.workgroups,
      constants: r.spec.constants,
    });
    return {
      key: `${r.kernel.name}/${r.kernel.entry ?? "main"}`,
      got: tensors.map((t, s) => r.after[s] ? t.toArray() : null),
    };
  } finally {
    tensors.forEach((t) => t.dispose());
  }
}

/** Largest errors seen per kernel entry, for the test's summary. */
export class ErrorLog {
  readonly worst = new Map<string, { abs: number; rel: number; frac: number; count: number }>();

  /**
   * Asserts `|got − want| ≤ atol + rtol |want|` (NaN where the GPU has NaN) and logs the errors.
   * @param scale added to |want| in the relative error (e.g. the largest |want| of the buffer)
   */
  check(
    key: string,
    got: ArrayLike<number>,
    want: ArrayLike<number>,
    tol: { atol: number; rtol: number },
    what: string,
  ): void {
    assert.equal(got.length, want.length, `${what}: length`);
    const w = this.worst.get(key) ?? { abs: 0, rel: 0, frac: 0, count: 0 };
    w.count++;
    for (let i = 0; i < got.length; i++) {
      const g = got[i], e = want[i];
      if (Number.isNaN(e) || Number.isNaN(g)) {
        assert.ok(Number.isNaN(e) === Number.isNaN(g), `${what}[${i}]: got ${g}, want ${e}`);
        continue;
      }
      if (g === e) continue;
      const abs = Math.abs(g - e);
      w.abs = Math.max(w.abs, abs);
      w.rel = Math.max(w.rel, abs / Math.max(Math.abs(e), 1e-30));
      w.frac = Math.max(w.frac, abs / (tol.atol + tol.rtol * Math.abs(e)));
      if (!(abs <= tol.atol + tol.rtol * Math.abs(e))) {
        this.worst.set(key, w);
        throw new assert.AssertionError({
          message: `${what}[${i}]: Wasm ${g}, WebGPU ${e} (atol ${tol.atol}, rtol ${tol.rtol})`,
        });
      }
    }
    this.worst.set(key, w);
  }

  /**
   * One line per kernel entry: checks, largest absolute and relative error, and the largest
   * fraction of the tolerance used.
   */
  summary(): string {
    return [...this.worst].map(([k, w]) =>
      `${k}: ${w.count} checks, max abs ${w.abs.toExponential(2)}, max rel ${
        w.rel.toExponential(2)
      }, ${(100 * w.frac).toFixed(1)}% of the tolerance`
    ).join("\n");
  }
}

/** True when two arrays hold the same bits (NaN payloads included). */
export function sameBits(a: Data, b: Data): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Replays each record on every runtime of `rts` (1 and 2 threads), asserts that they agree
 * bitwise, and checks the first against the WGSL's output within `tol(record)`.
 * @returns the number of records replayed
 */
export function replayAll(
  rts: readonly WasmRuntime[],
  records: readonly DispatchRecord[],
  log: ErrorLog,
  tol: (r: DispatchRecord) => { atol: number; rtol: number },
  what: string,
): number {
  for (const [n, r] of records.entries()) {
    const results = rts.map((rt) => replayRecord(rt, r));
    const key = results[0].key;
    for (const [s, want] of r.after.entries()) {
      if (!want) continue;
      const got = results[0].got[s]!;
      const label = `${what} #${n} ${key} ${JSON.stringify(r.spec.params)} ${
        JSON.stringify(r.spec.constants ?? {})
      } binding slot ${s}`;
      for (const other of results.slice(1)) {
        assert.ok(sameBits(got, other.got[s]!), `${label}: 1 and 2 threads differ`);
      }
      log.check(key, toF32(got, want), toF32(want, want), tol(r), label);
    }
  }
  return records.length;
}

/** u32 data compared as numbers, f32 as is. */
function toF32(d: Data, like: Data): ArrayLike<number> {
  return like instanceof Float32Array ? d : Array.from(d);
}

/** A GPU buffer as a sequence saw it (the tensor may be disposed before the replay). */
interface BufferRef {
  buffer: unknown;
  /** Bytes of the memory behind it. */
  capacity: number;
  size: number;
  dtype: Tensor["dtype"];
  name?: string;
}

const ref = (t: Tensor): BufferRef => ({
  buffer: t.storage,
  capacity: t.capacity,
  size: t.size,
  dtype: t.dtype,
  name: t.name,
});

/** One step of an op, in GPU order. */
export type SeqOp =
  | { op: "dispatch"; kernel: Kernel; spec: DispatchSpec; bindings: BufferRef[] }
  | { op: "copy"; src: BufferRef; dst: BufferRef; count: number; so: number; doff: number }
  | { op: "fill0"; t: BufferRef };

/** Records every dispatch, copy and clear `run` makes on `gpu`, in order (they still run). */
export async function recordSequence(
  gpu: Runtime,
  run: () => void | Promise<void>,
): Promise<SeqOp[]> {
  const ops: SeqOp[] = [];
  const { dispatch, copy, fill0 } = gpu;
  gpu.dispatch = (kernel, spec) => {
    ops.push({ op: "dispatch", kernel, spec, bindings: spec.bindings.map(ref) });
    dispatch.call(gpu, kernel, spec);
  };
  gpu.copy = (src, dst, count = src.size, so = 0, doff = 0) => {
    ops.push({ op: "copy", src: ref(src), dst: ref(dst), count, so, doff });
    copy.call(gpu, src, dst, count, so, doff);
  };
  gpu.fill0 = (t) => {
    ops.push({ op: "fill0", t: ref(t) });
    fill0.call(gpu, t);
  };
  try {
    await run();
  } finally {
    Object.assign(gpu, { dispatch, copy, fill0 });
  }
  return ops;
}

/**
 * Replays a recorded sequence on `rt`: each GPU buffer becomes one Wasm tensor of the buffer's
 * size (zeros, or `inputs`' data for the given GPU tensors).
 * @returns a function giving the Wasm data of a (live) GPU tensor after the replay, and a disposer
 */
export function replaySequence(
  rt: WasmRuntime,
  ops: readonly SeqOp[],
  inputs: readonly [Tensor, Data][],
): { data(t: Tensor): Data; dispose(): void } {
  const map = new Map<unknown, WasmTensor>();
  const of = (r: BufferRef): WasmTensor => {
    let w = map.get(r.buffer);
    if (!w) {
      w = rt.zeros([Math.max(r.size, r.capacity / 4)], r.dtype, r.name);
      map.set(r.buffer, w);
    }
    return w;
  };
  for (const [t, d] of inputs) of(ref(t)).view().set(d);
  for (const o of ops) {
    if (o.op === "dispatch") {
      rt.dispatch(o.kernel, {
        bindings: o.bindings.map(of),
        params: o.spec.params,
        workgroups: o.spec.workgroups,
        constants: o.spec.constants,
      });
    } else if (o.op === "copy") {
      rt.copy(of(o.src), of(o.dst), o.count, o.so, o.doff);
    } else {
      of(o.t).view().fill(0, 0, o.t.size);
    }
  }
  return {
    data: (t) => {
      const w = map.get(t.storage);
      assert.ok(w, `${t.describe()} was not touched by the sequence`);
      const v = w.view();
      const d = t.dtype === "f32" ? new Float32Array(t.size) : new Uint32Array(t.size);
      d.set(v.subarray(0, t.size));
      return d;
    },
    dispose: () => map.forEach((w) => w.dispose()),
  };
}
