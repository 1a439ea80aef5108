/**
 * What bench/train.ts needs from each implementation, and the synthetic data they share.
 *
 * @module
 */

/** The benchmarked architectures. */
export type ModelName = "lenet" | "ddnet";

/** One benchmark configuration (the same for every implementation). */
export interface TrainConfig {
  model: ModelName;
  batch: number;
  /** Per-sample input shape, channels first (C, H, W). */
  inputShape: number[];
  classes: number;
  lr: number;
  momentum: number;
}

/** A training loop under test. */
export interface Trainer {
  name: string;
  /** Records (and submits) one training step; does not wait for it. */
  step(): void;
  /** Waits for every step recorded so far. */
  sync(): Promise<void>;
  /** The loss of the last step (reads back). */
  loss(): Promise<number>;
  /**
   * Replaces the batch the next steps train on (same shapes as at construction). Optional:
   * bench/epoch.ts feeds real MNIST batches through it.
   */
  feed?(x: Float32Array<ArrayBuffer>, y: Int32Array): void;
  dispose(): void;
}

/** Deterministic pseudo-random values in [0, 1) (LCG). */
export function syntheticData(n: number, seed: number): Float32Array<ArrayBuffer> {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296;
  }
  return out;
}

/** Labels 0, 1, ..., classes - 1, 0, 1, ... */
export function syntheticLabels(batch: number, classes: number): Int32Array {
  return Int32Array.from({ length: batch }, (_, i) => (i * 7 + 3) % classes);
}

/** PyTorch's default init bound for a weight with this fan-in: U(-1/√fanIn, 1/√fanIn). */
export function uniformInit(n: number, fanIn: number, seed: number): Float32Array<ArrayBuffer> {
  const b = 1 / Math.sqrt(fanIn);
  return syntheticData(n, seed).map((u) => (2 * u - 1) * b);
}

/** Runs `steps` steps back to back and waits for them; returns ms per step. */
export async function timeRound(t: Trainer, steps: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) t.step();
  await t.sync();
  return (performance.now() - t0) / steps;
}

/** Anything timed in rounds (bench/_peers/torch.ts `Timed`). */
export interface Rounds {
  /** Runs `steps` steps and waits for them; ms per step. */
  round(steps: number): Promise<number>;
}

/**
 * The step-time ratio of `b` to `a` from `pairs` pairs of rounds taken back to back, `a` then `b`
 * and `b` then `a` in turn: the median of the pairs' ratios. The two rounds of a pair share their
 * moment's background load, which two best-of-rounds figures taken minutes apart (with other
 * implementations' rounds between them) do not, so on a shared machine this ratio moves far less
 * between runs than the quotient of the two best rounds.
 * @param a the reference (a plain training step)
 * @param b the other (the same step with a regularizer)
 * @param stepsA, stepsB steps per round of each (rounds of about the same duration)
 * @param pairs number of pairs (at least 1)
 */
export async function pairedRatio(
  a: Rounds,
  b: Rounds,
  stepsA: number,
  stepsB: number,
  pairs: number,
): Promise<number> {
  const ratios: number[] = [];
  for (let i = 0; i < pairs; i++) {
    let ta: number, tb: number;
    if (i % 2 === 0) {
      ta = await a.round(stepsA);
      tb = await b.round(stepsB);
    } else {
      tb = await b.round(stepsB);
      ta = await a.round(stepsA);
    }
    ratios.push(tb / ta);
  }
  ratios.sort((p, q) => p - q);
  const m = ratios.length >> 1;
  return ratios.length % 2 ? ratios[m] : (ratios[m - 1] + ratios[m]) / 2;
}

/**
 * Sets a row's JR/plain column `col` for the implementation named `plain` and its `${plain}-jr`
 * twin in `impls`: the paired median ({@linkcode pairedRatio} over `pairs` pairs of rounds of the
 * sizes in `reps`), or `best` (the quotient of the best rounds) where `pairs` is 0 or either is
 * in `slow`; `best` also goes under `${col} (best rounds)`. Nothing where `best` is null (one of
 * the two was not measured).
 */
export async function setJrRatio(
  row: Record<string, unknown>,
  col: string,
  plain: string,
  best: number | null,
  timing: {
    impls: (Rounds & { name: string })[];
    reps: Map<string, number>;
    slow: Set<string>;
    pairs: number;
  },
): Promise<void> {
  if (best === null) return;
  row[`${col} (best rounds)`] = best;
  const { impls, reps, slow, pairs } = timing;
  const a = impls.find((t) => t.name === plain)!;
  const b = impls.find((t) => t.name === `${plain}-jr`)!;
  row[col] = pairs > 0 && !slow.has(a.name) && !slow.has(b.name)
    ? +(await pairedRatio(a, b, reps.get(a.name)!, reps.get(b.name)!, pairs)).toFixed(2)
    : best;
}

/**
 * Prints training rows as a table without their `loss` and "(best rounds)" entries (those stay in
 * each row's JSON line), then what the JR/plain columns are.
 */
export function printTrainTable(rows: Record<string, unknown>[]): void {
  console.table(
    rows.map(({ loss: _, ...r }) =>
      Object.fromEntries(Object.entries(r).filter(([k]) => !k.endsWith("(best rounds)")))
    ),
  );
  console.log(
    "JR/plain: step-time ratio, the median of back-to-back pairs of rounds (the quotient of " +
      "the best rounds is in each row's JSON line above)",
  );
}
