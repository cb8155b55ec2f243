/**
 * Small text helpers shared by the metrics: Python's `str.split()` and
 * `str.strip()` semantics, so that ports of Python reference implementations
 * split on exactly the same characters.
 *
 * @module
 */

/**
 * The characters Python 3's `str.split()` with no argument treats as
 * whitespace (`str.isspace()`): ASCII `\t\n\v\f\r` and space, the separators
 * U+001C–U+001F, U+0085, U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029,
 * U+202F, U+205F and U+3000. It differs from JavaScript's `\s`, which lacks
 * U+001C–U+001F and U+0085 and adds U+FEFF.
 */
export const PY_WHITESPACE =
  "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

const SPLIT_RE = new RegExp(`[${PY_WHITESPACE}]+`);
const LSTRIP_RE = new RegExp(`^[${PY_WHITESPACE}]+`);
const RSTRIP_RE = new RegExp(`[${PY_WHITESPACE}]+$`);

/** Python's `s.split()`: split on runs of whitespace, dropping empty strings. */
export function pySplit(s: string): string[] {
  return s.split(SPLIT_RE).filter((t) => t.length > 0);
}

/** Python's `s.rstrip()`: remove trailing whitespace. */
export function pyRstrip(s: string): string {
  return s.replace(RSTRIP_RE, "");
}

/** Python's `s.strip()`: remove leading and trailing whitespace. */
export function pyStrip(s: string): string {
  return pyRstrip(s.replace(LSTRIP_RE, ""));
}
