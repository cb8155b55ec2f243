/**
 * The official SQuAD v1.1 evaluation (`evaluate-v1.1.py`): answer
 * normalisation, exact match and token F1, each the maximum over the gold
 * answers, and the corpus scores as percentages.
 *
 * @module
 */
import { pySplit } from "./text.ts";

/** Python's `string.punctuation`: the 32 ASCII punctuation characters. */
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

/**
 * `\b(a|an|the)\b` with Python 3's Unicode word boundaries: a word character
 * is a letter, a number or `_` (Python's `\w` on `str`), so "théa" keeps its
 * "a" while JavaScript's ASCII-only `\b` would not.
 */
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/**
 * The official `normalize_answer`: lowercase, remove every character of
 * `string.punctuation`, replace the whole words "a", "an", "the" by a space,
 * and collapse whitespace (Python `" ".join(s.split())`). The steps run in
 * that order, so "the-end" becomes "theend" (punctuation first) and keeps its
 * letters.
 */
export function normalizeAnswer(s: string): string {
  let t = s.toLowerCase();
  let out = "";
  for (const ch of t) if (!PUNCTUATION.has(ch)) out += ch;
  t = out.replace(ARTICLES, " ");
  return pySplit(t).join(" ");
}

function asList(golds: string | readonly string[]): readonly string[] {
  const list = typeof golds === "string" ? [golds] : golds;
  if (list.length === 0) throw new Error("squad metric: an example has no gold answers");
  return list;
}

/** Exact match against one gold answer: 1 when the normalised strings are equal, else 0. */
export function exactMatchSingle(prediction: string, gold: string): number {
  return normalizeAnswer(prediction) === normalizeAnswer(gold) ? 1 : 0;
}

/**
 * Token F1 against one gold answer (the official `f1_score`): tokens are the
 * whitespace-split normalised strings; the overlap is the size of the
 * multiset intersection (`Counter(pred) & Counter(gold)`); 0 when the overlap
 * is empty (which also covers an empty prediction or an empty gold), else
 * `2PR / (P + R)` with `P = overlap / |pred|`, `R = overlap / |gold|`.
 */
export function f1Single(prediction: string, gold: string): number {
  const p = pySplit(normalizeAnswer(prediction));
  const g = pySplit(normalizeAnswer(gold));
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / p.length;
  const recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

/**
 * Exact match of `prediction` against the gold answers: the maximum over
 * golds (`metric_max_over_ground_truths`), so 1 or 0. Throws on an empty gold
 * list.
 */
export function exactMatch(prediction: string, golds: string | readonly string[]): number {
  return Math.max(...asList(golds).map((g) => exactMatchSingle(prediction, g)));
}

/** Token F1 of `prediction`: the maximum of {@link f1Single} over the gold answers, in [0, 1]. */
export function f1(prediction: string, golds: string | readonly string[]): number {
  return Math.max(...asList(golds).map((g) => f1Single(prediction, g)));
}

/** Corpus SQuAD scores, as the official script prints them (percentages). */
export interface SquadScores {
  /** 100 × mean exact match. */
  exactMatch: number;
  /** 100 × mean token F1. */
  f1: number;
  /** Number of questions. */
  count: number;
}

/**
 * The official `evaluate`: `predictions[i]` is scored against `golds[i]`, and
 * EM and F1 are averaged over the questions and multiplied by 100. Throws when
 * the lengths differ or there are no questions.
 */
export function squadScores(predictions: readonly string[], golds: readonly (readonly string[])[]): SquadScores {
  if (predictions.length !== golds.length) {
    throw new Error(`squad metric: ${predictions.length} predictions for ${golds.length} questions`);
  }
  if (predictions.length === 0) throw new Error("squad metric: no questions to score");
  let em = 0, f = 0;
  predictions.forEach((p, i) => {
    em += exactMatch(p, golds[i]);
    f += f1(p, golds[i]);
  });
  return { exactMatch: (100 * em) / predictions.length, f1: (100 * f) / predictions.length, count: predictions.length };
}
