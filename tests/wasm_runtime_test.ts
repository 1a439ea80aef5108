/**
 * The WebAssembly runtime (src/wasm/runtime.ts, heap.ts, module.ts): its
 * allocator, the errors for exhausted memory and missing SIMD, tensors, and
 * threads both ways (workers on a shared memory; one thread, said once on
 * stderr, where SharedArrayBuffer is missing).
 */
import { assert, assertClose, randomArray } from "./_util.ts";
import { HEAP_ALIGN, WasmHeap } from "../src/wasm/heap.ts";
import {
  relaxedSimdSupported,
  requireSimd,
  simdSupported,
  threadsUnavailableReason,
} from "../src/wasm/module.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import { fileURLToPath } from "node:url";

Deno.test("WasmHeap reuses freed blocks, coalesces neighbours and shrinks at the top", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 4 });
  const heap = new WasmHeap(memory, 100, 4 * 65536);
  const a = heap.alloc(10, "a"), b = heap.alloc(100, "b"), c = heap.alloc(64, "c");
  assert.equal(a, 128); // the base rounded up to HEAP_ALIGN
  for (const p of [a, b, c]) assert.equal(p % HEAP_ALIGN, 0);
  assert.deepEqual([b - a, c - b], [64, 128]);
  heap.free(a);
  heap.free(b); // merges with a's block
  assert.equal(heap.alloc(150, "d"), a); // fits in the merged 192 bytes
  assert.equal(heap.stats().blocks, 2);
  assert.throws(() => heap.free(a + 64), /is not a live block/);
  heap.free(c);
  heap.free(a);
  assert.deepEqual(heap.stats().inUseBytes, 0);
  assert.equal(heap.alloc(1, "e"), 128); // everything was returned: the heap starts over
  const big = heap.alloc(3 * 65536, "big");
  assert.equal(memory.buffer.byteLength, 4 * 65536); // grown on demand
  assert.throws(
    () => heap.alloc(65536, "tensor 'x' f32[16384]"),
    /Out of WebAssembly memory: tensor 'x' f32\[16384\] needs 65,536 bytes \(0.1 MiB\)/,
  );
  heap.free(big);
});

Deno.test("WasmRuntime.empty() past the memory limit names the tensor and its size", async () => {
  const rt = await WasmRuntime.create({ threads: 1, maxMemoryBytes: 4 << 20, warn: false });
  try {
    // 2.1 MiB of gemm scratch and 1.2 MiB here leave less than 1 MiB of the 4 MiB.
    const keep = rt.zeros([300_000], "f32", "activations");
    assert.throws(
      () => rt.empty([256, 1024], "f32", "fc1.weight"),
      (e: Error) =>
        e.message.startsWith(
          "Out of WebAssembly memory: tensor 'fc1.weight' f32[256,1024] needs 1,048,576 bytes " +
            "(1.0 MiB), which would take the memory to ",
        ) && /past its limit of 4,194,304 bytes \(4.0 MiB\)/.test(e.message) &&
        /dispose tensors that are no longer needed, or .* larger maxMemoryBytes/.test(e.message),
    );
    keep.dispose();
    rt.empty([256, 1024], "f32", "fc1.weight").dispose(); // fits once the other is freed
  } finally {
    rt.destroy();
  }
  await assert.rejects(
    () => WasmRuntime.create({ maxMemoryBytes: 2 ** 33 }),
    /maxMemoryBytes must be between 64 KiB and 4 GiB \(wasm32\), got 8589934592/,
  );
  await assert.rejects(() => WasmRuntime.create({ threads: 0 }), /threads must be a positive/);
});

Deno.test("WasmRuntime without 128-bit SIMD is a clear error", async () => {
  assert.ok(simdSupported(), "Deno's V8 has Wasm SIMD");
  const validate = WebAssembly.validate;
  WebAssembly.validate = () => false;
  try {
    assert.throws(
      requireSimd,
      /needs WebAssembly 128-bit SIMD, which this engine does not support/,
    );
    await assert.rejects(() => WasmRuntime.create({ threads: 1 }), /128-bit SIMD/);
  } finally {
    WebAssembly.validate = validate;
  }
});

Deno.test("WasmRuntime takes the relaxed-SIMD kernels where the engine has them, else the plain ones", async () => {
  assert.ok(relaxedSimdSupported(), "Deno's V8 has Wasm relaxed SIMD");
  const fused = await WasmRuntime.create({ threads: 1, warn: false });
  assert.equal(fused.relaxedSimd, true);
  fused.destroy();
  const plain = await WasmRuntime.create({ threads: 1, warn: false, relaxedSimd: false });
  assert.equal(plain.relaxedSimd, false);
  plain.destroy();
  // An engine that validates SIMD but not relaxed SIMD (Safari; Firefox without its flag).
  const validate = WebAssembly.validate;
  WebAssembly.validate = (bytes) => {
    const b = new Uint8Array(bytes as ArrayBuffer);
    const relaxed = b.some((v, i) => v === 0xfd && b[i + 1] === 0x85 && b[i + 2] === 0x02);
    return !relaxed && validate(bytes);
  };
  try {
    assert.equal(relaxedSimdSupported(), false);
    const rt = await WasmRuntime.create({ threads: 1, warn: false });
    assert.equal(rt.relaxedSimd, false);
    rt.destroy();
    await assert.rejects(
      () => WasmRuntime.create({ threads: 1, warn: false, relaxedSimd: true }),
      /relaxed SIMD was asked for \(relaxedSimd: true\), but this engine does not validate it/,
    );
  } finally {
    WebAssembly.validate = validate;
  }
});

Deno.test("WasmTensor: upload, write, read, reshape, dispose, and use after destroy", async () => {
  const rt = await WasmRuntime.create({ threads: 1, warn: false });
  const t = rt.upload(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3], "f32", "x");
  assert.equal(t.describe(), `tensor #${t.id} 'x' f32[2,3]`);
  assert.deepEqual(Array.from(await t.read()), [1, 2, 3, 4, 5, 6]);
  rt.write(t, new Float32Array([6, 5, 4, 3, 2, 1]));
  const r = t.reshape([3, 2]);
  assert.deepEqual(Array.from(r.toArray()), [6, 5, 4, 3, 2, 1]);
  assert.throws(() => t.reshape([4]), /Cannot reshape .* to \[4\]: sizes differ/);
  assert.throws(
    () => rt.write(t, new Float32Array(5)),
    /write: 5 values for tensor #\d+ 'x' f32\[2,3\]/,
  );
  assert.throws(() => rt.upload(new Float32Array(5), [2, 3]), /5 values do not fill shape/);
  assert.equal(rt.upload(new Int32Array([1, -2]), [2]).dtype, "i32");
  assert.equal(rt.upload([1, 2], [2], "u32").dtype, "u32");
  // copy (overlapping ranges too), fill0, sync and memory() as on the WebGPU runtime
  const u = rt.upload([1, 2, 3, 4, 5], [5]);
  rt.copy(u, u, 3, 0, 2);
  assert.deepEqual(Array.from(u.toArray()), [1, 2, 1, 2, 3]);
  assert.throws(() => rt.copy(u, u, 4, 0, 2), /copy: 4 elements do not fit/);
  rt.fill0(u);
  assert.deepEqual(Array.from(u.toArray()), [0, 0, 0, 0, 0]);
  await rt.sync();
  const before = rt.memory();
  u.dispose();
  assert.equal(rt.memory().blocks, before.blocks - 1);
  r.dispose(); // a view: nothing happens
  assert.equal(t.disposed, false);
  t.dispose();
  t.dispose(); // idempotent
  assert.ok(r.disposed);
  assert.throws(() => t.toArray(), /tensor #\d+ 'x' f32\[2,3\] was used after dispose\(\)/);
  rt.destroy();
  assert.throws(() => rt.zeros([1]), /WasmRuntime was used after destroy\(\)/);
});

Deno.test("WasmRuntime with threads runs kernels on workers over a shared memory", async () => {
  assert.equal(threadsUnavailableReason(), null);
  const rt = await WasmRuntime.create({ threads: 2 });
  try {
    assert.equal(rt.threads, 2);
    assert.equal(rt.threadsNote, null);
    assert.ok(rt.wasmMemory.buffer instanceof SharedArrayBuffer);
    assert.equal(rt.description, "WebAssembly SIMD, 2 threads");
    // sumRows on the worker alone (part 1): out[j] = sum_i x[i, j]
    const x = rt.upload(randomArray(5 * 7, 3), [5, 7]);
    const out = rt.zeros([7]);
    const dummy = rt.zeros([1]);
    rt.parallel("sumRows", [[0, 0, dummy.ptr, 0, 1, 0, dummy.ptr], [
      5,
      7,
      x.ptr,
      7,
      1,
      0,
      out.ptr,
    ]]);
    const xs = x.toArray();
    const want = Array.from(
      { length: 7 },
      (_, j) => [0, 1, 2, 3, 4].reduce((s, i) => s + xs[i * 7 + j], 0),
    );
    assertClose(out.toArray(), want, { what: "sumRows computed by the worker" });
    assert.throws(() => rt.parallel("sgemm", [[], [], []]), /3 parts for 2 threads/);
    // A trap on the worker (a pointer past the memory) is an error naming it, and the pool
    // keeps working afterwards.
    const past = rt.memory().memoryBytes;
    assert.throws(
      () =>
        rt.parallel("sumRows", [[0, 0, dummy.ptr, 0, 1, 0, dummy.ptr], [
          5,
          7,
          past,
          7,
          1,
          0,
          past,
        ]]),
      /WebAssembly kernel sumRows failed on worker 1: RuntimeError: memory access out of bounds/,
    );
    rt.fill0(out);
    rt.parallel("sumRows", [[0, 0, dummy.ptr, 0, 1, 0, dummy.ptr], [
      5,
      7,
      x.ptr,
      7,
      1,
      0,
      out.ptr,
    ]]);
    assertClose(out.toArray(), want, { what: "sumRows after a failure" });
  } finally {
    rt.destroy();
    rt.destroy();
  }
});

const NO_SAB_SCRIPT = (root: string) => `
delete globalThis.SharedArrayBuffer;
const { WasmRuntime } = await import("${root}src/wasm/runtime.ts");
const { matmul } = await import("${root}src/wasm/matmul.ts");
const a = await WasmRuntime.create({ threads: 2 });
const b = await WasmRuntime.create({ threads: 4 });
const x = b.upload(new Float32Array([1, 2, 3, 4]), [2, 2]);
const y = matmul(b, x, x);
console.log(JSON.stringify({ threads: [a.threads, b.threads], y: Array.from(y.toArray()),
  note: b.threadsNote, description: a.description }));
a.destroy();
b.destroy();
`;

Deno.test("WasmRuntime without SharedArrayBuffer runs on one thread and says so once on stderr", async () => {
  const root = new URL("../", import.meta.url).href;
  const dir = await Deno.makeTempDir({ prefix: "regula_wasm_" });
  try {
    const file = `${dir}/no_sab.ts`;
    await Deno.writeTextFile(file, NO_SAB_SCRIPT(root));
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", "--no-lock", file],
      cwd: fileURLToPath(new URL("../", import.meta.url)),
      env: { NO_COLOR: "1" },
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err);
    const got = JSON.parse(new TextDecoder().decode(stdout));
    assert.deepEqual(got.threads, [1, 1]);
    assert.deepEqual(got.y, [7, 10, 15, 22]);
    assert.match(got.note, /runs on 1 thread instead of 4: SharedArrayBuffer is unavailable/);
    assert.match(got.description, /^WebAssembly SIMD, 1 thread; regula's CPU backend runs on 1/);
    const warnings = err.split("\n").filter((l) => l.includes("regula's CPU backend"));
    assert.deepEqual(warnings, [
      "warning: regula's CPU backend runs on 1 thread instead of 2: SharedArrayBuffer is " +
      "unavailable (a page must be cross-origin isolated: serve it with " +
      "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
