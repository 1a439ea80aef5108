/**
 * A debug profile of the work a {@linkcode Runtime} records: per kernel (name and override
 * constants), how many dispatches, workgroups and bound bytes, and, where the device has the
 * `timestamp-query` feature, the GPU time of each dispatch. Off unless asked for
 * (`Runtime.create({ profile: true })`); when off, the dispatch path pays one null check.
 *
 * With timestamps every dispatch gets a compute pass of its own whose begin and end are written
 * into a query set (WebGPU's only timing point is a pass boundary), resolved at each submit and
 * read back asynchronously, so a profiled step is slower than an unprofiled one and its times are
 * each dispatch's own, without overlap with its neighbours. Buffer copies and clears are counted
 * (they end the compute pass), not timed.
 *
 * @module
 */

/** One row of {@linkcode Profiler.report}: a kernel variant's totals since the last reset. */
export interface ProfileRow {
  /** Kernel name ("conv2d", "optim.sgd"), or "copyBufferToBuffer" / "clearBuffer". */
  kernel: string;
  /** Override constants of the pipeline, compact (`MODE=0 RM=8 ...`), or "". */
  variant: string;
  /** Dispatches (or copies, clears) recorded. */
  count: number;
  /** Workgroups launched in all (0 for copies and clears). */
  workgroups: number;
  /** Bytes of the tensors bound (copies, clears: bytes moved), summed over `count`. */
  bytes: number;
  /** GPU milliseconds in all, from timestamp queries; null where the device has none. */
  gpuMs: number | null;
}

/** A submit's timed dispatches waiting for their timestamps. */
export interface Pending {
  keys: string[];
  staging: GPUBuffer;
}

/** Query-set capacity: timed dispatches per submit (two timestamps each). */
const MAX_TIMED = 2048;

/**
 * Counts (and, with `timestamp-query`, times) a runtime's dispatches. Owned by the runtime
 * (`rt.profiler`); the runtime calls {@linkcode Profiler.dispatch} and the pass hooks.
 */
export class Profiler {
  #rows = new Map<string, ProfileRow>();
  #querySet: GPUQuerySet | null = null;
  #resolve: GPUBuffer | null = null;
  /** Row keys of the dispatches timed in the submit being recorded, in query order. */
  #timed: string[] = [];
  #pending: Promise<void>[] = [];

  /** @param device the runtime's device (timestamps where it has `timestamp-query`) */
  constructor(readonly device: GPUDevice) {
    if (device.features.has("timestamp-query")) {
      this.#querySet = device.createQuerySet({ type: "timestamp", count: 2 * MAX_TIMED });
      this.#resolve = device.createBuffer({
        size: 2 * MAX_TIMED * 8,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
    }
  }

  /** True when dispatches are timed (the device has `timestamp-query`). */
  get timed(): boolean {
    return this.#querySet !== null;
  }

  /**
   * Counts a dispatch and, when timed and room is left in this submit's query set, returns the
   * timestamp writes of the pass it must run in alone (else undefined: record it in any pass).
   */
  dispatch(
    kernel: string,
    constants: Record<string, number> | undefined,
    workgroups: readonly number[],
    bytes: number,
  ): GPUComputePassTimestampWrites | undefined {
    const variant = constants
      ? Object.entries(constants).map(([k, v]) => `${k}=${v}`).join(" ")
      : "";
    const key = `${kernel}|${variant}`;
    this.#add(key, kernel, variant, workgroups[0] * workgroups[1] * workgroups[2], bytes);
    if (!this.#querySet || this.#timed.length >= MAX_TIMED) return undefined;
    const i = this.#timed.length;
    this.#timed.push(key);
    return {
      querySet: this.#querySet,
      beginningOfPassWriteIndex: 2 * i,
      endOfPassWriteIndex: 2 * i + 1,
    };
  }

  /** Counts a buffer copy or clear of `bytes`. */
  transfer(what: "copyBufferToBuffer" | "clearBuffer", bytes: number): void {
    this.#add(what, what, "", 0, bytes);
  }

  /**
   * Called by the runtime just before it finishes a command encoder: resolves this submit's
   * timestamps into a staging buffer (read once the submit is done, see `afterSubmit`).
   */
  beforeFinish(encoder: GPUCommandEncoder): Pending | null {
    const n = this.#timed.length;
    if (!this.#querySet || n === 0) return null;
    const staging = this.device.createBuffer({
      size: 2 * n * 8,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.#querySet, 0, 2 * n, this.#resolve!, 0);
    encoder.copyBufferToBuffer(this.#resolve!, 0, staging, 0, 2 * n * 8);
    const pending = { keys: this.#timed, staging };
    this.#timed = [];
    return pending;
  }

  /** Called by the runtime right after the submit that `beforeFinish` prepared. */
  afterSubmit(p: Pending | null): void {
    if (!p) return;
    this.#pending.push(
      p.staging.mapAsync(GPUMapMode.READ).then(() => {
        const t = new BigInt64Array(p.staging.getMappedRange().slice(0));
        p.staging.unmap();
        p.staging.destroy();
        p.keys.forEach((key, i) => {
          const ns = Number(t[2 * i + 1] - t[2 * i]);
          const row = this.#rows.get(key);
          // A reset between the submit and its read-back drops the sample with its row.
          if (row && ns >= 0) row.gpuMs = (row.gpuMs ?? 0) + ns / 1e6;
        });
      }),
    );
  }

  /**
   * The totals since the last reset, slowest first (by GPU time where timed, else by bytes).
   * Waits for the timestamps of submitted work; call `rt.sync()` first so everything recorded
   * is submitted.
   * @returns one row per kernel variant (copies and clears included)
   */
  async report(): Promise<ProfileRow[]> {
    const pending = this.#pending;
    this.#pending = [];
    await Promise.all(pending);
    const rows = [...this.#rows.values()].map((r) => ({ ...r }));
    return rows.sort((a, b) => ((b.gpuMs ?? 0) - (a.gpuMs ?? 0)) || b.bytes - a.bytes);
  }

  /** Forgets the totals (timestamps of work in flight are dropped). */
  reset(): void {
    this.#rows.clear();
  }

  /** Frees the query set and its buffers. */
  destroy(): void {
    this.#querySet?.destroy();
    this.#resolve?.destroy();
    this.#querySet = this.#resolve = null;
  }

  #add(key: string, kernel: string, variant: string, workgroups: number, bytes: number): void {
    let row = this.#rows.get(key);
    if (!row) {
      row = { kernel, variant, count: 0, workgroups: 0, bytes: 0, gpuMs: this.timed ? 0 : null };
      if (kernel === "copyBufferToBuffer" || kernel === "clearBuffer") row.gpuMs = null;
      this.#rows.set(key, row);
    }
    row.count++;
    row.workgroups += workgroups;
    row.bytes += bytes;
  }
}

/**
 * The rows of a report summed by kernel name (variants merged), slowest first.
 * @param rows a {@linkcode Profiler.report}
 * @returns one row per kernel name, `variant` "" (or "N variants")
 */
export function byKernel(rows: readonly ProfileRow[]): ProfileRow[] {
  const out = new Map<string, ProfileRow & { variants: number }>();
  for (const r of rows) {
    const o = out.get(r.kernel);
    if (!o) {
      out.set(r.kernel, { ...r, variants: 1 });
      continue;
    }
    o.count += r.count;
    o.workgroups += r.workgroups;
    o.bytes += r.bytes;
    o.gpuMs = o.gpuMs === null || r.gpuMs === null ? null : o.gpuMs + r.gpuMs;
    o.variants++;
  }
  return [...out.values()]
    .map(({ variants, ...r }) => ({ ...r, variant: variants > 1 ? `${variants} variants` : "" }))
    .sort((a, b) => ((b.gpuMs ?? 0) - (a.gpuMs ?? 0)) || b.bytes - a.bytes);
}
