/**
 * Picking the next token from logits: greedy, or a seeded sample with temperature, top-k and top-p, in time linear
 * in the vocabulary (a sort of 32,000 logits a token took 16 ms; the 15M model's decode step takes ~2).
 * @module
 */
import { type Key, key as makeKey } from "../core/random.ts";
import { bitsToUniform, threefry2x32 } from "../core/threefry.ts";

/** First index of the maximum, a NaN counting as the maximum: the rule of the `argmax` op, which greedy blocks use. */
export function argmax(logits: Float32Array): number {
  let best = -Infinity, arg = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (v > best || (v !== v && best === best)) best = v, arg = i;
  }
  return arg;
}

/** Whether token i ranks before token j: the larger logit, then the smaller index. */
function before(logits: Float32Array, i: number, j: number): boolean {
  return logits[i] > logits[j] || (logits[i] === logits[j] && i < j);
}

/** The `k` best tokens in rank order, kept sorted as the logits stream by (a token rarely displaces one). */
function topKOrder(logits: Float32Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (best.length === k) {
      if (!before(logits, i, best[k - 1])) continue;
      best.pop();
    }
    let at = best.length;
    while (at > 0 && before(logits, i, best[at - 1])) at--;
    best.splice(at, 0, i);
  }
  return best;
}

/**
 * Picks a token from logits: argmax at temperature 0, else a sample from softmax(logits / temperature) over the
 * `topK` best tokens (all when 0), cut to the fewest best whose probability reaches `topP`, drawn with `key`.
 */
export function sampleToken(
  logits: Float32Array,
  opts: { temperature?: number; topK?: number; topP?: number; key?: Key },
): number {
  const { temperature = 0, topK = 0, topP = 1 } = opts;
  if (temperature <= 0) return argmax(logits);
  const n = logits.length;
  // Candidates: the top k in rank order, or every token in index order (sampling from all needs no order).
  let order: number[] | null = topK > 0 && topK < n ? topKOrder(logits, topK) : null;
  const m = logits[order ? order[0] : argmax(logits)];
  let count = order ? order.length : n, weights = new Float64Array(count), total = 0;
  for (let j = 0; j < count; j++) total += weights[j] = Math.exp((logits[order ? order[j] : j] - m) / temperature);
  let mass = total;
  if (topP < 1) {
    if (!order) {
      // The nucleus is a prefix of the rank order, so it lies among the tokens above any weight whose tokens already
      // hold topP of the mass (weights rise with logits): a high bar first, so that only a few get sorted.
      let kept: number[] = [];
      for (const bar of [1e-3, 1e-6, 0]) {
        let held = 0;
        kept = [];
        for (let j = 0; j < n; j++) if (bar === 0 || weights[j] > bar * total) kept.push(j), held += weights[j];
        if (held >= topP * total) break;
      }
      const all = weights;
      order = kept.sort((i, j) => before(logits, i, j) ? -1 : 1);
      weights = Float64Array.from(order, (j) => all[j]);
      count = order.length;
    }
    let acc = 0, keep = 0;
    while (keep < count && acc < topP * total) acc += weights[keep++];
    count = keep, mass = acc;
  }
  const k = opts.key ?? makeKey(0);
  const u = bitsToUniform(threefry2x32(k.k0, k.k1, 0, 0)[0]) * mass;
  let acc = 0;
  for (let j = 0; j < count; j++) {
    acc += weights[j];
    if (u < acc) return order ? order[j] : j;
  }
  return order ? order[count - 1] : count - 1;
}
