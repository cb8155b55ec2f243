/**
 * GSM8K answer checking. The official `grade-school-math` code extracts the
 * number after `#### ` from both the gold solution and the model completion
 * (`ANS_RE = r"#### (\-?[0-9\.\,]+)"`, commas removed) and compares the
 * strings. Here the completion falls back to its last number when it has no
 * `####` answer (the lm-eval-harness "flexible extract"), and numbers are
 * compared in a canonical form, so "3.0", "3" and "3.00" are equal and
 * "1,000" equals "1000".
 *
 * @module
 */

/**
 * A number in running text: an optional minus sign (not one right after a
 * letter or digit, which is a subtraction or a hyphen: "5-3", "x-3"), then a
 * run of digits and commas that starts and ends with a digit (commas are
 * thousands separators and are dropped: "1,234" is 1234), then an optional
 * decimal part; or a bare decimal (".5"). A match never starts inside another
 * number, and a trailing period or comma is punctuation ("18." is 18).
 */
const NUMBER_RE = /(?:(?<![\p{L}\p{N}])-)?(?<![\d.])(?:\d(?:[\d,]*\d)?(?:\.\d+)?|\.\d+)/gu;

/**
 * Canonical form of a number string: commas and a trailing "." removed,
 * leading zeros of the integer part and trailing zeros of the fraction
 * dropped, "-0" as "0". Returns null when the string is not a number.
 * Exact on strings, so large or long decimals lose nothing.
 * `normalizeNumber("1,200.50")` is `"1200.5"`, `normalizeNumber("-3.0")` is `"-3"`.
 */
export function normalizeNumber(s: string): string | null {
  let t = s.trim().replaceAll(",", "");
  if (t.endsWith(".")) t = t.slice(0, -1);
  const m = /^(-?)(\d*)(?:\.(\d+))?$/.exec(t);
  if (m === null || (m[2] === "" && m[3] === undefined)) return null;
  const int = m[2].replace(/^0+/, "") || "0";
  const frac = (m[3] ?? "").replace(/0+$/, "");
  const body = frac ? `${int}.${frac}` : int;
  return m[1] === "-" && body !== "0" ? `-${body}` : body;
}

/**
 * The gold answer of a GSM8K solution: the number after `####` (the official
 * `extract_answer`), commas removed, in canonical form. Throws when the
 * solution has no `####` number.
 */
export function goldNumber(answer: string): string {
  const m = /####\s*(-?[0-9.,]+)/.exec(answer);
  const n = m ? normalizeNumber(m[1]) : null;
  if (n === null) throw new Error(`gsm8k: no "#### <number>" in the gold answer ${JSON.stringify(answer.slice(-80))}`);
  return n;
}

/**
 * The last number in `text` (see the module notes: thousands commas, a minus
 * sign, decimals), in canonical form, or null when there is none.
 * `lastNumber("so 1,200 + 3.50 = $1,203.5.")` is `"1203.5"`.
 */
export function lastNumber(text: string): string | null {
  let last: string | null = null;
  for (const m of text.matchAll(NUMBER_RE)) last = m[0];
  return last === null ? null : normalizeNumber(last);
}

/**
 * The answer of a model completion: the number right after the first `####`
 * when there is one (as the official checker), else the last number in the
 * text; null when the text has no number.
 */
export function extractAnswer(output: string): string | null {
  const m = /####\s*(-?[0-9.,]*[0-9])/.exec(output);
  if (m) {
    const n = normalizeNumber(m[1]);
    if (n !== null) return n;
  }
  return lastNumber(output);
}

/**
 * Whether the completion's answer ({@link extractAnswer}) equals the gold
 * number. `goldAnswer` is either a full GSM8K solution (with `####`) or the
 * bare gold number.
 */
export function gsm8kExactMatch(output: string, goldAnswer: string): boolean {
  const gold = goldAnswer.includes("####") ? goldNumber(goldAnswer) : normalizeNumber(goldAnswer);
  if (gold === null) throw new Error(`gsm8k: gold answer ${JSON.stringify(goldAnswer)} is not a number`);
  return extractAnswer(output) === gold;
}
