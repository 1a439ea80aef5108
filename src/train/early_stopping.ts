/**
 * Early-stopping rules of Prechelt, "Early Stopping — But When?" (in Neural
 * Networks: Tricks of the Trade, LNCS 1524, 1998, section 2.2), plus plain
 * patience, as pure functions of the error curves recorded so far. `t` counts
 * epochs from 1, as in the paper; arrays are indexed from 0, so `e[t - 1]` is
 * the error after epoch `t`.
 *
 * - Generalization loss: `GL(t) = 100 (E_va(t) / E_opt(t) - 1)` with
 *   `E_opt(t) = min_{t' <= t} E_va(t')` (the lowest validation error so far).
 *   `GL_α` stops after the first epoch with `GL(t) > α`.
 * - Training progress over a strip of `k` epochs ending at `t`:
 *   `P_k(t) = 1000 (Σ_{t'=t-k+1..t} E_tr(t') / (k min_{t'} E_tr(t')) - 1)`.
 *   `PQ_α` stops after the first end of a strip (`t` a multiple of `k`) with
 *   `GL(t) / P_k(t) > α`.
 * - `UP_s` stops after the end of strip `t` when the validation error has
 *   grown in `s` successive strips: `E_va(t - (i-1)k) > E_va(t - ik)` for
 *   `i = 1..s`.
 * - Patience (not Prechelt's): stop when the best validation error is `p`
 *   epochs old.
 *
 * Prechelt uses `k = 5` and measures "error" as the squared error on the
 * validation set; any loss or error rate that should decrease works (regula
 * uses the validation cross-entropy by default).
 *
 * @example
 * ```ts
 * const rule: StoppingRule = { kind: "gl", alpha: 5 };
 * const d = shouldStop(rule, { train: [1.0, 0.6, 0.5], val: [0.9, 0.7, 0.8] });
 * // d.stop: GL(3) = 100 (0.8/0.7 - 1) = 14.3 > 5
 * ```
 *
 * @module
 */

/** A stopping criterion. */
export type StoppingRule =
  | { kind: "gl"; alpha: number }
  | { kind: "pq"; alpha: number; strip?: number }
  | { kind: "up"; strips: number; strip?: number }
  | { kind: "patience"; epochs: number };

/** Error curves so far, one value per finished epoch. */
export interface ErrorCurves {
  /** Training error per epoch (`E_tr`), needed by PQ. */
  train: readonly number[];
  /** Validation error per epoch (`E_va`). */
  val: readonly number[];
}

/** What a rule decided after the latest epoch. */
export interface StopDecision {
  /** True when training should stop now. */
  stop: boolean;
  /** The criterion's value at this epoch (GL, GL/P, strips of increase, epochs since best). */
  value: number;
  /** Why it stopped, for logs ("GL_5: generalization loss 6.2 > 5 at epoch 12"). */
  reason?: string;
}

/** Default strip length `k` (Prechelt 1998 uses 5). */
export const DEFAULT_STRIP = 5;

function checkT(name: string, e: readonly number[], t: number): void {
  if (!(Number.isInteger(t) && t >= 1 && t <= e.length)) {
    throw new Error(`${name}: epoch ${t} must be an integer in [1, ${e.length}]`);
  }
}

/**
 * `E_opt(t)`: the lowest validation error up to and including epoch `t`.
 * @param val validation errors, one per epoch
 * @param t epoch, from 1
 * @returns the minimum (NaN values are skipped; NaN if all are NaN)
 */
export function bestError(val: readonly number[], t: number = val.length): number {
  checkT("bestError", val, t);
  let best = NaN;
  for (let i = 0; i < t; i++) {
    if (val[i] < best || (Number.isNaN(best) && !Number.isNaN(val[i]))) best = val[i];
  }
  return best;
}

/**
 * The epoch (from 1) of the lowest validation error up to `t`; the first one on ties.
 * @param val validation errors
 * @param t epoch, from 1
 * @returns the epoch, or 0 if every value is NaN
 */
export function bestEpoch(val: readonly number[], t: number = val.length): number {
  checkT("bestEpoch", val, t);
  let best = Infinity, at = 0;
  for (let i = 0; i < t; i++) {
    if (val[i] < best) {
      best = val[i];
      at = i + 1;
    }
  }
  return at;
}

/**
 * Generalization loss `GL(t) = 100 (E_va(t) / E_opt(t) - 1)` in percent (Prechelt 1998, eq. 2).
 * @param val validation errors
 * @param t epoch, from 1
 * @returns GL(t) >= 0; Infinity when `E_opt` is 0 and `E_va(t)` is not; 0 when both are 0
 */
export function generalizationLoss(val: readonly number[], t: number = val.length): number {
  checkT("generalizationLoss", val, t);
  const opt = bestError(val, t), cur = val[t - 1];
  if (Number.isNaN(cur) || Number.isNaN(opt)) return Infinity;
  if (opt === 0) return cur === 0 ? 0 : Infinity;
  return 100 * (cur / opt - 1);
}

/**
 * Training progress `P_k(t) = 1000 (mean of E_tr over the strip / min over the strip - 1)`, in
 * per mille (Prechelt 1998, eq. 3): how much larger the strip's average training error is than
 * its minimum. Large while training error still falls fast, near 0 when it has flattened.
 * @param train training errors
 * @param t last epoch of the strip, from 1 (needs `t >= k`)
 * @param k strip length (default 5)
 * @returns P_k(t) >= 0; Infinity when the strip's minimum is 0 and its mean is not
 */
export function trainingProgress(
  train: readonly number[],
  t: number = train.length,
  k = DEFAULT_STRIP,
): number {
  checkT("trainingProgress", train, t);
  if (!(Number.isInteger(k) && k >= 1 && k <= t)) {
    throw new Error(`trainingProgress: strip length ${k} must be an integer in [1, ${t}]`);
  }
  let sum = 0, min = Infinity;
  for (let i = t - k; i < t; i++) {
    sum += train[i];
    min = Math.min(min, train[i]);
  }
  if (Number.isNaN(sum)) return 0;
  if (min === 0) return sum === 0 ? 0 : Infinity;
  return 1000 * (sum / (k * min) - 1);
}

/**
 * Number of successive strips, ending at `t`, over which the validation error grew:
 * the largest `s` with `E_va(t - (i-1)k) > E_va(t - ik)` for `i = 1..s` (Prechelt's `UP_s`).
 * @param val validation errors
 * @param t epoch, from 1
 * @param k strip length (default 5)
 * @returns the count (0 if the error did not grow over the last strip)
 */
export function successiveIncreases(
  val: readonly number[],
  t: number = val.length,
  k = DEFAULT_STRIP,
): number {
  checkT("successiveIncreases", val, t);
  if (!(Number.isInteger(k) && k >= 1)) {
    throw new Error(`successiveIncreases: strip length ${k} must be an integer >= 1`);
  }
  let s = 0;
  for (let end = t; end - k >= 1; end -= k) {
    if (val[end - 1] > val[end - k - 1]) s++;
    else break;
  }
  return s;
}

function checkRule(rule: StoppingRule): number {
  const pos = (what: string, v: number, int = false) => {
    if (!(Number.isFinite(v) && v > 0 && (!int || Number.isInteger(v)))) {
      throw new Error(
        `early stopping ${rule.kind}: ${what} must be a positive ${int ? "integer" : "number"}, ` +
          `got ${v}`,
      );
    }
  };
  const strip = "strip" in rule ? rule.strip ?? DEFAULT_STRIP : DEFAULT_STRIP;
  pos("strip", strip, true);
  if (rule.kind === "gl" || rule.kind === "pq") pos("alpha", rule.alpha);
  else if (rule.kind === "up") pos("strips", rule.strips, true);
  else if (rule.kind === "patience") pos("epochs", rule.epochs, true);
  else throw new Error(`early stopping: unknown rule '${(rule as { kind: string }).kind}'`);
  return strip;
}

/**
 * Applies a rule after the latest epoch (`t = curves.val.length`). PQ and UP are only checked
 * at the end of a strip (`t` a multiple of the strip length), as in the paper.
 * @param rule the criterion and its parameter
 * @param curves training and validation errors so far (PQ needs `train` as long as `val`)
 * @returns whether to stop, the criterion's value and a reason
 * @throws Error for an invalid rule or curves of different lengths where both are needed
 */
export function shouldStop(rule: StoppingRule, curves: ErrorCurves): StopDecision {
  const k = checkRule(rule);
  const t = curves.val.length;
  if (t === 0) return { stop: false, value: 0 };
  const endOfStrip = t % k === 0;
  switch (rule.kind) {
    case "gl": {
      const gl = generalizationLoss(curves.val, t);
      return gl > rule.alpha
        ? {
          stop: true,
          value: gl,
          reason: `GL_${rule.alpha}: generalization loss ${fmt(gl)} > ${rule.alpha} at epoch ${t}`,
        }
        : { stop: false, value: gl };
    }
    case "pq": {
      if (curves.train.length !== t) {
        throw new Error(
          `early stopping pq: ${curves.train.length} training errors for ${t} validation errors`,
        );
      }
      if (!endOfStrip) return { stop: false, value: NaN };
      const gl = generalizationLoss(curves.val, t);
      const p = trainingProgress(curves.train, t, k);
      const q = gl === 0 ? 0 : p === 0 ? Infinity : gl / p;
      return q > rule.alpha
        ? {
          stop: true,
          value: q,
          reason:
            `PQ_${rule.alpha}: GL/P_${k} = ${fmt(gl)}/${fmt(p)} = ${fmt(q)} > ${rule.alpha} ` +
            `at epoch ${t}`,
        }
        : { stop: false, value: q };
    }
    case "up": {
      if (!endOfStrip) return { stop: false, value: NaN };
      const s = successiveIncreases(curves.val, t, k);
      return s >= rule.strips
        ? {
          stop: true,
          value: s,
          reason: `UP_${rule.strips}: validation error grew in ${s} successive strips of ${k} ` +
            `epochs at epoch ${t}`,
        }
        : { stop: false, value: s };
    }
    case "patience": {
      const since = t - bestEpoch(curves.val, t);
      return since >= rule.epochs
        ? {
          stop: true,
          value: since,
          reason: `patience ${rule.epochs}: no improvement for ${since} epochs at epoch ${t}`,
        }
        : { stop: false, value: since };
    }
  }
}

function fmt(v: number): string {
  return Number.isFinite(v) ? v.toPrecision(3) : String(v);
}

/**
 * Parses a rule from its command-line form: `gl:5` (or `gl5`), `pq:0.5`, `up:3`,
 * `patience:10`, with an optional strip length `pq:0.5:k=5`.
 * @param text the spec
 * @returns the rule
 * @throws Error naming the accepted forms
 */
export function parseStoppingRule(text: string): StoppingRule {
  const m = /^\s*(gl|pq|up|patience)\s*:?\s*([0-9.eE+-]+)\s*(?::\s*k\s*=\s*(\d+))?\s*$/i.exec(text);
  const forms = "gl:ALPHA, pq:ALPHA, up:S or patience:EPOCHS (optionally ':k=5')";
  if (!m) throw new Error(`Invalid early-stopping rule '${text}'; use ${forms}`);
  const kind = m[1].toLowerCase(), v = Number(m[2]);
  const strip = m[3] === undefined ? undefined : Number(m[3]);
  let rule: StoppingRule;
  if (kind === "gl") rule = { kind, alpha: v };
  else if (kind === "pq") rule = { kind, alpha: v, strip };
  else if (kind === "up") rule = { kind, strips: v, strip };
  else rule = { kind: "patience", epochs: v };
  if (strip !== undefined && (kind === "gl" || kind === "patience")) {
    throw new Error(`Invalid early-stopping rule '${text}': ${kind} takes no strip length`);
  }
  try {
    checkRule(rule);
  } catch (e) {
    throw new Error(`Invalid early-stopping rule '${text}': ${(e as Error).message}`);
  }
  return rule;
}
