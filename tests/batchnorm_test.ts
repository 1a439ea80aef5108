import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { BatchNorm } from "../src/layers/batchnorm.ts";

/** PyTorch 1.13 batch norm in float64 over (B, C, S). */
function refForward(
  x: Float32Array,
  b: number,
  c: number,
  s: number,
  gamma: number[],
  beta: number[],
  eps: number,
) {
  const y = new Float64Array(x.length),
    mean = new Float64Array(c),
    invstd = new Float64Array(c),
    unb = new Float64Array(c);
  const m = b * s;
  for (let ch = 0; ch < c; ch++) {
    let sum = 0;
    for (let i = 0; i < b; i++) for (let j = 0; j < s; j++) sum += x[(i * c + ch) * s + j];
    const mu = sum / m;
    let q = 0;
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < s; j++) q += (x[(i * c + ch) * s + j] - mu) ** 2;
    }
    mean[ch] = mu;
    invstd[ch] = 1 / Math.sqrt(q / m + eps);
    unb[ch] = q / (m - 1);
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < s; j++) {
        const k = (i * c + ch) * s + j;
        y[k] = gamma[ch] * (x[k] - mu) * invstd[ch] + beta[ch];
      }
    }
  }
  return { y, mean, invstd, unb };
}

Deno.test("BatchNorm.forward() train matches float64 reference and updates running stats", async () => {
  const rt = await getBackend();
  for (const [b, c, h, w] of [[3, 5, 7, 13], [2, 1, 1, 1], [17, 3, 1, 1]]) {
    const bn = new BatchNorm(rt, "bn", c, { dims: 2 });
    const gamma = Array.from(randomArray(c, 1, 0.5, 1.5)), beta = Array.from(randomArray(c, 2));
    rt.write(bn.weight, new Float32Array(gamma));
    rt.write(bn.bias, new Float32Array(beta));
    const xs = randomArray(b * c * h * w, 3, -2, 4);
    const x = rt.upload(xs, [b, c, h, w]);
    const y = bn.forward(x);
    const ref = refForward(xs, b, c, h * w, gamma, beta, 1e-5);
    assertClose(await y.read(), ref.y, { atol: 1e-4, rtol: 1e-4, what: `y ${[b, c, h, w]}` });
    assertClose(await bn.runningMean.read(), Array.from(ref.mean, (m) => 0.1 * m), {
      what: "running_mean",
    });
    assertClose(await bn.runningVar.read(), Array.from(ref.unb, (v) => 0.9 + 0.1 * v), {
      what: "running_var",
    });
    assert.deepEqual(Array.from(await bn.numBatchesTracked.read()), [1]);
    x.dispose();
    bn.dispose();
  }
});

Deno.test("BatchNorm.backward() passes the dot-product test in train and eval mode", async () => {
  const rt = await getBackend();
  const [b, c, s] = [4, 3, 5];
  const gamma = Array.from(randomArray(c, 4, 0.5, 1.5)), beta = Array.from(randomArray(c, 5));
  const xs = randomArray(b * c * s, 6, -1, 2);
  const v = randomArray(b * c * s, 7), u = randomArray(b * c * s, 8);
  for (const training of [true, false]) {
    const bn = new BatchNorm(rt, "bn", c, { dims: 1 });
    rt.write(bn.weight, new Float32Array(gamma));
    rt.write(bn.bias, new Float32Array(beta));
    bn.training = training;
    const x = rt.upload(xs, [b, c, s]);
    bn.forward(x);
    const dy = rt.upload(u, [b, c, s]);
    const dx = await bn.backward(dy).read();
    // <u, J v> by central differences of the float64 forward (eval: running stats mean 0, var 1)
    const f = (xx: Float32Array) =>
      training
        ? refForward(xx, b, c, s, gamma, beta, 1e-5).y
        : Float64Array.from(xx, (val, k) =>
          gamma[Math.floor(k / s) % c] * val / Math.sqrt(1 + 1e-5) + beta[Math.floor(k / s) % c]);
    const h = 1e-3;
    const xp = Float32Array.from(xs, (val, k) => val + h * v[k]),
      xm = Float32Array.from(xs, (val, k) => val - h * v[k]);
    const yp = f(xp), ym = f(xm);
    let uJv = 0, JTuv = 0;
    for (let k = 0; k < xs.length; k++) {
      uJv += u[k] * (yp[k] - ym[k]) / (2 * h);
      JTuv += dx[k] * v[k];
    }
    assertClose([JTuv], [uJv], {
      rtol: 2e-3,
      atol: 2e-3,
      what: `dot product (training=${training})`,
    });
    // dgamma = Σ u x̂, dbeta = Σ u
    const ref = refForward(xs, b, c, s, gamma, beta, 1e-5);
    const dg = new Float64Array(c), db = new Float64Array(c);
    for (let k = 0; k < xs.length; k++) {
      const ch = Math.floor(k / s) % c;
      const xh = training ? (xs[k] - ref.mean[ch]) * ref.invstd[ch] : xs[k] / Math.sqrt(1 + 1e-5);
      dg[ch] += u[k] * xh;
      db[ch] += u[k];
    }
    assertClose(await bn.dWeight.read(), dg, { atol: 1e-4, what: "dweight" });
    assertClose(await bn.dBias.read(), db, { atol: 1e-4, what: "dbias" });
    if (!training) {
      const ty = await bn.jvp(rt.upload(v, [b, c, s])).read();
      assertClose(
        ty,
        Float64Array.from(v, (val, k) => gamma[Math.floor(k / s) % c] * val / Math.sqrt(1 + 1e-5)),
        { what: "jvp" },
      );
    } else {
      // Batch-coupled: γ·invstd·(v - mean v - x̂ mean(x̂ v)) per channel, and ⟨u, J v⟩ as above.
      const ty = await bn.jvp(rt.upload(v, [b, c, s])).read();
      const sv = new Float64Array(c), sxv = new Float64Array(c);
      const xh = (k: number, ch: number) => (xs[k] - ref.mean[ch]) * ref.invstd[ch];
      for (let k = 0; k < xs.length; k++) {
        const ch = Math.floor(k / s) % c;
        sv[ch] += v[k] / (b * s);
        sxv[ch] += xh(k, ch) * v[k] / (b * s);
      }
      const want = Float64Array.from(v, (val, k) => {
        const ch = Math.floor(k / s) % c;
        return gamma[ch] * ref.invstd[ch] * (val - sv[ch] - xh(k, ch) * sxv[ch]);
      });
      assertClose(ty, want, { atol: 1e-5, what: "jvp (training)" });
      let uTy = 0;
      for (let k = 0; k < xs.length; k++) uTy += u[k] * ty[k];
      assertClose([uTy], [uJv], { rtol: 2e-3, atol: 2e-3, what: "<u, jvp v> (training)" });
    }
    x.dispose();
    dy.dispose();
    bn.dispose();
  }
});

Deno.test("BatchNorm in training mode gives x̂ = 0 exactly on a constant channel (shifted mean)", async () => {
  // Σx/m of m equal floats is off by a few ulps, and x̂ = (x - mean)/sqrt(var + eps) turned that
  // into ~1e-5 (found by the PyTorch fuzzer: a 1x1 stride-2 conv seeing only padding).
  const rt = await getBackend();
  for (const [b, c, s] of [[3, 4, 7], [5, 8, 1], [7, 3, 13]]) {
    const bn = new BatchNorm(rt, "bn", c, { dims: 1 });
    const beta = randomArray(c, 21);
    rt.write(bn.weight, randomArray(c, 20, 0.5, 1.5));
    rt.write(bn.bias, beta);
    const consts = [0.8383, -3.1416, 1e3, 0.1];
    const xs = randomArray(b * c * s, 22, -1, 2);
    for (let k = 0; k < xs.length; k++) {
      const ch = Math.floor(k / s) % c;
      if (ch % 2 === 0) xs[k] = consts[(ch / 2) % consts.length];
    }
    const x = rt.upload(xs, [b, c, s]);
    try {
      const y = await bn.forward(x).read();
      const rv = await bn.runningVar.read(), rm = await bn.runningMean.read();
      for (let ch = 0; ch < c; ch += 2) {
        const want = consts[(ch / 2) % consts.length];
        for (let i = 0; i < b; i++) {
          for (let j = 0; j < s; j++) {
            assert.equal(y[(i * c + ch) * s + j], beta[ch], `y, channel ${ch}, [${b},${c},${s}]`);
          }
        }
        assert.equal(
          rm[ch],
          Math.fround(Math.fround(0.1) * Math.fround(want)),
          `running mean, ch ${ch}`,
        );
        assert.equal(rv[ch], Math.fround(0.9), `running var, channel ${ch}`);
      }
    } finally {
      x.dispose();
      bn.dispose();
    }
  }
});

Deno.test("BatchNorm.inputGrad() is backward's dx and leaves dγ, dβ and the running stats alone", async () => {
  // Before, Sequential.inputGrad (attacks, saliency) ran BatchNorm's backward, which added to
  // dγ and dβ; attacks saved and restored them around it.
  const rt = await getBackend();
  const [b, c, s] = [3, 4, 6];
  for (const training of [true, false]) {
    const bn = new BatchNorm(rt, "bn", c, { dims: 1 });
    rt.write(bn.weight, randomArray(c, 14, 0.5, 1.5));
    rt.write(bn.bias, randomArray(c, 15));
    rt.write(bn.dWeight, randomArray(c, 16));
    rt.write(bn.dBias, randomArray(c, 17));
    bn.training = training;
    const x = rt.upload(randomArray(b * c * s, 18, -1, 2), [b, c, s]);
    const dy = rt.upload(randomArray(b * c * s, 19), [b, c, s]);
    try {
      bn.forward(x);
      const before = await Promise.all(bn.params().map((p) => (p.grad ?? p.value).read()));
      const dx = Array.from(await bn.inputGrad(dy).read());
      const after = await Promise.all(bn.params().map((p) => (p.grad ?? p.value).read()));
      for (const [i, p] of bn.params().entries()) {
        assert.deepStrictEqual(
          Array.from(after[i]),
          Array.from(before[i]),
          `${p.name} (training=${training}) changed by inputGrad()`,
        );
      }
      assert.deepStrictEqual(dx, Array.from(await bn.backward(dy).read()));
      const dg = await bn.dWeight.read();
      assert.ok(dg.some((v, i) => v !== before[0][i]), "backward() does add to dγ");
    } finally {
      x.dispose();
      dy.dispose();
      bn.dispose();
    }
  }
});

Deno.test("BatchNorm.forward() rejects a channel mismatch and a single value per channel", async () => {
  const rt = await getBackend();
  const bn = new BatchNorm(rt, "layer1.0.bn1", 4, { dims: 2 });
  const x = rt.zeros([2, 3, 4, 4]);
  assert.throws(
    () => bn.forward(x),
    /layer1\.0\.bn1 \(BatchNorm2d 4\): expected input \[B,4,H,W\], got \[2,3,4,4\]/,
  );
  const one = rt.zeros([1, 4, 1, 1]);
  assert.throws(() => bn.forward(one), /more than 1 value per channel/);
  bn.dispose();
});
