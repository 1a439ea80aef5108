/**
 * The model zoo: architectures as plain JSON ({@linkcode ModelSpec}), built into
 * {@linkcode Model}s whose parameter names are the PyTorch `state_dict` keys of the twin that
 * tools/torch_models.py builds from the same JSON.
 *
 * @example
 * ```ts
 * import { Runtime } from "@regula/regula/gpu";
 * import { buildModel, modelSpecFromName } from "@regula/regula/models";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("lenet-relu", { dropout: 0.5 }), { seed: 1 });
 * console.log(model.params().map((p) => p.name)); // conv1.weight, conv1.bias, ..., fc3.bias
 * model.dispose();
 * ```
 *
 * @module
 */

export {
  type DDNetSpec,
  type LeNetSpec,
  type MlpActivation,
  type MlpSpec,
  MODEL_KINDS,
  MODEL_NAMES,
  type ModelSpec,
  modelSpecFromName,
  type ModelSpecOptions,
  type NormalizeSpec,
  parseModelSpec,
  type ResNet18Spec,
  type SequentialSpec,
} from "./spec.ts";
export { LAYER_TYPES, type LayerSpec, parseLayerSpecs } from "./layer_spec.ts";
export { buildModel, type BuildModelOptions, Model } from "./model.ts";
export { INIT_SCHEMES, initializeParams, type InitScheme } from "./initialize.ts";
export { architectureLayers } from "./architectures.ts";
