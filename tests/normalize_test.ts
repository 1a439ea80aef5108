import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { assertDotProduct } from "./_layer_check.ts";
import { Normalize } from "../src/layers/normalize.ts";
import { Flatten } from "../src/layers/flatten.ts";
import { normalizeRef } from "../src/reference/layers.ts";

const MEAN = [0.4914, 0.4822, 0.4465];
const STD = [0.247, 0.243, 0.261];

Deno.test("Normalize forward/backward/jvp match (x - mean[c]) / std[c]", async () => {
  const rt = await getBackend();
  const shape = [3, 3, 5, 7];
  const n = 315;
  const xa = randomArray(n, 1, 0, 1);
  const norm = new Normalize(rt, "normalize", MEAN, STD);
  const x = rt.upload(xa, shape);
  assertClose(await norm.forward(x).read(), normalizeRef(xa, 3, 35, MEAN, STD), { what: "y" });
  const u = randomArray(n, 2), v = randomArray(n, 3);
  const dy = rt.upload(u, shape), tx = rt.upload(v, shape);
  const dx = await norm.backward(dy).read();
  assertDotProduct("dx", (xx) => normalizeRef(xx, 3, 35, MEAN, STD), xa, v, u, dx);
  assertClose(await norm.jvp(tx).read(), Array.from(v, (t, i) => t / STD[Math.floor(i / 35) % 3]), {
    what: "jvp",
  });
  assert.deepEqual(norm.params(), []);
  for (const t of [x, dy, tx]) t.dispose();
  norm.dispose();
});

Deno.test("Normalize rejects wrong channel counts, bad std and empty batches", async () => {
  const rt = await getBackend();
  const norm = new Normalize(rt, "norm", [0.5], [0.5]);
  const x = rt.zeros([2, 3, 4, 4]);
  assert.throws(() => norm.forward(x), {
    message: "norm (Normalize 1): expected input [B,1,...], got [2,3,4,4]",
  });
  const empty = rt.zeros([0, 1, 4, 4]);
  assert.throws(() => norm.forward(empty), /got an empty batch/);
  assert.throws(() => new Normalize(rt, "n", [0, 0], [1, 0]), /std must be positive/);
  assert.throws(() => new Normalize(rt, "n", [0, 0], [1]), /one value per channel/);
  x.dispose();
  empty.dispose();
  norm.dispose();
});

Deno.test("Flatten returns views: (B, C, H, W) -> (B, C·H·W) and back", async () => {
  const rt = await getBackend();
  const flat = new Flatten("flatten");
  const xa = randomArray(2 * 3 * 4 * 5, 1);
  const x = rt.upload(xa, [2, 3, 4, 5]);
  const y = flat.forward(x);
  assert.deepEqual(y.shape, [2, 60]);
  assert.equal(y.storage, x.storage);
  assert.deepEqual(Array.from(await y.read()), Array.from(xa));
  const dy = rt.zeros([2, 60]);
  assert.deepEqual(flat.backward(dy).shape, [2, 3, 4, 5]);
  assert.deepEqual(flat.jvp(x).shape, [2, 60]);
  const bad = rt.zeros([2, 59]);
  assert.throws(
    () => flat.backward(bad),
    /flatten \(Flatten\): gradient shape \[2,59\] does not match .* \[2,60\]/,
  );
  const empty = rt.zeros([0, 3]);
  assert.throws(() => flat.forward(empty), /got an empty batch/);
  for (const t of [x, dy, bad, empty]) t.dispose();
});
