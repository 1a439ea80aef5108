/**
 * Pictures: PNG rasters (decision planes, heat maps, overlays) encoded with `fast-png`, charts
 * as SVG from Vega-Lite specs rendered headless by `vega`, and one self-contained HTML page that
 * embeds both; {@linkcode renderReport} draws a measured model comparison (src/metrics/report.ts)
 * as such a page.
 *
 * @example
 * ```ts
 * import { classMapImage, encodePng, lineChart, pngDataUri, renderSvg } from "@regula/regula/plot";
 *
 * const classes = Int32Array.from({ length: 64 * 64 }, (_, i) => (i % 64 < 32 ? 0 : 1));
 * const uri = pngDataUri(encodePng(classMapImage(classes, 64, 64, { classes: 2 })));
 * const svg = await renderSvg(lineChart([{ x: 0, y: 1, series: "loss" }]));
 * console.log(uri.slice(0, 22), svg.length); // data:image/png;base64 ...
 * ```
 *
 * @module
 */

export { classPalette, colorMap, parseColor, type Rgb } from "./colors.ts";
export {
  channelGridImage,
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
  predictorScatterChart,
  type PredictorScatterPoint,
  reliabilityChart,
  renderSvg,
  scatterChart,
  type SeriesPoint,
  type VegaLiteSpec,
} from "./charts.ts";
export { type Block, escapeHtml, htmlPage } from "./html.ts";
export { formatMeanSe, formatPercent, predictorBlocks, renderReport } from "./report.ts";
