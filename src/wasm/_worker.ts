/**
 * The body of a kernel worker. It is started from its source text
 * (`workerSource()`, a Blob URL), not from a file, so that it works from a URL
 * import of mod.ts and from the browser bundle alike: the function must
 * therefore use nothing but globals, and everything else (the compiled module,
 * the shared memory, where its control block is, the kernel names) comes in
 * the first message.
 *
 * Protocol (one control block per worker, in the shared memory; `Int32` words):
 * the host writes the op code, the argument count and the arguments (`f64`
 * slots, exact for every i32, u32 and f32 the kernels take), then increments
 * `SEQ` and notifies; the worker runs the kernel, writes the error length
 * (0 = none, message bytes after the arguments), stores `SEQ` into `DONE` and
 * notifies. `QUIT` != 0 ends the loop.
 *
 * @module
 */

/** Word and byte offsets within a control block. */
export const CONTROL = {
  /** Bytes per worker (a multiple of 64: blocks of different workers share no cache line). */
  bytes: 512,
  /** Int32 word indices. */
  seq: 0,
  done: 1,
  op: 2,
  nargs: 3,
  errLen: 4,
  quit: 5,
  /** Byte offset and count of the f64 argument slots. */
  args: 64,
  maxArgs: 24,
  /** Byte offset and length of the error message. */
  message: 256,
  messageBytes: 256,
  /**
   * Milliseconds of polling `SEQ` (worker) or `DONE` (host) before falling back to
   * `Atomics.wait`: the next kernel of a training step usually comes within microseconds, sooner
   * than a futex wakes a sleeping thread.
   */
  spinMs: 0.5,
} as const;

/** What the host posts to a new worker. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Byte offset of this worker's control block. */
  control: number;
  /** Export names, indexed by op code. */
  names: readonly string[];
  layout: typeof CONTROL;
}

/** Runs inside the worker; see the module comment. Uses globals only. */
function workerMain(): void {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<WorkerInit>) => void) | null;
    postMessage(message: unknown): void;
    close(): void;
  };
  scope.onmessage = (e: MessageEvent<WorkerInit>) => {
    scope.onmessage = null;
    const { module, memory, control, names, layout } = e.data;
    let fns: ((...args: number[]) => void)[];
    try {
      const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
      fns = names.map((n) => exports[n] as (...args: number[]) => void);
    } catch (err) {
      scope.postMessage({ error: String(err) });
      return;
    }
    const words = new Int32Array(memory.buffer, control, 16);
    const args = new Float64Array(memory.buffer, control + layout.args, layout.maxArgs);
    const message = new Uint8Array(memory.buffer, control + layout.message, layout.messageBytes);
    scope.postMessage({ ready: true });
    let seq = 0;
    let spin = false;
    for (;;) {
      if (spin) {
        // Just after a kernel: poll before sleeping (see CONTROL.spinMs); once, not on every
        // timed-out wait of an idle worker.
        spin = false;
        const until = performance.now() + layout.spinMs;
        for (let i = 1; Atomics.load(words, layout.seq) === seq; i++) {
          if ((i & 255) === 0 && performance.now() > until) break;
        }
      }
      // NOTE: the timeout is what lets terminate() end a worker: it cannot interrupt a wait.
      if (
        Atomics.load(words, layout.seq) === seq &&
        Atomics.wait(words, layout.seq, seq, 100) === "timed-out"
      ) continue;
      seq = Atomics.load(words, layout.seq);
      if (words[layout.quit] !== 0) break;
      let errLen = 0;
      try {
        fns[words[layout.op]](...Array.from(args.subarray(0, words[layout.nargs])));
      } catch (err) {
        const bytes = new TextEncoder().encode(String(err)).subarray(0, message.length);
        message.set(bytes);
        errLen = Math.max(bytes.length, 1);
      }
      words[layout.errLen] = errLen;
      Atomics.store(words, layout.done, seq);
      Atomics.notify(words, layout.done);
      spin = true;
    }
    scope.close();
  };
}

/** The worker's source: an ES module that runs {@linkcode workerMain}. */
export function workerSource(): string {
  return `(${workerMain.toString()})();\n`;
}
