/**
 * The comparison report as one self-contained HTML page, drawn from what src/metrics/report.ts
 * measured: a table of clean accuracy, loss, ECE/MCE, ‖J‖_F, plane TV, cell radius and accuracy
 * under attack, and pictures — training curves from the checkpoints' history, robustness
 * curves, reliability diagrams, confidence histograms, decision-boundary planes with a legend in
 * the same colours, saliency and occlusion overlays, PCA scatters of layer activations, weight
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
import {
  histogramChart,
  lineChart,
  reliabilityChart,
  renderSvg,
  scatterChart,
  type SeriesPoint,
} from "./charts.ts";
import { type Block, htmlPage } from "./html.ts";
import {
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
  const weightRows: (string | number)[][] = [];
  const toyBlocks: Block[] = [];

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
      accs.forEach((acc, i) => robustPoints.push({ x: eps[i], y: acc, series: `${name} ${a}` }));
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
    for (const e of mm.history) {
      curves.push({ x: e.epoch, y: e.trainLoss, series: `${name} train` });
      if (e.valLoss !== undefined) curves.push({ x: e.epoch, y: e.valLoss, series: `${name} val` });
      accCurves.push({ x: e.epoch, y: e.trainAccuracy, series: `${name} train` });
      if (e.valAccuracy !== undefined) {
        accCurves.push({ x: e.epoch, y: e.valAccuracy, series: `${name} val` });
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
          caption: `${name}: occlusion #${i} (red: occluding lowers the ${
            names[occ.target]
          } logit)`,
        });
      }
      attribution.push({ kind: "row", blocks: row });
    }
    if (mm.pca) {
      const blocks: Block[] = [];
      for (const p of mm.pca.slice(-3)) {
        const pts = Array.from({ length: p.n }, (_, i) => ({
          x: p.projections[i * p.k],
          y: p.k > 1 ? p.projections[i * p.k + 1] : 0,
          label: p.labels?.[i] ?? 0,
        }));
        blocks.push({
          kind: "svg",
          svg: await renderSvg(scatterChart(pts, {
            title: `${name}: ${p.layer}`,
            classNames: names,
            classes: r.classes,
            xTitle: `PC1 (${(100 * p.explained[0]).toFixed(1)}%)`,
            yTitle: p.k > 1 ? `PC2 (${(100 * p.explained[1]).toFixed(1)}%)` : "",
          })),
        });
      }
      pcaBlocks.push({ kind: "row", blocks });
    }
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
  ];
  for (const a of attacks) for (const e of eps) header.push(`${a} ε=${e}`);
  const table: Block = {
    kind: "table",
    caption: `${r.dataName}, ${s.samples} samples; TV over ${s.images * s.planesPerImage} planes ` +
      `(${s.images} centres × ${s.planesPerImage} random directions, ±${range} pixel units, ` +
      `${res}×${res}); ‖J‖_F ${
        s.nproj === -1 ? "exact" : `estimated with ${s.nproj} projections`
      } on ${s.jacobianSamples} samples`,
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
      ];
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
      caption: `PGD: ${s.pgdSteps} steps, step ${
        s.pgdAlpha === undefined ? "2.5ε/steps" : s.pgdAlpha
      }, ${s.randomStart ? "random start" : "no random start"}`,
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
  return htmlPage(`regula report: ${models.map((m) => m.name).join(" vs ")}`, blocks);
}
