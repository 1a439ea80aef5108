/**
 * Tests of the runtime itself (src/gpu): buffer pool, placeholders, errors that
 * must name what went wrong, views, round trips, the one-submit-per-step
 * recording model and the workgroup grid split. The kernels here are test fixtures, inline on
 * purpose: they exercise the runtime, not a library op.
 */
import { assert, getRuntime } from "./_util.ts";
import type { Kernel } from "../src/kernel.ts";
import { Runtime } from "../src/gpu/runtime.ts";
import { PLACEHOLDER_BYTES } from "../src/gpu/pool.ts";

/** y[i] = alpha * x[i] + i, one thread per element, grid split over x and y. */
const SCALE: Kernel = {
  name: "test_scale",
  code: /* wgsl */ `
struct Params { n: u32, alpha: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
const WG: u32 = 64u;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(num_workgroups) nwg: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (i >= p.n) { return; }
  y[i] = p.alpha * x[i] + f32(i);
}`,
};

/** out[i] = i + 1 for i < n, with 4 threads per workgroup (so many workgroups). */
const IOTA: Kernel = {
  name: "test_iota",
  code: /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> p: Params;
@compute @workgroup_size(4)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(num_workgroups) nwg: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * 4u + lid.x;
  if (i >= p.n) { return; }
  out[i] = i + 1u;
}`,
};

Deno.test("BufferPool reuses buffers over 1000 allocate/dispatch/dispose steps", async () => {
  const rt = await getRuntime();
  const n = 1000;
  const x = rt.upload(new Float32Array(n).fill(1), [n], "f32", "x");
  let after5 = 0;
  for (let step = 0; step < 1000; step++) {
    const y = rt.empty([n], "f32", "y");
    const z = rt.empty([n], "f32", "z");
    rt.dispatch(SCALE, { bindings: [x, y], params: { n, alpha: 2 }, workgroups: rt.grid(n, 64) });
    rt.dispatch(SCALE, { bindings: [y, z], params: { n, alpha: 0.5 }, workgroups: rt.grid(n, 64) });
    rt.submit();
    y.dispose();
    z.dispose();
    if (step === 4) after5 = rt.memory().allocatedBytes;
  }
  await rt.sync();
  const end = rt.memory();
  assert.equal(
    end.allocatedBytes,
    after5,
    `pool grew from ${after5} to ${end.allocatedBytes} bytes`,
  );
  assert.ok(end.reused >= 1990, `only ${end.reused} allocations were reused`);
  x.dispose();
});

Deno.test("Runtime.placeholder() is a buffer per index, freed by destroy()", async () => {
  // A runtime of its own: destroy() ends it.
  const rt = await Runtime.create();
  const before = rt.memory();
  assert.equal(before.placeholderBytes, 0);
  const p = [0, 1, 2, 3].map((i) => rt.placeholder(i));
  assert.equal(new Set(p.map((t) => t.buffer)).size, 4, "distinct indices, distinct buffers");
  p.forEach((t, i) => {
    assert.equal(rt.placeholder(i), t, `placeholder(${i}) twice`);
    assert.equal(t.buffer.size, PLACEHOLDER_BYTES);
  });
  const held = rt.memory();
  assert.equal(held.placeholderBytes, 4 * PLACEHOLDER_BYTES);
  assert.deepEqual(
    [held.allocatedBytes, held.inUseBytes, held.created],
    [before.allocatedBytes, before.inUseBytes, before.created],
    "placeholders do not come from the size classes",
  );
  // Two placeholders fill a read and a writable binding of one dispatch; one twice cannot.
  rt.dispatch(SCALE, { bindings: [p[0], p[1]], params: { n: 0, alpha: 1 }, workgroups: [1] });
  await rt.sync();
  assert.throws(
    () => rt.dispatch(SCALE, { bindings: [p[2], p[2]], params: { n: 0 }, workgroups: [1] }),
    /aliasing a writable binding/,
  );
  assert.throws(() => p[0].dispose(), /belongs to the runtime/);
  assert.equal(p[0].disposed, false);
  assert.throws(() => rt.placeholder(-1), /non-negative integer, got -1/);
  const y = rt.zeros([8], "f32", "y");
  y.dispose();
  assert.ok(rt.memory().allocatedBytes > 0);
  rt.destroy();
  const after = rt.memory();
  assert.equal(after.placeholderBytes, 0, "destroy() frees the placeholders");
  assert.equal(after.allocatedBytes, 0, "destroy() frees the free buffers");
});

Deno.test("Runtime.empty() with an impossible size names the shape and the limit", async () => {
  const rt = await getRuntime();
  assert.throws(
    () => rt.empty([1 << 20, 1 << 20], "f32", "huge"),
    (e: Error) => e.message.includes("[1048576,1048576]") && /at most \d+ bytes/.test(e.message),
  );
  assert.throws(() => rt.empty([2, -1]), /Invalid shape \[2,-1\]/);
  assert.throws(() => rt.empty([2.5]), /Invalid shape \[2.5\]/);
});

Deno.test("Tensor.dispose() makes later use throw naming the tensor", async () => {
  const rt = await getRuntime();
  const x = rt.upload([1, 2, 3], [3], "f32", "weights");
  const y = rt.empty([3], "f32", "out");
  x.dispose();
  x.dispose(); // idempotent
  assert.equal(x.disposed, true);
  const named = /'weights' f32\[3\] was used after dispose\(\)/;
  assert.throws(
    () => rt.dispatch(SCALE, { bindings: [x, y], params: { n: 3, alpha: 1 }, workgroups: [1] }),
    named,
  );
  await assert.rejects(() => x.read(), named);
  assert.throws(() => rt.write(x, new Float32Array(3)), named);
  assert.throws(() => rt.copy(x, y), named);
  y.dispose();
});

Deno.test("Runtime.compile() rethrows a WGSL error naming the kernel", async () => {
  const rt = await getRuntime();
  const broken: Kernel = {
    name: "deliberately_broken",
    code: `@compute @workgroup_size(1) fn main() { let a: f32 = undefined_symbol; }`,
  };
  await assert.rejects(() => rt.compile(broken), (e: Error) => {
    assert.match(e.message, /Kernel 'deliberately_broken'.*failed to compile/);
    assert.match(e.message, /undefined_symbol|unresolved/);
    return true;
  });
  // The runtime stays usable afterwards.
  await rt.compile(SCALE);
  const t = rt.upload([5], [1]);
  assert.deepEqual([...await t.read()], [5]);
  t.dispose();
});

Deno.test("Runtime.dispatch() rejects wrong bindings, missing and unknown params", async () => {
  const rt = await getRuntime();
  const x = rt.zeros([4]);
  const y = rt.zeros([4]);
  const p = { n: 4, alpha: 1 };
  assert.throws(
    () => rt.dispatch(SCALE, { bindings: [x], params: p, workgroups: [1] }),
    /Kernel 'test_scale' declares 2 storage bindings, got 1/,
  );
  assert.throws(
    () => rt.dispatch(SCALE, { bindings: [x, y, x], params: p, workgroups: [1] }),
    /declares 2 storage bindings, got 3/,
  );
  assert.throws(
    () => rt.dispatch(SCALE, { bindings: [x, y], params: { n: 4 }, workgroups: [1] }),
    /Kernel 'test_scale': parameter 'alpha' missing/,
  );
  assert.throws(
    () => rt.dispatch(SCALE, { bindings: [x, y], params: { ...p, beta: 2 }, workgroups: [1] }),
    /unknown parameter\(s\) beta/,
  );
  assert.throws(
    () => rt.dispatch(SCALE, { bindings: [x, y], params: { n: -1, alpha: 1 }, workgroups: [1] }),
    /parameter 'n'=-1 is not a u32/,
  );
  assert.throws(
    () => rt.dispatch(SCALE, { bindings: [x, y], params: p, workgroups: [1e9] }),
    /Kernel 'test_scale': workgroup counts \[1000000000,1,1\] exceed/,
  );
  await rt.sync(); // nothing bad was recorded
  x.dispose();
  y.dispose();
});

Deno.test("Tensor.reshape() is a view sharing the buffer", async () => {
  const rt = await getRuntime();
  const a = rt.upload([1, 2, 3, 4, 5, 6], [2, 3], "f32", "a");
  const v = a.reshape([3, 2]);
  assert.deepEqual(v.shape, [3, 2]);
  assert.equal(v.buffer, a.buffer);
  assert.deepEqual([...await v.read()], [1, 2, 3, 4, 5, 6]);
  rt.write(v, new Float32Array([6, 5, 4, 3, 2, 1]));
  assert.deepEqual([...await a.read()], [6, 5, 4, 3, 2, 1]);
  assert.throws(() => a.reshape([4, 2]), /Cannot reshape tensor #\d+ 'a' f32\[2,3\] to \[4,2\]/);
  const scalar = rt.upload([7], [1]).reshape([]);
  assert.equal(scalar.size, 1);
  v.dispose(); // a view's dispose is a no-op
  assert.equal(a.disposed, false);
  assert.deepEqual([...await a.read()], [6, 5, 4, 3, 2, 1]);
  a.dispose();
  assert.equal(v.disposed, true);
  assert.throws(() => v.buffer, /used after dispose/);
});

Deno.test("Runtime.upload() and read() round-trip f32, u32 and i32 exactly", async () => {
  const rt = await getRuntime();
  const f = new Float32Array([0, -0, 1.5, -3.25e-38, 3.4e38, Infinity, -Infinity, NaN, 1e-45]);
  const u = new Uint32Array([0, 1, 0x7fffffff, 0x80000000, 0xffffffff]);
  const i = new Int32Array([0, -1, 2147483647, -2147483648, 12345]);
  for (const data of [f, u, i]) {
    const t = rt.upload(data, [data.length]);
    const back = await t.read();
    assert.equal(back.constructor, data.constructor);
    assert.equal(
      t.dtype,
      data instanceof Float32Array ? "f32" : data instanceof Uint32Array ? "u32" : "i32",
    );
    assert.ok(Object.is(back[1], data[1]), "sign of -0 survives");
    assert.deepEqual(
      new Uint8Array(back.buffer, back.byteOffset, back.byteLength),
      new Uint8Array(data.buffer),
    );
    t.dispose();
  }
  const fromArray = rt.upload([-1, 2, 3], [3], "i32");
  assert.deepEqual([...await fromArray.read()], [-1, 2, 3]);
  assert.throws(() => rt.upload([1, 2, 3], [2, 2]), /3 values do not fill shape \[2,2\]/);
  const empty = rt.upload(new Float32Array(0), [0, 5]);
  assert.equal((await empty.read()).length, 0);
  fromArray.dispose();
  empty.dispose();
});

Deno.test("Runtime.submit() makes one queue submission per step", async () => {
  const rt = await getRuntime();
  await rt.sync();
  const n = 100;
  const x = rt.upload(new Float32Array(n).fill(1), [n]);
  const y = rt.empty([n]);
  const z = rt.empty([n]);
  const submits0 = rt.submits, dispatches0 = rt.dispatches;
  for (let step = 0; step < 3; step++) {
    rt.dispatch(SCALE, { bindings: [x, y], params: { n, alpha: 2 }, workgroups: rt.grid(n, 64) });
    rt.copy(y, z);
    rt.dispatch(SCALE, { bindings: [z, y], params: { n, alpha: 3 }, workgroups: rt.grid(n, 64) });
    rt.fill0(z);
    rt.submit();
  }
  rt.submit(); // nothing recorded: no submission
  assert.equal(rt.submits - submits0, 3);
  assert.equal(rt.dispatches - dispatches0, 6);
  const got = await y.read(); // read submits its own copy: one more
  assert.equal(rt.submits - submits0, 4);
  for (let i = 0; i < n; i++) assert.equal(got[i], 3 * (2 + i) + i);
  for (const t of [x, y, z]) t.dispose();
});

Deno.test("Runtime.create({ profile: true }) counts and times dispatches per kernel", async () => {
  const rt = await Runtime.create({ profile: true });
  try {
    const n = 1000;
    const x = rt.upload(new Float32Array(n).fill(1), [n]);
    const y = rt.empty([n]);
    const z = rt.empty([n]);
    for (let step = 0; step < 3; step++) {
      rt.dispatch(SCALE, { bindings: [x, y], params: { n, alpha: 2 }, workgroups: rt.grid(n, 64) });
      rt.copy(y, z);
      rt.dispatch(SCALE, { bindings: [z, y], params: { n, alpha: 3 }, workgroups: rt.grid(n, 64) });
      rt.dispatch(IOTA, { bindings: [z], params: { n }, workgroups: rt.grid(n, 4) });
      rt.fill0(z);
      rt.submit();
    }
    await rt.sync();
    const rows = await rt.profiler!.report();
    const row = (k: string) => rows.find((r) => r.kernel === k)!;
    assert.equal(row("test_scale").count, 6);
    assert.equal(row("test_scale").workgroups, 6 * 16);
    assert.equal(row("test_scale").bytes, 6 * 2 * n * 4);
    assert.equal(row("test_iota").count, 3);
    assert.equal(row("test_iota").workgroups, 3 * 250);
    assert.equal(row("copyBufferToBuffer").count, 3);
    assert.equal(row("clearBuffer").bytes, 3 * n * 4);
    // The results are those of an unprofiled runtime.
    const got = await y.read();
    for (let i = 0; i < n; i++) assert.equal(got[i], 3 * (2 + i) + i);
    if (rt.profiler!.timed) {
      assert.ok(row("test_scale").gpuMs! > 0, `gpuMs ${row("test_scale").gpuMs}`);
      assert.equal(row("clearBuffer").gpuMs, null);
    } else assert.equal(row("test_scale").gpuMs, null);
    rt.profiler!.reset();
    assert.deepEqual(await rt.profiler!.report(), []);
    for (const t of [x, y, z]) t.dispose();
  } finally {
    rt.destroy();
  }
  assert.equal((await getRuntime()).profiler, null);
});

Deno.test("Runtime.grid() splits more than 65535 workgroups over y and covers every item", async () => {
  const rt = await getRuntime();
  const maxWg = rt.device.limits.maxComputeWorkgroupsPerDimension;
  assert.deepEqual(rt.grid(10, 4), [3, 1]);
  assert.deepEqual(rt.grid(0, 4), [0, 1]);
  for (const n of [maxWg * 4, maxWg * 4 + 1, maxWg * 4 * 3 + 7, 1e9]) {
    const [gx, gy] = rt.grid(n, 4);
    assert.ok(gx <= maxWg && gy <= maxWg, `grid(${n}) = [${gx},${gy}]`);
    assert.ok(gx * gy * 4 >= n, `grid(${n}) = [${gx},${gy}] covers too little`);
    assert.ok((gx * (gy - 1)) * 4 < n, `grid(${n}) = [${gx},${gy}] has a wasted row`);
  }
  const n = maxWg * 4 + 13;
  const [gx, gy] = rt.grid(n, 4);
  assert.ok(gy >= 2);
  const out = rt.zeros([n + 8], "u32", "iota");
  rt.dispatch(IOTA, { bindings: [out], params: { n }, workgroups: [gx, gy] });
  const got = await out.read();
  for (let i = 0; i < n; i++) {
    if (got[i] !== i + 1) assert.fail(`iota[${i}] = ${got[i]}, want ${i + 1}`);
  }
  for (let i = n; i < n + 8; i++) assert.equal(got[i], 0, `iota[${i}] written past n`);
  out.dispose();
});
