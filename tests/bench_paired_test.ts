import { assert } from "./_util.ts";
import { pairedRatio } from "../bench/_peers/common.ts";

/** A fake implementation whose rounds take `ms(i)` per step, logging its calls to `log`. */
function fake(name: string, ms: (call: number) => number, log: string[]) {
  let calls = 0;
  return {
    round: (steps: number) => {
      log.push(`${name}${steps}`);
      return Promise.resolve(ms(calls++));
    },
  };
}

Deno.test("pairedRatio alternates the order within pairs and takes the median of the pairs' ratios", async () => {
  const log: string[] = [];
  // Plain rounds at 10 ms; the JR rounds at 19, 21, 50 (a slow outlier), 20, 18 ms.
  const jr = [19, 21, 50, 20, 18];
  const r = await pairedRatio(fake("a", () => 10, log), fake("b", (i) => jr[i], log), 3, 2, 5);
  assert(Math.abs(r - 2.0) < 1e-12, `median of 1.9, 2.1, 5.0, 2.0, 1.8: got ${r}`);
  assert(log.join(" ") === "a3 b2 b2 a3 a3 b2 b2 a3 a3 b2", `order: ${log.join(" ")}`);
  // An even count takes the mean of the middle two.
  const r2 = await pairedRatio(
    fake("a", () => 4, []),
    fake("b", (i) => [4, 8, 12, 16][i], []),
    1,
    1,
    4,
  );
  assert(Math.abs(r2 - 2.5) < 1e-12, `mean of 2 and 3: got ${r2}`);
});
