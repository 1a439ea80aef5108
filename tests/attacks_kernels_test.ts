/** The kernels of shaders/attacks.wgsl against their float64 references (src/reference/attacks.ts). */
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { runAttackKernel } from "../src/attacks/_kernels.ts";
import {
  refApgdStep,
  refCwStep,
  refL2Init,
  refL2Step,
  refLinfInit,
  refLinfStep,
  refLossRows,
} from "../src/reference/attacks.ts";

const SIZES: [number, number][] = [[1, 1], [3, 17], [2, 255], [5, 257]];

/** Random gradient with some exact zeros. */
function grad(n: number, seed: number): Float32Array {
  const g = randomArray(n, seed, -1, 1);
  for (let i = 0; i < n; i += 7) g[i] = 0;
  return g;
}

Deno.test("linf_step matches the float64 reference, odd sizes", async () => {
  const rt = await getBackend();
  for (const [b, d] of SIZES) {
    const n = b * d;
    const x0 = randomArray(n, 1, 0, 1), x = randomArray(n, 2, 0, 1), g = grad(n, 3);
    for (const alpha of [0.05, -0.3]) {
      const tx0 = rt.upload(x0, [b, d]), tx = rt.upload(x, [b, d]), tg = rt.upload(g, [b, d]);
      runAttackKernel(rt, "linf_step", { src0: tx0, src1: tg, dst0: tx }, {
        n,
        eps: 0.1,
        alpha,
      }, "elementwise");
      assertClose(await tx.read(), refLinfStep(x0, x, g, { eps: 0.1, alpha }), {
        atol: 1e-6,
        rtol: 0,
        what: `linf_step ${b}x${d} alpha ${alpha}`,
      });
      for (const t of [tx0, tx, tg]) t.dispose();
    }
  }
});

Deno.test("l2_step, l2_init and linf_init match the float64 references, odd sizes", async () => {
  const rt = await getBackend();
  for (const [b, d] of SIZES) {
    const n = b * d;
    const x0 = randomArray(n, 4, 0, 1), x = randomArray(n, 5, 0, 1), g = grad(n, 6);
    if (b > 1) g.fill(0, 0, d); // a zero gradient row: the 1e-12 floor keeps it finite
    const u = randomArray(b, 7, 0, 1);
    const tx0 = rt.upload(x0, [b, d]), tg = rt.upload(g, [b, d]), tu = rt.upload(u, [b]);
    for (const eps of [0.05, 2]) {
      const tx = rt.upload(x, [b, d]);
      runAttackKernel(rt, "l2_step", { src0: tx0, src1: tg, dst0: tx }, {
        b,
        d,
        eps,
        alpha: 0.3,
      }, "sample");
      assertClose(await tx.read(), refL2Step(x0, x, g, d, { eps, alpha: 0.3 }), {
        atol: 2e-6,
        rtol: 1e-5,
        what: `l2_step ${b}x${d} eps ${eps}`,
      });
      runAttackKernel(rt, "l2_init", { src0: tx0, src1: tg, rows: tu, dst0: tx }, {
        b,
        d,
        eps,
      }, "sample");
      assertClose(await tx.read(), refL2Init(x0, g, u, d, eps), {
        atol: 2e-6,
        rtol: 1e-5,
        what: `l2_init ${b}x${d}`,
      });
      runAttackKernel(rt, "linf_init", { src0: tx0, src1: tg, dst0: tx }, {
        b,
        d,
        eps,
      }, "sample");
      assertClose(await tx.read(), refLinfInit(x0, g, d, eps), {
        atol: 2e-6,
        rtol: 1e-5,
        what: `linf_init ${b}x${d}`,
      });
      tx.dispose();
    }
    for (const t of [tx0, tg, tu]) t.dispose();
  }
});

Deno.test("loss_rows (CE, DLR, CW margin) matches the float64 reference", async () => {
  const rt = await getBackend();
  for (const [b, k] of [[1, 3], [5, 3], [17, 10], [33, 17]]) {
    const z = randomArray(b * k, 8, -4, 4);
    if (b > 2) z.set([z[k], z[k]], k + 1); // a tie in row 1
    const labels = Uint32Array.from({ length: b }, (_, i) => (i * 7) % k);
    const c = randomArray(b, 9, 0.1, 5);
    const tz = rt.upload(z, [b, k]), ty = rt.upload(labels, [b]);
    const tc = rt.upload(c, [b, 1]);
    const dz = rt.empty([b, k]), rows = rt.empty([b, 2]);
    for (const loss of [0, 1, 2] as const) {
      for (const targeted of loss === 1 ? [false] : [false, true]) {
        const sign = targeted && loss === 0 ? -1 : 1;
        runAttackKernel(
          rt,
          "loss_rows",
          { src1: tz, dst0: dz, dst1: rows, state: tc, labels: ty },
          {
            b,
            k,
            s: 1,
            alpha: sign,
            eps: 0.5,
          },
          "row",
          { LOSS: loss, TARGETED: targeted ? 1 : 0 },
        );
        const ref = refLossRows(z, labels, k, { loss, sign, targeted, kappa: 0.5, c });
        const what = `loss ${loss} targeted ${targeted} ${b}x${k}`;
        assertClose(await dz.read(), ref.dz, { atol: 1e-5, rtol: 1e-4, what: `${what} dz` });
        const r = await rows.read();
        assertClose(r.filter((_, i) => i % 2 === 0), ref.loss, {
          atol: 1e-5,
          rtol: 1e-4,
          what: `${what} loss`,
        });
        assertClose(r.filter((_, i) => i % 2 === 1), ref.hit, {
          atol: 0,
          rtol: 0,
          what: `${what} hit`,
        });
      }
    }
    for (const t of [tz, ty, tc, dz, rows]) t.dispose();
  }
});

Deno.test("loss_rows DLR: a label ranked third gives loss 1 and a zero gradient, as PyTorch", async () => {
  // With the label the third largest logit, num = z_t - z_p1 = -den: the DLR loss is 1 whatever
  // the logits and PyTorch's autograd gives exactly 0 (its division backward takes
  // (num / den) / den, which cancels -1 / den exactly). num / (den * den) left a residue of an
  // ulp of 1 / den, and APGD-DLR then stepped along its sign where PyTorch does not move.
  const rt = await getBackend();
  for (const k of [3, 5]) {
    const b = 64;
    const z = randomArray(b * k, 71, -6, 6);
    const labels = new Uint32Array(b);
    for (let i = 0; i < b; i++) {
      const row = Array.from(z.subarray(i * k, (i + 1) * k));
      labels[i] = row.map((v, j) => [v, j]).sort((p, q) => q[0] - p[0])[2][1];
    }
    const tz = rt.upload(z, [b, k]), ty = rt.upload(labels, [b]);
    const dz = rt.empty([b, k]), rows = rt.empty([b, 2]);
    runAttackKernel(
      rt,
      "loss_rows",
      { src1: tz, dst0: dz, dst1: rows, labels: ty },
      { b, k, s: 0, alpha: 1, eps: 0 },
      "row",
      { LOSS: 1, TARGETED: 0 },
    );
    const g = await dz.read() as Float32Array, r = await rows.read() as Float32Array;
    for (let i = 0; i < b; i++) {
      assert.equal(r[2 * i], 1, `k ${k} row ${i}: loss ${r[2 * i]}`);
      const row = Array.from(g.subarray(i * k, (i + 1) * k));
      assert.ok(row.every((v) => v === 0), `k ${k} row ${i}: dLogits ${row}`);
    }
    for (const t of [tz, ty, dz, rows]) t.dispose();
  }
});

Deno.test("apgd_step and cw_step match the float64 references", async () => {
  const rt = await getBackend();
  for (const [b, d] of SIZES) {
    const n = b * d;
    const x0 = randomArray(n, 10, 0, 1);
    const x = Float32Array.from(x0, (v, i) => Math.min(1, Math.max(0, v + 0.08 * Math.sin(i))));
    const xo = Float32Array.from(x0, (v, i) => Math.min(1, Math.max(0, v + 0.05 * Math.cos(i))));
    const g = grad(n, 11);
    const S = 8;
    const st = new Float32Array(b * S);
    const eta = Float32Array.from({ length: b }, (_, i) => 0.02 * (i + 1));
    eta.forEach((e, i) => (st[i * S] = e));
    for (const a of [1, 0.75]) {
      const tx0 = rt.upload(x0, [b, d]), tx = rt.upload(x, [b, d]), txo = rt.upload(xo, [b, d]);
      const tg = rt.upload(g, [b, d]), ts = rt.upload(st, [b, S]);
      runAttackKernel(rt, "apgd_step", { src0: tx0, src1: tg, dst0: tx, dst1: txo, state: ts }, {
        n,
        d,
        s: S,
        eps: 0.1,
        alpha: a,
      }, "elementwise");
      assertClose(await tx.read(), refApgdStep(x0, x, xo, g, eta, d, { eps: 0.1, a }), {
        atol: 1e-6,
        rtol: 0,
        what: `apgd_step ${b}x${d} a ${a}`,
      });
      assertClose(await txo.read(), x, { atol: 0, rtol: 0, what: "apgd_step x_old" });
      for (const t of [tx0, tx, txo, tg, ts]) t.dispose();
    }
    const w = randomArray(n, 12, -2, 2), m = randomArray(n, 13, -0.1, 0.1);
    const v = randomArray(n, 14, 0, 0.01);
    const tx0 = rt.upload(x0, [b, d]), tg = rt.upload(g, [b, d]), tw = rt.upload(w, [b, d]);
    const tm = rt.upload(m, [b, d]), tv = rt.upload(v, [b, d]);
    const t = 3;
    runAttackKernel(rt, "cw_step", { src0: tx0, src1: tg, dst0: tw, dst1: tm, dst2: tv }, {
      n,
      alpha: 0.01,
      f0: 1 - 0.9 ** t,
      f1: 1 - 0.999 ** t,
    }, "elementwise");
    const ref = refCwStep(x0, g, w, m, v, { lr: 0.01, t });
    assertClose(await tw.read(), ref.w, { atol: 1e-5, rtol: 1e-5, what: `cw_step w ${b}x${d}` });
    assertClose(await tm.read(), ref.m, { atol: 1e-6, rtol: 1e-5, what: `cw_step m ${b}x${d}` });
    assertClose(await tv.read(), ref.v, { atol: 1e-7, rtol: 1e-5, what: `cw_step v ${b}x${d}` });
    for (const t of [tx0, tg, tw, tm, tv]) t.dispose();
  }
});
