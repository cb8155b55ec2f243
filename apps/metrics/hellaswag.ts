/**
 * Multiple-choice scoring for HellaSwag: pick the ending with the highest
 * length-normalised log-likelihood, and accuracy.
 *
 * The normalisation chosen here is **per token**: an ending's score is the
 * sum of its tokens' log-probabilities (each conditioned on the context and
 * the ending's earlier tokens) divided by its number of tokens, i.e. the mean
 * token log-probability, as llama.cpp's `hellaswag` scorer does. For
 * reference, lm-eval-harness reports `acc` (unnormalised sum) and `acc_norm`
 * (sum divided by the ending's length in characters, including its leading
 * space); both are reachable through the `lengths` argument (all 1s, or the
 * character lengths), and the HellaSwag task reports them alongside.
 *
 * @module
 */

/**
 * Index of the best ending. Each entry of `logLikelihoods` is either the
 * per-token log-probabilities of ending j (an array) or their sum (a number).
 * The score is the sum divided by `lengths[j]` when given, else by the number
 * of tokens (the array's length); a sum needs its `lengths[j]`. With the
 * number of ending tokens as lengths this is the mean token log-probability;
 * with all-1 lengths the unnormalised sum. The first maximum wins (as
 * `np.argmax`). Throws when there are no endings, a length is missing or not
 * positive, or a score is NaN.
 */
export function pickEnding(
  logLikelihoods: readonly (number | readonly number[])[],
  lengths?: readonly number[],
): number {
  if (logLikelihoods.length === 0) throw new Error("pickEnding: no endings to choose from");
  if (lengths !== undefined && lengths.length !== logLikelihoods.length) {
    throw new Error(`pickEnding: ${lengths.length} lengths for ${logLikelihoods.length} endings`);
  }
  let best = 0, bestScore = -Infinity;
  logLikelihoods.forEach((lls, j) => {
    let sum = 0;
    if (typeof lls === "number") sum = lls;
    else for (const x of lls) sum += x;
    const len = lengths?.[j] ?? (typeof lls === "number" ? undefined : lls.length);
    if (len === undefined) throw new Error(`pickEnding: ending ${j} is a summed log-likelihood without a length`);
    if (!(len > 0)) throw new Error(`pickEnding: ending ${j} has length ${len}; it needs at least one token`);
    const score = sum / len;
    if (Number.isNaN(score)) throw new Error(`pickEnding: ending ${j} has a NaN log-likelihood`);
    if (j === 0 || score > bestScore) {
      best = j;
      bestScore = score;
    }
  });
  return best;
}

/**
 * Fraction of predictions equal to their labels, in [0, 1]. Throws on a
 * length mismatch or when there is nothing to score.
 */
export function accuracy(predictions: readonly number[], labels: readonly number[]): number {
  if (predictions.length !== labels.length) {
    throw new Error(`accuracy: ${predictions.length} predictions for ${labels.length} labels`);
  }
  if (predictions.length === 0) throw new Error("accuracy: no examples to score");
  let right = 0;
  predictions.forEach((p, i) => {
    if (p === labels[i]) right++;
  });
  return right / predictions.length;
}
