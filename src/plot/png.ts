/**
 * Raster pictures as PNG, encoded by `fast-png`: class maps of decision planes, heat maps
 * (saliency, occlusion, Jacobian area factor), images and heat-map overlays. Pixels are nearest
 * neighbour upscaled by an integer factor so small maps stay crisp.
 *
 * @module
 */

// Full npm: specifiers, not import-map names: a URL import of this module has no import map.
// deno-lint-ignore no-import-prefix
import { decode, encode } from "npm:fast-png@6.4.0";
import { classPalette, colorMap, parseColor, type Rgb } from "./colors.ts";

/** An RGBA image. */
export interface RgbaImage {
  width: number;
  height: number;
  /** (height, width, 4) bytes. */
  data: Uint8Array;
}

/**
 * Encodes an RGBA image as PNG bytes.
 * @param img the image
 * @returns PNG file bytes
 */
export function encodePng(img: RgbaImage): Uint8Array {
  if (img.data.length !== img.width * img.height * 4) {
    throw new Error(
      `encodePng: ${img.data.length} bytes for a ${img.width}x${img.height} RGBA image`,
    );
  }
  return encode({ width: img.width, height: img.height, data: img.data, channels: 4, depth: 8 });
}

/**
 * Decodes PNG bytes (any channel count) to RGBA.
 * @param bytes PNG file
 */
export function decodePng(bytes: Uint8Array): RgbaImage {
  const p = decode(bytes);
  const n = p.width * p.height, ch = p.channels;
  const data = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 4; c++) {
      data[4 * i + c] = c < ch
        ? Number(p.data[i * ch + c])
        : c === 3
        ? 255
        : Number(p.data[i * ch + Math.min(c, ch - 1)]);
    }
  }
  return { width: p.width, height: p.height, data };
}

/** `data:image/png;base64,...` for embedding in HTML. */
export function pngDataUri(png: Uint8Array): string {
  let s = "";
  for (let i = 0; i < png.length; i += 0x8000) {
    s += String.fromCharCode(...png.subarray(i, i + 0x8000));
  }
  return `data:image/png;base64,${btoa(s)}`;
}

function fromPixels(
  w: number,
  h: number,
  scale: number,
  pixel: (r: number, c: number) => Rgb,
): RgbaImage {
  if (!(Number.isInteger(scale) && scale >= 1)) {
    throw new Error(`image scale must be a positive integer, got ${scale}`);
  }
  const W = w * scale, H = h * scale;
  const data = new Uint8Array(W * H * 4);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const [R, G, B] = pixel(r, c);
      for (let dr = 0; dr < scale; dr++) {
        let o = ((r * scale + dr) * W + c * scale) * 4;
        for (let dc = 0; dc < scale; dc++, o += 4) {
          data[o] = R;
          data[o + 1] = G;
          data[o + 2] = B;
          data[o + 3] = 255;
        }
      }
    }
  }
  return { width: W, height: H, data };
}

/**
 * A class map coloured with {@linkcode classPalette} (the legend of the report uses the same
 * list), optionally with a marker at the centre.
 * @param classes (h·w,) class indices, row 0 at the top
 * @param h rows
 * @param w columns (default h)
 * @param opts `classes` palette size (default max + 1), `scale`, `marker` (draw the centre)
 */
export function classMapImage(
  classes: ArrayLike<number>,
  h: number,
  w: number = h,
  opts: { classes?: number; scale?: number; marker?: boolean } = {},
): RgbaImage {
  let k = opts.classes ?? 0;
  if (!k) { for (let i = 0; i < classes.length; i++) k = Math.max(k, classes[i] + 1); }
  const pal = classPalette(Math.max(1, k)).map(parseColor);
  const img = fromPixels(w, h, opts.scale ?? 1, (r, c) => pal[classes[r * w + c]] ?? [0, 0, 0]);
  if (opts.marker) {
    // A small black cross at the centre: the sample the plane goes through.
    const cx = Math.floor(img.width / 2), cy = Math.floor(img.height / 2);
    const arm = Math.max(2, Math.round(img.width / 60));
    for (let t = -arm; t <= arm; t++) {
      for (const [x, y] of [[cx + t, cy], [cx, cy + t]]) {
        if (x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
        img.data.set([0, 0, 0, 255], (y * img.width + x) * 4);
      }
    }
  }
  return img;
}

/**
 * A scalar map through a continuous colour map.
 * @param values (h·w,) numbers, row 0 at the top
 * @param opts `min`/`max` (default the data range; `symmetric` makes it ±max|v|), `scheme`
 *   (Vega scheme name, default "viridis"), `scale`
 */
export function heatmapImage(
  values: ArrayLike<number>,
  h: number,
  w: number = h,
  opts: { min?: number; max?: number; symmetric?: boolean; scheme?: string; scale?: number } = {},
): RgbaImage {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) continue;
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  if (opts.symmetric) {
    const m = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -m;
    hi = m;
  }
  lo = opts.min ?? lo;
  hi = opts.max ?? hi;
  if (!(hi > lo)) hi = lo + 1;
  const cm = colorMap(opts.scheme ?? "viridis");
  return fromPixels(w, h, opts.scale ?? 1, (r, c) => cm((values[r * w + c] - lo) / (hi - lo)));
}

/**
 * An image sample `(C, H, W)` in [0, 1] (C = 1 grey or 3 RGB) with an optional heat map blended
 * on top (`alpha` of the heat colour where the heat is large).
 * @param x (C·H·W,) pixel values in [0, 1]
 * @param shape [C, H, W]
 * @param opts `heat` (H·W,) values ≥ 0 (normalised by their max), `alpha` (default 0.6),
 *   `scheme` (default "inferno"), `scale`
 */
export function imageWithOverlay(
  x: ArrayLike<number>,
  shape: readonly number[],
  opts: { heat?: ArrayLike<number>; alpha?: number; scheme?: string; scale?: number } = {},
): RgbaImage {
  const [c, h, w] = shape.length === 3 ? shape : [1, shape[0], shape[1]];
  let hmax = 0;
  if (opts.heat) { for (let i = 0; i < h * w; i++) hmax = Math.max(hmax, Math.abs(opts.heat[i])); }
  const cm = colorMap(opts.scheme ?? "inferno");
  const alpha = opts.alpha ?? 0.6;
  const px = (v: number) => Math.round(255 * Math.max(0, Math.min(1, v)));
  return fromPixels(w, h, opts.scale ?? 1, (r, q) => {
    const i = r * w + q;
    const base: Rgb = c === 3
      ? [px(x[i]), px(x[h * w + i]), px(x[2 * h * w + i])]
      : [px(x[i]), px(x[i]), px(x[i])];
    if (!opts.heat || hmax === 0) return base;
    const t = Math.abs(opts.heat[i]) / hmax;
    const col = cm(t);
    const a = alpha * t;
    return [0, 1, 2].map((k) => Math.round((1 - a) * base[k] + a * col[k])) as Rgb;
  });
}

/**
 * The channels of one feature map as a grid of tiles, each through a continuous colour map with
 * its own range (`min[c]` → the map's low end, `max[c]` → its high end), separated by a gap.
 * @param values (C·H·W,) one sample's map, channel-major
 * @param shape [C, H, W]
 * @param opts `min`/`max` (C,) per-channel ranges (default each channel's own), `columns`
 *   (default ⌈√C⌉), `scale` (tile upscaling), `gap` (pixels between tiles, default 1), `scheme`
 *   (default "viridis")
 * @returns the grid image (gaps white)
 * @example
 * ```ts
 * const img = channelGridImage(maps.values.subarray(0, 6 * 28 * 28), [6, 28, 28], { scale: 2 });
 * ```
 */
export function channelGridImage(
  values: ArrayLike<number>,
  shape: readonly [number, number, number] | readonly number[],
  opts: {
    min?: ArrayLike<number>;
    max?: ArrayLike<number>;
    columns?: number;
    scale?: number;
    gap?: number;
    scheme?: string;
  } = {},
): RgbaImage {
  const [c, h, w] = shape;
  if (values.length < c * h * w) {
    throw new Error(`channelGridImage: ${values.length} values for shape [${c}, ${h}, ${w}]`);
  }
  const cols = opts.columns ?? Math.ceil(Math.sqrt(c));
  const rows = Math.ceil(c / cols);
  const scale = opts.scale ?? 1, gap = opts.gap ?? 1;
  if (!(Number.isInteger(scale) && scale >= 1 && Number.isInteger(gap) && gap >= 0)) {
    throw new Error(`channelGridImage: scale and gap must be integers >= 1 and >= 0`);
  }
  const tw = w * scale, th = h * scale;
  const W = cols * tw + (cols - 1) * gap, H = rows * th + (rows - 1) * gap;
  const data = new Uint8Array(W * H * 4).fill(255);
  const cm = colorMap(opts.scheme ?? "viridis");
  for (let ch = 0; ch < c; ch++) {
    const o = ch * h * w;
    let lo = opts.min?.[ch] ?? Infinity, hi = opts.max?.[ch] ?? -Infinity;
    if (opts.min === undefined || opts.max === undefined) {
      for (let i = 0; i < h * w; i++) {
        lo = Math.min(lo, values[o + i]);
        hi = Math.max(hi, values[o + i]);
      }
    }
    // A constant channel is drawn at the low end of the map.
    const span = hi > lo ? hi - lo : 1;
    const x0 = (ch % cols) * (tw + gap), y0 = Math.floor(ch / cols) * (th + gap);
    for (let r = 0; r < th; r++) {
      for (let q = 0; q < tw; q++) {
        const v = values[o + Math.floor(r / scale) * w + Math.floor(q / scale)];
        const [R, G, B] = cm(Math.max(0, Math.min(1, (v - lo) / span)));
        data.set([R, G, B, 255], ((y0 + r) * W + x0 + q) * 4);
      }
    }
  }
  return { width: W, height: H, data };
}
