/**
 * Checkpoints: round trip (identical outputs after loading into a fresh model), metadata, the
 * BatchNorm counter as an I64 scalar, load errors naming every mismatch, corrupt files; and the
 * atomic, no-overwrite writes of cli/fs.ts.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import { tinyMlp } from "./_train_util.ts";
import {
  checkStateDict,
  decodeCheckpoint,
  encodeCheckpoint,
  LIBRARY_VERSION,
  loadStateDict,
} from "../src/io/checkpoint.ts";
import { encodeSafetensors } from "../src/io/safetensors.ts";
import { BatchNorm } from "../src/layers/batchnorm.ts";
import { Sequential } from "../src/layers/sequential.ts";
import { FileExistsError, writeFileAtomic } from "../cli/fs.ts";

Deno.test("encodeCheckpoint() round trip gives identical outputs and metadata", async () => {
  const rt = await getBackend();
  const a = tinyMlp(rt, 2, 8, 3, 1), b = tinyMlp(rt, 2, 8, 3, 2);
  a.eval();
  b.eval();
  const x = rt.upload(randomArray(10, 5), [5, 2]);
  const ya = await a.forward(x).read();
  assert.notDeepEqual(await b.forward(x).read(), ya);
  const history = [{ epoch: 1, trainLoss: 0.5, valLoss: NaN }];
  const bytes = await encodeCheckpoint(a, {
    model: { kind: "mlp", inputs: 2, hidden: [8], classes: 3 },
    history,
    seed: 7,
  });
  const ck = decodeCheckpoint(bytes);
  assert.deepEqual(Object.keys(ck.tensors).sort(), [
    "fc1.bias",
    "fc1.weight",
    "fc2.bias",
    "fc2.weight",
  ]);
  assert.deepEqual(ck.tensors["fc1.weight"].shape, [8, 2]);
  assert.equal(ck.metadata.library, `regula ${LIBRARY_VERSION}`);
  assert.deepEqual(ck.metadata.model, { kind: "mlp", inputs: 2, hidden: [8], classes: 3 });
  assert.equal(ck.metadata.seed, 7);
  assert.deepEqual(ck.metadata.history, [{ epoch: 1, trainLoss: 0.5, valLoss: "NaN" }]);
  loadStateDict(b, ck.tensors);
  assert.deepEqual(await b.forward(x).read(), ya);
  x.dispose();
  a.dispose();
  b.dispose();
});

Deno.test("encodeCheckpoint() writes BatchNorm's num_batches_tracked as an I64 scalar", async () => {
  const rt = await getBackend();
  const bn = new BatchNorm(rt, "bn1", 3, { dims: 1 });
  const m = new Sequential(rt, "", [bn]);
  const ck = decodeCheckpoint(await encodeCheckpoint(m));
  const t = ck.tensors["bn1.num_batches_tracked"];
  assert.equal(t.dtype, "I64");
  assert.deepEqual(t.shape, []);
  const tensors = {
    ...ck.tensors,
    "bn1.num_batches_tracked": { ...t, data: new BigInt64Array([42n]) },
  };
  loadStateDict(m, tensors);
  assert.deepEqual(Array.from(await bn.params()[4].value.read()), [42]);
  m.dispose();
});

Deno.test("loadStateDict() names wrong shapes, dtypes, missing and extra tensors", async () => {
  const rt = await getBackend();
  const m = tinyMlp(rt, 2, 8, 3);
  const good = decodeCheckpoint(await encodeCheckpoint(m)).tensors;
  assert.deepEqual(checkStateDict(m, good), []);
  const bad = { ...good };
  bad["fc1.weight"] = { dtype: "F32", shape: [8, 3], data: new Float32Array(24) };
  bad["fc2.weight"] = { dtype: "F64", shape: [3, 8], data: new Float64Array(24) };
  delete (bad as Record<string, unknown>)["fc2.bias"];
  bad["fc9.weight"] = { dtype: "F32", shape: [1], data: new Float32Array(1) };
  const before = await m.params()[0].value.read();
  assert.throws(() => loadStateDict(m, bad), (e: Error) => {
    assert.match(e.message, /Checkpoint fc1\.weight has shape \[8,3\], model expects \[8,2\]/);
    assert.match(e.message, /Checkpoint fc2\.weight has dtype F64, model expects F32/);
    assert.match(e.message, /missing from the checkpoint: fc2\.bias/);
    assert.match(e.message, /not in the model: fc9\.weight/);
    return true;
  });
  assert.deepEqual(await m.params()[0].value.read(), before, "nothing written on failure");
  m.dispose();
});

Deno.test("decodeCheckpoint() rejects corrupt files in one line", () => {
  const bytes = encodeSafetensors({ a: { dtype: "F32", shape: [2], data: new Float32Array(2) } });
  assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 3)), (e: Error) => {
    assert.match(e.message, /^Not a valid checkpoint: .*truncated/);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
  assert.throws(
    () => decodeCheckpoint(new TextEncoder().encode("hello world")),
    /Not a valid checkpoint/,
  );
});

Deno.test("writeFileAtomic() writes whole files and refuses to overwrite without force", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ck.safetensors`;
  await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
  assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
  await assert.rejects(() => writeFileAtomic(path, new Uint8Array([4])), (e: Error) => {
    assert.ok(e instanceof FileExistsError);
    assert.match(e.message, /already exists; use --force to overwrite it/);
    return true;
  });
  assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
  await writeFileAtomic(path, new Uint8Array([4, 5]), { force: true });
  assert.deepEqual(await Deno.readFile(path), new Uint8Array([4, 5]));
  await assert.rejects(
    () => writeFileAtomic(`${dir}/nope/x.bin`, new Uint8Array([1])),
    /directory .*nope does not exist/,
  );
  const left = [];
  for await (const e of Deno.readDir(dir)) left.push(e.name);
  assert.deepEqual(left, ["ck.safetensors"], "no temporary files left behind");
  await Deno.remove(dir, { recursive: true });
});
