/**
 * Checkpoints: safetensors files whose tensor names and layouts are the
 * PyTorch `state_dict` of the equivalent `torch.nn` model, with JSON metadata
 * (model spec, data, regularizers, optimizer, history, seed, version); and the
 * safetensors format itself. Bytes in, bytes out: no file system here.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "@regula/regula/io";
 *
 * const weight = { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } as const;
 * const bytes = encodeSafetensors({ "fc.weight": { ...weight, shape: [2, 2] } }, { epoch: "3" });
 * const file = decodeSafetensors(bytes);
 * console.log(file.tensors["fc.weight"].shape, file.metadata.epoch); // [ 2, 2 ] 3
 * ```
 *
 * @module
 */

export * from "./checkpoint.ts";
export * from "./safetensors.ts";
