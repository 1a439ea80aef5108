/**
 * The allocator of a WebAssembly memory: tensors and per-thread scratch live
 * in one `WebAssembly.Memory`, managed from JavaScript (the kernels allocate
 * nothing). Best fit over an address-ordered free list with coalescing, sizes
 * rounded up to size classes (64-byte steps up to 4 KiB, then eight steps per
 * power of two, at most 12.5 % waste), so that a training loop, which asks for
 * the same sizes every step, finds an exact block again and its memory stays
 * flat; blocks are 64-byte aligned (a cache line, and 16 for v128). The memory
 * grows on demand up to a limit; an allocation past it is an error naming the
 * tensor, never a crash.
 *
 * @module
 */

/** Alignment and size granularity of every block, in bytes. */
export const HEAP_ALIGN = 64;

const PAGE = 65536;

/** Memory statistics of a {@linkcode WasmHeap}. */
export interface HeapStats {
  /** Bytes handed out (rounded to blocks). */
  inUseBytes: number;
  /** Current size of the WebAssembly memory. */
  memoryBytes: number;
  /** Largest size the memory may grow to. */
  limitBytes: number;
  /** Live blocks. */
  blocks: number;
  /** Bytes the heap has ever spanned (its high-water mark): what it took from the memory. */
  allocatedBytes: number;
  /** Allocations that took new memory (past the high-water mark), so far. */
  created: number;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** The block size for `bytes`: 64-byte steps up to 4 KiB, then 1/8 of the power of two below. */
function sizeClass(bytes: number): number {
  const n = alignUp(Math.max(bytes, 1), HEAP_ALIGN);
  if (n <= 4096) return n;
  const step = 2 ** (Math.floor(Math.log2(n)) - 3);
  return alignUp(n, step);
}

/** Formats a byte count for error messages: "4,194,304 bytes (4.0 MiB)". */
export function fmtBytes(n: number): string {
  const mib = n / (1 << 20);
  const unit = mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${mib.toFixed(1)} MiB`;
  return `${n.toLocaleString("en-US")} bytes (${unit})`;
}

/** Allocates byte ranges of a `WebAssembly.Memory`. */
export class WasmHeap {
  #free: { ptr: number; size: number }[] = [];
  #used = new Map<number, number>();
  #top: number;
  #inUse = 0;
  #created = 0;
  readonly #base: number;
  #high: number;

  /**
   * @param memory the memory to manage (it is grown as needed)
   * @param base first byte to hand out (below it: the module's static data)
   * @param limitBytes the memory never grows past this (at most 4 GiB)
   */
  constructor(
    readonly memory: WebAssembly.Memory,
    base: number,
    readonly limitBytes: number,
  ) {
    this.#top = alignUp(Math.max(base, HEAP_ALIGN), HEAP_ALIGN);
    this.#base = this.#top;
    this.#high = this.#top;
  }

  /**
   * Reserves `bytes` bytes.
   * @param bytes size (0 is fine: a block is still reserved, so that pointers stay distinct)
   * @param what what the block is for, named in the error ("tensor 'fc1.weight' f32[120,400]")
   * @returns the byte offset of the block, a multiple of {@linkcode HEAP_ALIGN}
   * @throws Error naming `what` and the sizes when the memory cannot grow enough
   */
  alloc(bytes: number, what: string): number {
    const size = sizeClass(bytes);
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const f = this.#free[i];
      if (f.size < size || (best >= 0 && f.size >= this.#free[best].size)) continue;
      best = i;
      if (f.size === size) break;
    }
    if (best >= 0) {
      const f = this.#free[best];
      const ptr = f.ptr;
      if (f.size === size) this.#free.splice(best, 1);
      else {
        f.ptr += size;
        f.size -= size;
      }
      return this.#take(ptr, size);
    }
    // No free block is large enough: extend the top (free() keeps no free block touching it).
    const start = this.#top;
    this.#ensure(start + size, bytes, what);
    this.#top = start + size;
    // NOTE: a block freed at the top gives its memory back to the top, and taking it again is
    // no new memory: only a top past every earlier one counts.
    if (this.#top > this.#high) {
      this.#high = this.#top;
      this.#created++;
    }
    return this.#take(start, size);
  }

  /**
   * Returns a block to the free list.
   * @param ptr a pointer `alloc` returned and that was not freed yet
   * @throws Error for a pointer that is not a live block (a double free)
   */
  free(ptr: number): void {
    const size = this.#used.get(ptr);
    if (size === undefined) {
      throw new Error(`WasmHeap.free: ${ptr} is not a live block (freed twice?)`);
    }
    this.#used.delete(ptr);
    this.#inUse -= size;
    // Insert in address order and merge with the neighbours.
    let lo = 0, hi = this.#free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#free[mid].ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    let block = { ptr, size };
    const prev = this.#free[lo - 1];
    if (prev && prev.ptr + prev.size === ptr) {
      prev.size += size;
      block = prev;
      lo--;
    } else {
      this.#free.splice(lo, 0, block);
    }
    const next = this.#free[lo + 1];
    if (next && block.ptr + block.size === next.ptr) {
      block.size += next.size;
      this.#free.splice(lo + 1, 1);
    }
    // A free block at the top shrinks the heap (the memory itself never shrinks).
    const last = this.#free.at(-1);
    if (last && last.ptr + last.size === this.#top) {
      this.#top = last.ptr;
      this.#free.pop();
    }
  }

  /** Size of a live block (as rounded by `alloc`), or undefined. */
  sizeOf(ptr: number): number | undefined {
    return this.#used.get(ptr);
  }

  /** Current statistics. */
  stats(): HeapStats {
    return {
      inUseBytes: this.#inUse,
      memoryBytes: this.memory.buffer.byteLength,
      limitBytes: this.limitBytes,
      blocks: this.#used.size,
      allocatedBytes: this.#high - this.#base,
      created: this.#created,
    };
  }

  #take(ptr: number, size: number): number {
    this.#used.set(ptr, size);
    this.#inUse += size;
    return ptr;
  }

  #ensure(end: number, bytes: number, what: string): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const advice = "dispose tensors that are no longer needed, or create the WasmRuntime with " +
      "a larger maxMemoryBytes (at most 4 GiB)";
    if (end > this.limitBytes) {
      throw new Error(
        `Out of WebAssembly memory: ${what} needs ${fmtBytes(bytes)}, which would take the ` +
          `memory to ${fmtBytes(end)}, past its limit of ${fmtBytes(this.limitBytes)} ` +
          `(${fmtBytes(this.#inUse)} in use); ${advice}`,
      );
    }
    try {
      this.memory.grow(Math.ceil((end - have) / PAGE));
    } catch (e) {
      throw new Error(
        `Out of WebAssembly memory: ${what} needs ${fmtBytes(bytes)}, and the engine refused to ` +
          `grow the memory from ${fmtBytes(have)} to ${fmtBytes(alignUp(end, PAGE))} ` +
          `(${(e as Error).message}); ${advice}`,
      );
    }
  }
}
