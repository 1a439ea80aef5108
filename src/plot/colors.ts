/**
 * Colours shared by the raster images and the Vega-Lite charts, so that a class has the same
 * colour in a boundary plane, its legend and a PCA scatter: Vega's "tableau10" scheme (the
 * Vega-Lite default) for up to 10 classes, "tableau20" up to 20, then evenly spaced hues.
 * Continuous maps use Vega's "viridis" and "redblue" interpolators.
 *
 * @module
 */

// Full npm: specifiers, not import-map names: a URL import of this module has no import map.
// deno-lint-ignore no-import-prefix
import * as vega from "npm:vega@6.4.0";

/** An RGB triple, 0–255. */
export type Rgb = [number, number, number];

/** Parses "#rrggbb" or "rgb(r, g, b)". */
export function parseColor(s: string): Rgb {
  const hex = /^#([0-9a-f]{6})$/i.exec(s);
  if (hex) {
    const v = parseInt(hex[1], 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }
  const m = /^rgba?\((\d+(?:\.\d+)?),\s*(\d+(?:\.\d+)?),\s*(\d+(?:\.\d+)?)/.exec(s);
  if (m) return [Math.round(+m[1]), Math.round(+m[2]), Math.round(+m[3])];
  throw new Error(`parseColor: cannot read colour '${s}'`);
}

function hslHex(h: number, s: number, l: number): string {
  const f = (n: number) => {
    const k = (n + h / 30) % 12;
    const c = l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(255 * c).toString(16).padStart(2, "0");
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

/**
 * `n` categorical colours as "#rrggbb" (the same list goes to the images and to Vega-Lite's
 * `scale.range`).
 * @param n number of classes
 */
export function classPalette(n: number): string[] {
  if (n <= 10) return (vega.scheme("tableau10") as string[]).slice(0, n);
  if (n <= 20) return (vega.scheme("tableau20") as string[]).slice(0, n);
  // Golden-angle hues, alternating lightness, for CIFAR-100-sized label sets.
  return Array.from({ length: n }, (_, i) => hslHex((i * 137.508) % 360, 0.65, i % 2 ? 0.4 : 0.6));
}

/** A continuous colour map `t ∈ [0, 1] → Rgb` from a Vega scheme ("viridis", "redblue", ...). */
export function colorMap(name = "viridis"): (t: number) => Rgb {
  const f = vega.scheme(name) as ((t: number) => string) | undefined;
  if (typeof f !== "function") throw new Error(`colorMap: '${name}' is not a continuous scheme`);
  const lut: Rgb[] = Array.from({ length: 256 }, (_, i) => parseColor(f(i / 255)));
  return (t: number) =>
    lut[Math.max(0, Math.min(255, Math.round((Number.isFinite(t) ? t : 0) * 255)))];
}
