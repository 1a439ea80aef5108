/// <reference lib="dom" />
/**
 * The toy-problem page: the seed study's four Gaussian clusters in the plane (src/data/toy.ts),
 * two configurations (model, optimizer, regularizers) trained side by side and redrawn live:
 * decision regions with the training points (discs) and test points (rings), the gradients of
 * the logits at the cluster centres as arrows (for the seed's Linear 2->4 without bias these are
 * its weight rows, which rotate toward the cluster means), a heat map of ||J||_F or det(JᵀJ)
 * over the plane, and loss and accuracy curves (Vega-Lite).
 *
 * Training runs as frames: each frame is one call of `train()` over `epochs per frame` epochs,
 * then the maps are recomputed. NOTE: `train()` starts its optimizer afresh on every call, so
 * Adam's moments (or SGD's momentum) restart each frame, and the dropout masks (keyed by the
 * step counter of the call) repeat from frame to frame with a fresh shuffle; a step-level
 * training API in mod.ts would remove both. The frame seed changes the shuffle and the
 * regularizers' random streams.
 *
 * @module
 */

import {
  argmax,
  type Backend,
  buildModel,
  evaluate,
  type Model,
  type ModelSpec,
  parseRegularizers,
  toy2d,
  TOY2D_CENTRES,
  train,
} from "../mod.ts";
import { type PageBackend, showError, startBackend, yieldToPage } from "./_backend.ts";
import { CLASS_COLORS, curvesSpec, LiveChart } from "./_charts.ts";
import { downloadPng, drawArrow, drawGrid, drawHeat, drawPoints, PlaneView, rgb } from "./_draw.ts";

/** Half-width of the plane shown. */
const RANGE = 2.5;
/** Grid points per side of the maps. */
const RES = 80;

/** One regularizer row of a panel: its `--reg` name and the slider's meaning. */
interface RegKind {
  id: string;
  label: string;
  /** Option set by the slider. */
  option: string;
  /** log10 range of the slider, and its default. */
  min: number;
  max: number;
  init: number;
  /** Extra fixed options. */
  extra?: string;
}

const REGS: RegKind[] = [
  { id: "l1", label: "L1", option: "lambda", min: -5, max: -1, init: -3 },
  { id: "l2", label: "L2", option: "lambda", min: -5, max: -0.5, init: -2 },
  { id: "soft-svb", label: "soft SVB", option: "lambda", min: -4, max: 0, init: -2 },
  {
    id: "hard-svb",
    label: "hard SVB (ε)",
    option: "eps",
    min: -2,
    max: 0,
    init: -1,
    extra: "every=epoch",
  },
  { id: "jacobian", label: "Jacobian", option: "lambda", min: -4, max: 0, init: -1.3 },
  { id: "jacobian-det", label: "determinant", option: "lambda", min: -4, max: 0, init: -2 },
  { id: "input-noise", label: "input noise (σ)", option: "sigma", min: -2, max: 0, init: -0.7 },
  {
    id: "weight-noise",
    label: "weight noise (σ)",
    option: "sigma",
    min: -3,
    max: -0.5,
    init: -1.5,
  },
];

interface PanelConfig {
  model: "linear" | "mlp";
  hidden: number;
  dropout: number;
  lr: number;
  regs: Record<string, number | null>;
  heat: "fro" | "det";
}

interface Row {
  epoch: number;
  series: string;
  panel: "loss" | "accuracy";
  value: number;
}

/** Darker class colours for the test rings. */
const DARK = CLASS_COLORS.map((c) => {
  const [r, g, b] = rgb(c);
  return `rgb(${0.6 * r | 0},${0.6 * g | 0},${0.6 * b | 0})`;
});

const CENTRES = TOY2D_CENTRES.map(([a, b]) => [a, b] as [number, number]);

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text = "",
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

function fmt(v: number): string {
  return Math.abs(v) >= 0.01 || v === 0 ? v.toPrecision(3) : v.toExponential(1);
}

/** Classes, ||J||_F and det(JᵀJ) of the logits over the RES × RES grid of the plane. */
async function planeMaps(
  rt: Backend,
  model: Model,
): Promise<{ classes: Uint32Array; fro: Float64Array; det: Float64Array }> {
  const n = RES * RES, pts = new Float32Array(2 * n);
  for (let r = 0; r < RES; r++) {
    for (let c = 0; c < RES; c++) {
      pts[2 * (r * RES + c)] = -RANGE + (2 * RANGE * (c + 0.5)) / RES;
      pts[2 * (r * RES + c) + 1] = RANGE - (2 * RANGE * (r + 0.5)) / RES;
    }
  }
  model.eval();
  const x = rt.upload(pts, [n, 2]);
  const logits = model.forward(x);
  const k = logits.shape[1];
  const cls = argmax(rt, logits, 1);
  const classes = (await cls.read()) as Uint32Array;
  cls.dispose();
  // JᵀJ = Σ_c ∇z_c ∇z_cᵀ (2 × 2), one input-gradient pass per logit.
  const g11 = new Float64Array(n), g12 = new Float64Array(n), g22 = new Float64Array(n);
  for (let c = 0; c < k; c++) {
    const seed = new Float32Array(n * k);
    for (let i = 0; i < n; i++) seed[i * k + c] = 1;
    const dy = rt.upload(seed, [n, k]);
    const g = await model.inputGrad(dy).read();
    dy.dispose();
    for (let i = 0; i < n; i++) {
      const a = g[2 * i], b = g[2 * i + 1];
      g11[i] += a * a;
      g12[i] += a * b;
      g22[i] += b * b;
    }
  }
  x.dispose();
  const fro = new Float64Array(n), det = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    fro[i] = Math.sqrt(g11[i] + g22[i]);
    det[i] = Math.max(0, g11[i] * g22[i] - g12[i] * g12[i]);
  }
  return { classes, fro, det };
}

/** ∇z_c at the centre of cluster c, for each class c: (C, 2). */
async function centreGradients(rt: Backend, model: Model): Promise<Float32Array> {
  const k = CENTRES.length;
  model.eval();
  const x = rt.upload(new Float32Array(CENTRES.flat()), [k, 2]);
  model.forward(x);
  const eye = new Float32Array(k * k);
  for (let c = 0; c < k; c++) eye[c * k + c] = 1;
  const dy = rt.upload(eye, [k, k]);
  const g = (await model.inputGrad(dy).read()) as Float32Array;
  x.dispose();
  dy.dispose();
  return g;
}

class Panel {
  readonly name: string;
  config: PanelConfig;
  model: Model | null = null;
  epoch = 0;
  frame = 0;
  rows: Row[] = [];
  needsReset = false;
  readonly root: HTMLElement;
  readonly map: HTMLCanvasElement;
  readonly heat: HTMLCanvasElement;
  readonly chart: LiveChart;
  readonly stats: HTMLElement;
  readonly flags: HTMLElement;
  readonly heatLegend: HTMLElement;
  #inputs: Record<string, HTMLInputElement | HTMLSelectElement> = {};

  constructor(
    readonly app: ToyApp,
    readonly key: "a" | "b",
    initial: PanelConfig,
    container: HTMLElement,
  ) {
    this.name = key === "a" ? "A" : "B";
    this.config = structuredClone(initial);
    this.root = el("section", { class: "panel", id: `panel-${key}` });
    this.root.append(el("h2", {}, `Configuration ${this.name}`));
    const form = el("div", { class: "controls" });
    this.root.append(form);

    const modelSel = this.#select("model", [
      ["linear", "Linear 2→4, no bias (the seed's)"],
      ["mlp", "MLP 2→h→4, tanh"],
    ], this.config.model);
    form.append(this.#label("model", modelSel));
    const hidden = this.#range("hidden", 2, 64, 1, this.config.hidden);
    form.append(this.#label("hidden width h", hidden, () => String(this.config.hidden)));
    const dropout = this.#range("dropout", 0, 0.6, 0.05, this.config.dropout);
    form.append(this.#label("dropout (MLP)", dropout, () => fmt(this.config.dropout)));
    const lr = this.#range("lr", -3.5, -0.5, 0.1, Math.log10(this.config.lr));
    form.append(this.#label("Adam lr", lr, () => fmt(this.config.lr)));

    const regBox = el("div", { class: "regs" });
    regBox.append(el("div", { class: "regs-title" }, "regularizers (none when none is ticked)"));
    for (const r of REGS) {
      const on = el("input", { type: "checkbox", id: `${key}-on-${r.id}` });
      on.checked = this.config.regs[r.id] != null;
      const init = this.config.regs[r.id] != null ? Math.log10(this.config.regs[r.id]!) : r.init;
      const s = el("input", {
        type: "range",
        id: `${key}-${r.id}`,
        min: String(r.min),
        max: String(r.max),
        step: "0.1",
        value: String(init),
      });
      const val = el("span", { class: "value" }, fmt(10 ** init));
      const update = () => {
        this.config.regs[r.id] = on.checked ? 10 ** Number(s.value) : null;
        val.textContent = fmt(10 ** Number(s.value));
        this.changed();
      };
      on.addEventListener("change", update);
      s.addEventListener("input", update);
      const row = el("label", { class: "reg" });
      row.append(on, el("span", { class: "name" }, r.label), s, val);
      regBox.append(row);
    }
    form.append(regBox);
    this.flags = el("code", { class: "flags", id: `${key}-flags` });
    form.append(this.flags);

    modelSel.addEventListener("change", () => {
      this.config.model = modelSel.value as PanelConfig["model"];
      this.changed();
    });
    hidden.addEventListener("input", () => {
      this.config.hidden = Number(hidden.value);
      this.changed();
    });
    dropout.addEventListener("input", () => {
      this.config.dropout = Number(dropout.value);
      this.changed();
    });
    lr.addEventListener("input", () => {
      this.config.lr = 10 ** Number(lr.value);
      this.changed(false);
    });

    const pics = el("div", { class: "pictures" });
    const fig1 = el("figure");
    this.map = el("canvas", { width: "320", height: "320", id: `${key}-map`, class: "plane" });
    fig1.append(
      this.map,
      el(
        "figcaption",
        {},
        "Decision regions; discs: training points, rings: test points; arrows: ∇z_c at " +
          "cluster c's centre (the weight rows for the linear model), scaled to the longest.",
      ),
    );
    const fig2 = el("figure");
    this.heat = el("canvas", { width: "320", height: "320", id: `${key}-heat`, class: "plane" });
    const heatSel = this.#select("heat", [
      ["fro", "‖J‖_F"],
      ["det", "det(JᵀJ)"],
    ], this.config.heat);
    heatSel.addEventListener("change", () => {
      this.config.heat = heatSel.value as PanelConfig["heat"];
      void this.app.redraw(this);
    });
    this.heatLegend = el("span", { class: "legend" });
    const cap = el("figcaption");
    cap.append(
      "Heat map of ",
      heatSel,
      " of the logits' Jacobian J (4×2), log colour scale ",
      this.heatLegend,
    );
    fig2.append(this.heat, cap);
    pics.append(fig1, fig2);
    this.root.append(pics);

    this.stats = el("div", { class: "stats", id: `${key}-stats` });
    this.root.append(this.stats);
    const chartBox = el("div", { class: "chart", id: `${key}-chart` });
    this.root.append(chartBox);
    this.chart = new LiveChart(chartBox, curvesSpec(`Configuration ${this.name}`));
    container.append(this.root);
    this.#showFlags();
  }

  #label(text: string, input: HTMLElement, value?: () => string): HTMLElement {
    const l = el("label", { class: "field" });
    l.append(el("span", { class: "name" }, text), input);
    if (value) {
      const v = el("span", { class: "value" }, value());
      input.addEventListener("input", () => (v.textContent = value()));
      l.append(v);
    }
    return l;
  }

  #select(id: string, options: [string, string][], value: string): HTMLSelectElement {
    const s = el("select", { id: `${this.key}-${id}` });
    for (const [v, t] of options) s.append(el("option", { value: v }, t));
    s.value = value;
    this.#inputs[id] = s;
    return s;
  }

  #range(id: string, min: number, max: number, step: number, value: number): HTMLInputElement {
    const r = el("input", {
      type: "range",
      id: `${this.key}-${id}`,
      min: String(min),
      max: String(max),
      step: String(step),
      value: String(value),
    });
    this.#inputs[id] = r;
    return r;
  }

  /** The model spec of the configuration. */
  spec(): ModelSpec {
    return this.config.model === "linear"
      ? { kind: "mlp", inputs: 2, hidden: [], classes: 4, bias: false }
      : {
        kind: "mlp",
        inputs: 2,
        hidden: [this.config.hidden],
        classes: 4,
        activation: "tanh",
        dropout: this.config.dropout,
      };
  }

  /** The regularizers as `--reg` specs. */
  regSpecs(): string[] {
    return REGS.filter((r) => this.config.regs[r.id] != null).map((r) =>
      `${r.id}:${r.option}=${fmt(this.config.regs[r.id]!)}${r.extra ? `,${r.extra}` : ""}`
    );
  }

  #showFlags() {
    const m = this.config.model === "linear"
      ? `--model '{"kind":"mlp","inputs":2,"hidden":[],"classes":4,"bias":false}'`
      : `--model '{"kind":"mlp","inputs":2,"hidden":[${this.config.hidden}],"classes":4,` +
        `"activation":"tanh"}'${
          this.config.dropout > 0 ? ` --dropout ${this.config.dropout}` : ""
        }`;
    const regs = this.regSpecs().map((s) => ` --reg ${s}`).join("");
    this.flags.textContent = `cli.ts train --data toy2d ${m} --optimizer adam --lr ${
      fmt(this.config.lr)
    } --batch-size 32${regs}`;
  }

  /** A setting changed: show it, and start over when it changes the model. */
  changed(rebuild = true) {
    this.#showFlags();
    if (rebuild) this.app.reset(this);
  }

  dispose() {
    this.model?.dispose();
    this.model = null;
  }
}

/** The page. */
class ToyApp {
  readonly rt: Backend;
  panels: Panel[] = [];
  running = false;
  stopAsked = false;
  trainSet = toy2d({ seed: 0, split: "train" });
  testSet = toy2d({ seed: 0, split: "test" });
  #redrawing = new Map<Panel, Promise<void>>();

  constructor(backend: PageBackend) {
    this.rt = backend.rt;
  }

  controls() {
    return {
      seed: document.getElementById("seed") as HTMLInputElement,
      std: document.getElementById("std") as HTMLInputElement,
      perClass: document.getElementById("per-class") as HTMLInputElement,
      epochs: document.getElementById("epochs") as HTMLInputElement,
      perFrame: document.getElementById("per-frame") as HTMLInputElement,
    };
  }

  /** Redraws the data from the shared settings and starts every panel over. */
  newData() {
    const c = this.controls();
    const seed = Number(c.seed.value), std = Number(c.std.value);
    const perClass = Number(c.perClass.value);
    this.trainSet = toy2d({ seed, std, perClass, split: "train" });
    this.testSet = toy2d({ seed, std, perClass: 128, split: "test" });
    for (const p of this.panels) this.reset(p);
  }

  /** Starts a panel over with a fresh model (after the current frame, while training). */
  reset(p: Panel) {
    if (this.running) {
      p.needsReset = true;
      return;
    }
    p.needsReset = false;
    p.dispose();
    p.model = buildModel(this.rt, p.spec(), { seed: Number(this.controls().seed.value) });
    p.epoch = 0;
    p.frame = 0;
    p.rows = [];
    void p.chart.update([]);
    void this.redraw(p);
  }

  async #statsOf(p: Panel, trainLoss: number, trainAcc: number) {
    const test = await evaluate(p.model!, this.testSet, { batchSize: 512 });
    p.stats.innerHTML = "";
    const item = (k: string, v: string, value: number) =>
      p.stats.append(
        el("span", { class: "stat", id: `${p.key}-${k}`, "data-value": `${value}` }, v),
      );
    item("epoch", `epoch ${p.epoch}`, p.epoch);
    item("train-loss", `train loss ${fmt(trainLoss)}`, trainLoss);
    item("train-acc", `train acc ${(100 * trainAcc).toFixed(1)} %`, trainAcc);
    item("test-loss", `test loss ${fmt(test.loss)}`, test.loss);
    item("test-acc", `test acc ${(100 * test.accuracy).toFixed(1)} %`, test.accuracy);
    return test;
  }

  /** One frame of a panel: `perFrame` epochs of training, then new curves and maps. */
  async step(p: Panel, perFrame: number) {
    const seed = Number(this.controls().seed.value);
    const regs = parseRegularizers(p.regSpecs());
    try {
      const r = await train(p.model!, { train: this.trainSet }, {
        epochs: perFrame,
        batchSize: 32,
        lr: p.config.lr,
        optimizer: { algorithm: "adam" },
        seed: seed * 100_003 + p.frame,
        regularizers: regs,
        logEvery: 1_000_000,
      });
      p.frame++;
      for (const h of r.history) {
        p.epoch++;
        p.rows.push(
          { epoch: p.epoch, series: "train", panel: "loss", value: h.trainLoss },
          { epoch: p.epoch, series: "train", panel: "accuracy", value: h.trainAccuracy },
        );
      }
      const last = r.history.at(-1)!;
      const test = await this.#statsOf(p, last.trainLoss, last.trainAccuracy);
      p.rows.push(
        { epoch: p.epoch, series: "test", panel: "loss", value: test.loss },
        { epoch: p.epoch, series: "test", panel: "accuracy", value: test.accuracy },
      );
      void p.chart.update([...p.rows]);
      await this.redraw(p);
    } finally {
      for (const r of regs) r.dispose?.();
    }
  }

  /** Recomputes and draws a panel's pictures (one redraw at a time per panel). */
  redraw(p: Panel): Promise<void> {
    const prev = this.#redrawing.get(p) ?? Promise.resolve();
    const next = prev.then(() => this.#draw(p)).catch((e) => this.fail(e));
    this.#redrawing.set(p, next);
    return next;
  }

  async #draw(p: Panel) {
    const model = p.model;
    if (!model) return;
    const maps = await planeMaps(this.rt, model);
    const grads = await centreGradients(this.rt, model);
    if (p.epoch === 0) await this.#statsOf(p, NaN, NaN);
    const colors = CLASS_COLORS.map(rgb);
    drawGrid(p.map, RES, (i) => {
      const [r, g, b] = colors[maps.classes[i]];
      return [0.45 * r + 0.55 * 255, 0.45 * g + 0.55 * 255, 0.45 * b + 0.55 * 255, 255];
    });
    const view = new PlaneView(p.map, RANGE);
    drawPoints(view, this.testSet.x, this.testSet.y, DARK, false);
    drawPoints(view, this.trainSet.x, this.trainSet.y, CLASS_COLORS, true);
    let longest = 0;
    for (let c = 0; c < 4; c++) {
      longest = Math.max(longest, Math.hypot(grads[2 * c], grads[2 * c + 1]));
    }
    for (let c = 0; c < 4; c++) {
      const s = longest > 0 ? (0.85 * RANGE) / longest : 0;
      drawArrow(view, [0, 0], [s * grads[2 * c], s * grads[2 * c + 1]], CLASS_COLORS[c]);
    }
    const [lo, hi] = drawHeat(p.heat, p.config.heat === "fro" ? maps.fro : maps.det, RES, true);
    const hv = new PlaneView(p.heat, RANGE);
    drawPoints(hv, this.trainSet.x, this.trainSet.y, CLASS_COLORS, true);
    p.heatLegend.textContent = `(${fmt(lo)} … ${fmt(hi)})`;
    p.root.dataset.drawn = String(p.epoch);
  }

  /** Trains every panel up to the epoch target, frame by frame, alternating the panels. */
  async run() {
    if (this.running) return;
    this.running = true;
    this.stopAsked = false;
    document.body.dataset.state = "training";
    try {
      const target = Number(this.controls().epochs.value);
      const perFrame = Math.max(1, Number(this.controls().perFrame.value));
      while (!this.stopAsked && this.panels.some((p) => p.epoch < target)) {
        for (const p of this.panels) {
          if (p.epoch < target && !this.stopAsked) {
            await this.step(p, Math.min(perFrame, target - p.epoch));
            await yieldToPage();
          }
          if (p.needsReset) {
            this.running = false;
            this.reset(p);
            this.running = true;
          }
        }
      }
      document.body.dataset.state = "done";
    } catch (e) {
      this.fail(e);
    } finally {
      this.running = false;
      for (const p of this.panels) if (p.needsReset) this.reset(p);
    }
  }

  /** One PNG of both panels: maps, heat maps, curves. */
  async exportPng(): Promise<string> {
    const pad = 12, side = 320, chartH = 220;
    const charts = await Promise.all(this.panels.map((p) => p.chart.toCanvas()));
    const w = pad + this.panels.length * (2 * side + 3 * pad);
    const h = 40 + side + pad + Math.max(...charts.map((c) => c.height), chartH) + pad;
    const out = el("canvas", { width: String(w), height: String(h) });
    const ctx = out.getContext("2d")!;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = "#111";
    ctx.font = "15px sans-serif";
    this.panels.forEach((p, i) => {
      const x0 = pad + i * (2 * side + 3 * pad);
      ctx.fillText(
        `${p.name}: ${p.flags.textContent?.replace(/^cli\.ts train /, "")}`.slice(0, 110),
        x0,
        24,
      );
      ctx.drawImage(p.map, x0, 36, side, side);
      ctx.drawImage(p.heat, x0 + side + pad, 36, side, side);
      ctx.drawImage(charts[i], x0, 36 + side + pad);
    });
    return downloadPng(out, "regula-toy.png");
  }

  fail(e: unknown) {
    showError(e);
  }
}

async function main() {
  const backend = await startBackend();
  if (!backend) {
    document.getElementById("app")!.hidden = true;
    return;
  }
  const app = new ToyApp(backend);
  const holder = document.getElementById("panels")!;
  app.panels = [
    new Panel(app, "a", {
      model: "linear",
      hidden: 16,
      dropout: 0,
      lr: 0.02,
      regs: {},
      heat: "det",
    }, holder),
    new Panel(app, "b", {
      model: "mlp",
      hidden: 16,
      dropout: 0,
      lr: 0.02,
      regs: { jacobian: 0.05 },
      heat: "fro",
    }, holder),
  ];
  const c = app.controls();
  for (const i of [c.seed, c.std, c.perClass]) i.addEventListener("change", () => app.newData());
  document.getElementById("std-value")!.textContent = c.std.value;
  c.std.addEventListener("input", () => {
    document.getElementById("std-value")!.textContent = c.std.value;
  });
  document.getElementById("train")!.addEventListener("click", () => void app.run());
  document.getElementById("stop")!.addEventListener("click", () => (app.stopAsked = true));
  document.getElementById("reset")!.addEventListener("click", () => {
    app.stopAsked = true;
    for (const p of app.panels) app.reset(p);
  });
  document.getElementById("export")!.addEventListener("click", () => {
    app.exportPng().then((url) => {
      document.body.dataset.exported = String(url.length);
    }).catch((e) => app.fail(e));
  });
  app.newData();
  await Promise.all(app.panels.map((p) => app.redraw(p)));
  document.body.dataset.state = "ready";
}

main().catch(showError);
