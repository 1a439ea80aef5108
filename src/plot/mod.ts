/**
 * Pictures: PNG rasters (decision planes, heat maps, overlays) encoded with `fast-png`, charts
 * as SVG from Vega-Lite specs rendered headless by `vega`, and one self-contained HTML page that
 * embeds both; {@linkcode renderReport} draws a measured model comparison (src/metrics/report.ts)
 * as such a page.
 *
 * @example
 * ```ts
 * import { classMapImage, encodePng, pngDataUri, renderSvg, lineChart } from "./mod.ts";
 * const uri = pngDataUri(encodePng(classMapImage(plane.classes, 250, 250, { classes: 10 })));
 * const svg = await renderSvg(lineChart([{ x: 0, y: 1, series: "loss" }]));
 * ```
 *
 * @module
 */

export { classPalette, colorMap, parseColor, type Rgb } from "./colors.ts";
export {
  classMapImage,
  decodePng,
  encodePng,
  heatmapImage,
  imageWithOverlay,
  pngDataUri,
  type RgbaImage,
} from "./png.ts";
export {
  barChart,
  histogramChart,
  lineChart,
  reliabilityChart,
  renderSvg,
  scatterChart,
  type SeriesPoint,
  type VegaLiteSpec,
} from "./charts.ts";
export { type Block, escapeHtml, htmlPage } from "./html.ts";
export { formatMeanSe, formatPercent, renderReport } from "./report.ts";
