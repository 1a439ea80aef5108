/**
 * Training: the loop ({@linkcode train}) with regularizers plugged in through
 * their hooks, adversarial training (PGD/FGSM, {@linkcode parseAdversarialTraining}),
 * {@linkcode evaluate}, optimizers (SGD with momentum and
 * Nesterov, Adam, AdamW), learning-rate schedules and early stopping
 * (Prechelt 1998).
 *
 * @example
 * ```ts
 * import { Runtime } from "@regula/regula/gpu";
 * import { toy2d } from "@regula/regula/data";
 * import { buildModel, modelSpecFromName } from "@regula/regula/models";
 * import { evaluate, train } from "@regula/regula/train";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 }); // 2 → 64 → 64 → 4, tanh
 * const data = toy2d({ seed: 0, split: "train" });
 * const result = await train(model, { train: data }, { epochs: 2, batchSize: 64, lr: 0.05 });
 * console.log(result.history.at(-1)?.trainLoss);
 * console.log(await evaluate(model, toy2d({ seed: 0, split: "test" }))); // { loss, accuracy, ... }
 * model.dispose();
 * ```
 *
 * @module
 */

export * from "./optim.ts";
export * from "./schedule.ts";
export * from "./train.ts";
export * from "./early_stopping.ts";
export * from "./adversarial.ts";
