import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { assertDotProduct, jvpFD } from "./_layer_check.ts";
import {
  Activation,
  type ActivationKind,
  LeakyReLU,
  ReLU,
  Sigmoid,
  Softplus,
  Tanh,
} from "../src/layers/activation.ts";
import { activationRef } from "../src/reference/layers.ts";

const KINDS: ActivationKind[] = ["relu", "leaky_relu", "tanh", "sigmoid", "softplus"];
const SHAPE = [3, 5, 7];
const N = 105;

Deno.test("Activation.forward() matches the float64 reference, including softplus past its threshold", async () => {
  const rt = await getBackend();
  const xa = randomArray(N, 1, -30, 30);
  xa.set([0, -0, 20, 20.001, -1e-8, 1e-8]);
  for (const kind of KINDS) {
    const act = new Activation(rt, "act", kind);
    const x = rt.upload(xa, SHAPE);
    const y = act.forward(x);
    assert.deepEqual(y.shape, SHAPE);
    assertClose(await y.read(), activationRef(kind, xa).y, { atol: 1e-6, rtol: 1e-5, what: kind });
    x.dispose();
    act.dispose();
  }
});

Deno.test("Activation backward/jvp multiply by σ'(a) and pass the dot-product test", async () => {
  const rt = await getBackend();
  const xa = randomArray(N, 2, -4, 4);
  const u = randomArray(N, 3), v = randomArray(N, 4);
  for (const kind of KINDS) {
    const act = new Activation(rt, "act", kind);
    const x = rt.upload(xa, SHAPE);
    act.forward(x);
    const ref = activationRef(kind, xa);
    const dy = rt.upload(u, SHAPE), tx = rt.upload(v, SHAPE);
    const dx = await act.backward(dy).read();
    assertClose(dx, ref.d1.map((d, i) => d * u[i]), { atol: 1e-6, rtol: 1e-5, what: `dx ${kind}` });
    assertDotProduct(`dx ${kind}`, (xx) => activationRef(kind, xx).y, xa, v, u, dx);
    const ty = await act.jvp(tx).read();
    assertClose(ty, jvpFD((xx) => activationRef(kind, xx).y, xa, v), {
      atol: 1e-5,
      rtol: 1e-4,
      what: `jvp ${kind}`,
    });
    for (const t of [x, dy, tx]) t.dispose();
    act.dispose();
  }
});

Deno.test("Activation.secondDerivative() gives σ''(a) times its factors (0 for the ReLU family)", async () => {
  const rt = await getBackend();
  const xa = randomArray(N, 5, -4, 4);
  xa[0] = 25; // softplus past its threshold: linear, σ'' = 0
  const f1 = randomArray(N, 6), f2 = randomArray(N, 7);
  for (const kind of KINDS) {
    const act = new Activation(rt, "act", kind);
    const x = rt.upload(xa, SHAPE);
    act.forward(x);
    const ref = activationRef(kind, xa);
    assert.equal(act.hasCurvature, kind !== "relu" && kind !== "leaky_relu");
    // σ'' of the reference against differences of its σ'
    const fd = jvpFD((xx) => activationRef(kind, xx).d1, xa, new Float64Array(N).fill(1));
    assertClose(ref.d2, fd, { atol: 1e-6, rtol: 1e-5, what: `reference σ'' ${kind}` });
    assertClose(await act.secondDerivative().read(), ref.d2, {
      atol: 1e-6,
      rtol: 1e-4,
      what: `σ'' ${kind}`,
    });
    const a = rt.upload(f1, SHAPE), b = rt.upload(f2, SHAPE);
    assertClose(await act.secondDerivative(a).read(), ref.d2.map((d, i) => d * f1[i]), {
      atol: 1e-6,
      rtol: 1e-4,
      what: `σ''·f1 ${kind}`,
    });
    assertClose(await act.secondDerivative(a, b).read(), ref.d2.map((d, i) => d * f1[i] * f2[i]), {
      atol: 1e-6,
      rtol: 1e-4,
      what: `σ''·f1·f2 ${kind}`,
    });
    for (const t of [x, a, b]) t.dispose();
    act.dispose();
  }
});

Deno.test("ReLU, LeakyReLU, Tanh, Sigmoid, Softplus follow PyTorch at the kinks and take options", async () => {
  const rt = await getBackend();
  const x = rt.upload([-2, 0, 3], [1, 3]);
  const ones = rt.upload([1, 1, 1], [1, 3]);
  const relu = new ReLU(rt, "r");
  relu.forward(x);
  assert.deepEqual(Array.from(await relu.backward(ones).read()), [0, 0, 1]);
  const leaky = new LeakyReLU(rt, "l", 0.2);
  assertClose(await leaky.forward(x).read(), [-0.4, 0, 3]);
  assertClose(await leaky.backward(ones).read(), [0.2, 0.2, 1]);
  const sp = new Softplus(rt, "s", { beta: 2, threshold: 5 });
  assertClose(
    await sp.forward(x).read(),
    activationRef("softplus", [-2, 0, 3], { beta: 2, threshold: 5 }).y,
  );
  assertClose(
    await sp.backward(ones).read(),
    activationRef("softplus", [-2, 0, 3], { beta: 2, threshold: 5 }).d1,
  );
  assert.equal(new Tanh(rt, "t").describe(), "t (Tanh)");
  assert.equal(new Sigmoid(rt, "s").describe(), "s (Sigmoid)");
  for (const l of [relu, leaky, sp]) l.dispose();
  x.dispose();
  ones.dispose();
});

Deno.test("Activation rejects shape mismatches, empty batches and disposed inputs", async () => {
  const rt = await getBackend();
  const act = new Activation(rt, "act3", "softplus");
  const empty = rt.zeros([0, 4]);
  assert.throws(() => act.forward(empty), /act3 \(Softplus\): got an empty batch/);
  assert.throws(() => act.backward(empty), /backward\(\) before forward\(\)/);
  const x = rt.zeros([2, 4]);
  act.forward(x);
  const bad = rt.zeros([2, 5]);
  assert.throws(() => act.backward(bad), /gradient shape \[2,5\] does not match .* \[2,4\]/);
  x.dispose();
  const dy = rt.zeros([2, 4]);
  assert.throws(() => act.backward(dy), /was disposed before backward\(\)/);
  for (const t of [empty, bad, dy]) t.dispose();
  act.dispose();
});
