/**
 * The comparison report as one self-contained HTML page, drawn from what src/metrics/report.ts
 * measured: a table of clean accuracy, loss, ECE/MCE, ‖J‖_F, plane TV, cell radius and accuracy
 * under attack, and pictures — training curves from the checkpoints' history, robustness
 * curves, reliability diagrams, confidence histograms, decision-boundary planes with a legend in
 * the same colours, saliency and occlusion overlays, feature maps of every convolution (one
 * colour scale per channel, its range written out), PCA and t-SNE scatters of layer activations
 * side by side, weight
 * statistics, and for 2-input models the decision map and Jacobian area factor of the input
 * plane.
 *
 * @example
 * ```ts
 * import { measureModels } from "../metrics/report.ts";
 * import { renderReport } from "./report.ts";
 * const html = await renderReport(await measureModels(rt, models, data));
 * ```
 *
 * @module
 */

import type { ReportMeasurements } from "../metrics/report.ts";
import type { PredictorAnalysis } from "../metrics/rank_correlation.ts";
import type { EpochRecord } from "../train/train.ts";
import {
  histogramChart,
  lineChart,
  predictorScatterChart,
  reliabilityChart,
  renderSvg,
  scatterChart,
  type SeriesPoint,
} from "./charts.ts";
import { type Block, htmlPage } from "./html.ts";
import {
  channelGridImage,
  classMapImage,
  encodePng,
  heatmapImage,
  imageWithOverlay,
  pngDataUri,
  type RgbaImage,
} from "./png.ts";

/**
 * A mean and its standard error, `m ± se` (4 and 2 significant digits).
 * @param m mean
 * @param se standard error
 * @param digits significant digits of the mean
 */
export function formatMeanSe(m: number, se: number, digits = 4): string {
  return `${Number.isFinite(m) ? m.toPrecision(digits) : String(m)} ± ${
    Number.isFinite(se) ? se.toPrecision(2) : String(se)
  }`;
}

/**
 * A fraction as a percentage with two decimals (`String(v)` when not finite).
 * @param v fraction
 */
export function formatPercent(v: number): string {
  return Number.isFinite(v) ? `${(100 * v).toFixed(2)}%` : String(v);
}

const fmtPm = formatMeanSe;
const pct = formatPercent;

const png = (img: RgbaImage): string => pngDataUri(encodePng(img));

const signed = (
  v: number,
): string => (Number.isFinite(v) ? (v >= 0 ? "+" : "") + v.toFixed(2) : "–");

/**
 * The "what predicts robustness" section: a table of Spearman ρ with its bootstrap interval for
 * every (quantity, target) cell, and a scatter plot of each quantity against one target.
 * @param a what `predictorCorrelations` (src/metrics/rank_correlation.ts) returned
 * @param opts `scatterTarget` (default the last target), `groupOf` (colour group of a
 *   checkpoint; default its name), `what` (what the points are, for the caption)
 * @returns blocks for {@linkcode htmlPage}
 */
export async function predictorBlocks(
  a: PredictorAnalysis,
  opts: { scatterTarget?: string; groupOf?: (name: string) => string; what?: string } = {},
): Promise<Block[]> {
  const n = a.points.length, what = opts.what ?? "checkpoints";
  let partial = false;
  const rows = a.quantities.map((q) => [
    q,
    ...a.targets.map((t) => {
      const c = a.cells.find((c) => c.quantity === q && c.target === t)!;
      if (c.n < 3) return `– (n=${c.n})`;
      if (Number.isNaN(c.rho)) return "– (constant)";
      const mark = c.used < c.resamples ? "†" : "";
      partial ||= mark !== "";
      return `${signed(c.rho)} [${signed(c.lo)}, ${signed(c.hi)}]${mark}${
        c.n < n ? ` (n=${c.n})` : ""
      }`;
    }),
  ]);
  const blocks: Block[] = [
    { kind: "heading", text: "What predicts robustness" },
    {
      kind: "table",
      header: ["quantity", ...a.targets.map((t) => `ρ with ${t}`)],
      rows,
      caption: `Spearman rank correlation ρ (average ranks for ties) over ${n} ${what}, with a ` +
        `${Math.round(100 * a.level)} % percentile bootstrap interval: B = ${a.resamples} ` +
        `resamples of the ${what} with replacement, seed ${a.seed}. ` +
        (partial
          ? "†: some resamples had a constant variable and no ρ; the interval rests on the rest. "
          : "") +
        "–: no ρ (fewer than 3 checkpoints with both values, or a constant column). " +
        `With few ${what} the intervals are wide: read them before the point estimates.`,
    },
  ];
  const target = opts.scatterTarget ?? a.targets.at(-1);
  if (!target) return blocks;
  // Names up to 10 characters label their points; longer ones (a sweep's run ids) are numbered,
  // with the key under the plots.
  const numbered = a.points.some((p) => p.name.length > 10);
  const charts: Block[] = [];
  for (const q of a.quantities) {
    const c = a.cells.find((c) => c.quantity === q && c.target === target)!;
    const pts = a.points.map((p, i) => ({
      x: p.quantities[q],
      y: p.targets[target],
      name: p.name,
      group: opts.groupOf?.(p.name) ?? p.name,
      label: numbered ? String(i + 1) : p.name,
    }));
    if (!pts.some((p) => Number.isFinite(p.x) && Number.isFinite(p.y))) continue;
    charts.push({
      kind: "svg",
      svg: await renderSvg(predictorScatterChart(pts, {
        title: c.n < 3
          ? `ρ: – (n = ${c.n})`
          : Number.isNaN(c.rho)
          ? "ρ: – (a constant variable)"
          : `ρ = ${signed(c.rho)} [${signed(c.lo)}, ${signed(c.hi)}]`,
        xTitle: q,
        yTitle: target,
      })),
    });
  }
  if (charts.length) {
    blocks.push({
      kind: "text",
      text: `Each measured quantity against ${target}, one point per ${what.replace(/s$/, "")}` +
        (numbered ? ", numbered as listed below the plots" : "") +
        "; points that coincide share a label, and a label with no free place beside its " +
        "point is left out.",
    }, {
      kind: "row",
      blocks: charts,
    });
    if (numbered) {
      blocks.push({
        kind: "text",
        text: a.points.map((p, i) => `${i + 1}: ${p.name}`).join(" · "),
      });
    }
  }
  return blocks;
}

/**
 * The memorisation curve of a run with randomized labels (Zhang et al. 2017): per epoch, the
 * training set's accuracy against its noisy and its clean labels, the fraction of relabelled
 * samples fitted to their random label, and test accuracy. Null when the history has none.
 * @param name model name, for the title
 * @param history the checkpoint's per-epoch records
 * @param noise the checkpoint's `data.labelNoise` record, if any (for the title)
 */
async function memorizationBlock(
  name: string,
  history: readonly Partial<EpochRecord>[],
  noise?: { fraction?: number; corrupted?: number; samples?: number },
): Promise<Block | null> {
  const pts: SeriesPoint[] = [];
  for (const e of history) {
    const m = e.memorization;
    if (!m || e.epoch === undefined) continue;
    pts.push(
      { x: e.epoch, y: m.noisyAccuracy, series: "train, noisy labels" },
      { x: e.epoch, y: m.cleanAccuracy, series: "train, clean labels" },
      { x: e.epoch, y: m.memorized, series: "relabelled samples memorised" },
    );
    if (e.testAccuracy !== undefined) {
      pts.push({ x: e.epoch, y: e.testAccuracy, series: "test" });
    }
  }
  if (!pts.length) return null;
  const p = noise?.fraction;
  return {
    kind: "svg",
    svg: await renderSvg(lineChart(pts, {
      title: `${name}: memorisation${p === undefined ? "" : `, label noise p = ${p}`}`,
      xTitle: "epoch",
      yTitle: "accuracy (eval mode)",
      yDomain: [0, 1],
      points: history.length < 30,
      integerX: true,
    })),
    caption: noise?.corrupted === undefined
      ? undefined
      : `${noise.corrupted} of ${noise.samples} training labels replaced by random other classes`,
  };
}

/**
 * Per-layer trajectory charts of a run: ‖θ_t‖, ‖∇θ_t‖ (log scale) and ‖θ_t − θ_0‖ against the
 * global step, one curve per layer. Null when the history has no trajectory.
 * @param name model name, for the titles
 * @param history the checkpoint's per-epoch records
 */
async function trajectoryBlock(
  name: string,
  history: readonly Partial<EpochRecord>[],
): Promise<Block | null> {
  const norm: SeriesPoint[] = [], grad: SeriesPoint[] = [], dist: SeriesPoint[] = [];
  for (const e of history) {
    const t = e.trajectory;
    if (!t) continue;
    for (const [layer, v] of Object.entries(t.layers)) {
      t.steps.forEach((step, i) => {
        norm.push({ x: step, y: v.paramNorm[i], series: layer });
        grad.push({ x: step, y: v.gradNorm[i], series: layer });
        dist.push({ x: step, y: v.distance[i], series: layer });
      });
    }
  }
  if (!norm.length) return null;
  const chart = async (pts: SeriesPoint[], title: string, logY = false): Promise<Block> => ({
    kind: "svg",
    svg: await renderSvg(
      lineChart(pts, {
        title: `${name}: ${title}`,
        xTitle: "step",
        yTitle: title,
        logY,
        points: false,
        integerX: true,
      }),
    ),
  });
  return {
    kind: "row",
    blocks: [
      await chart(norm, "‖θ‖ per layer"),
      await chart(grad, "‖∇θ L‖ per layer", true),
      await chart(dist, "‖θ − θ₀‖ per layer"),
    ],
  };
}

/**
 * Draws the measured comparison as one self-contained HTML page (no external resources).
 * @param r what `measureModels` (src/metrics/report.ts) returned
 * @returns the page
 */
export async function renderReport(r: ReportMeasurements): Promise<string> {
  const s = r.settings;
  const { show, resolution: res, range, attacks, eps } = s;
  const names = r.classNames;
  const d = r.sampleShape.reduce((a, b) => a * b, 1);
  const models = r.models;

  const reliability: Block[] = [], confHist: Block[] = [], jacHist: Block[] = [];
  const robustPoints: SeriesPoint[] = [];
  const curves: SeriesPoint[] = [], accCurves: SeriesPoint[] = [];
  const planeRows: Block[][] = Array.from({ length: show }, () => []);
  const advRows: Block[][] = Array.from({ length: show }, () => []);
  const attribution: Block[] = [];
  const pcaBlocks: Block[] = [];
  const mapBlocks: Block[] = [];
  const weightRows: (string | number)[][] = [];
  const toyBlocks: Block[] = [];
  const memoBlocks: Block[] = [], trajBlocks: Block[] = [];

  for (const mm of models) {
    const { name, evaluation: m } = mm;
    mm.planes.forEach((p, i) => {
      planeRows[i].push({
        kind: "png",
        uri: png(classMapImage(p.classes, res, res, { classes: r.classes, marker: true })),
        width: 220,
        caption: `${name}: label ${names[r.shownLabels[i]]}, predicted ${
          names[p.centreClass]
        }, cell radius ${p.censored ? "≥ " : ""}${p.radius.toFixed(3)}`,
      });
    });
    mm.adversarialPlanes.forEach((p, i) => {
      const a = r.adversarial[i];
      if (!p || !a) return;
      advRows[i].push({
        kind: "png",
        uri: png(classMapImage(p.classes, res, res, { classes: r.classes, marker: true })),
        width: 220,
        caption: `${name}: sample #${i}, x axis toward ${models[0].name}'s FGSM example ` +
          `(at ${a.distance.toFixed(2)} to the right)`,
      });
    });
    for (const [a, accs] of Object.entries(mm.row.robustness?.accuracy ?? {})) {
      accs.forEach((acc, i) => robustPoints.push({ x: eps[i], y: acc, series: name, dash: a }));
    }
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
        histogramChart(mm.jacobianHistogram, { title: name, xTitle: "‖J(x)‖_F per sample" }),
      ),
    });
    const hist = mm.history as unknown as Partial<EpochRecord>[];
    const memo = await memorizationBlock(name, hist, mm.labelNoise);
    if (memo) memoBlocks.push(memo);
    const traj = await trajectoryBlock(name, hist);
    if (traj) trajBlocks.push(traj);
    for (const e of mm.history) {
      curves.push({ x: e.epoch, y: e.trainLoss, series: name, dash: "train" });
      if (e.valLoss !== undefined) {
        curves.push({ x: e.epoch, y: e.valLoss, series: name, dash: "val" });
      }
      accCurves.push({ x: e.epoch, y: e.trainAccuracy, series: name, dash: "train" });
      if (e.valAccuracy !== undefined) {
        accCurves.push({ x: e.epoch, y: e.valAccuracy, series: name, dash: "val" });
      }
    }
    if (mm.attribution) {
      const [, h, w] = r.sampleShape;
      const scale = Math.max(1, Math.round(112 / w));
      const row: Block[] = [];
      for (let i = 0; i < show; i++) {
        const xi = r.shownInputs.subarray(i * d, (i + 1) * d);
        row.push({
          kind: "png",
          uri: png(imageWithOverlay(xi, r.sampleShape, {
            heat: mm.attribution.saliency.subarray(i * h * w, (i + 1) * h * w),
            scale,
          })),
          caption: `${name}: saliency #${i}`,
        });
        const occ = mm.attribution.occlusion[i];
        row.push({
          kind: "png",
          uri: png(
            // Negated so that a drop of the class score (an important region) is red.
            heatmapImage(occ.map.map((v) => -v), h, w, {
              symmetric: true,
              scheme: "redblue",
              scale,
            }),
          ),
          caption: `${name}: occlusion #${i}, ${names[occ.target]} logit`,
        });
      }
      attribution.push({ kind: "row", blocks: row });
    }
    if (mm.pca) {
      const scatter = (
        title: string,
        pts: { x: number; y: number; label: number }[],
        xTitle: string,
        yTitle: string,
      ) =>
        renderSvg(scatterChart(pts, {
          title,
          classNames: names,
          classes: r.classes,
          xTitle,
          yTitle,
        }));
      for (const p of mm.pca.slice(-3)) {
        const blocks: Block[] = [{
          kind: "svg",
          svg: await scatter(
            `${name}: ${p.layer}, PCA`,
            Array.from({ length: p.n }, (_, i) => ({
              x: p.projections[i * p.k],
              y: p.k > 1 ? p.projections[i * p.k + 1] : 0,
              label: p.labels?.[i] ?? 0,
            })),
            `PC1 (${(100 * p.explained[0]).toFixed(1)}%)`,
            p.k > 1 ? `PC2 (${(100 * p.explained[1]).toFixed(1)}%)` : "",
          ),
        }];
        const t = mm.tsne?.find((t) => t.layer === p.layer);
        if (t) {
          blocks.push({
            kind: "svg",
            svg: await scatter(
              `${name}: ${t.layer}, t-SNE`,
              Array.from({ length: t.n }, (_, i) => ({
                x: t.embedding[2 * i],
                y: t.embedding[2 * i + 1],
                label: t.labels?.[i] ?? 0,
              })),
              "t-SNE 1",
              "t-SNE 2",
            ),
            caption: `exact t-SNE of ${t.n} samples, perplexity ${t.perplexity}, ` +
              `${t.iterations} iterations, KL(P‖Q) = ${t.kl.toFixed(3)}`,
          });
        }
        pcaBlocks.push({ kind: "row", blocks });
      }
    }
    /** The maps inside the residual block being drawn, shown folded under its output. */
    let inside: Block[] = [];
    /** This model's maps: one fold per model when there are several (the first open). */
    const modelMaps: Block[] = [];
    for (const fm of mm.featureMaps ?? []) {
      const scale = Math.max(1, Math.round(56 / fm.width));
      const chw = fm.channels * fm.height * fm.width;
      const shown = fm.channels < fm.totalChannels
        ? `channels 0–${fm.channels - 1} of ${fm.totalChannels}`
        : `${fm.channels} channels`;
      const row: Block[] = [];
      for (let i = 0; i < fm.n; i++) {
        row.push({
          kind: "png",
          uri: png(channelGridImage(fm.values.subarray(i * chw, (i + 1) * chw), [
            fm.channels,
            fm.height,
            fm.width,
          ], { min: fm.min, max: fm.max, scale })),
          caption: `${name}: ${fm.layer}${
            fm.kind === "block"
              ? " output"
              : fm.layer.startsWith(`${fm.source} `)
              ? ""
              : ` after ${fm.source}`
          }, sample #${i} (label ${
            names[r.featureMapLabels[i]]
          }), ${shown} ${fm.height}×${fm.width}`,
        });
      }
      const ranges = Array.from(
        { length: fm.channels },
        (_, c) => `${c}: [${fm.min[c].toPrecision(2)}, ${fm.max[c].toPrecision(2)}]`,
      ).join(" · ");
      const layerBlocks: Block[] = [{ kind: "row", blocks: row }, {
        kind: "text",
        text: `${name}, ${fm.layer}: colour scale per channel (viridis, dark = min, yellow = ` +
          `max over the ${fm.n} samples), channel: [min, max] — ${ranges}`,
      }];
      if (fm.block !== undefined) {
        inside.push(...layerBlocks);
        continue;
      }
      modelMaps.push(...layerBlocks);
      if (fm.kind === "block" && inside.length) {
        const n = inside.length / 2;
        modelMaps.push({
          kind: "details",
          summary: `${fm.source}: the ${n} convolution${n === 1 ? "" : "s"} inside the block`,
          blocks: inside,
        });
      }
      inside = [];
    }
    if (modelMaps.length && models.length > 1) {
      const layers = (mm.featureMaps ?? []).filter((f) => f.block === undefined).length;
      mapBlocks.push({
        kind: "details",
        summary: `${name}: ${layers} layer${layers === 1 ? "" : "s"}`,
        blocks: modelMaps,
        open: mapBlocks.length === 0,
      });
    } else mapBlocks.push(...modelMaps);
    for (const w of mm.weights) {
      weightRows.push([
        name,
        w.name,
        `[${w.shape.join(",")}]`,
        w.l2,
        w.spectralNorm ?? NaN,
        w.condition ?? NaN,
        pct(w.sparsity),
      ]);
    }
    if (mm.toy) {
      const t = mm.toy;
      toyBlocks.push({
        kind: "row",
        blocks: [
          {
            kind: "png",
            uri: png(classMapImage(t.classes, 150, 150, { classes: r.classes, scale: 2 })),
            caption: `${name}: decision map of [-2, 2]²`,
          },
          {
            kind: "png",
            uri: png(heatmapImage(t.areaFactor, 150, 150, { scale: 2 })),
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
    "margin (mean)",
  ];
  const hasGap = s.trainSamples > 0;
  if (hasGap) header.splice(2, 0, "train acc", "gap");
  for (const a of attacks) for (const e of eps) header.push(`${a} ε=${e}`);
  const table: Block = {
    kind: "table",
    caption: `${r.dataName}, ${s.samples} samples; TV over ${s.images * s.planesPerImage} planes ` +
      `(${s.images} centres × ${s.planesPerImage} random directions, ±${range} pixel units, ` +
      `${res}×${res}); ‖J‖_F ${
        s.nproj === -1 ? "exact" : `estimated with ${s.nproj} projections`
      } on ${s.jacobianSamples} samples` +
      (hasGap
        ? `; train acc on up to ${s.trainSamples} samples of each model's own training split`
        : "") +
      `; margin: mean logit margin f_y − max_{j≠y} f_j`,
    header,
    rows: models.map(({ row }) => {
      const cells: (string | number)[] = [
        row.name,
        pct(row.accuracy),
        row.loss,
        row.ece,
        row.mce,
        fmtPm(row.jacobianMean, row.jacobianSe),
        fmtPm(row.tvIso, row.tvIsoSe),
        fmtPm(row.tvAniso, row.tvAnisoSe),
        `${row.discCensored ? "≥ " : ""}${row.discRadius.toPrecision(3)}`,
        row.margin,
      ];
      if (hasGap) {
        cells.splice(2, 0, pct(row.trainAccuracy ?? NaN), pct(row.generalizationGap ?? NaN));
      }
      for (const a of attacks) {
        for (let i = 0; i < eps.length; i++) {
          cells.push(pct(row.robustness?.accuracy[a]?.[i] ?? NaN));
        }
      }
      return cells;
    }),
  };
  const blocks: Block[] = [{ kind: "heading", text: "Comparison" }, table];
  if (models.some((m) => m.training)) {
    blocks.push({
      kind: "table",
      caption: "How each model was trained (checkpoint metadata); with adversarial training, " +
        "the training curves are those of the adversarial batches",
      header: ["model", "regularizers", "adversarial training"],
      rows: models.map((
        m,
      ) => [m.name, m.training?.regularizers ?? "-", m.training?.adversarial ?? "-"]),
    });
  }
  if (s.attacksSkipped) {
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
            lineChart(curves, { title: "loss", xTitle: "epoch", yTitle: "loss", integerX: true }),
          ),
        },
        {
          kind: "svg",
          svg: await renderSvg(
            lineChart(accCurves, {
              title: "accuracy",
              xTitle: "epoch",
              yTitle: "accuracy",
              integerX: true,
            }),
          ),
        },
      ],
    });
  }
  if (memoBlocks.length) {
    blocks.push(
      { kind: "heading", text: "Memorisation (randomized labels)" },
      {
        kind: "text",
        text: "Zhang et al. 2017: a network fits training labels replaced by random ones. " +
          "Per epoch, in eval mode: the training set against the labels it was trained on " +
          "(noisy) and against its original labels (clean), the relabelled samples predicted " +
          "as their random label, and test accuracy (recorded only, never used for stopping).",
      },
      { kind: "row", blocks: memoBlocks },
    );
  }
  if (trajBlocks.length) {
    blocks.push(
      { kind: "heading", text: "Trajectories" },
      {
        kind: "text",
        text: "Per layer, at sampled steps: the weights before the step's update, the gradient " +
          "the optimizer applied (data loss and penalties), and the distance from the " +
          "weights training started from.",
      },
      ...trajBlocks,
    );
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
      caption: `PGD: ${s.pgdSteps} steps, step ${
        s.pgdAlpha === undefined ? "2.5ε/steps" : s.pgdAlpha
      }, ${s.randomStart ? "random start" : "no random start"}`,
    });
  }
  if (r.predictors) {
    blocks.push(
      ...await predictorBlocks(r.predictors, { scatterTarget: r.predictors.scatterTarget }),
    );
  } else if (models.length === 2) {
    blocks.push({
      kind: "text",
      text: "What predicts robustness: rank correlations need 3 or more checkpoints.",
    });
  }
  blocks.push(
    { kind: "heading", text: "Calibration" },
    { kind: "row", blocks: reliability },
    { kind: "row", blocks: confHist },
    { kind: "heading", text: "Jacobian norm per sample" },
    { kind: "row", blocks: jacHist },
  );
  if (r.classes <= 20) {
    blocks.push({ kind: "heading", text: "Accuracy per class" }, {
      kind: "table",
      header: ["class", ...models.map((m) => m.name)],
      rows: names.map((c, k) => [
        c,
        ...models.map((m) => pct(m.evaluation.perClassAccuracy[k])),
      ]),
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
    if (r.adversarial.some((a) => a)) {
      blocks.push(
        {
          kind: "text",
          text:
            `Planes whose horizontal axis points from the sample to ${
              models[0].name
            }'s FGSM example at ε = ${r.adversarialEps} (vertical axis random); the same ` +
            `planes for every model.`,
        },
        ...advRows.filter((b) => b.length).map((b): Block => ({ kind: "row", blocks: b })),
      );
    }
  }
  if (attribution.length) {
    blocks.push({ kind: "heading", text: "Saliency and occlusion" }, {
      kind: "text",
      text: "Per sample: saliency over the input (max over channels of |∂ logit / ∂x|, " +
        "Simonyan et al. 2013; bright = large) and occlusion (Zeiler & Fergus 2014; red: " +
        "covering the region with black lowers the named logit, blue: raises it).",
    }, ...attribution);
  }
  if (mapBlocks.length) {
    const inputs: Block[] = [];
    const [, h, w] = r.sampleShape;
    for (let i = 0; i < r.featureMapLabels.length; i++) {
      inputs.push({
        kind: "png",
        uri: png(imageWithOverlay(r.featureMapInputs.subarray(i * d, (i + 1) * d), r.sampleShape, {
          scale: Math.max(1, Math.round(112 / w)),
        })),
        caption: `sample #${i}, label ${names[r.featureMapLabels[i]]} (${h}×${w})`,
      });
    }
    blocks.push(
      { kind: "heading", text: "Feature maps" },
      {
        kind: "text",
        text: "Each tile is one channel of a convolution's output after its activation (or " +
          "after its normalization where no activation follows), in eval mode. A residual " +
          "block shows its output (after the block's final ReLU); the convolutions inside it " +
          "(conv1 after bn1 and ReLU, conv2 after bn2 before the residual add, the projection " +
          "shortcut after its BatchNorm) fold out under it. " +
          (s.featureMapChannels
            ? `At most the first ${s.featureMapChannels} channels of each layer are drawn ` +
              "(--feature-map-channels). "
            : "") +
          "Every channel has its own colour scale, from its smallest (dark) to its largest " +
          "value (yellow) over the samples shown; the ranges follow each row." +
          (models.length > 1 ? " One fold per model, the first open." : ""),
      },
      { kind: "row", blocks: inputs },
      ...mapBlocks,
    );
  }
  if (pcaBlocks.length) {
    blocks.push(
      { kind: "heading", text: "PCA and t-SNE of activations" },
      {
        kind: "text",
        text: `Per layer, the first two principal components (left) and a 2-D exact t-SNE ` +
          `(van der Maaten & Hinton 2008, seeded; right, on the first ${s.tsneSamples} of the ` +
          `same samples) of the activations.`,
      },
      ...pcaBlocks,
    );
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
  return htmlPage(`regula report: ${models.map((m) => m.name).join(" vs ")}`, blocks);
}
