/**
 * Exact match after trimming leading and trailing whitespace, for the generic
 * JSONL task: nothing else is normalised (case, punctuation and inner
 * whitespace all count).
 *
 * @module
 */

/** 1 when `prediction.trim() === gold.trim()`, else 0 (JavaScript `trim`: Unicode whitespace and line terminators). */
export function exactMatchTrimmed(prediction: string, gold: string): number {
  return prediction.trim() === gold.trim() ? 1 : 0;
}

/**
 * Mean of {@link exactMatchTrimmed} over a corpus, as a percentage in [0, 100].
 * Throws on a length mismatch or an empty corpus.
 */
export function meanExactMatch(predictions: readonly string[], golds: readonly string[]): number {
  if (predictions.length !== golds.length) {
    throw new Error(`exact match: ${predictions.length} predictions for ${golds.length} golds`);
  }
  if (predictions.length === 0) throw new Error("exact match: no examples to score");
  let n = 0;
  predictions.forEach((p, i) => n += exactMatchTrimmed(p, golds[i]));
  return (100 * n) / predictions.length;
}
