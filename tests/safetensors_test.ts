/**
 * safetensors reader and writer: round trips, byte-exact agreement with the
 * reference serializer's test vectors, every validation error, and files
 * exchanged with Python (tools/torch_bridge.py's numpy reader and writer).
 */
import { assert } from "./_util.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensorsHeader,
  type SafetensorsTensor,
} from "../src/io/safetensors.ts";

const PYTHON = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";
const TOOLS = new URL("../tools/", import.meta.url).pathname;

/** A file from a header given as JSON text and a data buffer of `dataLen` bytes (0, 1, 2, ...). */
function rawFile(header: string, dataLen: number, pad = true): Uint8Array {
  let json = new TextEncoder().encode(header);
  if (pad && json.length % 8) {
    json = new TextEncoder().encode(header + " ".repeat(8 - (json.length % 8)));
  }
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  for (let i = 0; i < dataLen; i++) out[8 + json.length + i] = i & 255;
  return out;
}

function sample(): Record<string, SafetensorsTensor> {
  return {
    "fc1.weight": {
      dtype: "F32",
      shape: [2, 3],
      data: new Float32Array([1, -2, 3.5, 0, -0, 1e-30]),
    },
    "fc1.bias": { dtype: "F64", shape: [2], data: new Float64Array([Math.PI, -Infinity]) },
    "labels": { dtype: "I32", shape: [3], data: new Int32Array([-1, 0, 2147483647]) },
    "seed": { dtype: "U32", shape: [], data: new Uint32Array([4294967295]) },
    "bn1.num_batches_tracked": { dtype: "I64", shape: [], data: new BigInt64Array([-(2n ** 63n)]) },
    "pixels": { dtype: "U8", shape: [1, 5], data: new Uint8Array([0, 1, 2, 254, 255]) },
    "empty": { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  };
}

function assertSameTensors(
  got: Record<string, SafetensorsTensor>,
  want: Record<string, SafetensorsTensor>,
): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    assert.equal(g.dtype, w.dtype, `${name} dtype`);
    assert.deepEqual(g.shape, w.shape, `${name} shape`);
    assert.equal(g.data.constructor, w.data.constructor, `${name} array type`);
    assert.deepEqual([...g.data], [...w.data], `${name} values`);
  }
}

Deno.test("encodeSafetensors() round trips every dtype, scalars and empty tensors", () => {
  const tensors = sample();
  const bytes = encodeSafetensors(tensors, { arch: '{"layers":[]}', "ünïcode": "✓" });
  const got = decodeSafetensors(bytes);
  assertSameTensors(got.tensors, tensors);
  assert.deepEqual(got.metadata, { arch: '{"layers":[]}', "ünïcode": "✓" });
  assert.deepEqual(decodeSafetensors(encodeSafetensors({})), { tensors: {}, metadata: {} });
});

Deno.test("encodeSafetensors() matches the reference serializer byte for byte", () => {
  // Expected bytes from the unit tests of safetensors/src/tensor.rs
  // (test_serialization, test_serialization_forced_alignement, test_empty).
  const f = new Float32Array([0, 1, 2, 3, 4, 5]);
  const attn = encodeSafetensors({ "attn.0": { dtype: "F32", shape: [1, 2, 3], data: f } });
  const header1 = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  assert.equal(header1.length, 64);
  assert.deepEqual(attn.subarray(0, 8), new Uint8Array([64, 0, 0, 0, 0, 0, 0, 0]));
  assert.equal(new TextDecoder().decode(attn.subarray(8, 72)), header1);
  assert.deepEqual(attn.subarray(72), new Uint8Array(f.buffer));

  const attn0 = encodeSafetensors({ attn0: { dtype: "F32", shape: [1, 1, 2, 3], data: f } });
  assert.deepEqual(attn0.subarray(0, 8), new Uint8Array([72, 0, 0, 0, 0, 0, 0, 0]));
  assert.equal(
    new TextDecoder().decode(attn0.subarray(8, 80)),
    '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ',
  );
  assert.equal(attn0.length, 80 + 24);

  assert.deepEqual(
    encodeSafetensors({}),
    new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]),
  );
  const meta = encodeSafetensors({}, { framework: "pt" });
  assert.equal(meta[0], 40);
  assert.equal(
    new TextDecoder().decode(meta.subarray(8)),
    '{"__metadata__":{"framework":"pt"}}     ',
  );
});

Deno.test("encodeSafetensors() orders tensors by dtype alignment, then name", () => {
  const bytes = encodeSafetensors({
    "b": { dtype: "U8", shape: [1], data: new Uint8Array(1) },
    "z": { dtype: "F32", shape: [1], data: new Float32Array(1) },
    "10": { dtype: "F32", shape: [1], data: new Float32Array(1) },
    "a": { dtype: "F32", shape: [1], data: new Float32Array(1) },
    "i": { dtype: "I32", shape: [1], data: new Int32Array(1) },
    "u": { dtype: "U32", shape: [1], data: new Uint32Array(1) },
    "d": { dtype: "F64", shape: [1], data: new Float64Array(1) },
    "l": { dtype: "I64", shape: [1], data: new BigInt64Array(1) },
  }, { "2": "x", "1": "y" });
  const { entries, dataStart } = readSafetensorsHeader(bytes);
  assert.deepEqual(entries.map((e) => e.name), ["l", "d", "10", "a", "z", "u", "i", "b"]);
  assert.equal(dataStart % 8, 0);
  // Keys appear in the JSON text in that order too, after __metadata__.
  const text = new TextDecoder().decode(bytes.subarray(8, dataStart));
  const order = ["__metadata__", "l", "d", "10", "a", "z", "u", "i", "b"]
    .map((k) => text.indexOf(`"${k}":{`));
  assert.deepEqual(order, [...order].sort((x, y) => x - y));
});

Deno.test("encodeSafetensors() pads the header with spaces to 8-byte alignment", () => {
  for (let len = 1; len <= 16; len++) {
    const bytes = encodeSafetensors({
      ["n".repeat(len)]: { dtype: "F64", shape: [1], data: new Float64Array([len]) },
    });
    const { dataStart } = readSafetensorsHeader(bytes);
    assert.equal(dataStart % 8, 0, `name length ${len}`);
    const text = new TextDecoder().decode(bytes.subarray(8, dataStart));
    assert.match(text, /^\{.*\} {0,7}$/);
  }
});

Deno.test("encodeSafetensors() rejects bad tensors and metadata", () => {
  const f = new Float32Array(6);
  const bad = (t: unknown, m?: unknown) => () =>
    encodeSafetensors(
      t as Record<string, SafetensorsTensor>,
      m as Record<string, string> | undefined,
    );
  assert.throws(
    bad({ w: { dtype: "F32", shape: [2, 3], data: new Float64Array(6) } }),
    /tensor "w" has dtype F32, so data must be a Float32Array, got Float64Array/,
  );
  assert.throws(
    bad({ w: { dtype: "F32", shape: [2, 2], data: f } }),
    /tensor "w" has shape \[2,2\] \(4 elements\) but its data has 6 elements/,
  );
  assert.throws(
    bad({ w: { dtype: "F32", shape: [-1, 6], data: f } }),
    /tensor "w" has invalid shape \[-1,6\]/,
  );
  assert.throws(bad({ w: { dtype: "BF16", shape: [6], data: f } }), /"w" has unsupported dtype/);
  assert.throws(bad({ __metadata__: { dtype: "F32", shape: [6], data: f } }), /reserved/);
  assert.throws(bad({}, { epoch: 3 }), /metadata "epoch" must be a string, got number/);
});

Deno.test("decodeSafetensors() accepts any key order, no padding and odd byte offsets", () => {
  const header = '{ "b": {"dtype":"F32","shape":[1],"data_offsets":[8,12]},\n' +
    '"a": {"shape":[2],"data_offsets":[0,8],"dtype":"I32", "extra": 1}}';
  const file = rawFile(header, 12, false);
  // Put the file at an odd byte offset so the data cannot be viewed in place.
  const shifted = new Uint8Array(file.length + 3).subarray(3);
  shifted.set(file);
  const { tensors, metadata } = decodeSafetensors(shifted);
  assert.deepEqual(Object.keys(tensors), ["a", "b"]);
  const a = tensors.a.data as Int32Array;
  assert.deepEqual([...a], [0x03020100, 0x07060504]);
  assert.equal(tensors.b.data.byteOffset, 0);
  assert.deepEqual(metadata, {});
  // The result does not alias the input.
  shifted.fill(0);
  assert.equal(a[0], 0x03020100);
});

Deno.test("decodeSafetensors() errors say what is wrong and which tensor", () => {
  const t = (body: string) => `{${body}}`;
  const f32 = (name: string, shape: string, begin: number, end: number) =>
    `"${name}":{"dtype":"F32","shape":${shape},"data_offsets":[${begin},${end}]}`;
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /truncated: 5 bytes, less than the 8-byte header length/],
    [
      (() => {
        const b = rawFile(t(f32("w", "[1]", 0, 4)), 4);
        return b.subarray(0, 20);
      })(),
      /header length 56 runs past the end of the file \(20 bytes/,
    ],
    [new Uint8Array([0, 0, 0, 0, 1, 0, 0, 0, 0x7b, 0x7d]), /header length 4294967296 exceeds/],
    [
      (() => {
        const b = rawFile(t(f32("w", "[1]", 0, 4)), 4);
        b[12] = 0xff;
        return b;
      })(),
      /header is not valid UTF-8/,
    ],
    [rawFile(' {"w":1}', 0), /header must start with "\{"/],
    [rawFile('["w"]', 0), /header must start with "\{"/],
    [rawFile('{"w":{"dtype":"F32",}}', 0), /header is not valid JSON/],
    [rawFile('{"__metadata__":{"epoch":3}}', 0), /"__metadata__" must map strings.*"epoch" is 3/],
    [rawFile('{"__metadata__":["a"]}', 0), /"__metadata__" must be an object/],
    [rawFile('{"w":[1,2]}', 0), /tensor "w" must be an object with dtype, shape and data_offsets/],
    [rawFile('{"w":{"shape":[1],"data_offsets":[0,4]}}', 4), /tensor "w" has no "dtype"/],
    [
      rawFile('{"w":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}', 4),
      /tensor "w" has unknown dtype "F17"/,
    ],
    [
      rawFile('{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}', 4),
      /tensor "w" has dtype BF16, which regula does not read/,
    ],
    [rawFile(t(f32("w", "[-1]", 0, 4)), 4), /tensor "w" has invalid shape \[-1\]/],
    [rawFile(t(f32("w", "[1.5]", 0, 4)), 4), /tensor "w" has invalid shape \[1.5\]/],
    [
      rawFile('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', 4),
      /tensor "w" has invalid data_offsets \[0\]/,
    ],
    [rawFile(t(f32("w", "[0]", 4, 0)), 4), /tensor "w" has data_offsets \[4,0\] with end before/],
    [
      rawFile(t(f32("w", "[2,3]", 0, 20)), 20),
      /tensor "w": shape \[2,3\] of F32 needs 24 bytes, but data_offsets \[0,20\] span 20/,
    ],
    [
      rawFile(t(f32("w", "[2]", 0, 8)), 6),
      /tensor "w" has data_offsets \[0,8\] past the end of the 6-byte data buffer/,
    ],
    [
      rawFile(t(`${f32("a", "[2]", 0, 8)},${f32("b", "[2]", 4, 12)}`), 12),
      /tensor "b" \(bytes 4..12\) overlaps tensor "a" \(bytes 0..8\)/,
    ],
    [
      rawFile(t(`${f32("a", "[1]", 0, 4)},${f32("b", "[1]", 8, 12)}`), 12),
      /bytes 4..8 of the data buffer belong to no tensor \(hole before tensor "b"\)/,
    ],
    [
      rawFile(t(f32("a", "[1]", 4, 8)), 8),
      /bytes 0..4 of the data buffer belong to no tensor \(hole before tensor "a"\)/,
    ],
    [rawFile(t(f32("a", "[1]", 0, 4)), 7), /bytes 4..7 .* belong to no tensor \(3 trailing bytes/],
    [rawFile("{}", 1), /bytes 0..1 .* belong to no tensor/],
  ];
  for (const [bytes, pattern] of cases) {
    assert.throws(() => decodeSafetensors(bytes), (e: Error) => {
      assert.match(e.message, /^decodeSafetensors: /);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

async function python(code: string, args: string[] = []): Promise<string> {
  let out;
  try {
    out = await new Deno.Command(PYTHON, {
      args: ["-c", code, ...args],
      env: { PYTHONPATH: TOOLS },
    }).output();
  } catch (e) {
    throw new Error(`${PYTHON} cannot be run (${(e as Error).message}); install python3-numpy`);
  }
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`python failed (code ${out.code}):\n${err}`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test("decodeSafetensors() reads a file written by Python", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_st_" });
  try {
    const path = `${dir}/py.safetensors`;
    await python(
      `
import sys, numpy as np, torch_bridge as tb
tb.write_safetensors(sys.argv[1], {
    "w": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
    "d": np.array([np.pi, -1e300]),
    "i": np.array([-1, 7], dtype=np.int32),
    "u": np.array(4294967295, dtype=np.uint32),
    "n": np.array([-(2**63), 2**62], dtype=np.int64),
    "b": np.array([[0, 255]], dtype=np.uint8),
    "e": np.zeros((0, 3), dtype=np.float32),
}, {"who": "numpy", "n": "1"})
`,
      [path],
    );
    const bytes = await Deno.readFile(path);
    const { tensors, metadata } = decodeSafetensors(bytes);
    assertSameTensors(tensors, {
      w: { dtype: "F32", shape: [2, 3], data: new Float32Array([0, 0.25, 0.5, 0.75, 1, 1.25]) },
      d: { dtype: "F64", shape: [2], data: new Float64Array([Math.PI, -1e300]) },
      i: { dtype: "I32", shape: [2], data: new Int32Array([-1, 7]) },
      u: { dtype: "U32", shape: [], data: new Uint32Array([4294967295]) },
      n: { dtype: "I64", shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 62n]) },
      b: { dtype: "U8", shape: [1, 2], data: new Uint8Array([0, 255]) },
      e: { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
    });
    assert.deepEqual(metadata, { who: "numpy", n: "1" });
    // Python's writer follows the same ordering and padding rules, so TS re-encodes it exactly.
    assert.deepEqual(encodeSafetensors(tensors, metadata), bytes);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Python reads a file written by encodeSafetensors()", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_st_" });
  try {
    const path = `${dir}/ts.safetensors`;
    await Deno.writeFile(path, encodeSafetensors(sample(), { from: "deno" }));
    const text = await python(
      `
import sys, json, numpy as np, torch_bridge as tb
t, m = tb.read_safetensors(sys.argv[1])
print(json.dumps({"meta": m, "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape),
      "values": [repr(x) for x in v.reshape(-1).tolist()]} for k, v in t.items()}}))
`,
      [path],
    );
    const got = JSON.parse(text);
    assert.deepEqual(got.meta, { from: "deno" });
    const dtypes: Record<string, string> = {
      F32: "float32",
      F64: "float64",
      I32: "int32",
      U32: "uint32",
      I64: "int64",
      U8: "uint8",
    };
    for (const [name, want] of Object.entries(sample())) {
      const g = got.tensors[name];
      assert.equal(g.dtype, dtypes[want.dtype], `${name} dtype`);
      assert.deepEqual(g.shape, want.shape, `${name} shape`);
      // repr() of a float is its shortest round-trip form, so Number() recovers it exactly.
      const pyValues = (g.values as string[]).map((s) =>
        want.dtype === "I64" ? s : Number(s.replace("inf", "Infinity"))
      );
      const values = [...want.data].map((v) => typeof v === "bigint" ? v.toString() : v);
      assert.deepEqual(pyValues, values, `${name} values`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
