/**
 * Prechelt's stopping criteria (GL, PQ, UP) and patience on synthetic error curves, with the
 * values worked out by hand from the definitions in "Early Stopping — But When?" (1998).
 */
import { assert } from "./_util.ts";
import {
  bestEpoch,
  bestError,
  generalizationLoss,
  parseStoppingRule,
  shouldStop,
  successiveIncreases,
  trainingProgress,
} from "../src/train/early_stopping.ts";

/** Validation error: falls to 0.5 at epoch 6, then rises by 0.02 per epoch. */
const VAL = [
  1.0,
  0.9,
  0.8,
  0.7,
  0.6,
  0.5,
  0.52,
  0.54,
  0.56,
  0.58,
  0.6,
  0.62,
  0.64,
  0.66,
  0.68,
  0.7,
  0.72,
  0.74,
  0.76,
  0.78,
];
/** Training error: keeps falling, ever more slowly. */
const TRAIN = Array.from({ length: 20 }, (_, i) => 1 / (i + 1));

/** The first epoch (from 1) at which `rule` stops on the curves. */
function stopEpoch(rule: Parameters<typeof shouldStop>[0], train = TRAIN, val = VAL): number {
  for (let t = 1; t <= val.length; t++) {
    if (shouldStop(rule, { train: train.slice(0, t), val: val.slice(0, t) }).stop) return t;
  }
  return 0;
}

Deno.test("generalizationLoss() is 100 (E_va / E_opt - 1)", () => {
  assert.equal(bestError(VAL), 0.5);
  assert.equal(bestEpoch(VAL), 6);
  assert.equal(generalizationLoss(VAL, 6), 0);
  assert.ok(Math.abs(generalizationLoss(VAL, 8) - 100 * (0.54 / 0.5 - 1)) < 1e-9);
  assert.equal(generalizationLoss([0, 0.1]), Infinity);
  assert.equal(generalizationLoss([0, 0]), 0);
  assert.equal(bestError([NaN, 2, 1, NaN]), 1);
  assert.throws(() => generalizationLoss(VAL, 0), /epoch 0 must be an integer in \[1, 20\]/);
});

Deno.test("trainingProgress() is 1000 (mean / min over the strip - 1)", () => {
  // Strip 6..10 of 1/t: mean = (1/6+...+1/10)/5, min = 1/10.
  const mean = (1 / 6 + 1 / 7 + 1 / 8 + 1 / 9 + 1 / 10) / 5;
  assert.ok(Math.abs(trainingProgress(TRAIN, 10) - 1000 * (mean / 0.1 - 1)) < 1e-9);
  assert.equal(trainingProgress([1, 1, 1, 1, 1]), 0);
  assert.throws(() => trainingProgress(TRAIN, 3), /strip length 5 must be an integer in \[1, 3\]/);
});

Deno.test("successiveIncreases() counts strips of rising validation error", () => {
  // Epochs 5, 10, 15, 20 have 0.6, 0.58, 0.68, 0.78: rises over the last two strips.
  assert.equal(successiveIncreases(VAL, 20), 2);
  assert.equal(successiveIncreases(VAL, 10), 0);
  assert.equal(successiveIncreases(VAL, 20, 2), 7);
});

Deno.test("shouldStop() GL_alpha stops at the first epoch past alpha percent", () => {
  // GL(t) = 100 (0.5 + 0.02 (t-6)) / 0.5 - 100 = 4 (t - 6): > 5 first at t = 8.
  assert.equal(stopEpoch({ kind: "gl", alpha: 5 }), 8);
  assert.equal(stopEpoch({ kind: "gl", alpha: 1 }), 7);
  const d = shouldStop({ kind: "gl", alpha: 5 }, { train: [], val: VAL.slice(0, 8) });
  assert.match(d.reason!, /^GL_5: generalization loss 8\.00 > 5 at epoch 8$/);
  // Monotone decreasing validation error never stops.
  assert.equal(stopEpoch({ kind: "gl", alpha: 0.1 }, TRAIN, TRAIN), 0);
});

Deno.test("shouldStop() PQ_alpha checks GL / P_k only at the end of strips", () => {
  // t = 10: GL = 16, P_5 ≈ 291 -> 0.055; t = 15: GL = 36, P_5 ≈ 168 -> 0.215.
  const p10 = trainingProgress(TRAIN, 10), p15 = trainingProgress(TRAIN, 15);
  assert.ok(16 / p10 < 0.1 && 36 / p15 > 0.2);
  assert.equal(stopEpoch({ kind: "pq", alpha: 0.05 }), 10);
  assert.equal(stopEpoch({ kind: "pq", alpha: 0.2 }), 15);
  assert.equal(
    shouldStop({ kind: "pq", alpha: 0.05 }, { train: TRAIN.slice(0, 9), val: VAL.slice(0, 9) })
      .stop,
    false,
  );
  assert.throws(
    () => shouldStop({ kind: "pq", alpha: 1 }, { train: [1], val: [1, 2] }),
    /1 training errors for 2 validation errors/,
  );
});

Deno.test("shouldStop() UP_s stops after s successive rising strips", () => {
  // Ends of strips: 5 (0.6), 10 (0.58), 15 (0.68), 20 (0.78): rises at 15 and 20.
  assert.equal(stopEpoch({ kind: "up", strips: 1 }), 15);
  assert.equal(stopEpoch({ kind: "up", strips: 2 }), 20);
  assert.equal(stopEpoch({ kind: "up", strips: 3 }), 0);
  // With strips of 2: ends 6 (0.5), 8 (0.54), 10 (0.58): two rises by epoch 10.
  assert.equal(stopEpoch({ kind: "up", strips: 2, strip: 2 }), 10);
});

Deno.test("shouldStop() patience stops when the best epoch is that old", () => {
  assert.equal(stopEpoch({ kind: "patience", epochs: 3 }), 9);
  assert.equal(stopEpoch({ kind: "patience", epochs: 100 }), 0);
  assert.throws(
    () => shouldStop({ kind: "patience", epochs: 0 }, { train: [], val: [1] }),
    /positive integer/,
  );
});

Deno.test("parseStoppingRule() reads the command-line forms", () => {
  assert.deepEqual(parseStoppingRule("gl:5"), { kind: "gl", alpha: 5 });
  assert.deepEqual(parseStoppingRule("GL5"), { kind: "gl", alpha: 5 });
  assert.deepEqual(parseStoppingRule("pq:0.5:k=3"), { kind: "pq", alpha: 0.5, strip: 3 });
  assert.deepEqual(parseStoppingRule("up:2"), { kind: "up", strips: 2, strip: undefined });
  assert.deepEqual(parseStoppingRule("patience:10"), { kind: "patience", epochs: 10 });
  assert.throws(
    () => parseStoppingRule("gll:5"),
    /Invalid early-stopping rule 'gll:5'; use gl:ALPHA/,
  );
  assert.throws(() => parseStoppingRule("up:1.5"), /strips must be a positive integer/);
  assert.throws(() => parseStoppingRule("gl:5:k=2"), /gl takes no strip length/);
});
