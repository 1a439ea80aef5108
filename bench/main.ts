/**
 * `deno task bench`: every benchmark, each measuring regula against its peers
 * on the same adapter in the same run and printing ratios. Training, attack
 * and decision-plane benchmarks join this list with their issues.
 *
 * @module
 */

import { benchMatmul } from "./matmul.ts";

const rows = await benchMatmul();
if (Deno.args.includes("--json")) console.log(JSON.stringify({ matmul: rows }, null, 2));
