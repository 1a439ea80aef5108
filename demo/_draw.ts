/// <reference lib="dom" />
/**
 * Raster pictures on canvases: class maps, heat maps, points, arrows, 28 × 28 images with
 * overlays. (Charts with axes are Vega-Lite, demo/_charts.ts; these are images, one value per
 * pixel, which Vega-Lite would draw as thousands of marks.)
 *
 * @module
 */

/** Parses "#rrggbb". @param hex colour @returns [r, g, b] */
export function rgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

// Viridis at 9 evenly spaced stops (matplotlib's colormap, van der Walt & Smith 2015).
const VIRIDIS = [
  "#440154",
  "#472d7b",
  "#3b528b",
  "#2c728e",
  "#21918c",
  "#28ae80",
  "#5ec962",
  "#addc30",
  "#fde725",
].map(rgb);

/** Viridis colour of t in [0, 1]. @param t position @returns [r, g, b] */
export function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  const a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [0, 1, 2].map((c) => Math.round(a[c] + f * (b[c] - a[c]))) as [number, number, number];
}

/**
 * Draws an R × R grid of colours over the whole canvas (nearest-neighbour).
 * @param canvas target
 * @param res R
 * @param colorAt colour of cell i (row-major, row 0 at the top)
 */
export function drawGrid(
  canvas: HTMLCanvasElement,
  res: number,
  colorAt: (i: number) => [number, number, number, number],
): void {
  const img = new ImageData(res, res);
  for (let i = 0; i < res * res; i++) img.data.set(colorAt(i), 4 * i);
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = res;
  tmp.getContext("2d")!.putImageData(img, 0, 0);
  const ctx = canvas.getContext("2d")!;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

/**
 * A heat map with a log or linear colour scale; returns the range it mapped.
 * @param canvas target
 * @param values (R·R,) row-major, row 0 at the top
 * @param res R
 * @param log colour by log10 of the value (values <= 0 get the lowest colour)
 * @returns [min, max] of the values
 */
export function drawHeat(
  canvas: HTMLCanvasElement,
  values: ArrayLike<number>,
  res: number,
  log: boolean,
): [number, number] {
  let lo = Infinity, hi = -Infinity;
  const f = (v: number) => log ? Math.log10(Math.max(v, 1e-12)) : v;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v) || (log && v <= 0)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (!(hi >= lo)) lo = hi = 0;
  const a = f(lo), b = f(hi), span = b - a;
  // A constant map (a linear model's J) gets the middle colour.
  drawGrid(canvas, res, (i) => [...viridis(span > 0 ? (f(values[i]) - a) / span : 0.5), 255]);
  return [lo, hi];
}

/** Maps plane coordinates in a square [-r, r]² to canvas pixels. */
export class PlaneView {
  /** @param canvas target @param range half-width r */
  constructor(readonly canvas: HTMLCanvasElement, readonly range: number) {}
  /** @param x plane x @returns canvas x */
  px(x: number): number {
    return ((x + this.range) / (2 * this.range)) * this.canvas.width;
  }
  /** @param y plane y @returns canvas y (up is +y) */
  py(y: number): number {
    return ((this.range - y) / (2 * this.range)) * this.canvas.height;
  }
}

/**
 * Scatter of labelled points: filled discs (train) or rings (test).
 * @param view plane-to-canvas map
 * @param x (N·2,) coordinates
 * @param y (N,) classes
 * @param colors class colours
 * @param filled discs or rings
 */
export function drawPoints(
  view: PlaneView,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  colors: readonly string[],
  filled: boolean,
): void {
  const ctx = view.canvas.getContext("2d")!;
  for (let i = 0; i < y.length; i++) {
    ctx.beginPath();
    ctx.arc(view.px(x[2 * i]), view.py(x[2 * i + 1]), filled ? 3.6 : 2.4, 0, 2 * Math.PI);
    if (filled) {
      ctx.fillStyle = colors[y[i]];
      ctx.fill();
      ctx.lineWidth = 1.2;
      ctx.strokeStyle = "#000";
    } else {
      ctx.lineWidth = 1;
      ctx.strokeStyle = colors[y[i]];
    }
    ctx.stroke();
  }
}

/**
 * An arrow from (x0, y0) to (x1, y1) in plane coordinates.
 * @param view plane-to-canvas map
 * @param from start
 * @param to end
 * @param color stroke colour
 */
export function drawArrow(
  view: PlaneView,
  from: [number, number],
  to: [number, number],
  color: string,
): void {
  const ctx = view.canvas.getContext("2d")!;
  const ax = view.px(from[0]), ay = view.py(from[1]);
  const bx = view.px(to[0]), by = view.py(to[1]);
  const ang = Math.atan2(by - ay, bx - ax), head = 9;
  ctx.strokeStyle = "#000";
  ctx.fillStyle = color;
  ctx.lineWidth = 4;
  for (const [w, c] of [[4.5, "#000"], [2.5, color]] as const) {
    ctx.lineWidth = w;
    ctx.strokeStyle = c;
    ctx.beginPath();
    ctx.moveTo(ax, ay);
    ctx.lineTo(bx, by);
    ctx.stroke();
  }
  ctx.beginPath();
  ctx.moveTo(bx, by);
  ctx.lineTo(bx - head * Math.cos(ang - 0.45), by - head * Math.sin(ang - 0.45));
  ctx.lineTo(bx - head * Math.cos(ang + 0.45), by - head * Math.sin(ang + 0.45));
  ctx.closePath();
  ctx.lineWidth = 1;
  ctx.strokeStyle = "#000";
  ctx.fill();
  ctx.stroke();
}

/**
 * A grey image (values in [0, 1]) with an optional heat overlay, over the whole canvas.
 * @param canvas target
 * @param pixels (H·W,) in [0, 1]
 * @param side H = W
 * @param overlay (H·W,) values coloured by viridis over [0, max], blended at `alpha`
 * @param alpha overlay weight
 */
export function drawImage(
  canvas: HTMLCanvasElement,
  pixels: ArrayLike<number>,
  side: number,
  overlay?: ArrayLike<number>,
  alpha = 0.65,
): void {
  let max = 0;
  if (overlay) {
    for (let i = 0; i < overlay.length; i++) {
      max = Math.max(max, Math.abs(overlay[i]));
    }
  }
  drawGrid(canvas, side, (i) => {
    const g = 255 * Math.min(1, Math.max(0, pixels[i]));
    if (!overlay) return [g, g, g, 255];
    const [r, gg, b] = viridis(max > 0 ? Math.max(0, overlay[i]) / max : 0);
    return [
      (1 - alpha) * g + alpha * r,
      (1 - alpha) * g + alpha * gg,
      (1 - alpha) * g + alpha * b,
      255,
    ];
  });
}

/**
 * Saves a canvas as a PNG download.
 * @param canvas the picture
 * @param name file name
 * @returns the PNG's data URL (also what the download holds)
 */
export function downloadPng(canvas: HTMLCanvasElement, name: string): string {
  const url = canvas.toDataURL("image/png");
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  return url;
}
