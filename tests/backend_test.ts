/**
 * The backend interface: `Runtime.create({ backend })`, both runtimes' shared tensor API, and the
 * errors for a tensor handed to the other backend.
 */
import { assert, getRuntime, getWasmRuntime } from "./_util.ts";
import { Runtime } from "../src/gpu/runtime.ts";
import type { Backend } from "../src/backend.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import { binary } from "../src/ops/elementwise.ts";

Deno.test("Runtime.create() picks the backend it is asked for", async () => {
  const wasm = await Runtime.create({ backend: "wasm", threads: 1, warn: false });
  try {
    assert.ok(wasm instanceof WasmRuntime);
    assert.equal(wasm.kind, "wasm");
    assert.equal(wasm.isCpuAdapter, true);
    assert.match(wasm.description, /^WebAssembly SIMD, 1 thread/);
  } finally {
    wasm.destroy();
  }
  // This machine has only a software adapter, so "auto" prefers the Wasm backend.
  const gpu = await getRuntime();
  const auto = await Runtime.create({ backend: "auto", threads: 1, warn: false });
  try {
    assert.equal(auto.kind, gpu.isCpuAdapter ? "wasm" : "webgpu");
  } finally {
    auto.destroy();
  }
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => Runtime.create({ backend: "cuda" as any }),
    /Unknown backend 'cuda': use "auto", "webgpu" or "wasm"/,
  );
});

Deno.test("Backend: the same tensor API on both runtimes", async () => {
  const runtimes: Backend[] = [await getRuntime(), await getWasmRuntime()];
  for (const rt of runtimes) {
    const a = rt.upload([1, 2, 3, 4, 5], [5], "f32", "a");
    const b = rt.zeros([5]);
    rt.copy(a, b, 3, 1, 2);
    assert.deepEqual(Array.from(await b.read()), [0, 0, 2, 3, 4], rt.kind);
    rt.write(b, new Float32Array([9, 8, 7, 6, 5]));
    rt.fill0(a);
    assert.deepEqual(Array.from(await rt.read(a)), [0, 0, 0, 0, 0], rt.kind);
    const v = b.reshape([5, 1]);
    assert.equal(v.storage, b.storage, `${rt.kind}: a reshape aliases its original`);
    assert.notEqual(a.storage, b.storage);
    assert.ok(b.capacity >= b.byteLength);
    assert.notEqual(rt.placeholder(0).storage, rt.placeholder(1).storage);
    assert.equal(rt.placeholder(0), rt.placeholder(0));
    assert.throws(() => rt.placeholder(0).dispose(), /belongs to the runtime/);
    assert.deepEqual(rt.grid(1000, 256), [4, 1]);
    assert.deepEqual(rt.grid(70000 * 64, 64), [35000, 2]);
    a.dispose();
    assert.throws(() => rt.fill0(a), /was used after dispose\(\)/);
    b.dispose();
    assert.ok(rt.memory().inUseBytes >= 0);
    await rt.sync();
  }
});

Deno.test("Backend: a tensor of one backend handed to the other is an error naming both", async () => {
  const gpu = await getRuntime();
  const wasm = await getWasmRuntime();
  const g = gpu.upload([1, 2], [2], "f32", "g");
  const w = wasm.upload([1, 2], [2], "f32", "w");
  assert.throws(
    () => binary(wasm, "add", w, g),
    /tensor #\d+ 'g' f32\[2\] belongs to the webgpu backend, not this one/,
  );
  assert.throws(
    () => gpu.copy(w, g),
    /tensor #\d+ 'w' f32\[2\] belongs to the wasm backend, not this one/,
  );
  g.dispose();
  w.dispose();
});
