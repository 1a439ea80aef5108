/**
 * Replaying WebGPU work on the WebAssembly twins (src/wasm/kernels/), for the tests of the twin
 * families: run the real op on the GPU runtime while recording what it does, run the same on
 * Wasm runtimes with 1 and 2 threads, and compare (the 1- and 2-thread results bitwise, the
 * GPU's within a tolerance).
 *
 * - Runtimes: {@linkcode wasmPair} (a fresh 1- and 2-thread pair), {@linkcode withWasmPair}
 *   (the same, destroyed after a function) and {@linkcode sharedWasmPair} / {@linkcode releaseSharedWasmPair} (one pair for a whole file).
 * - Sequences: {@linkcode recordSequence} records every dispatch, copy, clear and write an op
 *   makes (uploads and `empty` included: `empty` is cleared on the GPU too, so both sides start
 *   from zeros), in order, by GPU buffer; {@linkcode replaySequence} runs them on one Wasm
 *   runtime, one Wasm tensor standing for each buffer, so temporaries, views, in-place aliasing
 *   and reused pool buffers replay as on the GPU (optionally timing each kernel).
 *   {@linkcode replay} (every touched tensor on every runtime), {@linkcode replayBoth} (the op's
 *   outputs) and {@linkcode replayOutputs} (the same on the shared runtimes) build on them.
 * - Snapshots: {@linkcode recordDispatches} copies the bindings of chosen kernels on the GPU
 *   right before and after each of their dispatches, so {@linkcode replayRecord} runs a twin on
 *   exactly the inputs its WGSL saw, whatever else the op did in between (kernels without
 *   twins included), and {@linkcode replayAll} compares with what the WGSL wrote.
 * - Checks: {@linkcode assertBitwise}, {@linkcode sameBits}, {@linkcode assertNear},
 *   {@linkcode assertReplayed}, {@linkcode ErrorLog}.
 *
 * (A stop-gap where ops cannot yet run on `WasmRuntime` through one `Backend`.)
 */
import { assert, assertClose, getRuntime, wasmRelaxedSimd } from "./_util.ts";
import type { DispatchSpec, Runtime } from "../src/gpu/runtime.ts";
import { bindingLayout, type Kernel } from "../src/kernel.ts";
import type { Tensor } from "../src/backend.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import type { WasmTensor } from "../src/wasm/tensor.ts";

type Data = Float32Array | Uint32Array | Int32Array;

// ---- runtimes ----

/**
 * A Wasm runtime with 1 thread and one with 2 (checked: the split must really happen); the
 * caller destroys them.
 */
export async function wasmPair(): Promise<[WasmRuntime, WasmRuntime]> {
  const pair: [WasmRuntime, WasmRuntime] = [
    await WasmRuntime.create({ threads: 1, warn: false, relaxedSimd: wasmRelaxedSimd() }),
    await WasmRuntime.create({ threads: 2, warn: false, relaxedSimd: wasmRelaxedSimd() }),
  ];
  if (pair[1].threads !== 2) {
    pair.forEach((rt) => rt.destroy());
    throw new assert.AssertionError({
      message: `the 2-thread Wasm runtime has ${pair[1].threads}: ${pair[1].threadsNote ?? ""}`,
    });
  }
  return pair;
}

/**
 * Runs `fn` with the shared GPU runtime and a fresh pair of Wasm runtimes (1 and 2 threads),
 * destroyed when it returns.
 */
export async function withWasmPair<T>(
  fn: (wasm: [WasmRuntime, WasmRuntime], gpu: Runtime) => T | Promise<T>,
): Promise<T> {
  const gpu = await getRuntime();
  const wasm = await wasmPair();
  try {
    return await fn(wasm, gpu);
  } finally {
    wasm.forEach((rt) => rt.destroy());
  }
}

let shared: Promise<[WasmRuntime, WasmRuntime]> | null = null;

/** One pair of Wasm runtimes (1 and 2 threads) for the tests of a file; see the release. */
export function sharedWasmPair(): Promise<[WasmRuntime, WasmRuntime]> {
  shared ??= wasmPair();
  return shared;
}

/** Destroys the {@linkcode sharedWasmPair} (the file's last test calls it: no worker may leak). */
export async function releaseSharedWasmPair(): Promise<void> {
  if (!shared) return;
  const pair = await shared;
  shared = null;
  pair.forEach((rt) => rt.destroy());
}

// ---- bits ----

/** Index of the first element whose bits differ (NaN payloads included), -1 if none. */
function firstBitDiff(a: Data, b: Data): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** True when two arrays hold the same bits (NaN payloads included). */
export function sameBits(a: Data, b: Data): boolean {
  return a.length === b.length && firstBitDiff(a, b) < 0;
}

/** Asserts two arrays are bitwise equal (NaN payloads included), naming the first difference. */
export function assertBitwise(got: Data, want: Data, what: string): void {
  if (got.length !== want.length) {
    throw new Error(`${what}: length ${got.length} vs ${want.length}`);
  }
  const i = firstBitDiff(got, want);
  if (i >= 0) {
    const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
    const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
    throw new Error(
      `${what}[${i}]: bits ${g[i].toString(16)} vs ${w[i].toString(16)} (${got[i]} vs ${want[i]})`,
    );
  }
}

/** The bytes of `data` into `w` from element 0. */
function setBytes(w: WasmTensor, data: Data): void {
  const v = w.view();
  new Uint8Array(v.buffer, v.byteOffset, v.byteLength).set(
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
}

// ---- sequences ----

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
  | { op: "fill0"; t: BufferRef }
  | { op: "write"; t: BufferRef; data: Data };

/** What {@linkcode recordSequence} returns: the steps, and the tensors they touched. */
export interface Sequence {
  ops: SeqOp[];
  /** Buffers the steps may start from zeros: made while recording, or placeholders. */
  fresh: Set<unknown>;
  /** Per buffer touched, in first-use order: the last tensor seen on it. */
  tensors: Map<unknown, Tensor>;
  /** Placeholder buffers of the GPU runtime (0 to 7, and any the steps asked for). */
  placeholders: Set<unknown>;
}

/** The tensor that owns `t`'s storage (a reshape is a view of it). */
function root(t: Tensor): Tensor {
  let r = t as Tensor & { base?: Tensor };
  while (r.base) r = r.base as Tensor & { base?: Tensor };
  return r;
}

/**
 * Records every dispatch, copy, clear and write `run` makes on `gpu`, in order (they still
 * run). Tensors made by `empty` (so by `zeros` and `upload`) are cleared on the GPU as well,
 * recorded as a clear: both sides start from zeros even on a reused pool buffer.
 */
export async function recordSequence(
  gpu: Runtime,
  run: () => unknown,
): Promise<Sequence> {
  const placeholders = new Set<unknown>(
    Array.from({ length: 8 }, (_, i) => gpu.placeholder(i).storage),
  );
  const seq: Sequence = { ops: [], fresh: new Set(placeholders), tensors: new Map(), placeholders };
  const saw = (t: Tensor) => {
    const r = ref(t);
    seq.tensors.set(r.buffer, root(t)); // a Map keeps a key's first place
    return r;
  };
  const { empty, placeholder, dispatch, copy, fill0, write } = gpu;
  const g = gpu as unknown as Record<string, unknown>;
  g.placeholder = (index: number) => {
    const t = placeholder.call(gpu, index);
    seq.placeholders.add(t.storage);
    seq.fresh.add(t.storage);
    return t;
  };
  g.empty = (shape: readonly number[], dtype?: Tensor["dtype"], name?: string) => {
    const t = empty.call(gpu, shape, dtype, name);
    seq.fresh.add(t.storage);
    seq.ops.push({ op: "fill0", t: saw(t) });
    fill0.call(gpu, t);
    return t;
  };
  g.dispatch = (kernel: Kernel, spec: DispatchSpec) => {
    seq.ops.push({ op: "dispatch", kernel, spec, bindings: spec.bindings.map(saw) });
    dispatch.call(gpu, kernel, spec);
  };
  g.copy = (src: Tensor, dst: Tensor, count = src.size, so = 0, doff = 0) => {
    seq.ops.push({ op: "copy", src: saw(src), dst: saw(dst), count, so, doff });
    copy.call(gpu, src, dst, count, so, doff);
  };
  g.fill0 = (t: Tensor) => {
    seq.ops.push({ op: "fill0", t: saw(t) });
    fill0.call(gpu, t);
  };
  g.write = (t: Tensor, data: Data) => {
    seq.ops.push({ op: "write", t: saw(t), data: data.slice() });
    write.call(gpu, t, data);
  };
  try {
    await run();
  } finally {
    for (const k of ["empty", "placeholder", "dispatch", "copy", "fill0", "write"]) delete g[k];
  }
  return seq;
}

/** The Wasm side of a replayed sequence. */
export interface ReplayedSequence {
  /** The Wasm data of GPU tensor `t` after the replay (f32, or the u32 bits of an integer). */
  data(t: Tensor): Float32Array | Uint32Array;
  /** The Wasm data of GPU tensor `t` after the replay, in `t`'s dtype. */
  typed(t: Tensor): Data;
  /** Frees the Wasm tensors. */
  dispose(): void;
}

/**
 * Replays a recorded sequence on `rt`: each GPU buffer (and dtype) becomes one Wasm tensor of
 * the buffer's size, holding `inputs`' data for the given GPU tensors and zeros for buffers the
 * sequence made; any other buffer is an error (its contents would be unknown). With `times`,
 * adds the milliseconds each dispatch took to its kernel name's entry (for timing the twins).
 */
export function replaySequence(
  rt: WasmRuntime,
  seq: Sequence,
  inputs: readonly (readonly [Tensor, Data])[],
  times?: Map<string, number>,
): ReplayedSequence {
  const map = new Map<unknown, Map<string, WasmTensor>>();
  const known = new Set<unknown>([...seq.fresh, ...inputs.map(([t]) => t.storage)]);
  const of = (r: BufferRef, what = r.name ?? "a tensor"): WasmTensor => {
    let byType = map.get(r.buffer);
    if (!byType) map.set(r.buffer, byType = new Map());
    let w = byType.get(r.dtype);
    if (!w) {
      if (!known.has(r.buffer)) {
        throw new Error(`replay: ${what} existed before the ops ran; pass it in inputs`);
      }
      w = rt.zeros([Math.max(r.size, r.capacity / 4)], r.dtype, r.name);
      byType.set(r.dtype, w);
    }
    return w;
  };
  for (const [t, d] of inputs) setBytes(of(ref(t)), d);
  for (const o of seq.ops) {
    if (o.op === "dispatch") {
      const bindings = o.bindings.map((b) => of(b));
      const t0 = performance.now();
      rt.dispatch(o.kernel, {
        bindings,
        params: o.spec.params,
        workgroups: o.spec.workgroups,
        constants: o.spec.constants,
      });
      if (times) {
        const name = o.kernel.name;
        times.set(name, (times.get(name) ?? 0) + performance.now() - t0);
      }
    } else if (o.op === "copy") {
      rt.copy(of(o.src), of(o.dst), o.count, o.so, o.doff);
    } else if (o.op === "fill0") {
      of(o.t).view().fill(0, 0, o.t.size);
    } else {
      setBytes(of(o.t), o.data);
    }
  }
  const find = (t: Tensor): WasmTensor => {
    const w = map.get(t.storage)?.get(t.dtype);
    assert.ok(w, `${t.describe()} was not touched by the sequence`);
    return w;
  };
  return {
    data: (t) => {
      const v = find(t).view();
      const d = t.dtype === "f32" ? new Float32Array(t.size) : new Uint32Array(t.size);
      d.set(new (d.constructor as typeof Uint32Array)(v.buffer, v.byteOffset, t.size));
      return d;
    },
    typed: (t) => find(t).view().slice(0, t.size) as Data,
    dispose: () => map.forEach((m) => m.forEach((w) => w.dispose())),
  };
}

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
  const start: [Tensor, Data][] = [];
  for (const t of inputs) start.push([root(t), (await gpu.read(root(t))) as Data]);
  const seq = await recordSequence(gpu, fn);
  gpu.submit();
  const runs = wasm.map((rt) => replaySequence(rt, seq, start));
  try {
    const order = new Map(seq.tensors);
    for (const [t] of start) if (!order.has(t.storage)) order.set(t.storage, t);
    const tensors: Replayed[] = [];
    for (const [buffer, t] of order) {
      if (t.disposed || seq.placeholders.has(buffer)) continue;
      tensors.push({
        what: t.describe(),
        gpu: (await gpu.read(t)) as Data,
        wasm: runs.map((r) => r.typed(t)),
      });
    }
    const dispatches = seq.ops.flatMap((o) =>
      o.op === "dispatch" ? [`${o.kernel.name}/${o.kernel.entry ?? "main"}`] : []
    );
    return { dispatches, tensors };
  } finally {
    runs.forEach((r) => r.dispose());
  }
}

/** An input of {@linkcode replayBoth}: uploaded to the GPU and mirrored on each Wasm runtime. */
export interface ReplayInput {
  shape: number[];
  data: Float32Array | Uint32Array | Int32Array;
}

/**
 * Runs `run` on GPU tensors made from `inputs` (recording what it does), replays it on each of
 * `rts`, asserts the Wasm results of all runtimes bitwise equal (thread-count independence),
 * and returns the outputs of the first Wasm runtime and of the GPU, in `run`'s order, with the
 * number of dispatches and the kernel names dispatched (in order).
 */
export async function replayBoth(
  gpu: Runtime,
  rts: readonly WasmRuntime[],
  inputs: readonly ReplayInput[],
  run: (t: Tensor[]) => Tensor[],
  what: string,
): Promise<
  {
    wasm: (Float32Array | Uint32Array)[];
    gpu: (Float32Array | Uint32Array)[];
    dispatches: number;
    kernels: string[];
  }
> {
  if (rts.length > 1 && rts.at(-1)!.threads < 2) {
    throw new Error(`${what}: the last Wasm runtime has 1 thread (${rts.at(-1)!.threadsNote})`);
  }
  const g = inputs.map((i) => gpu.upload(i.data, i.shape));
  let result: Tensor[] = [];
  const seq = await recordSequence(gpu, () => void (result = run(g)));
  const per: (Float32Array | Uint32Array)[][] = [];
  for (const rt of rts) {
    const r = replaySequence(rt, seq, g.map((t, i) => [t, inputs[i].data]));
    per.push(result.map((t) => r.data(t)));
    r.dispose();
  }
  for (let r = 1; r < per.length; r++) {
    per[r].forEach((o, i) =>
      assertBitwise(o, per[0][i], `${what}: output ${i}, runtime ${r} vs 0`)
    );
  }
  const want = [];
  for (const r of result) want.push((await r.read()) as Float32Array | Uint32Array);
  for (const r of new Set(result)) if (!(g as Tensor[]).includes(r)) r.dispose();
  for (const t of g) t.dispose();
  const kernels = seq.ops.flatMap((o) => o.op === "dispatch" ? [o.kernel.name] : []);
  return { wasm: per[0], gpu: want, dispatches: kernels.length, kernels };
}

/** One output of {@linkcode replayOutputs}: the GPU's data and the first Wasm runtime's. */
export interface ReplayedOutput {
  gpu: Float32Array | Uint32Array;
  wasm: Float32Array | Uint32Array;
}

/**
 * {@linkcode replayBoth} on the shared GPU runtime and the {@linkcode sharedWasmPair} (the 1-
 * and 2-thread results asserted bitwise equal), its outputs paired.
 * @param inputs uploaded to the GPU, and their data given to the Wasm runtimes
 * @param run the ops, on the GPU tensors of `inputs` (their order); returns the outputs to read
 * @param what names the call in messages
 * @param seen when given, counts the dispatches per kernel name
 * @returns per output of `run`, in its order: the GPU's data and the first Wasm runtime's
 */
export async function replayOutputs(
  inputs: readonly ReplayInput[],
  run: (t: Tensor[]) => Tensor[],
  what: string,
  seen?: Map<string, number>,
): Promise<ReplayedOutput[]> {
  const r = await replayBoth(await getRuntime(), await sharedWasmPair(), inputs, run, what);
  for (const k of r.kernels) seen?.set(k, (seen.get(k) ?? 0) + 1);
  return r.gpu.map((gpu, i) => ({ gpu, wasm: r.wasm[i] }));
}

// ---- snapshots ----

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

/** A dispatch recorded with its snapshots still on the GPU. */
interface Pending {
  kernel: Kernel;
  spec: DispatchSpec;
  slot: number[];
  before: (Tensor | null)[];
  after: (Tensor | null)[];
  sizes: number[];
}

/**
 * Records, from construction to {@linkcode DispatchRecorder.stop}, the dispatches of kernels
 * whose name starts with one of `prefixes` (at most `limit` per kernel entry; the rest run
 * unrecorded), with GPU-side copies of their bindings right before and (the written ones) right
 * after each, so that later work cannot change what a replay sees.
 */
export class DispatchRecorder {
  /** Dispatches recorded so far (taken or not). */
  count = 0;
  #pending: Pending[] = [];
  readonly #gpu: Runtime;
  readonly #dispatch: Runtime["dispatch"];

  constructor(gpu: Runtime, prefixes: readonly string[], limit = Infinity) {
    this.#gpu = gpu;
    const dispatch = this.#dispatch = gpu.dispatch;
    const counts = new Map<string, number>();
    // Placeholders (no kernel reads or writes them) cannot be copied: they replay as zeros.
    const holders = new Set<unknown>(
      Array.from({ length: 8 }, (_, i) => gpu.placeholder(i).storage),
    );
    gpu.dispatch = (kernel: Kernel, spec: DispatchSpec) => {
      const key = `${kernel.name}/${kernel.entry ?? "main"}`;
      const n = counts.get(key) ?? 0;
      if (!prefixes.some((p) => kernel.name.startsWith(p)) || n >= limit) {
        return dispatch.call(gpu, kernel, spec);
      }
      counts.set(key, n + 1);
      this.count++;
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
      this.#pending.push({ kernel, spec, slot, before, after, sizes });
    };
  }

  /** The records not taken yet, their snapshots read back (and freed on the GPU). */
  async take(): Promise<DispatchRecord[]> {
    const pending = this.#pending;
    this.#pending = [];
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

  /** Stops recording (dispatches run as before). */
  stop(): void {
    this.#gpu.dispatch = this.#dispatch;
  }
}

/**
 * Records the dispatches of kernels whose name starts with one of `prefixes` while `run` runs
 * on `gpu` (see {@linkcode DispatchRecorder}; "" records every kernel).
 * @returns the records, with their snapshots read back
 */
export async function recordDispatches(
  gpu: Runtime,
  prefixes: readonly string[],
  run: () => unknown,
  limit = Infinity,
): Promise<DispatchRecord[]> {
  const rec = new DispatchRecorder(gpu, prefixes, limit);
  try {
    await run();
  } finally {
    rec.stop();
  }
  return await rec.take();
}

/** The result of replaying one record on Wasm: what the twin wrote into each written slot. */
export interface ReplayedRecord {
  /** `kernel.name/entry`. */
  key: string;
  /** Per slot: the twin's data after the dispatch (null for read-only slots). */
  got: (Data | null)[];
}

/**
 * Runs the twin of a recorded dispatch on `rt`, on copies of the GPU's inputs. With `poison`,
 * the written slots start as NaN (f32) or 0x7fffffff (integers) instead of the GPU's contents,
 * so that every element the twin must write is checked.
 */
export function replayRecord(
  rt: WasmRuntime,
  r: DispatchRecord,
  opts: { poison?: boolean } = {},
): ReplayedRecord {
  const tensors: WasmTensor[] = r.before.map((d) => rt.upload(d.slice(), [d.length]));
  try {
    if (opts.poison) {
      tensors.forEach((t, s) => {
        if (r.after[s]) t.view().fill(t.dtype === "f32" ? NaN : 0x7fffffff);
      });
    }
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

// ---- tolerances ----

/**
 * Largest `|got - want| / (atol + rtol |want|)` (<= 1 passes); NaN must match NaN and infinities
 * must match exactly, else Infinity.
 */
export function excess(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  rtol: number,
): { worst: number; at: number } {
  let worst = 0, at = -1;
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    let e: number;
    if (Number.isNaN(w) || Number.isNaN(g)) e = Number.isNaN(w) && Number.isNaN(g) ? 0 : Infinity;
    else if (!Number.isFinite(w) || !Number.isFinite(g)) e = g === w ? 0 : Infinity;
    else e = Math.abs(g - w) / (atol + rtol * Math.abs(w));
    if (e > worst) {
      worst = e;
      at = i;
    }
  }
  return { worst, at };
}

/** Throws unless `excess(...) <= 1`, naming the worst element; returns the excess. */
export function assertNear(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  rtol: number,
  what: string,
): number {
  if (got.length !== want.length) {
    throw new Error(`${what}: length ${got.length} vs ${want.length}`);
  }
  const { worst, at } = excess(got, want, atol, rtol);
  if (worst > 1) {
    throw new Error(
      `${what}[${at}]: got ${got[at]}, want ${want[at]} (atol ${atol}, rtol ${rtol}, ` +
        `${worst.toExponential(2)} times the bound)`,
    );
  }
  return worst;
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
        assert.ok(
          sameBits(t.wasm[0], w),
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

/** Largest errors seen per kernel entry, for the test's summary. */
export class ErrorLog {
  readonly worst = new Map<string, { abs: number; rel: number; frac: number; count: number }>();

  /**
   * Asserts `|got − want| ≤ atol + rtol |want|` (NaN where the GPU has NaN) and logs the errors.
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
