/**
 * ROUGE-L (Lin, 2004) as Google's `rouge-score` package computes it with its
 * default tokenizer and no stemming (`RougeScorer(["rougeL"])`): sentence-level
 * LCS precision, recall and F-measure; with several references the score with
 * the highest F-measure (`score_multi`); the corpus score is the mean of the
 * per-example F-measures.
 *
 * @module
 */

/** Precision, recall and F-measure of one prediction, each in [0, 1]. */
export interface RougeScore {
  /** Matched fraction of the prediction. */
  precision: number;
  /** Matched fraction of the reference. */
  recall: number;
  /** F-measure of the two. */
  f: number;
}

/**
 * `rouge_score.tokenize.tokenize` without a stemmer: lowercase, replace every
 * run of characters outside `[a-z0-9]` by a space, split on whitespace and
 * keep the non-empty tokens. Non-ASCII letters therefore split words
 * ("café" → ["caf"]).
 */
export function rougeTokenize(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, " ").split(" ").filter((t) => t.length > 0);
}

/** Length of the longest common subsequence of two token lists (dynamic programming, two rows). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

/** `rouge_score.scoring.fmeasure`: `2PR / (P + R)`, or 0 when `P + R` is 0. */
function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function scoreOne(predTokens: readonly string[], reference: string): RougeScore {
  const refTokens = rougeTokenize(reference);
  if (predTokens.length === 0 || refTokens.length === 0) return { precision: 0, recall: 0, f: 0 };
  const lcs = lcsLength(refTokens, predTokens);
  const precision = lcs / predTokens.length;
  const recall = lcs / refTokens.length;
  return { precision, recall, f: fmeasure(precision, recall) };
}

/**
 * Sentence-level ROUGE-L of `prediction` against one reference or several
 * (`_score_lcs`): `P = LCS / |prediction tokens|`, `R = LCS / |reference
 * tokens|`, `F = 2PR / (P + R)`; all zero when either side has no tokens.
 * With several references, the score of the first reference with the highest F
 * (`score_multi`, `np.argmax`). Note the argument order is (prediction,
 * reference), the reverse of `rouge_score`'s `score(target, prediction)`.
 */
export function rougeL(prediction: string, reference: string | readonly string[]): RougeScore {
  const refs = typeof reference === "string" ? [reference] : reference;
  if (refs.length === 0) throw new Error("rougeL: no references given");
  const pred = rougeTokenize(prediction);
  let best: RougeScore | undefined;
  for (const r of refs) {
    const s = scoreOne(pred, r);
    if (best === undefined || s.f > best.f) best = s;
  }
  return best!;
}

/**
 * Corpus ROUGE-L: `predictions[i]` against `references[i]` (a string or a list
 * of strings), returning the means of the per-example precision, recall and F
 * (the F mean is the corpus score). Throws on a length mismatch or an empty
 * corpus.
 */
export function corpusRougeL(
  predictions: readonly string[],
  references: readonly (string | readonly string[])[],
): RougeScore & { count: number } {
  if (predictions.length !== references.length) {
    throw new Error(`rougeL: ${predictions.length} predictions for ${references.length} references`);
  }
  if (predictions.length === 0) throw new Error("rougeL: no examples to score");
  let p = 0, r = 0, f = 0;
  predictions.forEach((pred, i) => {
    const s = rougeL(pred, references[i]);
    p += s.precision;
    r += s.recall;
    f += s.f;
  });
  const n = predictions.length;
  return { precision: p / n, recall: r / n, f: f / n, count: n };
}
