import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { Dropout, Dropout2d } from "../src/layers/dropout.ts";
import { bernoulliMaskRef } from "../src/reference/random.ts";

/** 32-bit FNV-1a, as the layer derives its second Philox key word from its name. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

Deno.test("Dropout.forward() applies the counter-based mask of (seed, name, counter)", async () => {
  const rt = await getBackend();
  const shape = [3, 7, 5];
  const n = 105;
  const xa = randomArray(n, 1);
  const x = rt.upload(xa, shape);
  const drop = new Dropout(rt, "classifier.0", 0.3, { seed: 42 });
  drop.counter = 5;
  const y = await drop.forward(x).read();
  const mask = bernoulliMaskRef(n, [42, fnv1a("classifier.0")], 5, 0.3);
  assertClose(y, Array.from(xa, (v, i) => v * mask[i]), { what: "y" });
  assertClose(await drop.mask!.read(), mask, { what: "mask" });
  const y2 = await drop.forward(x).read();
  assert.deepEqual(Array.from(y2), Array.from(y), "same seed and counter give the same mask");
  drop.counter = 6;
  const y3 = await drop.forward(x).read();
  assert.notDeepEqual(Array.from(y3), Array.from(y), "a new counter gives a new mask");
  const other = new Dropout(rt, "classifier.3", 0.3, { seed: 42 });
  other.counter = 5;
  assert.notDeepEqual(
    Array.from(await other.forward(x).read()),
    Array.from(y),
    "layers draw independent masks",
  );
  x.dispose();
  drop.dispose();
  other.dispose();
});

Deno.test("Dropout.backward() and jvp() multiply by the same mask; eval mode is the identity", async () => {
  const rt = await getBackend();
  const n = 4000;
  const x = rt.upload(randomArray(n, 2), [40, 100]);
  const drop = new Dropout(rt, "d", 0.25);
  drop.forward(x);
  const mask = await drop.mask!.read();
  const kept = mask.filter((m) => m !== 0);
  assert.ok(Math.abs(kept.length / n - 0.75) < 0.03, `kept fraction ${kept.length / n}`);
  assert.ok(kept.every((m) => Math.abs(m - 1 / 0.75) < 1e-6));
  const ua = randomArray(n, 3);
  const u = rt.upload(ua, [40, 100]);
  assertClose(await drop.backward(u).read(), Array.from(ua, (v, i) => v * mask[i]), { what: "dx" });
  assertClose(await drop.jvp(u).read(), Array.from(ua, (v, i) => v * mask[i]), { what: "jvp" });
  drop.training = false;
  assert.equal(drop.forward(x), x);
  assert.equal(drop.backward(u), u);
  assert.equal(drop.jvp(u), u);
  assert.equal(drop.mask, null);
  x.dispose();
  u.dispose();
  drop.dispose();
});

Deno.test("Dropout with p = 0 is the identity and with p = 1 gives zeros", async () => {
  const rt = await getBackend();
  const x = rt.upload(randomArray(12, 4), [3, 4]);
  const d0 = new Dropout(rt, "d0", 0);
  assert.equal(d0.forward(x), x);
  const d1 = new Dropout(rt, "d1", 1);
  assert.ok((await d1.forward(x).read()).every((v) => v === 0), "p = 1 drops everything");
  assert.throws(() => new Dropout(rt, "bad", 1.5), /bad \(Dropout p=1.5\): p must be in \[0, 1\]/);
  x.dispose();
  d0.dispose();
  d1.dispose();
});

Deno.test("Dropout2d zeroes whole channels with one mask value per (batch, channel)", async () => {
  const rt = await getBackend();
  const shape = [3, 5, 7, 9];
  const hw = 63;
  const xa = randomArray(3 * 5 * hw, 5);
  const x = rt.upload(xa, shape);
  const drop = new Dropout2d(rt, "features.3", 0.5, { seed: 7 });
  drop.counter = 11;
  const y = await drop.forward(x).read();
  const mask = bernoulliMaskRef(15, [7, fnv1a("features.3")], 11, 0.5);
  assertClose(y, Array.from(xa, (v, i) => v * mask[Math.floor(i / hw)]), { what: "y" });
  const ua = randomArray(xa.length, 6);
  const u = rt.upload(ua, shape);
  assertClose(
    await drop.backward(u).read(),
    Array.from(ua, (v, i) => v * mask[Math.floor(i / hw)]),
    { what: "dx" },
  );
  const flat = rt.zeros([3, 5]);
  assert.throws(
    () => drop.forward(flat),
    /features.3 \(Dropout2d p=0.5\): expected input \[B,C,H,W\], got \[3,5\]/,
  );
  for (const t of [x, u, flat]) t.dispose();
  drop.dispose();
});
