/**
 * Refusing regular expressions that a backtracking engine (V8's Irregexp,
 * which runs every `Regex` pattern of a tokenizer.json) can take exponential
 * time on. JavaScript offers no time limit for a RegExp match, and running
 * each encode in a Worker with a deadline would cost a thread hop per call, so
 * knot refuses such patterns when the tokenizer is loaded instead.
 *
 * The test is structural and conservative. A repeat that can run many times
 * (`*`, `+`, `{n,}`, or `{n,m}` with m > 16) is refused when its body
 *
 * 1. itself holds a variable-length repeat (`(a+)+`, `(\s*x)*`, `(a{1,2})+`):
 *    star height 2, the classic exponential case; or
 * 2. is an alternation whose branches may start with the same character
 *    (`(a|a)*`, `(\w|\d)+`): two ways to match each step. Branches that start
 *    with distinct literal characters (`(?:\r\n|\n)+`) are accepted.
 *
 * The pre-tokenizer patterns of GPT-2, Llama 3, Qwen2 and the o200k family
 * pass (Llama 2's tokenizer has no Regex pattern); `(a+)+$`, whose match took
 * 4.3 s on 26 characters here (about 1.8× more with each further one), is refused in
 * ~40 µs. What is left is at worst polynomial (e.g. GPT-2's `\s+(?!\S)|\s+`,
 * quadratic in a run of spaces).
 * @module
 */

/** Repeats of at most this many times are treated as bounded (cheap to expand). */
const SMALL_REPEAT = 16;

interface Info {
  /** The body holds a repeat of variable length (max > min and max > 1). */
  variable: boolean;
  /** The first characters a match may start with: literal chars, or null for "any/unknown". */
  first: Set<string> | null;
  /** Whether the node can match the empty string. */
  empty: boolean;
}

class Refused extends Error {}

/**
 * Returns null if `pattern` is accepted, else the reason it is refused (naming
 * the offending part). A pattern that does not parse is left to the RegExp
 * constructor (and reported by the tokenizer library).
 */
export function catastrophicReason(pattern: string): string | null {
  let i = 0;
  const n = pattern.length;

  const literalEscape = (c: string): string | null => {
    const map: Record<string, string> = { n: "\n", r: "\r", t: "\t", f: "\f", v: "\v", "0": "\0" };
    if (Object.hasOwn(map, c)) return map[c];
    if (/[\\^$.|?*+()[\]{}\/\-'" #&~!,:;<=>@`%]/.test(c)) return c;
    return null; // a class (\s, \d, \p{…}), a backreference or an anchor: unknown
  };

  const parseAlternation = (): Info & { branches: Info[] } => {
    const branches: Info[] = [parseSequence()];
    while (i < n && pattern[i] === "|") {
      i++;
      branches.push(parseSequence());
    }
    let first: Set<string> | null = new Set();
    for (const b of branches) {
      if (first === null || b.first === null) first = null;
      else for (const c of b.first) first.add(c);
    }
    return {
      variable: branches.some((b) => b.variable),
      first,
      empty: branches.some((b) => b.empty),
      branches,
    };
  };

  const ambiguous = (branches: Info[]): boolean => {
    if (branches.length < 2) return false;
    const seen = new Set<string>();
    for (const b of branches) {
      if (b.first === null || b.empty) return true;
      for (const ch of b.first) {
        const c = ch.toLowerCase(); // (?i:a|A)+ is as ambiguous as (a|a)+
        if (seen.has(c)) return true;
        seen.add(c);
      }
    }
    return false;
  };

  const parseSequence = (): Info => {
    let variable = false;
    let first: Set<string> | null = new Set();
    let empty = true; // so far every atom can be empty
    while (i < n && pattern[i] !== "|" && pattern[i] !== ")") {
      const start = i;
      const atom = parseAtom();
      const q = parseQuantifier();
      let info = atom.info;
      if (q) {
        const many = q.max === Infinity || q.max > SMALL_REPEAT;
        if (many && q.max > 1) {
          const body = pattern.slice(start, Math.min(i, start + 40));
          if (atom.info.variable) {
            throw new Refused(`nested repetition at character ${start} ("${body}…"): exponential backtracking`);
          }
          if (atom.branches && ambiguous(atom.branches)) {
            throw new Refused(
              `repeated alternation whose branches can start alike at character ${start} ("${body}…")`,
            );
          }
        }
        info = {
          variable: atom.info.variable || (q.max > q.min && q.max > 1),
          first: atom.info.first,
          empty: atom.info.empty || q.min === 0,
        };
      }
      variable ||= info.variable;
      if (empty) {
        if (first === null || info.first === null) first = null;
        else for (const c of info.first) first.add(c);
      }
      empty &&= info.empty;
    }
    return { variable, first: empty ? null : first, empty };
  };

  const parseQuantifier = (): { min: number; max: number } | null => {
    const c = pattern[i];
    let q: { min: number; max: number } | null = null;
    if (c === "*") q = { min: 0, max: Infinity };
    else if (c === "+") q = { min: 1, max: Infinity };
    else if (c === "?") q = { min: 0, max: 1 };
    else if (c === "{") {
      const m = /^\{(\d*)(,(\d*))?\}/.exec(pattern.slice(i, i + 24));
      if (!m || (m[1] === "" && !m[2])) return null; // a literal "{"
      const min = m[1] === "" ? 0 : Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
      i += m[0].length;
      if (pattern[i] === "?" || pattern[i] === "+") i++; // lazy / possessive
      return { min, max };
    }
    if (!q) return null;
    i++;
    if (pattern[i] === "?" || pattern[i] === "+") i++; // lazy / possessive
    return q;
  };

  const parseAtom = (): { info: Info; branches?: Info[] } => {
    const c = pattern[i];
    if (c === "(") {
      i++;
      let lookaround = false;
      if (pattern[i] === "?") {
        // (?:  (?=  (?!  (?<=  (?<!  (?<name>  (?i:  (?i)
        const m = /^\?(<[=!]|[=!]|<[A-Za-z_][A-Za-z0-9_]*>|[imsx-]*:|[imsx-]*\)|:|>)/.exec(pattern.slice(i, i + 40));
        if (!m) throw new Refused(`unsupported group syntax at character ${i - 1}`);
        i += m[0].length;
        if (m[0].endsWith(")")) return { info: { variable: false, first: new Set(), empty: true } }; // inline flags
        lookaround = /^\?(<[=!]|[=!])/.test(m[0]);
      }
      const inner = parseAlternation();
      if (pattern[i] !== ")") throw new Refused(`unbalanced parenthesis at character ${i}`);
      i++;
      if (lookaround) return { info: { variable: inner.variable, first: new Set(), empty: true } };
      return { info: inner, branches: inner.branches };
    }
    if (c === "[") {
      // A character class (nested classes, as Oniguruma allows, are skipped whole).
      let depth = 0;
      for (; i < n; i++) {
        if (pattern[i] === "\\") i++;
        else if (pattern[i] === "[") depth++;
        else if (pattern[i] === "]" && --depth === 0) break;
      }
      i++;
      return { info: { variable: false, first: null, empty: false } };
    }
    if (c === "\\") {
      const e = pattern[i + 1] ?? "";
      i += 2;
      if (e === "p" || e === "P") {
        if (pattern[i] === "{") i = pattern.indexOf("}", i) + 1 || n;
        else i++;
        return { info: { variable: false, first: null, empty: false } };
      }
      if (e === "u" || e === "x") {
        if (pattern[i] === "{") {
          const end = pattern.indexOf("}", i);
          const cp = parseInt(pattern.slice(i + 1, end), 16);
          i = end + 1 || n;
          return { info: { variable: false, first: new Set([String.fromCodePoint(cp || 0)]), empty: false } };
        }
        const len = e === "u" ? 4 : 2;
        const cp = parseInt(pattern.slice(i, i + len), 16);
        i += len;
        return { info: { variable: false, first: new Set([String.fromCharCode(cp || 0)]), empty: false } };
      }
      if (e === "b" || e === "B" || e === "A" || e === "z" || e === "Z" || e === "G") {
        return { info: { variable: false, first: new Set(), empty: true } };
      }
      const lit = literalEscape(e);
      return { info: { variable: false, first: lit === null ? null : new Set([lit]), empty: false } };
    }
    if (c === "^" || c === "$") {
      i++;
      return { info: { variable: false, first: new Set(), empty: true } };
    }
    if (c === ".") {
      i++;
      return { info: { variable: false, first: null, empty: false } };
    }
    // A literal character (one code point).
    const cp = pattern.codePointAt(i)!;
    i += cp > 0xffff ? 2 : 1;
    return { info: { variable: false, first: new Set([String.fromCodePoint(cp)]), empty: false } };
  };

  try {
    parseAlternation();
    if (i < n) {
      // A stray ")" — parse the rest as further alternatives so nothing escapes the check.
      i++;
      while (i < n) {
        parseAlternation();
        i++;
      }
    }
  } catch (e) {
    if (e instanceof Refused) return e.message;
    throw e;
  }
  return null;
}
