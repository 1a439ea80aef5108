/**
 * The layers against PyTorch 1.13 (tools/torch_layers_check.py, float64 on the CPU): Conv2d,
 * MaxPool2d (values, argmax indices, overlapping-window gradients), AvgPool2d and Linear, forward
 * and backward.
 *
 * Needs PyTorch for /usr/bin/python3 (Debian: `apt-get install python3-torch`); without it the
 * test fails saying so.
 */
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { numel } from "./_layer_check.ts";
import type { Backend } from "../src/backend.ts";
import type { Layer } from "../src/layers/layer.ts";
import { Conv2d } from "../src/layers/conv2d.ts";
import { AvgPool2d, MaxPool2d } from "../src/layers/pool.ts";
import { Linear } from "../src/layers/linear.ts";

const PYTHON = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";
const SCRIPT = new URL("../tools/torch_layers_check.py", import.meta.url).pathname;

interface TorchResult {
  y: number[];
  y_shape: number[];
  dx: number[];
  dw?: number[];
  db?: number[] | null;
  indices?: number[];
}

async function torch(cases: Record<string, unknown>[]): Promise<TorchResult[]> {
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify({ cases }));
    let out;
    try {
      out = await new Deno.Command(PYTHON, {
        args: [SCRIPT, file],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (e) {
      throw new Error(
        `${PYTHON} cannot be run (${
          (e as Error).message
        }): this test needs Debian's python3 with ` +
          `PyTorch (apt-get install python3-torch)`,
      );
    }
    if (!out.success) {
      throw new Error(
        `torch_layers_check.py failed: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
    return JSON.parse(new TextDecoder().decode(out.stdout)).results;
  } finally {
    await Deno.remove(file);
  }
}

interface Case {
  spec: Record<string, unknown>;
  make: (rt: Backend) => Layer;
  params?: { weight: Float32Array; bias: Float32Array | null };
}

function conv(
  xs: number[],
  o: number,
  k: [number, number],
  s: [number, number],
  p: [number, number],
  bias: boolean,
  seed: number,
): Case {
  const weight = randomArray(o * xs[1] * k[0] * k[1], seed, -0.5, 0.5);
  const b = bias ? randomArray(o, seed + 1) : null;
  return {
    spec: {
      op: "conv2d",
      x_shape: xs,
      w_shape: [o, xs[1], ...k],
      stride: s,
      padding: p,
      bias: b && Array.from(b),
    },
    make: (rt) => new Conv2d(rt, "conv", xs[1], o, k, { stride: s, padding: p, bias }),
    params: { weight, bias: b },
  };
}

function pool(
  op: "max_pool2d" | "avg_pool2d",
  xs: number[],
  k: [number, number],
  s: [number, number],
  p: [number, number],
  includePad = true,
): Case {
  return {
    spec: { op, x_shape: xs, kernel: k, stride: s, padding: p, count_include_pad: includePad },
    make: (rt) =>
      op === "max_pool2d"
        ? new MaxPool2d(rt, "pool", k, { stride: s, padding: p })
        : new AvgPool2d(rt, "pool", k, { stride: s, padding: p, countIncludePad: includePad }),
  };
}

function linear(b: number, i: number, o: number, bias: boolean, seed: number): Case {
  const weight = randomArray(o * i, seed, -0.5, 0.5);
  const bb = bias ? randomArray(o, seed + 1) : null;
  return {
    spec: { op: "linear", x_shape: [b, i], w_shape: [o, i], bias: bb && Array.from(bb) },
    make: (rt) => new Linear(rt, "fc", i, o, { bias }),
    params: { weight, bias: bb },
  };
}

Deno.test("Conv2d, MaxPool2d, AvgPool2d, Linear forward and backward match PyTorch", async () => {
  const rt = await getBackend();
  const cases: Case[] = [
    conv([3, 3, 13, 7], 5, [3, 3], [2, 2], [1, 1], true, 1),
    conv([1, 2, 9, 11], 4, [5, 3], [1, 2], [2, 0], false, 2),
    conv([2, 4, 7, 7], 3, [1, 1], [1, 1], [0, 0], true, 3),
    pool("max_pool2d", [3, 2, 13, 13], [3, 3], [2, 2], [0, 0]),
    pool("max_pool2d", [1, 3, 7, 9], [3, 3], [2, 1], [1, 1]),
    pool("max_pool2d", [2, 2, 8, 8], [2, 2], [2, 2], [0, 0]),
    pool("avg_pool2d", [3, 2, 9, 7], [3, 3], [2, 2], [1, 1]),
    pool("avg_pool2d", [1, 2, 9, 7], [3, 2], [2, 1], [1, 1], false),
    linear(3, 17, 5, true, 4),
    linear(1, 9, 13, false, 5),
  ];
  const inputs = cases.map((c, i) => randomArray(numel(c.spec.x_shape as number[]), 100 + i));
  // Output sizes from our own outputShape, so torch gets a dy of the right size.
  const layers = cases.map((c) => c.make(rt));
  const dys = layers.map((l, i) =>
    randomArray(numel(l.outputShape(cases[i].spec.x_shape as number[])), 200 + i)
  );
  const results = await torch(cases.map((c, i) => ({
    ...c.spec,
    x: Array.from(inputs[i]),
    dy: Array.from(dys[i]),
    ...(c.params ? { weight: Array.from(c.params.weight) } : {}),
  })));
  for (const [i, c] of cases.entries()) {
    const what = JSON.stringify({ ...c.spec, bias: c.params?.bias ? "yes" : undefined });
    const layer = layers[i];
    if (c.params) {
      const [w, b] = layer.params();
      rt.write(w.value, c.params.weight);
      if (c.params.bias) rt.write(b.value, c.params.bias);
    }
    const x = rt.upload(inputs[i], c.spec.x_shape as number[]);
    const y = layer.forward(x);
    const r = results[i];
    assert.deepEqual(y.shape, r.y_shape, `shape ${what}`);
    assertClose(await y.read(), r.y, { atol: 1e-5, rtol: 1e-4, what: `y ${what}` });
    if (r.indices) {
      assert.deepEqual(
        Array.from(await (layer as MaxPool2d).indices!.read()),
        r.indices,
        `indices ${what}`,
      );
    }
    const dy = rt.upload(dys[i], y.shape);
    assertClose(await layer.backward(dy).read(), r.dx, {
      atol: 1e-5,
      rtol: 1e-4,
      what: `dx ${what}`,
    });
    if (r.dw) {
      const [w, b] = layer.params();
      assertClose(await w.grad!.read(), r.dw, { atol: 1e-4, rtol: 1e-4, what: `dW ${what}` });
      if (r.db) {
        assertClose(await b.grad!.read(), r.db, { atol: 1e-4, rtol: 1e-4, what: `db ${what}` });
      } else assert.equal(b, undefined);
    }
    x.dispose();
    dy.dispose();
    layer.dispose();
  }
});
