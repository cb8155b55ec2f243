/**
 * Corpus BLEU as sacreBLEU 2.x computes it with its defaults (`BLEU()`,
 * signature `nrefs:N|case:mixed|eff:no|tok:13a|smooth:exp|version:2.x`):
 * the `13a` tokenizer (mteval-v13a), clipped n-gram counts up to 4-grams summed
 * over the corpus, the brevity penalty on the corpus totals with the closest
 * reference length per segment, and `exp` smoothing. The other sacreBLEU
 * options (`none`/`floor`/`add-k` smoothing, effective order, lowercasing, the
 * `none` tokenizer) are available for comparison with its test suite.
 *
 * @module
 */
import { pyRstrip, pySplit, pyStrip } from "./text.ts";

/** A BLEU score and its parts, as sacreBLEU's `BLEUScore`. */
export interface BleuScore {
  /** BLEU in [0, 100]. */
  score: number;
  /** Modified n-gram precisions for n = 1..maxNgramOrder, in percent (after smoothing). */
  precisions: number[];
  /** Brevity penalty, in [0, 1]. */
  bp: number;
  /** Total hypothesis length in tokens. */
  sysLen: number;
  /** Total reference length in tokens (closest reference per segment). */
  refLen: number;
  /** Clipped n-gram matches per order. */
  counts: number[];
  /** Hypothesis n-grams per order. */
  totals: number[];
}

/** Options of {@link corpusBleu}; every default is sacreBLEU's. */
export interface BleuOptions {
  /** `"exp"` (default, NIST geometric sequence), `"none"`, `"floor"` or `"add-k"`. */
  smoothMethod?: "exp" | "none" | "floor" | "add-k";
  /** Value for `floor` (default 0.1) and `add-k` (default 1). */
  smoothValue?: number;
  /** Stop at the highest n-gram order the hypotheses have (default false). */
  effectiveOrder?: boolean;
  /** Highest n-gram order (default 4). */
  maxNgramOrder?: number;
  /** Lowercase hypotheses and references first (default false). */
  lowercase?: boolean;
  /** `"13a"` (default) or `"none"` (split on whitespace only). */
  tokenize?: "13a" | "none";
}

/**
 * sacreBLEU's `Tokenizer13a` (which ends in `TokenizerRegexp`), port of the
 * mteval-v13a tokenization: drop `<skipped>`, join `-\n` line breaks, turn
 * newlines into spaces, unescape `&quot; &amp; &lt; &gt;`, pad with spaces,
 * then apply in order
 * 1. `([\{-\~\[-\` -\&\(-\+\:-\@\/])` → ` \1 ` (split off ASCII symbols and
 *    punctuation except `'`, `,`, `-`, `.`),
 * 2. `([^0-9])([\.,])` → `\1 \2 ` (period/comma not preceded by a digit),
 * 3. `([\.,])([^0-9])` → ` \1 \2` (period/comma not followed by a digit),
 * 4. `([0-9])(-)` → `\1 \2 ` (dash preceded by a digit),
 * and join the whitespace-separated tokens with single spaces. JavaScript's
 * global replace scans left to right without overlap exactly like Python's
 * `re.sub`, so the output is identical.
 */
export function tokenize13a(line: string): string {
  let s = line.replaceAll("<skipped>", "").replaceAll("-\n", "").replaceAll("\n", " ");
  s = s.replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll("&gt;", ">");
  s = ` ${s} `;
  s = s.replace(/([\{-\~\[-\` -\&\(-\+\:-\@\/])/g, " $1 ");
  s = s.replace(/([^0-9])([\.,])/g, "$1 $2 ");
  s = s.replace(/([\.,])([^0-9])/g, " $1 $2");
  s = s.replace(/([0-9])(-)/g, "$1 $2 ");
  return pySplit(pyStrip(s)).join(" ");
}

/** Counts of all n-grams of orders 1..maxOrder; keys are the tokens joined by a space. */
export function extractNgrams(tokens: readonly string[], maxOrder = 4): Map<string, number> {
  const out = new Map<string, number>();
  for (let n = 1; n <= maxOrder; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = tokens.slice(i, i + n).join(" ");
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  }
  return out;
}

/** sacreBLEU's `_get_closest_ref_len`: the reference length nearest the hypothesis length, the shorter on ties. */
export function closestRefLength(hypLen: number, refLens: readonly number[]): number {
  let bestDiff = -1, best = -1;
  for (const r of refLens) {
    const diff = Math.abs(hypLen - r);
    if (bestDiff === -1 || diff < bestDiff) {
      bestDiff = diff;
      best = r;
    } else if (diff === bestDiff && r < best) {
      best = r;
    }
  }
  return best;
}

const SMOOTH_DEFAULTS = { none: 0, floor: 0.1, "add-k": 1, exp: 0 } as const;

/**
 * sacreBLEU's `compute_bleu` from sufficient statistics. The brevity penalty
 * is `exp(1 - refLen / sysLen)` when `sysLen < refLen` (0 when `sysLen` is 0),
 * else 1. If no n-gram of any order matches, the score is 0. Otherwise, for
 * each order n with hypothesis n-grams: with no match, `exp` smoothing uses
 * `100 / (2^k · total_n)` for the k-th such order, `floor` uses
 * `100 · value / total_n`; with matches, `100 · correct_n / total_n`. An order
 * with no hypothesis n-grams stops the loop, and its precision stays 0 (score
 * 0) unless `effectiveOrder`. BLEU = `bp · exp(mean of log precisions)`.
 */
export function computeBleu(
  correct: readonly number[],
  total: readonly number[],
  sysLen: number,
  refLen: number,
  opts: Pick<BleuOptions, "smoothMethod" | "smoothValue" | "effectiveOrder" | "maxNgramOrder"> = {},
): BleuScore {
  const method = opts.smoothMethod ?? "exp";
  const value = opts.smoothValue ?? SMOOTH_DEFAULTS[method];
  const maxOrder = opts.maxNgramOrder ?? 4;
  const counts = [...correct], totals = [...total];
  const bp = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  const precisions = new Array<number>(maxOrder).fill(0);
  const result = (score: number): BleuScore => ({ score, precisions, bp, sysLen, refLen, counts, totals });
  if (!counts.some((c) => c !== 0)) return result(0);
  let smoothMteval = 1;
  let effOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (method === "add-k" && n > 1) {
      counts[n - 1] += value;
      totals[n - 1] += value;
    }
    if (totals[n - 1] === 0) break;
    if (opts.effectiveOrder) effOrder = n;
    if (counts[n - 1] === 0) {
      if (method === "exp") {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * totals[n - 1]);
      } else if (method === "floor") {
        precisions[n - 1] = (100 * value) / totals[n - 1];
      }
    } else {
      precisions[n - 1] = (100 * counts[n - 1]) / totals[n - 1];
    }
  }
  // sacreBLEU's my_log: log(0) is -9999999999, so a zero precision gives exp(-huge) = 0.
  let logSum = 0;
  for (let i = 0; i < effOrder; i++) logSum += precisions[i] === 0 ? -9999999999 : Math.log(precisions[i]);
  return result(bp * Math.exp(logSum / effOrder));
}

/**
 * Corpus BLEU of `hypotheses` against `references`, one entry per segment:
 * `references[i]` is a string or a list of strings (several references for
 * segment i; empty strings are dropped, as sacreBLEU drops `""`/`None`). Note
 * the orientation: sacreBLEU's `corpus_score` takes reference *streams*
 * (`refs[k][i]`); here it is per segment (`references[i][k]`).
 *
 * Each segment is `rstrip`ped and tokenized with {@link tokenize13a}; its
 * n-gram counts are clipped by the maximum count in any one reference; all
 * counts and lengths are summed over the corpus and passed to
 * {@link computeBleu}. Throws on a length mismatch, an empty corpus, or a
 * segment without a non-empty reference.
 */
export function corpusBleu(
  hypotheses: readonly string[],
  references: readonly (string | readonly string[])[],
  opts: BleuOptions = {},
): BleuScore {
  if (hypotheses.length !== references.length) {
    throw new Error(`bleu: ${hypotheses.length} hypotheses for ${references.length} reference segments`);
  }
  if (hypotheses.length === 0) throw new Error("bleu: no segments to score");
  const maxOrder = opts.maxNgramOrder ?? 4;
  const prep = (s: string): string[] => {
    const t = pyRstrip(opts.lowercase ? s.toLowerCase() : s);
    return pySplit((opts.tokenize ?? "13a") === "13a" ? tokenize13a(t) : t);
  };
  const correct = new Array<number>(maxOrder).fill(0);
  const total = new Array<number>(maxOrder).fill(0);
  let sysLen = 0, refLen = 0;
  hypotheses.forEach((hyp, i) => {
    const refs = (typeof references[i] === "string" ? [references[i] as string] : references[i] as string[])
      .filter((r) => r !== "" && r !== undefined && r !== null);
    if (refs.length === 0) throw new Error(`bleu: segment ${i} has no non-empty reference`);
    const refMax = new Map<string, number>();
    const refLens: number[] = [];
    for (const r of refs) {
      const toks = prep(r);
      refLens.push(toks.length);
      for (const [g, c] of extractNgrams(toks, maxOrder)) refMax.set(g, Math.max(refMax.get(g) ?? 0, c));
    }
    const hypToks = prep(hyp);
    sysLen += hypToks.length;
    refLen += closestRefLength(hypToks.length, refLens);
    for (const [g, c] of extractNgrams(hypToks, maxOrder)) {
      const n = g.split(" ").length - 1;
      total[n] += c;
      correct[n] += Math.min(c, refMax.get(g) ?? 0);
    }
  });
  return computeBleu(correct, total, sysLen, refLen, opts);
}
