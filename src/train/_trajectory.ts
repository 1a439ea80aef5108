/**
 * Per-layer trajectories of a training run (course notes; the "distance from initialisation"
 * of Hoffer, Hubara & Soudry 2017, "Train longer, generalize better", and of Nagarajan & Kolter
 * 2019, "Generalization in deep networks: the role of distance from initialization"): at sampled
 * steps t, per layer, ‖θ_t‖, ‖∇_θ L_t‖ and ‖θ_t − θ_0‖ (Frobenius norms over the layer's trained
 * tensors; θ_t the weights the step's gradient was taken at, before its update).
 *
 * Each sample records, into the step's command encoder, one `sumsq` reduction per tensor and
 * quantity (the distance through one `axpby` into a scratch) and one copy of each (1,) result
 * into a ring of `capacity` samples; nothing is read. The training loop packs the ring's
 * pending samples into its periodic read-back of the running sums (src/train/train.ts
 * `GpuSums`), and {@linkcode Trajectory.take} turns the read floats into per-layer norms,
 * summing the tensors of a layer in float64 on the host.
 *
 * @module
 */

import type { Backend, Tensor } from "../backend.ts";
import type { Param } from "../layers/layer.ts";
import { binary } from "../ops/elementwise.ts";
import { reduce } from "../ops/reduce.ts";

/** Per-layer norms at the sampled steps of one epoch (in the epoch's history record). */
export interface TrajectoryRecord {
  /** Global step (from 0) of each sample: the weights before that step's update. */
  steps: number[];
  /**
   * By layer (the name of its parameters without the last `.part`: "conv1", "layer1.0.bn1"):
   * ‖θ_t‖, ‖∇_θ L_t‖ (data loss plus penalties, as the optimizer gets it) and ‖θ_t − θ_0‖, one
   * value per sample.
   */
  layers: Record<string, { paramNorm: number[]; gradNorm: number[]; distance: number[] }>;
}

/** The layer a parameter belongs to: its name without the last `.part`. */
export function layerOf(name: string): string {
  const i = name.lastIndexOf(".");
  return i > 0 ? name.slice(0, i) : name;
}

/** Records per-layer norms at sampled steps (see the module doc). Dispose it. */
export class Trajectory {
  /** Layer names, in the order of their first parameter. */
  readonly layers: string[];
  /** Floats one sample takes in the ring: 3 per tensor (‖θ‖², ‖g‖², ‖θ − θ_0‖²). */
  readonly width: number;
  /** Samples the ring holds before it must be read. */
  readonly capacity: number;
  /** (capacity · width,) f32 ring of pending samples. */
  readonly ring: Tensor;
  #group: number[];
  #theta0: Tensor[];
  #diff = new Map<number, Tensor>();
  #scratch: Tensor;
  #pending: number[] = [];

  /**
   * Copies θ_0 (the params' values now) and allocates the ring.
   * @param rt runtime
   * @param params the trained params (with a gradient)
   * @param capacity samples between read-backs
   */
  constructor(readonly rt: Backend, readonly params: readonly Param[], capacity: number) {
    this.layers = [];
    this.#group = params.map((p) => {
      const l = layerOf(p.name);
      let g = this.layers.indexOf(l);
      if (g < 0) g = this.layers.push(l) - 1;
      return g;
    });
    this.width = 3 * params.length;
    this.capacity = capacity;
    this.ring = rt.empty([Math.max(1, capacity * this.width)], "f32", "trajectory ring");
    this.#scratch = rt.empty([1], "f32", "trajectory scratch");
    this.#theta0 = params.map((p) => {
      const t = rt.empty(p.value.shape, "f32", `θ0 ${p.name}`);
      rt.copy(p.value, t);
      if (!this.#diff.has(p.value.size)) {
        this.#diff.set(p.value.size, rt.empty([p.value.size], "f32", `θ-θ0 ${p.value.size}`));
      }
      return t;
    });
  }

  /** Samples recorded and not yet taken. */
  get pending(): number {
    return this.#pending.length;
  }

  /** True when the ring cannot take another sample before a read-back. */
  get full(): boolean {
    return this.#pending.length >= this.capacity;
  }

  /**
   * Records the sample of global step `step` (the params' values and gradients as they are at
   * this point of the step's commands).
   * @throws Error when the ring is full
   */
  record(step: number): void {
    if (this.full) throw new Error("Trajectory: the ring is full; read it back first");
    const { rt } = this;
    const base = this.#pending.length * this.width;
    this.params.forEach((p, i) => {
      const o = base + 3 * i;
      reduce(rt, "sumsq", p.value, { out: this.#scratch });
      rt.copy(this.#scratch, this.ring, 1, 0, o);
      reduce(rt, "sumsq", p.grad!, { out: this.#scratch });
      rt.copy(this.#scratch, this.ring, 1, 0, o + 1);
      const d = this.#diff.get(p.value.size)!;
      binary(rt, "axpby", p.value, this.#theta0[i], { alpha: 1, beta: -1, out: d });
      reduce(rt, "sumsq", d, { out: this.#scratch });
      rt.copy(this.#scratch, this.ring, 1, 0, o + 2);
    });
    this.#pending.push(step);
  }

  /** Floats of the ring that hold pending samples (what the read-back must copy). */
  get pendingFloats(): number {
    return this.#pending.length * this.width;
  }

  /**
   * Turns read-back ring floats into per-layer norms, appended to `into`, and empties the ring.
   * @param data the first `pendingFloats` floats of the ring, read back
   * @param into the epoch's record
   */
  take(data: ArrayLike<number>, into: TrajectoryRecord): void {
    const L = this.layers.length;
    this.#pending.forEach((step, s) => {
      const sq = new Float64Array(3 * L);
      this.#group.forEach((g, i) => {
        for (let q = 0; q < 3; q++) sq[3 * g + q] += data[s * this.width + 3 * i + q];
      });
      into.steps.push(step);
      this.layers.forEach((l, g) => {
        const r = into.layers[l] ??= { paramNorm: [], gradNorm: [], distance: [] };
        r.paramNorm.push(Math.sqrt(sq[3 * g]));
        r.gradNorm.push(Math.sqrt(sq[3 * g + 1]));
        r.distance.push(Math.sqrt(sq[3 * g + 2]));
      });
    });
    this.#pending = [];
  }

  /** Frees θ_0, the scratches and the ring. */
  dispose(): void {
    for (const t of this.#theta0) t.dispose();
    for (const t of this.#diff.values()) t.dispose();
    this.#scratch.dispose();
    this.ring.dispose();
  }
}
