/**
 * `cli.ts report a.safetensors b.safetensors …`: one self-contained HTML page comparing models
 * side by side on the same data — a table of clean accuracy, loss, ECE/MCE, the Jacobian
 * Frobenius norm, decision-plane TV (isotropic and anisotropic, mean ± standard error over the
 * same planes for every model), the radius of the centre's cell, FGSM/PGD accuracy at chosen ε —
 * and pictures: training curves from the checkpoints' history, robustness curves, reliability
 * diagrams, confidence histograms, decision-boundary planes with a legend in the same colours,
 * saliency and occlusion overlays, PCA scatters of layer activations, weight statistics, and for
 * 2-input models the decision map and Jacobian area factor of the input plane.
 *
 * Every model sees the same samples, the same plane centres and the same directions (seeded),
 * so differences in the table come from the models.
 *
 * @module
 */

import {
  type Command,
  HELP_FLAG,
  type Io,
  type ParsedArgs,
  parseFlags,
  usage,
  UsageError,
} from "./args.ts";
import { checkWritable, FileError, writeFileAtomic } from "./fs.ts";
import {
  datasetName,
  loadCheckpointModel,
  MODEL_FLAGS,
  type ModelRequest,
  modelRequest,
  readCheckpoint,
} from "./checkpoint.ts";
import { pgdSettings } from "./attack.ts";
import { NoAdapterError } from "../src/gpu/device.ts";
import { Runtime } from "../src/gpu/runtime.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import type { Checkpoint } from "../src/io/checkpoint.ts";
import { robustness, type RobustnessResult } from "../src/attacks/robustness.ts";
import { fgsm } from "../src/attacks/fgsm.ts";
import {
  activationPca,
  decisionPlane,
  evaluateMetrics,
  histogram,
  jacobianFrobenius,
  occlusion,
  type PlaneDirections,
  planeTowards,
  planeTv,
  randomPlaneDirections,
  saliency,
  toyMaps,
  weightStats,
} from "../src/metrics/mod.ts";
import {
  type Block,
  classMapImage,
  encodePng,
  heatmapImage,
  histogramChart,
  htmlPage,
  imageWithOverlay,
  lineChart,
  pngDataUri,
  reliabilityChart,
  renderSvg,
  scatterChart,
  type SeriesPoint,
} from "../src/plot/mod.ts";
import * as seams from "./_seams.ts";

/** A model to put in the report. */
export interface ReportModel {
  /** Column/legend name (the checkpoint's file name). */
  name: string;
  model: Sequential;
  /** Checkpoint metadata (for the training history). */
  metadata?: Record<string, unknown>;
}

/** Labelled samples in [0, 1]. */
export interface ReportData {
  name: string;
  x: Float32Array;
  y: Int32Array;
  sampleShape: readonly number[];
  classes: number;
  classNames?: readonly string[];
}

/** What the report measures and draws. */
export interface ReportOptions {
  /** Samples for accuracy, calibration and attacks. Default 1000. */
  limit?: number;
  /** Samples for the Jacobian norm. Default 200. */
  jacobianSamples?: number;
  /** Random projections of the Jacobian norm (-1 exact). Default -1. */
  nproj?: number;
  /** Plane centres and planes per centre for TV. Defaults 10 and 5. */
  images?: number;
  planesPerImage?: number;
  /**
   * Plane half-width (L2 distance along each unit direction, pixel units) and grid resolution.
   * Defaults 10 (a random direction in 784-d moves each pixel by ~range/28) and 250.
   */
  range?: number;
  resolution?: number;
  /** Planes, saliency and occlusion pictures shown (first N centres). Default 3. */
  show?: number;
  /** Attacks and radii (pixel units). Defaults fgsm,pgd and 0.05,0.1,0.2,0.3; none: []. */
  attacks?: ("fgsm" | "pgd")[];
  eps?: number[];
  /** PGD iterations. Default 20. */
  pgdSteps?: number;
  /** PGD step in pixel units, the same at every ε. Default 2.5 ε / pgdSteps. */
  pgdAlpha?: number;
  /** PGD starts at a random point of the ball. Default true. */
  randomStart?: boolean;
  /** Samples for the PCA scatters (0 = none). Default 300. */
  pcaSamples?: number;
  /** Seed of planes, projections and attack starts. Default 0. */
  seed?: number;
  /** Progress messages. */
  progress?: (line: string) => void;
}

/** The numbers of the comparison table, per model (also returned as JSON). */
export interface ReportRow {
  name: string;
  accuracy: number;
  loss: number;
  ece: number;
  mce: number;
  jacobianMean: number;
  jacobianSe: number;
  tvIso: number;
  tvIsoSe: number;
  tvAniso: number;
  tvAnisoSe: number;
  /** Mean over the shown planes of the centre cell's disc radius. */
  discRadius: number;
  /** True when some shown plane had no other class in its square (radius counted as range). */
  discCensored: boolean;
  robustness?: RobustnessResult;
}

const fmtPm = (m: number, se: number, digits = 4) =>
  `${Number.isFinite(m) ? m.toPrecision(digits) : String(m)} ± ${
    Number.isFinite(se) ? se.toPrecision(2) : String(se)
  }`;
const pct = (v: number) => (Number.isFinite(v) ? `${(100 * v).toFixed(2)}%` : String(v));

function historyOf(meta?: Record<string, unknown>): Record<string, number>[] {
  const h = meta?.history as unknown;
  const list = Array.isArray(h) ? h : (h as { epochs?: unknown })?.epochs;
  return Array.isArray(list) ? (list as Record<string, number>[]) : [];
}

/**
 * Measures every model on the same data and assembles the HTML page.
 * @param rt runtime
 * @param models the models (eval mode is set during measurement and restored)
 * @param data labelled samples
 * @param opts what to measure
 * @returns the page and the table rows
 */
export async function buildReport(
  rt: Runtime,
  models: ReportModel[],
  data: ReportData,
  opts: ReportOptions = {},
): Promise<{ html: string; rows: ReportRow[] }> {
  const log = opts.progress ?? (() => {});
  const d = data.sampleShape.reduce((a, b) => a * b, 1);
  const n = Math.min(opts.limit ?? 1000, data.y.length);
  const samples = {
    x: data.x.subarray(0, n * d),
    y: data.y.subarray(0, n),
    sampleShape: data.sampleShape,
  };
  const names = Array.from({ length: data.classes }, (_, i) => data.classNames?.[i] ?? String(i));
  const seed = opts.seed ?? 0;
  const range = opts.range ?? 10, res = opts.resolution ?? 250;
  const images = Math.min(opts.images ?? 10, n), per = opts.planesPerImage ?? 5;
  const show = Math.min(opts.show ?? 3, images);
  // The attacks clip to the [0, 1] pixel box (src/attacks); data outside it (the 2-D toy
  // problem) would be moved into the box by the clip alone, so they are skipped there.
  let inBox = true;
  for (let i = 0; i < samples.x.length && inBox; i++) {
    inBox = samples.x[i] >= 0 && samples.x[i] <= 1;
  }
  const attacks = inBox ? opts.attacks ?? ["fgsm", "pgd"] : [];
  const eps = opts.eps ?? [0.05, 0.1, 0.2, 0.3];
  const isImage = data.sampleShape.length === 3;
  const isToy = d === 2;

  const rows: ReportRow[] = [];
  const reliability: Block[] = [], confHist: Block[] = [], jacHist: Block[] = [];
  const perClass: number[][] = [];
  const robustPoints: SeriesPoint[] = [];
  const curves: SeriesPoint[] = [], accCurves: SeriesPoint[] = [];
  const planeRows: Block[][] = Array.from({ length: show }, () => []);
  const attribution: Block[] = [];
  const pcaBlocks: Block[] = [];
  const weightRows: (string | number)[][] = [];
  const toyBlocks: Block[] = [];

  // Planes toward an FGSM example of the first model (at the largest ε), the same planes for
  // every model: the first axis points at that adversarial example, the second is random.
  const advRows: Block[][] = Array.from({ length: show }, () => []);
  const advDirs: { dirs: PlaneDirections; dist: number }[] = [];
  if (attacks.length && eps.length && show > 0 && models.length) {
    const xt = rt.upload(samples.x.subarray(0, show * d), [show, ...data.sampleShape]);
    const yt = rt.upload(samples.y.subarray(0, show), [show]);
    const adv = fgsm(rt, models[0].model, xt, yt, { eps: Math.max(...eps) });
    const xa = (await adv.read()) as Float32Array;
    for (const t of [xt, yt, adv]) t.dispose();
    for (let i = 0; i < show; i++) {
      const x0 = samples.x.subarray(i * d, (i + 1) * d), x1 = xa.subarray(i * d, (i + 1) * d);
      let dist = 0;
      for (let j = 0; j < d; j++) dist += (x1[j] - x0[j]) ** 2;
      if (dist > 0) {
        advDirs[i] = {
          dirs: planeTowards(x0, x1, { seed, index: 1_000_000 + i }),
          dist: Math.sqrt(dist),
        };
      }
    }
  }

  for (const { name, model, metadata } of models) {
    log(`${name}: accuracy and calibration on ${n} samples`);
    const m = await evaluateMetrics(rt, model, samples);
    log(`${name}: Jacobian norm on ${Math.min(n, opts.jacobianSamples ?? 200)} samples`);
    const jn = Math.min(n, opts.jacobianSamples ?? 200);
    const jac = await jacobianFrobenius(rt, model, {
      x: samples.x.subarray(0, jn * d),
      sampleShape: data.sampleShape,
    }, { nproj: opts.nproj ?? -1, seed });
    log(`${name}: TV over ${images * per} planes at ${res}x${res}`);
    const tv = await planeTv(rt, model, samples, {
      images,
      planesPerImage: per,
      seed,
      range,
      resolution: res,
    });
    // The first plane through each shown centre, drawn (same directions as TV's plane 0).
    let radius = show ? 0 : NaN, censored = false;
    for (let i = 0; i < show; i++) {
      const dirs = randomPlaneDirections(d, { seed, index: i * per });
      const xi = samples.x.subarray(i * d, (i + 1) * d);
      const p = await decisionPlane(rt, model, xi, data.sampleShape, dirs, {
        range,
        resolution: res,
      });
      radius += p.radius / show;
      censored ||= p.censored;
      const img = classMapImage(p.classes, res, res, { classes: data.classes, marker: true });
      planeRows[i].push({
        kind: "png",
        uri: pngDataUri(encodePng(img)),
        width: 220,
        caption: `${name}: label ${names[samples.y[i]]}, predicted ${
          names[p.centreClass]
        }, cell radius ${p.censored ? "≥ " : ""}${p.radius.toFixed(3)}`,
      });
    }
    for (const [i, a] of advDirs.entries()) {
      if (!a) continue;
      const xi = samples.x.subarray(i * d, (i + 1) * d);
      const p = await decisionPlane(rt, model, xi, data.sampleShape, a.dirs, {
        range,
        resolution: res,
      });
      advRows[i].push({
        kind: "png",
        uri: pngDataUri(encodePng(classMapImage(p.classes, res, res, {
          classes: data.classes,
          marker: true,
        }))),
        width: 220,
        caption: `${name}: sample #${i}, x axis toward ${models[0].name}'s FGSM example ` +
          `(at ${a.dist.toFixed(2)} to the right)`,
      });
    }
    let rob: RobustnessResult | undefined;
    if (attacks.length && eps.length) {
      log(`${name}: ${attacks.join(", ")} at ε = ${eps.join(", ")}`);
      rob = await robustness(rt, model, samples, {
        attacks,
        eps,
        steps: opts.pgdSteps ?? 20,
        alpha: opts.pgdAlpha,
        randomStart: opts.randomStart ?? true,
        seed,
        sanityChecks: false,
      });
      for (const [a, accs] of Object.entries(rob.accuracy)) {
        accs.forEach((acc, i) => robustPoints.push({ x: eps[i], y: acc, series: `${name} ${a}` }));
      }
    }
    rows.push({
      name,
      accuracy: m.accuracy,
      loss: m.loss,
      ece: m.ece,
      mce: m.mce,
      jacobianMean: jac.mean,
      jacobianSe: jac.se,
      tvIso: tv.isoMean,
      tvIsoSe: tv.isoSe,
      tvAniso: tv.anisoMean,
      tvAnisoSe: tv.anisoSe,
      discRadius: radius,
      discCensored: censored,
      robustness: rob,
    });
    reliability.push({
      kind: "svg",
      svg: await renderSvg(reliabilityChart(m.bins, { title: `${name}: ECE ${m.ece.toFixed(4)}` })),
    });
    confHist.push({
      kind: "svg",
      svg: await renderSvg(
        histogramChart(m.confidenceHistogram, { title: name, xTitle: "max softmax", logY: true }),
      ),
    });
    jacHist.push({
      kind: "svg",
      svg: await renderSvg(
        histogramChart(histogram(jac.norms, 30), { title: name, xTitle: "‖J(x)‖_F per sample" }),
      ),
    });
    perClass.push(m.perClassAccuracy);
    for (const e of historyOf(metadata)) {
      curves.push({ x: e.epoch, y: e.trainLoss, series: `${name} train` });
      if (e.valLoss !== undefined) curves.push({ x: e.epoch, y: e.valLoss, series: `${name} val` });
      accCurves.push({ x: e.epoch, y: e.trainAccuracy, series: `${name} train` });
      if (e.valAccuracy !== undefined) {
        accCurves.push({ x: e.epoch, y: e.valAccuracy, series: `${name} val` });
      }
    }
    // Saliency and occlusion of the shown centres.
    if (isImage && show > 0) {
      log(`${name}: saliency and occlusion`);
      const xt = rt.upload(samples.x.subarray(0, show * d), [show, ...data.sampleShape]);
      const sal = await saliency(rt, model, xt);
      const maps = (await sal.map.read()) as Float32Array;
      sal.map.dispose();
      sal.target.dispose();
      xt.dispose();
      const [, h, w] = data.sampleShape;
      const scale = Math.max(1, Math.round(112 / w));
      const row: Block[] = [];
      for (let i = 0; i < show; i++) {
        const xi = samples.x.subarray(i * d, (i + 1) * d);
        row.push({
          kind: "png",
          uri: pngDataUri(encodePng(imageWithOverlay(xi, data.sampleShape, {
            heat: maps.subarray(i * h * w, (i + 1) * h * w),
            scale,
          }))),
          caption: `${name}: saliency #${i}`,
        });
        const occ = await occlusion(rt, model, xi, data.sampleShape, {
          window: Math.max(2, Math.round(w / 4)),
          stride: Math.max(1, Math.round(w / 8)),
        });
        row.push({
          kind: "png",
          uri: pngDataUri(encodePng(
            // Negated so that a drop of the class score (an important region) is red.
            heatmapImage(occ.map.map((v) => -v), h, w, {
              symmetric: true,
              scheme: "redblue",
              scale,
            }),
          )),
          caption: `${name}: occlusion #${i} (red: occluding lowers the ${
            names[occ.target]
          } logit)`,
        });
      }
      attribution.push({ kind: "row", blocks: row });
    }
    const pn = Math.min(n, opts.pcaSamples ?? 300);
    if (pn >= 3) {
      log(`${name}: PCA of activations`);
      const pcs = await activationPca(rt, model, { ...samples, length: pn }, { maxSamples: pn });
      const blocks: Block[] = [];
      for (const r of pcs.slice(-3)) {
        const pts = Array.from({ length: r.n }, (_, i) => ({
          x: r.projections[i * r.k],
          y: r.k > 1 ? r.projections[i * r.k + 1] : 0,
          label: r.labels?.[i] ?? 0,
        }));
        blocks.push({
          kind: "svg",
          svg: await renderSvg(scatterChart(pts, {
            title: `${name}: ${r.layer}`,
            classNames: names,
            classes: data.classes,
            xTitle: `PC1 (${(100 * r.explained[0]).toFixed(1)}%)`,
            yTitle: r.k > 1 ? `PC2 (${(100 * r.explained[1]).toFixed(1)}%)` : "",
          })),
        });
      }
      pcaBlocks.push({ kind: "row", blocks });
    }
    for (const s of await weightStats(model.params())) {
      weightRows.push([
        name,
        s.name,
        `[${s.shape.join(",")}]`,
        s.l2,
        s.spectralNorm ?? NaN,
        s.condition ?? NaN,
        pct(s.sparsity),
      ]);
    }
    if (isToy) {
      const t = await toyMaps(rt, model, { resolution: 150 });
      toyBlocks.push({
        kind: "row",
        blocks: [
          {
            kind: "png",
            uri: pngDataUri(encodePng(classMapImage(t.classes, 150, 150, {
              classes: data.classes,
              scale: 2,
            }))),
            caption: `${name}: decision map of [-2, 2]²`,
          },
          {
            kind: "png",
            uri: pngDataUri(encodePng(heatmapImage(t.areaFactor, 150, 150, { scale: 2 }))),
            caption: `${name}: sqrt(det JᵀJ), from ${
              t.areaFactor.reduce((a, v) => Math.min(a, v), Infinity).toPrecision(3)
            } to ${t.areaFactor.reduce((a, v) => Math.max(a, v), 0).toPrecision(3)}`,
          },
        ],
      });
    }
  }

  const header = [
    "model",
    "accuracy",
    "loss",
    "ECE",
    "MCE",
    "‖J‖_F (mean ± se)",
    "TV iso (± se)",
    "TV aniso (± se)",
    "cell radius",
  ];
  for (const a of attacks) for (const e of eps) header.push(`${a} ε=${e}`);
  const table: Block = {
    kind: "table",
    caption:
      `${data.name}, ${n} samples; TV over ${images * per} planes (${images} centres × ${per} ` +
      `random directions, ±${range} pixel units, ${res}×${res}); ‖J‖_F ${
        (opts.nproj ?? -1) === -1 ? "exact" : `estimated with ${opts.nproj} projections`
      } on ${Math.min(n, opts.jacobianSamples ?? 200)} samples`,
    header,
    rows: rows.map((r) => {
      const cells: (string | number)[] = [
        r.name,
        pct(r.accuracy),
        r.loss,
        r.ece,
        r.mce,
        fmtPm(r.jacobianMean, r.jacobianSe),
        fmtPm(r.tvIso, r.tvIsoSe),
        fmtPm(r.tvAniso, r.tvAnisoSe),
        `${r.discCensored ? "≥ " : ""}${r.discRadius.toPrecision(3)}`,
      ];
      for (const a of attacks) {
        for (let i = 0; i < eps.length; i++) cells.push(pct(r.robustness?.accuracy[a]?.[i] ?? NaN));
      }
      return cells;
    }),
  };
  const blocks: Block[] = [{ kind: "heading", text: "Comparison" }, table];
  if (!inBox && (opts.attacks ?? ["fgsm", "pgd"]).length) {
    blocks.push({
      kind: "text",
      text: "Attacks skipped: the inputs are not in [0, 1], the box the attacks clip to.",
    });
  }
  if (curves.length) {
    blocks.push({ kind: "heading", text: "Training" }, {
      kind: "row",
      blocks: [
        {
          kind: "svg",
          svg: await renderSvg(
            lineChart(curves, { title: "loss", xTitle: "epoch", yTitle: "loss" }),
          ),
        },
        {
          kind: "svg",
          svg: await renderSvg(
            lineChart(accCurves, { title: "accuracy", xTitle: "epoch", yTitle: "accuracy" }),
          ),
        },
      ],
    });
  }
  if (robustPoints.length) {
    blocks.push({ kind: "heading", text: "Robustness" }, {
      kind: "svg",
      svg: await renderSvg(lineChart(robustPoints, {
        title: "accuracy under attack",
        xTitle: "ε (pixel units, L∞)",
        yTitle: "accuracy",
        yDomain: [0, 1],
      })),
      caption: pgdCaption(opts),
    });
  }
  blocks.push(
    { kind: "heading", text: "Calibration" },
    { kind: "row", blocks: reliability },
    { kind: "row", blocks: confHist },
    { kind: "heading", text: "Jacobian norm per sample" },
    { kind: "row", blocks: jacHist },
  );
  if (data.classes <= 20) {
    blocks.push({ kind: "heading", text: "Accuracy per class" }, {
      kind: "table",
      header: ["class", ...models.map((m) => m.name)],
      rows: names.map((c, k) => [c, ...perClass.map((pc) => pct(pc[k]))]),
    });
  }
  if (show > 0) {
    blocks.push(
      { kind: "heading", text: "Decision-boundary planes" },
      {
        kind: "text",
        text: `Each row is one test sample (black cross, centre) and one random plane through it ` +
          `(±${range} pixel units); every model is shown the same plane.`,
      },
      { kind: "legend", classNames: names },
      ...planeRows.map((b): Block => ({ kind: "row", blocks: b })),
    );
    if (advDirs.some((a) => a)) {
      blocks.push(
        {
          kind: "text",
          text:
            `Planes whose horizontal axis points from the sample to ${
              models[0].name
            }'s FGSM example at ε = ${Math.max(...eps)} (vertical axis random); the same ` +
            `planes for every model.`,
        },
        ...advRows.filter((b) => b.length).map((b): Block => ({ kind: "row", blocks: b })),
      );
    }
  }
  if (attribution.length) {
    blocks.push({ kind: "heading", text: "Saliency and occlusion" }, ...attribution);
  }
  if (pcaBlocks.length) {
    blocks.push({ kind: "heading", text: "PCA of activations" }, ...pcaBlocks);
  }
  if (toyBlocks.length) {
    blocks.push(
      { kind: "heading", text: "Input plane" },
      { kind: "legend", classNames: names },
      ...toyBlocks,
    );
  }
  blocks.push({ kind: "heading", text: "Weights" }, {
    kind: "table",
    header: ["model", "tensor", "shape", "‖W‖_F", "σ_max", "σ_max/σ_min", "|w| ≤ 1e-3"],
    rows: weightRows,
  });
  return {
    html: htmlPage(`regula report: ${models.map((m) => m.name).join(" vs ")}`, blocks),
    rows,
  };
}

function numberList(flag: string, text: string): number[] {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const vals = parts.map(Number);
  if (vals.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new UsageError(`Flag '--${flag}' needs comma-separated numbers >= 0, got '${text}'`);
  }
  return vals;
}

/** How PGD ran, for the robustness chart and the JSON rows. */
function pgdCaption(opts: ReportOptions): string {
  return `PGD: ${opts.pgdSteps ?? 20} steps, step ${
    opts.pgdAlpha === undefined ? "2.5ε/steps" : opts.pgdAlpha
  }, ${(opts.randomStart ?? true) ? "random start" : "no random start"}`;
}

function positiveInt(flag: string, v: unknown, zero = false): number {
  if (!(typeof v === "number" && Number.isInteger(v) && v >= (zero ? 0 : 1))) {
    throw new UsageError(
      `Flag '--${flag}' needs a ${zero ? "non-negative" : "positive"} integer, got ${v}`,
    );
  }
  return v;
}

const reportFlags = {
  out: { type: "string", help: "HTML file to write.", default: "report.html" },
  force: { type: "boolean", help: "Overwrite an existing report." },
  data: { type: "string", help: "Dataset name (default: the one in the first checkpoint)." },
  "data-path": { type: "string", help: "Directory holding the dataset's files." },
  limit: {
    type: "number",
    help: "Test samples for accuracy, calibration, attacks.",
    default: 1000,
  },
  "jacobian-samples": { type: "number", help: "Samples for ‖J‖_F.", default: 200 },
  nproj: { type: "number", help: "Random projections for ‖J‖_F (-1 = exact).", default: -1 },
  images: { type: "number", help: "Plane centres (test samples) for TV.", default: 10 },
  "planes-per-image": { type: "number", help: "Random planes per centre.", default: 5 },
  range: { type: "number", help: "Plane half-width in pixel units (L2).", default: 10 },
  resolution: { type: "number", help: "Plane grid points per side.", default: 250 },
  show: { type: "number", help: "Planes / saliency / occlusion pictures shown.", default: 3 },
  attack: { type: "string", help: "Attacks: fgsm, pgd, both, or 'none'.", default: "fgsm,pgd" },
  eps: { type: "string", help: "Attack radii (pixel units).", default: "0.05,0.1,0.2,0.3" },
  "pgd-steps": { type: "number", help: "PGD iterations.", default: 20 },
  alpha: {
    type: "number",
    help: "PGD step in pixel units at every eps (torchattacks' alpha; default 2.5*eps/steps).",
  },
  "random-start": {
    type: "boolean",
    help: "PGD starts at a random point of the ball (--no-random-start: at the input).",
    default: true,
  },
  "pca-samples": { type: "number", help: "Samples in the PCA scatters (0: none).", default: 300 },
  seed: { type: "number", help: "Seed of planes, projections, attack starts.", default: 0 },
  json: { type: "boolean", help: "Also print the table as JSON." },
  ...MODEL_FLAGS,
} as const;

async function runReport({ flags, positionals }: ParsedArgs, io: Io): Promise<number> {
  if (positionals.length === 0) {
    throw new UsageError(
      "'cli.ts report' needs checkpoints: cli.ts report a.safetensors b.safetensors",
    );
  }
  const attackText = String(flags.attack).trim();
  const attacks = attackText === "none"
    ? []
    : attackText.split(",").map((s) => s.trim()).filter(Boolean);
  for (const a of attacks) {
    if (a !== "fgsm" && a !== "pgd") {
      throw new UsageError(`Flag '--attack': unknown attack '${a}' (fgsm, pgd or none)`);
    }
  }
  // --alpha and --no-random-start need pgd among the attacks
  const pgd = pgdSettings(attacks.length ? attacks : ["none"], flags);
  const opts: ReportOptions = {
    limit: positiveInt("limit", flags.limit),
    jacobianSamples: positiveInt("jacobian-samples", flags["jacobian-samples"]),
    nproj: flags.nproj === -1 ? -1 : positiveInt("nproj", flags.nproj),
    images: positiveInt("images", flags.images),
    planesPerImage: positiveInt("planes-per-image", flags["planes-per-image"]),
    range: flags.range as number,
    resolution: positiveInt("resolution", flags.resolution),
    show: positiveInt("show", flags.show, true),
    attacks: attacks as ("fgsm" | "pgd")[],
    eps: numberList("eps", String(flags.eps)),
    pgdSteps: positiveInt("pgd-steps", flags["pgd-steps"]),
    pgdAlpha: pgd.alpha,
    randomStart: pgd.randomStart,
    pcaSamples: positiveInt("pca-samples", flags["pca-samples"], true),
    seed: positiveInt("seed", flags.seed, true),
    progress: (s) => (io.status ? io.status(s) : io.err(s)),
  };
  if (!(opts.range! > 0)) throw new UsageError(`Flag '--range' needs a positive number`);
  if (opts.resolution! < 2) throw new UsageError(`Flag '--resolution' needs at least 2`);
  const out = String(flags.out);
  // Refuse an existing report before any work (writeFileAtomic checks again at the end).
  await checkWritable(out, !!flags.force);
  const cks: { path: string; ck: Checkpoint; req: ModelRequest }[] = [];
  for (const path of positionals) {
    const ck = await readCheckpoint(path);
    cks.push({ path, ck, req: await modelRequest(path, ck, flags) });
  }
  const meta0 = cks[0].ck.metadata as { seed?: number };
  const dataName = datasetName(cks[0].path, cks[0].ck, cks[0].req, flags, io.err);
  const loaded = await seams.loadData(dataName, {
    path: flags["data-path"] as string | undefined,
    valFraction: 0,
    seed: meta0.seed ?? 0,
  });
  const test = loaded.test ?? loaded.train;
  const rt = await Runtime.create();
  const models: ReportModel[] = [];
  try {
    for (const { path, ck, req } of cks) {
      models.push({
        name: path.split("/").pop()!.replace(/\.safetensors$/, ""),
        model: loadCheckpointModel(rt, path, ck, req, test, io.err),
        metadata: ck.metadata,
      });
    }
    const { html, rows } = await buildReport(rt, models, {
      name: test.name,
      x: test.x,
      y: test.y,
      sampleShape: test.sampleShape,
      classes: test.classes,
      classNames: (test as { classNames?: string[] }).classNames,
    }, opts);
    await writeFileAtomic(out, new TextEncoder().encode(html), { force: !!flags.force });
    if (flags.json) {
      io.out(JSON.stringify(
        rows.map(({ robustness: r, ...rest }) => ({
          ...rest,
          attacks: r?.accuracy,
          eps: r?.eps,
          pgd: r && attacks.includes("pgd")
            ? {
              steps: opts.pgdSteps,
              alpha: opts.pgdAlpha ?? "2.5*eps/steps",
              randomStart: opts.randomStart,
            }
            : undefined,
        })),
        (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v),
      ));
    }
    for (const r of rows) {
      io.out(
        `${r.name}: accuracy ${pct(r.accuracy)}  ECE ${r.ece.toFixed(4)}  ‖J‖_F ${
          fmtPm(r.jacobianMean, r.jacobianSe)
        }  TV iso ${fmtPm(r.tvIso, r.tvIsoSe)}  aniso ${fmtPm(r.tvAniso, r.tvAnisoSe)}`,
      );
    }
    io.out(`wrote ${out}`);
    return 0;
  } finally {
    for (const m of models) m.model.dispose();
    rt.destroy();
  }
}

/** The `report` subcommand. */
export const reportSubcommand: Command = {
  summary: "Compare checkpoints in one self-contained HTML report",
  args: "<checkpoint> [<checkpoint> ...]",
  details: [
    "Examples:",
    "  cli.ts report runs/none.safetensors runs/l2.safetensors runs/jr.safetensors --out cmp.html",
    "  cli.ts report a.safetensors --resolution 100 --images 5 --attack none",
  ].join("\n"),
  flags: reportFlags,
  run: runReport,
};

/**
 * Runs `report` with its own argument parsing and error handling (exit codes: 0 ok, 1 failure,
 * 2 usage error or existing output).
 * @param args the arguments after `report`
 * @param io where to print (default: console)
 * @returns the exit code
 */
export async function reportCommand(
  args: string[],
  io: Io = { out: (s) => console.log(s), err: (s) => console.error(s) },
): Promise<number> {
  try {
    const parsed = parseFlags(
      args,
      { ...reportSubcommand.flags, help: HELP_FLAG },
      "cli.ts report",
    );
    if (parsed.flags.help) {
      io.out(usage("report", reportSubcommand));
      return 0;
    }
    return await reportSubcommand.run(parsed, io);
  } catch (e) {
    if (e instanceof UsageError || e instanceof FileError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    io.err(`error: ${(e as Error)?.message ?? e}`);
    if (!(e instanceof NoAdapterError) && Deno.env.get("REGULA_DEBUG")) {
      io.err((e as Error)?.stack ?? "");
    }
    return 1;
  }
}

if (import.meta.main) Deno.exit(await reportCommand(Deno.args));
