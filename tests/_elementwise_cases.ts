/**
 * The unary elementwise cases shared by tests/elementwise_test.ts (ops vs float64) and
 * tests/wasm_elementwise_test.ts (the WebAssembly twins vs WebGPU).
 */
import { randomArray } from "./_util.ts";
import type { UnaryOp } from "../src/ops/elementwise.ts";

/** Input range per op: log/sqrt/reciprocal want positive inputs. */
export function inputFor(op: string, n: number, seed: number): Float32Array {
  if (op === "log" || op === "sqrt" || op === "reciprocal") return randomArray(n, seed, 0.01, 10);
  if (op === "exp") return randomArray(n, seed, -20, 20);
  return randomArray(n, seed, -6, 6);
}

/** Every unary op, with the alpha/beta variants worth a case of their own. */
export const UNARY_CASES: [UnaryOp, { alpha?: number; beta?: number }][] = [
  ["copy", {}],
  ["neg", {}],
  ["abs", {}],
  ["sign", {}],
  ["relu", {}],
  ["leaky_relu", {}],
  ["leaky_relu", { alpha: 0.2 }],
  ["tanh", {}],
  ["sigmoid", {}],
  ["softplus", {}],
  ["softplus", { alpha: 2, beta: 5 }],
  ["exp", {}],
  ["log", {}],
  ["sqrt", {}],
  ["square", {}],
  ["scale", { alpha: -2.5 }],
  ["add_scalar", { alpha: 0.75 }],
  ["affine", { alpha: 3, beta: -1 }],
  ["clamp", { alpha: -0.5, beta: 2 }],
  ["clamp", { alpha: 1, beta: -1 }],
  ["fill", { alpha: 4.25 }],
  ["reciprocal", {}],
];
