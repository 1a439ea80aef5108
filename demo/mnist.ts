/// <reference lib="dom" />
/**
 * The MNIST page: LeNet-5 checkpoints trained by `cli.ts train` (demo/checkpoints/manifest.json
 * lists them with the command that made each), one image — drawn on the pad or picked from the
 * first MNIST test images — and, for every model side by side: class probabilities (Vega-Lite),
 * saliency `max_c |∂z_t/∂x_c|` and occlusion overlays (src/metrics/saliency.ts), the FGSM or PGD
 * adversarial image at the ε of the slider with the model's prediction on it, and the decision
 * regions on a plane through the image (the same plane for every model: toward the FGSM example
 * of the first model, or random).
 *
 * Attacks use the test image's label, or for a drawn digit each model's own prediction
 * (untargeted, ε in pixel units, inputs in [0, 1]).
 *
 * @module
 */

import {
  type Backend,
  buildModel,
  decisionPlane,
  decodeCheckpoint,
  fgsm,
  loadStateDict,
  type Model,
  occlusion,
  pgd,
  planeTowards,
  randomPlaneDirections,
  saliency,
  softmax,
} from "../mod.ts";
import { showError, startBackend } from "./_backend.ts";
import { CLASS_COLORS, LiveChart, probabilitiesSpec } from "./_charts.ts";
import { drawGrid, drawImage, rgb } from "./_draw.ts";

const SIDE = 28, D = SIDE * SIDE;
const SHAPE = [1, SIDE, SIDE] as const;
/** Grid points per side of the decision planes. */
const PLANE_RES = 49;

interface ManifestEntry {
  name: string;
  label: string;
  file: string;
  command: string;
  testAccuracy: number;
}

interface Card {
  entry: ManifestEntry;
  model: Model;
  pred: HTMLElement;
  saliency: HTMLCanvasElement;
  occlusion: HTMLCanvasElement;
  adv: HTMLCanvasElement;
  advPred: HTMLElement;
  plane: HTMLCanvasElement;
  planeNote: HTMLElement;
  probs: Float32Array;
}

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

function canvas(id: string, size = 140, cls = "img"): HTMLCanvasElement {
  return el("canvas", { id, width: String(size), height: String(size), class: cls });
}

function argmaxOf(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
  return best;
}

/** Softmax probabilities of one image. */
async function probabilities(
  rt: Backend,
  model: Model,
  pixels: Float32Array,
): Promise<Float32Array> {
  const x = rt.upload(pixels, [1, ...SHAPE]);
  try {
    const p = softmax(rt, model.forward(x));
    const out = (await p.read()) as Float32Array;
    p.dispose();
    return out;
  } finally {
    x.dispose();
  }
}

/** Shifts a drawn digit so that its centre of mass is the image centre (as MNIST's are). */
function centred(img: Float32Array): Float32Array {
  let m = 0, cy = 0, cx = 0;
  for (let r = 0; r < SIDE; r++) {
    for (let c = 0; c < SIDE; c++) {
      const v = img[r * SIDE + c];
      m += v;
      cy += v * r;
      cx += v * c;
    }
  }
  if (m === 0) return img;
  const dy = Math.round(13.5 - cy / m), dx = Math.round(13.5 - cx / m);
  const out = new Float32Array(D);
  for (let r = 0; r < SIDE; r++) {
    for (let c = 0; c < SIDE; c++) {
      const sr = r - dy, sc = c - dx;
      if (sr >= 0 && sr < SIDE && sc >= 0 && sc < SIDE) out[r * SIDE + c] = img[sr * SIDE + sc];
    }
  }
  return out;
}

class MnistApp {
  cards: Card[] = [];
  images = new Float32Array(0);
  labels = new Uint8Array(0);
  count = 0;
  /** The image shown: a test image's pixels or the drawn digit (centred). */
  pixels: Float32Array = new Float32Array(D);
  /** Its label, or null for a drawing. */
  label: number | null = null;
  index = 0;
  pad = new Float32Array(D);
  chart!: LiveChart;
  #queue: Promise<void> = Promise.resolve();
  #generation = 0;

  constructor(readonly rt: Backend) {}

  async load() {
    const manifest = await (await fetch("checkpoints/manifest.json")).json() as {
      models: ManifestEntry[];
    };
    const holder = document.getElementById("models")!;
    for (const entry of manifest.models) {
      const res = await fetch(`checkpoints/${entry.file}`);
      if (!res.ok) throw new Error(`checkpoints/${entry.file}: HTTP ${res.status}`);
      const ck = decodeCheckpoint(new Uint8Array(await res.arrayBuffer()));
      const model = buildModel(this.rt, ck.metadata.model);
      loadStateDict(model, ck.tensors);
      model.eval();
      const n = entry.name;
      const card: Card = {
        entry,
        model,
        pred: el("div", { class: "pred", id: `pred-${n}` }),
        saliency: canvas(`saliency-${n}`),
        occlusion: canvas(`occlusion-${n}`),
        adv: canvas(`adv-${n}`),
        advPred: el("div", { class: "pred", id: `advpred-${n}` }),
        plane: canvas(`plane-${n}`, 147, "plane"),
        planeNote: el("figcaption"),
        probs: new Float32Array(10),
      };
      const box = el("section", { class: "model", id: `model-${n}` });
      box.append(el("h3", {}, `${entry.label}`));
      box.append(el(
        "code",
        { class: "flags", title: entry.command },
        entry.command.replace(
          /^deno run -A /,
          "",
        ),
      ));
      box.append(card.pred);
      const row1 = el("div", { class: "row" }), row2 = el("div", { class: "row" });
      const fig = (c: HTMLCanvasElement, caption: string | HTMLElement, extra?: HTMLElement) => {
        const f = el("figure");
        f.append(c);
        if (extra) f.append(extra);
        f.append(typeof caption === "string" ? el("figcaption", {}, caption) : caption);
        return f;
      };
      row1.append(
        fig(card.saliency, "saliency max_c |∂z_t/∂x_c|"),
        fig(card.occlusion, "occlusion: drop of p_t, 6×6 window, stride 2"),
      );
      row2.append(
        fig(card.adv, "adversarial image", card.advPred),
        fig(card.plane, card.planeNote),
      );
      box.append(row1, row2);
      holder.append(box);
      this.cards.push(card);
    }
    const data = new Uint8Array(await (await fetch("mnist_test.u8")).arrayBuffer());
    this.count = data.length / 785;
    this.images = Float32Array.from(data.subarray(0, this.count * D), (v) => v / 255);
    this.labels = data.subarray(this.count * D);
    this.chart = new LiveChart(
      document.getElementById("probs")!,
      probabilitiesSpec("class probabilities of the clean image"),
    );
    this.#thumbnails();
    this.#pad();
    this.#controls();
  }

  #thumbnails() {
    const box = document.getElementById("thumbs")!;
    for (let i = 0; i < Math.min(this.count, 60); i++) {
      const c = el("canvas", {
        width: "28",
        height: "28",
        id: `thumb-${i}`,
        title: `test image #${i}`,
      });
      drawImage(c, this.images.subarray(i * D, (i + 1) * D), SIDE);
      c.addEventListener("click", () => void this.pick(i));
      box.append(c);
    }
    const idx = document.getElementById("index") as HTMLInputElement;
    idx.max = String(this.count - 1);
    idx.addEventListener("change", () => void this.pick(Number(idx.value)));
  }

  #pad() {
    const pad = document.getElementById("pad") as HTMLCanvasElement;
    let down = false;
    const paint = (ev: PointerEvent) => {
      const r = pad.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * SIDE,
        py = ((ev.clientY - r.top) / r.height) * SIDE;
      for (let y = 0; y < SIDE; y++) {
        for (let x = 0; x < SIDE; x++) {
          const d2 = (x + 0.5 - px) ** 2 + (y + 0.5 - py) ** 2;
          const v = Math.exp(-d2 / 1.1);
          if (v > 0.02) this.pad[y * SIDE + x] = Math.min(1, this.pad[y * SIDE + x] + v);
        }
      }
      drawImage(pad, this.pad, SIDE);
    };
    pad.addEventListener("pointerdown", (e) => {
      down = true;
      pad.setPointerCapture(e.pointerId);
      paint(e);
    });
    pad.addEventListener("pointermove", (e) => down && paint(e));
    pad.addEventListener("pointerup", () => {
      down = false;
      this.label = null;
      this.pixels = centred(this.pad);
      document.querySelectorAll(".thumbs canvas").forEach((c) => c.classList.remove("sel"));
      document.getElementById("source")!.textContent = "your drawing (centred)";
      void this.update("all");
    });
    document.getElementById("clear")!.addEventListener("click", () => {
      this.pad.fill(0);
      drawImage(pad, this.pad, SIDE);
    });
  }

  #controls() {
    const eps = document.getElementById("eps") as HTMLInputElement;
    const epsValue = document.getElementById("eps-value")!;
    eps.addEventListener("input", () => {
      epsValue.textContent = Number(eps.value).toFixed(2);
      void this.update("attack");
    });
    epsValue.textContent = Number(eps.value).toFixed(2);
    document.getElementById("attack")!.addEventListener("change", () => void this.update("attack"));
    const range = document.getElementById("range") as HTMLInputElement;
    const rangeValue = document.getElementById("range-value")!;
    range.addEventListener("input", () => {
      rangeValue.textContent = range.value;
      void this.update("plane");
    });
    rangeValue.textContent = range.value;
    document.getElementById("plane-kind")!.addEventListener(
      "change",
      () => void this.update("plane"),
    );
  }

  /** Shows test image `i`. */
  pick(i: number): Promise<void> {
    if (!(Number.isInteger(i) && i >= 0 && i < this.count)) return Promise.resolve();
    this.index = i;
    this.pixels = this.images.slice(i * D, (i + 1) * D);
    this.label = this.labels[i];
    (document.getElementById("index") as HTMLInputElement).value = String(i);
    document.querySelectorAll(".thumbs canvas").forEach((c) => c.classList.remove("sel"));
    document.getElementById(`thumb-${i}`)?.classList.add("sel");
    document.getElementById("source")!.textContent = `MNIST test image #${i}, label ${this.label}`;
    return this.update("all");
  }

  /** Recomputes what changed, one update at a time; stale ones are skipped. */
  update(what: "all" | "attack" | "plane"): Promise<void> {
    const gen = ++this.#generation;
    document.body.dataset.busy = "1";
    this.#queue = this.#queue.then(async () => {
      if (gen !== this.#generation && what !== "all") return;
      try {
        if (what === "all") await this.#clean();
        if (what !== "plane") await this.#attack();
        await this.#planes();
      } catch (e) {
        showError(e);
      }
      if (gen === this.#generation) {
        delete document.body.dataset.busy;
        document.body.dataset.state = "ready";
        document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
      }
    });
    return this.#queue;
  }

  #settings() {
    return {
      eps: Number((document.getElementById("eps") as HTMLInputElement).value),
      attack: (document.getElementById("attack") as HTMLSelectElement).value,
      range: Number((document.getElementById("range") as HTMLInputElement).value),
      plane: (document.getElementById("plane-kind") as HTMLSelectElement).value,
    };
  }

  async #clean() {
    drawImage(document.getElementById("shown") as HTMLCanvasElement, this.pixels, SIDE);
    const rows: { model: string; cls: string; p: number }[] = [];
    for (const card of this.cards) {
      card.probs = await probabilities(this.rt, card.model, this.pixels);
      const c = argmaxOf(card.probs);
      card.pred.textContent = `predicts ${c} (p = ${card.probs[c].toFixed(3)})`;
      card.pred.dataset.class = String(c);
      card.probs.forEach((p, k) => rows.push({ model: card.entry.label, cls: String(k), p }));

      const x = this.rt.upload(this.pixels, [1, ...SHAPE]);
      const s = await saliency(this.rt, card.model, x);
      const map = await s.map.read();
      s.map.dispose();
      s.target.dispose();
      x.dispose();
      drawImage(card.saliency, this.pixels, SIDE, map);
      const occ = await occlusion(this.rt, card.model, this.pixels, SHAPE, {
        window: 6,
        stride: 2,
        output: "probability",
      });
      drawImage(card.occlusion, this.pixels, SIDE, occ.map);
    }
    await this.chart.update(rows);
  }

  /** Label the attacks use for a card: the test label, or the model's clean prediction. */
  #labelFor(card: Card): number {
    return this.label ?? argmaxOf(card.probs);
  }

  #adversarial(card: Card, eps: number, attack: string): Promise<Float32Array> {
    const x = this.rt.upload(this.pixels, [1, ...SHAPE]);
    const y = this.rt.upload(new Int32Array([this.#labelFor(card)]), [1]);
    const adv = attack === "pgd"
      ? pgd(this.rt, card.model, x, y, { eps, steps: 40, alpha: 0.01 })
      : fgsm(this.rt, card.model, x, y, { eps });
    x.dispose();
    y.dispose();
    return adv.read().then((a) => {
      adv.dispose();
      return a as Float32Array;
    });
  }

  async #attack() {
    const { eps, attack } = this.#settings();
    for (const card of this.cards) {
      const adv = await this.#adversarial(card, eps, attack);
      const p = await probabilities(this.rt, card.model, adv);
      const c = argmaxOf(p), want = this.#labelFor(card);
      drawImage(card.adv, adv, SIDE);
      card.advPred.textContent = `${attack.toUpperCase()} ε ${eps.toFixed(2)}: ${c} (p = ${
        p[c].toFixed(2)
      })${c !== want ? ` — flipped from ${want}` : ""}`;
      card.advPred.className = c !== want ? "pred flipped" : "pred";
      card.advPred.dataset.class = String(c);
      card.advPred.dataset.eps = String(eps);
    }
  }

  async #planes() {
    const { eps, range, plane } = this.#settings();
    let dirs, note: string;
    /** Distance of the adversarial example along the plane's first axis, when it has one. */
    let advAt = 0;
    const first = this.cards[0];
    if (plane === "fgsm" && eps > 0) {
      const adv = await this.#adversarial(first, eps, "fgsm");
      try {
        dirs = planeTowards(this.pixels, adv, { seed: 0, index: 0 });
        advAt = Math.hypot(...adv.map((v, i) => v - this.pixels[i]));
        note = `plane through the image (○): →, toward ${first.entry.label}'s FGSM example ` +
          `(ε ${eps.toFixed(2)}, ✕ when inside, at ${advAt.toFixed(1)}); ↑, random. ±${range} ` +
          `(L2, pixel units)`;
      } catch {
        dirs = randomPlaneDirections(D, { seed: 0, index: 0 });
        note = `random plane through the image, ±${range}`;
      }
    } else {
      dirs = randomPlaneDirections(D, { seed: 0, index: 0 });
      note = `random plane through the image (seed 0), ±${range} (L2, pixel units)`;
    }
    const colors = CLASS_COLORS.map(rgb);
    for (const card of this.cards) {
      const p = await decisionPlane(this.rt, card.model, this.pixels, SHAPE, dirs, {
        range,
        resolution: PLANE_RES,
      });
      drawGrid(card.plane, PLANE_RES, (i) => [...colors[p.classes[i]], 255]);
      const ctx = card.plane.getContext("2d")!;
      const mid = card.plane.width / 2;
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(mid, mid, 4, 0, 2 * Math.PI);
      ctx.stroke();
      if (advAt > 0 && advAt <= range) {
        // The FGSM example: a cross on the first axis.
        const ax = mid + (advAt / range) * mid;
        ctx.beginPath();
        ctx.moveTo(ax - 4, mid - 4);
        ctx.lineTo(ax + 4, mid + 4);
        ctx.moveTo(ax + 4, mid - 4);
        ctx.lineTo(ax - 4, mid + 4);
        ctx.stroke();
      }
      card.planeNote.textContent = `${note}; disc radius ${p.radius.toFixed(2)}${
        p.censored ? "+" : ""
      }`;
    }
    const legend = document.getElementById("plane-legend")!;
    legend.innerHTML = "";
    CLASS_COLORS.forEach((c, k) => {
      const s = el("span", { class: "swatch" }, String(k));
      s.style.background = c;
      legend.append(s);
    });
  }
}

async function main() {
  const backend = await startBackend();
  if (!backend) {
    document.getElementById("app")!.hidden = true;
    return;
  }
  const app = new MnistApp(backend.rt);
  await app.load();
  await app.pick(0);
}

main().catch(showError);
