/**
 * Metrics of trained classifiers, batched on the GPU: accuracy, loss, confusion, calibration
 * (ECE/MCE, reliability, confidence histogram), Jacobian Frobenius norms, decision-boundary
 * planes and their total variation, saliency and occlusion, feature maps, PCA and t-SNE of
 * activations, weight
 * statistics, the 2-D toy problem's maps, and all of these for a side-by-side report of several
 * models ({@linkcode measureModels}).
 *
 * @example
 * ```ts
 * import { Runtime } from "@regula/regula/gpu";
 * import { toy2d } from "@regula/regula/data";
 * import { buildModel, modelSpecFromName } from "@regula/regula/models";
 * import { evaluateMetrics, planeTv } from "@regula/regula/metrics";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * const ds = toy2d({ seed: 0, split: "test" });
 * const m = await evaluateMetrics(rt, model, { x: ds.x, y: ds.y, sampleShape: ds.sampleShape });
 * console.log(m.accuracy, m.ece); // accuracy and expected calibration error (untrained here)
 * const data = { x: ds.x, sampleShape: ds.sampleShape };
 * const tv = await planeTv(rt, model, data, { images: 2, planesPerImage: 2, resolution: 32 });
 * console.log(`${tv.isoMean} ± ${tv.isoSe}`);
 * model.dispose();
 * ```
 *
 * @module
 */

export type { MetricModel, Samples } from "./_common.ts";
export { histogram, meanStd, quantile } from "./_common.ts";
export {
  type Calibration,
  calibration,
  type ClassificationMetrics,
  classificationMetrics,
  confidenceHistogram,
  evaluateMetrics,
  type EvaluationReport,
  type PredictionOptions,
  type PredictionStats,
  predictionStats,
  predictionStatsGpu,
  type ReliabilityBin,
} from "./calibration.ts";
export {
  jacobianFrobenius,
  jacobianFrobeniusSq,
  type JacobianNormOptions,
  type JacobianNormStats,
} from "./jacobian.ts";
export {
  type DecisionPlane,
  decisionPlane,
  largestDiscRadius,
  orthonormalize,
  planeClassesGpu,
  type PlaneDirections,
  type PlaneOptions,
  planeTowards,
  randomPlaneDirections,
} from "./planes.ts";
export {
  classMapTv,
  classMapTvGpu,
  planeTv,
  type PlaneTvOptions,
  type PlaneTvStats,
  type TotalVariation,
} from "./tv.ts";
export {
  classScoreGradient,
  occlusion,
  type OcclusionMap,
  type OcclusionOptions,
  saliency,
} from "./saliency.ts";
export { activationPca, type LayerPca, pca, type PcaResult } from "./pca.ts";
export {
  activationTsne,
  type Affinities,
  affinitiesFromDistances,
  type AffinityOptions,
  type LayerTsne,
  squaredDistances,
  tsne,
  tsneAffinities,
  tsneFromAffinities,
  tsneGradient,
  tsneKl,
  type TsneOptions,
  type TsneResult,
} from "./tsne.ts";
export { featureMaps, type LayerFeatureMaps } from "./feature_maps.ts";
export { type WeightStats, weightStats, type WeightStatsOptions } from "./weights.ts";
export { type ToyMapOptions, type ToyMaps, toyMaps } from "./toy.ts";
export {
  measureModels,
  type ModelMeasurement,
  type ReportData,
  type ReportMeasurements,
  type ReportModel,
  type ReportOptions,
  type ReportRow,
  type ReportSettings,
} from "./report.ts";
export {
  averageRanks,
  type BootstrapOptions,
  type PredictorAnalysis,
  type PredictorCell,
  predictorCorrelations,
  type PredictorPoint,
  spearman,
  spearmanBootstrap,
  type SpearmanCi,
} from "./rank_correlation.ts";
