/// <reference lib="dom" />
/**
 * Charts through Vega-Lite, the grammar src/plot uses for the report. The pages load Vega's and
 * Vega-Lite's own browser builds (`vendor/*.min.js`, copied at build time by scripts/demo.ts, so
 * nothing is fetched from a CDN) as globals; a chart is compiled once and its data replaced on
 * each update, drawn with Vega's canvas renderer.
 *
 * @module
 */

/** A Vega-Lite specification (plain JSON). */
export type VegaLiteSpec = Record<string, unknown>;

interface VegaView {
  data(name: string, values: readonly object[]): VegaView;
  resize(): VegaView;
  runAsync(): Promise<VegaView>;
  toCanvas(scale?: number): Promise<HTMLCanvasElement>;
  finalize(): void;
}

interface VegaGlobals {
  vega: {
    View: new (runtime: unknown, opts: Record<string, unknown>) => VegaView;
    parse(spec: unknown): unknown;
  };
  vegaLite: { compile(spec: unknown): { spec: unknown } };
}

function globals(): VegaGlobals {
  const g = globalThis as unknown as Partial<VegaGlobals>;
  if (!g.vega || !g.vegaLite) {
    throw new Error(
      "Vega or Vega-Lite did not load (vendor/vega.min.js, vendor/vega-lite.min.js): " +
        "rebuild the demo with deno task demo:build",
    );
  }
  return g as VegaGlobals;
}

/** A live Vega-Lite chart in a page element, fed through its named data source `values`. */
export class LiveChart {
  #view: VegaView;
  #pending: Promise<unknown> = Promise.resolve();

  /**
   * @param container element the chart's canvas goes into
   * @param spec Vega-Lite spec whose data is `{ name: "values" }`
   */
  constructor(container: HTMLElement, spec: VegaLiteSpec) {
    const { vega, vegaLite } = globals();
    this.#view = new vega.View(vega.parse(vegaLite.compile(spec).spec), {
      renderer: "canvas",
      container,
      hover: false,
    });
    this.#pending = this.#view.runAsync();
  }

  /** Replaces the data and redraws. @param rows the new data */
  update(rows: readonly object[]): Promise<unknown> {
    this.#pending = this.#pending.then(() => this.#view.data("values", rows).resize().runAsync());
    return this.#pending;
  }

  /** The chart as a canvas (for PNG export). @returns a new canvas */
  async toCanvas(): Promise<HTMLCanvasElement> {
    await this.#pending;
    return this.#view.toCanvas();
  }
}

/** Class colours (Tableau 10, as Vega's "tableau10" scheme), shared by maps and charts. */
export const CLASS_COLORS = [
  "#4c78a8",
  "#f58518",
  "#e45756",
  "#72b7b2",
  "#54a24b",
  "#eeca3b",
  "#b279a2",
  "#ff9da6",
  "#9d755d",
  "#bab0ac",
];

/**
 * Loss and accuracy curves against the epoch, one line per series.
 * @param title chart title
 * @returns a spec over rows `{epoch, value, series, panel}` (`panel` "loss" or "accuracy")
 */
export function curvesSpec(title: string): VegaLiteSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, anchor: "start" },
    padding: 8,
    data: { name: "values" },
    hconcat: ["loss", "accuracy"].map((panel) => ({
      width: 170,
      height: 110,
      transform: [{ filter: `datum.panel === '${panel}'` }],
      mark: { type: "line", point: false },
      encoding: {
        x: { field: "epoch", type: "quantitative", title: "epoch" },
        y: {
          field: "value",
          type: "quantitative",
          title: panel,
          scale: panel === "accuracy" ? { domain: [0, 1] } : { zero: true },
        },
        color: { field: "series", type: "nominal", title: null, legend: { orient: "bottom" } },
      },
    })),
    config: { view: { stroke: null }, axis: { grid: true } },
  };
}

/**
 * Class probabilities of several models, bars grouped by class.
 * @param title chart title
 * @returns a spec over rows `{model, cls, p}`
 */
export function probabilitiesSpec(title: string): VegaLiteSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, anchor: "start" },
    padding: 8,
    data: { name: "values" },
    width: 420,
    height: 120,
    mark: "bar",
    encoding: {
      x: { field: "cls", type: "ordinal", title: "class" },
      xOffset: { field: "model" },
      y: { field: "p", type: "quantitative", title: "probability", scale: { domain: [0, 1] } },
      color: { field: "model", type: "nominal", title: null, legend: { orient: "right" } },
    },
    config: { view: { stroke: null } },
  };
}
